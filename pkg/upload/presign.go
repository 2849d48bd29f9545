package upload

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"time"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Presigner makes time-limited download URLs for stored objects, so that results can be shared
// without credentials. S3, GCS (with a service account key) and Azure (shared key) presign.
type Presigner interface {
	Presign(ctx context.Context, key string, ttl time.Duration) (string, error)
}

var (
	_ Presigner = (*S3)(nil)
	_ Presigner = (*GCS)(nil)
	_ Presigner = (*Azure)(nil)
)

// Presign is a SigV4 presigned GET URL.
func (s *S3) Presign(ctx context.Context, key string, ttl time.Duration) (string, error) {
	req, err := s3.NewPresignClient(s.client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.conf.Bucket), Key: aws.String(key)},
		s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presign s3 object %s: %w", key, err)
	}
	return req.URL, nil
}

// Presign is a V4 signed URL; it needs credentials with a private key (a service account key
// JSON in gcp.credentials), not Application Default Credentials of a user.
func (g *GCS) Presign(_ context.Context, key string, ttl time.Duration) (string, error) {
	u, err := g.client.Bucket(g.conf.Bucket).SignedURL(key, &storage.SignedURLOptions{Method: "GET", Expires: time.Now().Add(ttl),
		Scheme: storage.SigningSchemeV4})
	if err != nil {
		return "", fmt.Errorf("sign gcs object %s (signing needs a service account key in gcp.credentials): %w", key, err)
	}
	return u, nil
}

// Presign is a read-only service SAS for the blob, signed with the account key.
func (a *Azure) Presign(_ context.Context, key string, ttl time.Duration) (string, error) {
	cred, err := azblob.NewSharedKeyCredential(a.conf.AccountName, a.conf.AccountKey)
	if err != nil {
		return "", fmt.Errorf("sign azure blob %s: %w", key, err)
	}
	qp, err := sas.BlobSignatureValues{Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(ttl).UTC(),
		Permissions: (&sas.BlobPermissions{Read: true}).String(), ContainerName: a.conf.ContainerName, BlobName: key}.SignWithSharedKey(cred)
	if err != nil {
		return "", fmt.Errorf("sign azure blob %s: %w", key, err)
	}
	u, err := url.Parse(a.base)
	if err != nil {
		return "", err
	}
	u.Path = path.Join(u.Path, a.conf.ContainerName, key)
	return u.String() + "?" + qp.Encode(), nil
}
