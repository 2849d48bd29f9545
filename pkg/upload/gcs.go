package upload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/livekit/protocol/livekit"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// GCS stores in Google Cloud Storage through its JSON API (resumable uploads), with OAuth2 tokens
// from the request's service account key or Application Default Credentials. It does not use
// Google's Go SDK: that SDK brings gRPC and xDS along, 28 MB of binary, ≈ 26 MB of RSS in every
// job process. STORAGE_EMULATOR_HOST (Google's own variable) points it, without credentials, at an
// emulator such as fake-gcs-server.
type GCS struct {
	conf   *livekit.GCPUpload
	base   string // scheme://host of the JSON API
	client *http.Client
	signer *serviceAccount // nil without a service account key: Presign refuses
	Retry  Retry
}

var _ Store = (*GCS)(nil)

// gcsChunk is the size of each resumable upload request (a multiple of 256 KiB, as GCS requires).
const gcsChunk = 8 << 20

const gcsScope = "https://www.googleapis.com/auth/devstorage.read_write"

// NewGCS builds a client from the request's credentials JSON, or Application Default Credentials
// when it is empty.
func NewGCS(ctx context.Context, conf *livekit.GCPUpload) (*GCS, error) {
	if conf.GetBucket() == "" {
		return nil, fmt.Errorf("%w: gcp.bucket is empty", ErrPermanent)
	}
	g := &GCS{conf: conf, base: "https://storage.googleapis.com", Retry: DefaultRetry}
	if c := conf.GetCredentials(); c != "" {
		sa, err := parseServiceAccount([]byte(c))
		if err != nil {
			return nil, fmt.Errorf("%w: gcp credentials: %v (gcp.credentials must be a service account key JSON)", ErrPermanent, err)
		}
		g.signer = sa
	}
	if host := os.Getenv("STORAGE_EMULATOR_HOST"); host != "" {
		if !strings.Contains(host, "://") {
			host = "http://" + host
		}
		g.base, g.client = strings.TrimSuffix(host, "/"), &http.Client{CheckRedirect: answerOnly}
		return g, nil
	}
	var creds *google.Credentials
	var err error
	if c := conf.GetCredentials(); c != "" {
		creds, err = google.CredentialsFromJSONWithType(ctx, []byte(c), google.ServiceAccount, gcsScope)
	} else {
		creds, err = google.FindDefaultCredentials(ctx, gcsScope)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: gcp credentials: %v (gcp.credentials must be a service account key JSON)", ErrPermanent, err)
	}
	g.client = oauth2.NewClient(context.Background(), creds.TokenSource)
	g.client.CheckRedirect = answerOnly
	return g, nil
}

// answerOnly keeps the client from following redirects: a resumable upload's "308 Resume
// Incomplete" is an answer, not a redirect.
func answerOnly(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Check reads the bucket's metadata.
func (g *GCS) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/storage/v1/b/"+url.PathEscape(g.conf.Bucket)+"?fields=name", nil)
	if err != nil {
		return fmt.Errorf("%w: gcp.bucket %q: %v", ErrPermanent, g.conf.Bucket, err)
	}
	_, err = g.do(req, http.StatusOK)
	return g.explain("check bucket", err)
}

// Upload streams the file in 8 MiB resumable chunks.
func (g *GCS) Upload(ctx context.Context, localPath, key, contentType string) (string, int64, error) {
	st, err := os.Stat(localPath)
	if err != nil {
		return "", 0, err
	}
	err = g.Retry.do(ctx, func() error {
		f, err := os.Open(localPath)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrPermanent, err)
		}
		defer f.Close()
		wctx, cancel := context.WithTimeout(ctx, attemptTimeout(st.Size()))
		defer cancel()
		return g.explain("upload "+key, g.upload(wctx, f, st.Size(), key, contentType))
	})
	if err != nil {
		return "", 0, err
	}
	return fmt.Sprintf("https://storage.googleapis.com/%s/%s", g.conf.Bucket, key), st.Size(), nil
}

// upload is one resumable upload of size bytes from r: a session, then chunks with Content-Range
// (308 until the last, which answers 200 or 201).
func (g *GCS) upload(ctx context.Context, r io.Reader, size int64, key, contentType string) error {
	meta, _ := json.Marshal(map[string]string{"name": key, "contentType": contentType})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/upload/storage/v1/b/"+url.PathEscape(g.conf.Bucket)+
		"/o?uploadType=resumable&name="+url.QueryEscape(key), bytes.NewReader(meta))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("X-Upload-Content-Type", contentType)
	req.Header.Set("X-Upload-Content-Length", fmt.Sprint(size))
	resp, err := g.do(req, http.StatusOK, http.StatusCreated)
	if err != nil {
		return err
	}
	session := resp.Header.Get("Location")
	if session == "" {
		return fmt.Errorf("%w: no upload session in the answer", ErrUnavailable)
	}
	buf := make([]byte, min(size, gcsChunk))
	for off := int64(0); ; {
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), size-off)])
		if err != nil {
			return fmt.Errorf("%w: read (did the file change while it was stored?): %v", ErrPermanent, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, session, bytes.NewReader(buf[:n]))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrPermanent, err)
		}
		if size == 0 {
			req.Header.Set("Content-Range", "bytes */0")
		} else {
			req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+int64(n)-1, size))
		}
		off += int64(n)
		want := []int{http.StatusPermanentRedirect} // 308: send the next chunk
		if off == size {
			want = []int{http.StatusOK, http.StatusCreated}
		}
		if _, err := g.do(req, want...); err != nil {
			return err
		}
		if off == size {
			return nil
		}
	}
}

// gcsError is an answer with a status the call did not expect.
type gcsError struct {
	code int
	msg  string
}

func (e *gcsError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.msg) }

// do sends req and fails unless the answer's status is one of want; the body is read and closed.
func (g *GCS) do(req *http.Request, want ...int) (*http.Response, error) {
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	return nil, &gcsError{code: resp.StatusCode, msg: msg}
}

func (g *GCS) explain(what string, err error) error {
	if err == nil || errors.Is(err, ErrPermanent) {
		return err
	}
	where := fmt.Sprintf("gcs bucket %q", g.conf.Bucket)
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Errorf("%w: %s: Google refused the credentials' token (HTTP %d: check gcp.credentials)", ErrPermanent, what, re.Response.StatusCode)
	}
	var ge *gcsError
	if errors.As(err, &ge) {
		switch ge.code {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %s: %s does not exist (create it or fix gcp.bucket)", ErrPermanent, what, where)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %s: %s refused the credentials (HTTP %d: check gcp.credentials and the bucket's IAM)", ErrPermanent, what, where, ge.code)
		case http.StatusBadRequest:
			return fmt.Errorf("%w: %s: %s: %v", ErrPermanent, what, where, ge)
		}
	}
	return fmt.Errorf("%w: %s: %s: %v", ErrUnavailable, what, where, redactErr(err))
}
