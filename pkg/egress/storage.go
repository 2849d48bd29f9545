package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/psrpc"

	"github.com/mediaworker/mediaworker/pkg/config"
	"github.com/mediaworker/mediaworker/pkg/upload"
)

// destination is where a finished file goes: the request's storage, else the worker's default;
// nil primary means local disk. backup takes the file when the primary fails.
type destination struct {
	primary, backup upload.Store
}

// resolveStorage builds the stores for a file output.
func resolveStorage(ctx context.Context, conf *config.Config, file *livekit.DirectFileOutput) (*destination, error) {
	d := &destination{}
	var err error
	switch o := file.GetOutput().(type) {
	case *livekit.DirectFileOutput_S3:
		d.primary, err = upload.NewS3(o.S3)
	case *livekit.DirectFileOutput_Gcp:
		d.primary, err = upload.NewGCS(ctx, o.Gcp)
	case *livekit.DirectFileOutput_Azure:
		d.primary, err = upload.NewAzure(o.Azure, conf.AzureBlobEndpoint)
	default:
		d.primary, err = fromConfig(ctx, conf, conf.Storage)
	}
	if err != nil {
		return nil, err
	}
	if d.backup, err = fromConfig(ctx, conf, conf.BackupStorage); err != nil {
		return nil, err
	}
	return d, nil
}

func fromConfig(ctx context.Context, conf *config.Config, s *config.StorageConfig) (upload.Store, error) {
	switch {
	case s == nil:
		return nil, nil
	case s.S3 != nil:
		return upload.NewS3(&livekit.S3Upload{AccessKey: s.S3.AccessKey, Secret: s.S3.Secret, SessionToken: s.S3.SessionToken,
			Region: s.S3.Region, Endpoint: s.S3.Endpoint, Bucket: s.S3.Bucket, ForcePathStyle: s.S3.ForcePathStyle})
	case s.GCP != nil:
		return upload.NewGCS(ctx, &livekit.GCPUpload{Credentials: s.GCP.CredentialsJSON, Bucket: s.GCP.Bucket})
	case s.Azure != nil:
		return upload.NewAzure(&livekit.AzureBlobUpload{AccountName: s.Azure.AccountName, AccountKey: s.Azure.AccountKey,
			ContainerName: s.Azure.ContainerName}, conf.AzureBlobEndpoint)
	}
	return nil, nil
}

// check fails the egress before anything is recorded when the primary storage can never work
// (credentials, bucket) and there is no backup; a store that is only unreachable now does not
// stop the recording.
func (d *destination) check(ctx context.Context) (warning error, err error) {
	if d.primary == nil {
		return nil, nil
	}
	cerr := d.primary.Check(ctx)
	if cerr == nil {
		return nil, nil
	}
	if errors.Is(cerr, upload.ErrPermanent) && d.backup == nil {
		return nil, psrpc.NewError(psrpc.InvalidArgument, cerr)
	}
	return cerr, nil
}

// store uploads one file to the primary storage, else to the backup (backup reports that it was
// used), and returns its location. Each file of a multi-file output is tried on the primary
// first, as the official egress does.
func (d *destination) store(ctx context.Context, log *slog.Logger, local, key, contentType string) (loc string, backup bool, err error) {
	if err := ctx.Err(); err != nil {
		return "", false, fmt.Errorf("upload %s: %w", key, err)
	}
	loc, _, err = d.primary.Upload(ctx, local, key, contentType)
	if err == nil {
		return loc, false, nil
	}
	if d.backup == nil || ctx.Err() != nil {
		return "", false, fmt.Errorf("upload %s: %w", key, err)
	}
	log.Warn("upload failed; trying the backup storage", "key", key, "error", err)
	loc, _, berr := d.backup.Upload(ctx, local, key, contentType)
	if berr != nil {
		return "", false, fmt.Errorf("upload %s: %w (backup storage: %w)", key, err, berr)
	}
	return loc, true, nil
}

// presigned is loc, or a download URL for key in st valid for presign_urls when that is set and
// st can sign (a failure to sign is logged and the plain location kept).
func presigned(ctx context.Context, conf *config.Config, log *slog.Logger, st upload.Store, key, loc string) string {
	p, ok := st.(upload.Presigner)
	if conf.PresignURLs <= 0 || !ok {
		return loc
	}
	u, err := p.Presign(ctx, key, conf.PresignURLs)
	if err != nil {
		log.Warn("could not presign; reporting the plain location", "key", key, "error", err)
		return loc
	}
	return u
}

// storageOf is one output's storage choice (at most one set) in the shape resolveStorage takes:
// file, segment and image outputs each carry the same choices in their own oneof.
func storageOf(s3 *livekit.S3Upload, gcp *livekit.GCPUpload, azure *livekit.AzureBlobUpload, ali *livekit.AliOSSUpload) *livekit.DirectFileOutput {
	d := &livekit.DirectFileOutput{}
	switch {
	case s3 != nil:
		d.Output = &livekit.DirectFileOutput_S3{S3: s3}
	case gcp != nil:
		d.Output = &livekit.DirectFileOutput_Gcp{Gcp: gcp}
	case azure != nil:
		d.Output = &livekit.DirectFileOutput_Azure{Azure: azure}
	case ali != nil:
		d.Output = &livekit.DirectFileOutput_AliOSS{AliOSS: ali}
	}
	return d
}

// errAliOSS refuses AliOSS storage, which this worker cannot write yet.
func errAliOSS(where string) error {
	return psrpc.NewErrorf(psrpc.Unimplemented, "%sAliOSS storage is %v; use S3, GCP, Azure or local storage", where, ErrUnimplemented)
}
