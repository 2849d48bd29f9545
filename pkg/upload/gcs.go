package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"cloud.google.com/go/storage"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
)

// GCS stores in Google Cloud Storage. STORAGE_EMULATOR_HOST (Google's own variable) points it at an
// emulator such as fake-gcs-server.
type GCS struct {
	conf   *livekit.GCPUpload
	client *storage.Client
	Retry  Retry
}

var _ Store = (*GCS)(nil)

// NewGCS builds a client from the request's credentials JSON, or Application Default Credentials
// when it is empty.
func NewGCS(ctx context.Context, conf *livekit.GCPUpload) (*GCS, error) {
	if conf.GetBucket() == "" {
		return nil, fmt.Errorf("%w: gcp.bucket is empty", ErrPermanent)
	}
	var opts []option.ClientOption
	if c := conf.GetCredentials(); c != "" {
		opts = append(opts, option.WithCredentialsJSON([]byte(c)))
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: gcp credentials: %v (gcp.credentials must be a service account key JSON)", ErrPermanent, err)
	}
	return &GCS{conf: conf, client: client, Retry: DefaultRetry}, nil
}

// Check reads the bucket's attributes.
func (g *GCS) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := g.client.Bucket(g.conf.Bucket).Attrs(ctx)
	return g.explain("check bucket", err)
}

// Upload streams the file in 8 MiB resumable chunks.
func (g *GCS) Upload(ctx context.Context, localPath, key, contentType string) (string, int64, error) {
	st, err := os.Stat(localPath)
	if err != nil {
		return "", 0, err
	}
	var n int64
	err = g.Retry.do(ctx, func() error {
		f, err := os.Open(localPath)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrPermanent, err)
		}
		defer f.Close()
		wctx, cancel := context.WithTimeout(ctx, attemptTimeout(st.Size()))
		defer cancel()
		w := g.client.Bucket(g.conf.Bucket).Object(key).NewWriter(wctx)
		w.ChunkSize = 8 << 20
		w.ContentType = contentType
		if n, err = io.Copy(w, f); err != nil {
			w.Close()
			return g.explain("upload "+key, err)
		}
		return g.explain("upload "+key, w.Close())
	})
	if err != nil {
		return "", 0, err
	}
	return fmt.Sprintf("https://storage.googleapis.com/%s/%s", g.conf.Bucket, key), n, nil
}

func (g *GCS) explain(what string, err error) error {
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("gcs bucket %q", g.conf.Bucket)
	var ge *googleapi.Error
	switch {
	case errors.Is(err, storage.ErrBucketNotExist):
		return fmt.Errorf("%w: %s: %s does not exist (create it or fix gcp.bucket)", ErrPermanent, what, where)
	case errors.As(err, &ge) && (ge.Code == http.StatusUnauthorized || ge.Code == http.StatusForbidden):
		return fmt.Errorf("%w: %s: %s refused the credentials (HTTP %d: check gcp.credentials and the bucket's IAM)", ErrPermanent, what, where, ge.Code)
	case errors.As(err, &ge) && ge.Code == http.StatusNotFound:
		return fmt.Errorf("%w: %s: %s does not exist (create it or fix gcp.bucket)", ErrPermanent, what, where)
	}
	return fmt.Errorf("%w: %s: %s: %v", ErrUnavailable, what, where, redactErr(err))
}
