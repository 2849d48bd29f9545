package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/psrpc"

	"github.com/mediaworker/mediaworker/pkg/pipeline"
)

// imageQueue is how many captured stills may wait for storage before new ones are dropped.
const imageQueue = 16

// imageOutput writes one ImageOutput: a JPEG every capture_interval, each stored as soon as it is
// captured (files on local disk stay where they are written).
type imageOutput struct {
	log     *slog.Logger
	out     *livekit.ImageOutput
	dest    *destination
	workDir string // where stills are written: the final place on local disk, a tmp dir otherwise
	dir     string // storage directory of the stills, "" for the root
	base    string // file names start with it
	in      chan capturedImage
	done    chan struct{}

	mu      sync.Mutex // guards inf, n, backup, errs, dropped
	inf     *livekit.ImagesInfo
	n       int // stills captured, for INDEX names
	backup  bool
	errs    []error
	dropped int
}

type capturedImage struct {
	jpeg []byte
	at   time.Time
}

// imagePlan checks an ImageOutput against the video size and fills its defaults: every 10 s, at
// the video size (one side given: the other keeps the aspect ratio).
func imagePlan(o *livekit.ImageOutput, width, height int) (pipeline.ImagePlan, error) {
	p := pipeline.ImagePlan{Every: 10 * time.Second, Width: int(o.GetWidth()), Height: int(o.GetHeight())}
	if ci := o.GetCaptureInterval(); ci > 0 {
		p.Every = time.Duration(ci) * time.Second
	}
	switch {
	case p.Width == 0 && p.Height == 0:
		p.Width, p.Height = width, height
	case p.Height == 0:
		p.Height = even(p.Width * height / width)
	case p.Width == 0:
		p.Width = even(p.Height * width / height)
	}
	if p.Width < 16 || p.Height < 16 || p.Width > 4096 || p.Height > 4096 || p.Width%2 != 0 || p.Height%2 != 0 {
		return p, psrpc.NewErrorf(psrpc.InvalidArgument, "image_outputs: width and height must be even numbers from 16 to 4096 (got %dx%d)", p.Width, p.Height)
	}
	if c := o.GetImageCodec(); c != livekit.ImageCodec_IC_DEFAULT && c != livekit.ImageCodec_IC_JPEG {
		return p, psrpc.NewErrorf(psrpc.InvalidArgument, "image_outputs: image_codec %v is not supported; use IC_JPEG", c)
	}
	return p, nil
}

func even(v int) int { return v &^ 1 }

// startImages resolves each image output's storage and starts it; the plans feed them.
func (rec *recording) startImages(ctx context.Context, req encodedRequest, width, height int, vars FileVars) ([]pipeline.ImagePlan, error) {
	var plans []pipeline.ImagePlan
	for i, o := range req.GetImageOutputs() {
		plan, err := imagePlan(o, width, height)
		if err != nil {
			return nil, err
		}
		dest, err := resolveStorage(ctx, rec.env.Conf, storageOf(o.GetS3(), o.GetGcp(), o.GetAzure(), nil))
		if err != nil {
			return nil, psrpc.NewError(psrpc.InvalidArgument, err)
		}
		if _, err := dest.check(ctx); err != nil {
			return nil, err
		}
		prefix := OutputPath(o.GetFilenamePrefix(), vars, "{room_name}-{time}", "")
		im := &imageOutput{log: rec.log, out: o, dest: dest, dir: path.Dir(prefix), base: path.Base(prefix),
			in: make(chan capturedImage, imageQueue), done: make(chan struct{}),
			inf: &livekit.ImagesInfo{FilenamePrefix: prefix, StartedAt: time.Now().UnixNano()}}
		if im.dir == "." {
			im.dir = ""
		}
		im.workDir = filepath.Join(rec.env.Conf.TmpDir, rec.info.EgressId, fmt.Sprintf("images%d", i))
		if dest.primary == nil {
			im.workDir = filepath.Join(rec.env.Conf.LocalOutputDir, filepath.FromSlash(im.dir))
		}
		if err := os.MkdirAll(im.workDir, 0o755); err != nil {
			return nil, fmt.Errorf("create the image directory (check local_output_dir / tmp_dir permissions): %w", err)
		}
		go im.run()
		rec.images = append(rec.images, im)
		plan.OnImage = im.push
		plans = append(plans, plan)
		rec.log.Info("capturing images", "prefix", prefix, "every", plan.Every.String(), "size", fmt.Sprintf("%dx%d", plan.Width, plan.Height))
	}
	return plans, nil
}

// push queues a still without blocking (a GStreamer thread calls it).
func (im *imageOutput) push(jpeg []byte, _ time.Duration) {
	select {
	case im.in <- capturedImage{jpeg: jpeg, at: time.Now()}:
	default:
		im.mu.Lock()
		im.dropped++
		im.mu.Unlock()
	}
}

// run writes and stores stills until close.
func (im *imageOutput) run() {
	defer close(im.done)
	for c := range im.in {
		if err := im.save(c); err != nil {
			im.log.Error("image not stored", "error", err)
			im.mu.Lock()
			if len(im.errs) < 3 {
				im.errs = append(im.errs, err)
			}
			im.mu.Unlock()
		}
	}
}

// name is a still's file name per filename_suffix.
func (im *imageOutput) name(index int, at time.Time) string {
	switch im.out.GetFilenameSuffix() {
	case livekit.ImageFileSuffix_IMAGE_SUFFIX_TIMESTAMP:
		t := at.UTC()
		return fmt.Sprintf("%s_%s%s.jpeg", im.base, t.Format("20060102150405"), t.Format(".000")[1:])
	case livekit.ImageFileSuffix_IMAGE_SUFFIX_NONE_OVERWRITE:
		return im.base + ".jpeg"
	}
	return fmt.Sprintf("%s_%05d.jpeg", im.base, index)
}

// save writes one still and stores it; on local disk the file is its final place.
func (im *imageOutput) save(c capturedImage) error {
	im.mu.Lock()
	index := im.n
	im.n++
	im.mu.Unlock()
	name := im.name(index, c.at)
	local := filepath.Join(im.workDir, name)
	if err := os.WriteFile(local+".tmp", c.jpeg, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", local, err)
	}
	if err := os.Rename(local+".tmp", local); err != nil { // an overwritten still is never half written
		return fmt.Errorf("write %s: %w", local, err)
	}
	if im.dest.primary != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, backup, err := im.dest.store(ctx, im.log, local, path.Join(im.dir, name), "image/jpeg")
		if err != nil {
			return fmt.Errorf("%w (the image is kept at %s)", err, local)
		}
		_ = os.Remove(local)
		if backup {
			im.mu.Lock()
			im.backup = true
			im.mu.Unlock()
		}
	}
	im.mu.Lock()
	im.inf.ImageCount++
	im.mu.Unlock()
	return nil
}

// close stores what was captured and returns the output's info and any storage error.
func (im *imageOutput) close(ctx context.Context) (*livekit.ImagesInfo, bool, error) {
	close(im.in)
	select {
	case <-im.done:
	case <-ctx.Done():
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	im.inf.EndedAt = time.Now().UnixNano()
	if im.dropped > 0 {
		im.log.Warn("images dropped: storage did not keep up", "dropped", im.dropped)
	}
	var err error
	if len(im.errs) > 0 {
		err = fmt.Errorf("image output %s: %w", im.inf.FilenamePrefix, errors.Join(im.errs...))
	}
	return im.inf, im.backup, err
}

// closeImages finishes every image output after the pipeline has drained.
func (rec *recording) closeImages(ctx context.Context) error {
	var errs []error
	for _, im := range rec.images {
		info, backup, err := im.close(ctx)
		rec.info.ImageResults = append(rec.info.ImageResults, info)
		if backup {
			rec.info.SetBackupUsed()
		}
		errs = append(errs, err)
		rec.log.Info("images stored", "prefix", info.FilenamePrefix, "count", info.ImageCount)
	}
	return errors.Join(errs...)
}
