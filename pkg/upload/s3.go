package upload

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/livekit/protocol/livekit"
)

// S3 stores in AWS S3 or an S3-compatible service (MinIO, R2, …).
type S3 struct {
	conf   *livekit.S3Upload
	client *s3.Client
	Retry  Retry
	// PartSize is the multipart chunk (default 8 MiB); files above it upload in parts.
	PartSize int64
}

var _ Store = (*S3)(nil)

// NewS3 validates conf and builds a client. Credentials never appear in errors.
func NewS3(conf *livekit.S3Upload) (*S3, error) {
	if conf.GetBucket() == "" {
		return nil, fmt.Errorf("%w: s3.bucket is empty", ErrPermanent)
	}
	if conf.GetAccessKey() == "" || conf.GetSecret() == "" {
		return nil, fmt.Errorf("%w: s3.access_key and s3.secret are required (instance or environment credentials are not supported yet)", ErrPermanent)
	}
	region := conf.GetRegion()
	if region == "" {
		region = "us-east-1"
	}
	opts := s3.Options{
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(conf.AccessKey, conf.Secret, conf.SessionToken),
		UsePathStyle:     conf.ForcePathStyle,
		RetryMaxAttempts: 1, // we retry ourselves, with our own classification
	}
	if ep := conf.GetEndpoint(); ep != "" {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("%w: s3.endpoint %q must be a URL like https://s3.example.com", ErrPermanent, ep)
		}
		opts.BaseEndpoint = aws.String(strings.TrimSuffix(ep, "/"))
	}
	return &S3{conf: conf, client: s3.New(opts), Retry: DefaultRetry, PartSize: 8 << 20}, nil
}

// Check asks for the bucket: wrong credentials and missing buckets show up before recording.
func (s *S3) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.conf.Bucket)})
	return s.explain("check bucket", err)
}

// Upload sends the file, in parts when large, retrying transient failures with backoff.
func (s *S3) Upload(ctx context.Context, localPath, key, contentType string) (string, int64, error) {
	st, err := os.Stat(localPath)
	if err != nil {
		return "", 0, err
	}
	up := manager.NewUploader(s.client, func(u *manager.Uploader) { u.PartSize = s.PartSize })
	if err := s.Retry.do(ctx, func() error { return s.put(ctx, up, localPath, key, contentType, st.Size()) }); err != nil {
		return "", 0, err
	}
	return s.location(key), st.Size(), nil
}

func (s *S3) put(ctx context.Context, up *manager.Uploader, localPath, key, contentType string, size int64) error {
	f, err := os.Open(localPath)
	if err != nil {
		return err
	}
	defer f.Close()
	in := &s3.PutObjectInput{Bucket: aws.String(s.conf.Bucket), Key: aws.String(key), Body: f, ContentType: aws.String(contentType)}
	if len(s.conf.Metadata) > 0 {
		in.Metadata = s.conf.Metadata
	}
	if s.conf.Tagging != "" {
		in.Tagging = aws.String(s.conf.Tagging)
	}
	if s.conf.ContentDisposition != "" {
		in.ContentDisposition = aws.String(s.conf.ContentDisposition)
	}
	actx, cancel := context.WithTimeout(ctx, attemptTimeout(size))
	defer cancel()
	_, err = up.Upload(actx, in)
	return s.explain("upload "+key, err)
}

// explain turns SDK errors into ones a user can act on, classified permanent or transient.
func (s *S3) explain(what string, err error) error {
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("s3 bucket %q", s.conf.Bucket)
	if s.conf.Endpoint != "" {
		where += " at " + s.conf.Endpoint
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchBucket", "NotFound":
			return fmt.Errorf("%w: %s: %s does not exist (create it or fix s3.bucket)", ErrPermanent, what, where)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden", "InvalidToken", "ExpiredToken":
			return fmt.Errorf("%w: %s: %s refused the credentials (%s: check s3.access_key, s3.secret, s3.session_token and the bucket policy)", ErrPermanent, what, where, api.ErrorCode())
		case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
			return fmt.Errorf("%w: %s: %s is in another region (%s: fix s3.region)", ErrPermanent, what, where, api.ErrorCode())
		}
		return fmt.Errorf("%w: %s: %s answered %s", ErrUnavailable, what, where, api.ErrorCode())
	}
	return fmt.Errorf("%w: %s: %s unreachable: %v", ErrUnavailable, what, where, redactErr(err))
}

// location is where the object can be found, in the form the official egress reports.
func (s *S3) location(key string) string {
	if ep := s.conf.Endpoint; ep != "" {
		ep = strings.TrimSuffix(ep, "/")
		if s.conf.ForcePathStyle {
			return ep + "/" + s.conf.Bucket + "/" + key
		}
		if u, err := url.Parse(ep); err == nil {
			return u.Scheme + "://" + s.conf.Bucket + "." + u.Host + "/" + key
		}
	}
	region := s.conf.Region
	if region == "" {
		region = "us-east-1"
	}
	return fmt.Sprintf("https://%s.s3.%s.amazonaws.com/%s", s.conf.Bucket, region, key)
}

// redactErr keeps error text but never a credential (they are not in SDK transport errors, but a
// custom endpoint URL could carry user:pass).
func redactErr(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "://"); i >= 0 {
		if at := strings.Index(msg[i:], "@"); at > 0 && !strings.Contains(msg[i:i+at], "/") {
			msg = msg[:i+3] + "<redacted>" + msg[i+at:]
		}
	}
	return msg
}
