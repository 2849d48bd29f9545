package upload

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

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

// Presign is a V4 signed URL (GOOG4-RSA-SHA256, path style); it needs a service account key in
// gcp.credentials, not Application Default Credentials.
func (g *GCS) Presign(_ context.Context, key string, ttl time.Duration) (string, error) {
	if g.signer == nil {
		return "", fmt.Errorf("sign gcs object %s: signing needs a service account key in gcp.credentials", key)
	}
	return g.signer.signedURL(g.conf.Bucket, key, time.Now(), ttl)
}

// serviceAccount is the part of a service account key JSON that signs URLs.
type serviceAccount struct {
	email string
	key   *rsa.PrivateKey
}

func parseServiceAccount(keyJSON []byte) (*serviceAccount, error) {
	var f struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	if err := json.Unmarshal(keyJSON, &f); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if f.Type != "service_account" || f.ClientEmail == "" || f.PrivateKey == "" {
		return nil, fmt.Errorf("type %q: want a service_account key with client_email and private_key", f.Type)
	}
	block, _ := pem.Decode([]byte(f.PrivateKey))
	if block == nil {
		return nil, errors.New("private_key is not PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return nil, fmt.Errorf("private_key: %v", err)
		}
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("private_key is not an RSA key")
	}
	return &serviceAccount{email: f.ClientEmail, key: key}, nil
}

// signedURL is a GET URL for bucket/name valid for ttl from now (at most 7 days), signed as
// Google's V4 signing process describes: a canonical request (method, path, query, host header,
// UNSIGNED-PAYLOAD), its SHA-256 in a string to sign, RSA-SHA256 of that.
func (sa *serviceAccount) signedURL(bucket, name string, now time.Time, ttl time.Duration) (string, error) {
	if ttl <= 0 || ttl > 7*24*time.Hour {
		return "", fmt.Errorf("sign gcs object %s: expiry %s is not within 7 days", name, ttl)
	}
	now = now.UTC()
	stamp := now.Format("20060102T150405Z")
	scope := now.Format("20060102") + "/auto/storage/goog4_request"
	segments := strings.Split(bucket+"/"+name, "/")
	for i, s := range segments {
		segments[i] = strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
	}
	path := "/" + strings.Join(segments, "/")
	query := strings.ReplaceAll(url.Values{
		"X-Goog-Algorithm":     {"GOOG4-RSA-SHA256"},
		"X-Goog-Credential":    {sa.email + "/" + scope},
		"X-Goog-Date":          {stamp},
		"X-Goog-Expires":       {fmt.Sprint(int(ttl.Seconds()))},
		"X-Goog-SignedHeaders": {"host"},
	}.Encode(), "+", "%20")
	const host = "storage.googleapis.com"
	canonical := strings.Join([]string{"GET", path, query, "host:" + host, "", "host", "UNSIGNED-PAYLOAD"}, "\n")
	digest := sha256.Sum256([]byte(canonical))
	toSign := sha256.Sum256([]byte("GOOG4-RSA-SHA256\n" + stamp + "\n" + scope + "\n" + hex.EncodeToString(digest[:])))
	sig, err := rsa.SignPKCS1v15(nil, sa.key, crypto.SHA256, toSign[:])
	if err != nil {
		return "", fmt.Errorf("sign gcs object %s: %w", name, err)
	}
	return "https://" + host + path + "?" + query + "&X-Goog-Signature=" + hex.EncodeToString(sig), nil
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
