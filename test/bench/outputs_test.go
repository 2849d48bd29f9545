package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/pkg/upload"
	"github.com/mediaworker/mediaworker/test/stack"
	"github.com/mediaworker/mediaworker/test/storagetest"
)

// BenchmarkStreamOutputs measures what stream destinations add to a room composite of two 720p30
// publishers recorded to MP4: the job's CPU with the file alone, then with 1 and 3 RTMP
// destinations (local ffmpeg receivers) fed from the same encode.
func BenchmarkStreamOutputs(b *testing.B) {
	window := 20 * time.Second
	s := stack.New(b)
	w := s.StartWorker(b, "worker", "")
	s.CreateRoom(b, "obench")
	for _, id := range []string{"a", "b"} {
		s.Publish(b, "obench", id, stack.Media{Name: "cam", Codec: "h264720", Seconds: 200}, stack.Media{Name: "mic", Codec: "opus", Seconds: 200})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	measure := func(name string, req *livekit.RoomCompositeEgressRequest) float64 {
		return measureComposite(b, s, w, ctx, window, name, req, nil)
	}
	file := func(name string) []*livekit.EncodedFileOutput {
		return []*livekit.EncodedFileOutput{{Filepath: name}}
	}
	fmt.Printf("room composite, 2 publishers 720p30 → 720p30 H.264 3 Mb/s + AAC, job CPU:\n")
	// The composite's own CPU varies by ≈ ±0.1 core from run to run on 2 shared cores: alternate
	// runs without and with 4 destinations and compare the averages.
	const n = 4
	var without, with float64
	for round := range 2 {
		without += measure("MP4 file", &livekit.RoomCompositeEgressRequest{FileOutputs: file(fmt.Sprintf("o-file%d", round))})
		var urls []string
		for i := range n {
			u, _, _ := stack.ListenRTMP(b, fmt.Sprintf("k%d%d", round, i))
			urls = append(urls, u)
		}
		with += measure(fmt.Sprintf("MP4 file + %d RTMP", n), &livekit.RoomCompositeEgressRequest{FileOutputs: file(fmt.Sprintf("o-rtmp%d", round)),
			StreamOutputs: []*livekit.StreamOutput{{Protocol: livekit.StreamProtocol_RTMP, Urls: urls}}})
	}
	fmt.Printf("  %-28s %.3f cores per RTMP destination (average of 2 rounds)\n", "", (with-without)/2/n)
}

// measureComposite runs one room composite of room "obench" for window (after a 3 s settle) and
// prints the job's CPU; sample, if set, runs every 250 ms meanwhile.
func measureComposite(b *testing.B, s *stack.Stack, w *stack.Worker, ctx context.Context, window time.Duration, name string,
	req *livekit.RoomCompositeEgressRequest, sample func(egressID string)) float64 {
	req.RoomName = "obench"
	info, err := s.Egress().StartRoomCompositeEgress(ctx, req)
	if err != nil {
		b.Fatal(err)
	}
	stack.Eventually(b, 15*time.Second, "active", func() bool { return active(s, info.EgressId) })
	time.Sleep(3 * time.Second)
	pid := w.Jobs(b)[0].PID
	c0, _ := procStat(pid)
	for deadline := time.Now().Add(window); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if sample != nil {
			sample(info.EgressId)
		}
	}
	c1, rss := procStat(pid)
	_, _ = s.Egress().StopEgress(ctx, &livekit.StopEgressRequest{EgressId: info.EgressId})
	end := ended(b, s, info.EgressId)
	stack.Eventually(b, 30*time.Second, "job gone", func() bool { return len(w.Jobs(b)) == 0 })
	cores := (c1 - c0) / window.Seconds()
	fmt.Printf("  %-28s %.3f cores over %s, RSS %.1f MB (%s)\n", name, cores, window, float64(rss)/1e6, end.Status)
	return cores
}

// BenchmarkSegmentOutputs measures an HLS output (2 s segments to MinIO) of the same composite:
// the job's CPU next to the MP4-only figure, the bytes on the worker's disk at peak over a minute
// (segments are deleted once stored, so this does not grow with the recording's length), and
// the upload throughput to MinIO of a 256 MiB file.
func BenchmarkSegmentOutputs(b *testing.B) {
	window := 40 * time.Second
	s := stack.New(b)
	w := s.StartWorker(b, "worker", "")
	minio := storagetest.StartMinIO(b)
	minio.CreateBucket(b, "hls")
	s.CreateRoom(b, "obench")
	for _, id := range []string{"a", "b"} {
		s.Publish(b, "obench", id, stack.Media{Name: "cam", Codec: "h264720", Seconds: 200}, stack.Media{Name: "mic", Codec: "opus", Seconds: 200})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s3 := &livekit.S3Upload{AccessKey: minio.AccessKey, Secret: minio.Secret, Endpoint: minio.Endpoint, Bucket: "hls", ForcePathStyle: true, Region: "us-east-1"}
	fmt.Printf("room composite, 2 publishers 720p30 → 720p30 H.264 3 Mb/s + AAC, job CPU:\n")
	base := measureComposite(b, s, w, ctx, 20*time.Second, "MP4 file", &livekit.RoomCompositeEgressRequest{
		FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "o-file"}}}, nil)
	var peak int64
	c := measureComposite(b, s, w, ctx, window, "HLS to MinIO (2 s segments)", &livekit.RoomCompositeEgressRequest{
		SegmentOutputs: []*livekit.SegmentedFileOutput{{FilenamePrefix: "bench/seg", SegmentDuration: 2,
			Output: &livekit.SegmentedFileOutput_S3{S3: s3}}}}, func(id string) {
		peak = max(peak, dirBytes(filepath.Join(w.TmpDir, id)))
	})
	fmt.Printf("  %-28s %+.3f cores vs the MP4 file\n", "", c-base)
	fmt.Printf("  %-28s %.2f MB on the worker's disk at peak over %s (≈ %.1f segments)\n", "", float64(peak)/1e6, window,
		float64(peak)/(3.1e6/8*2))

	// Upload throughput: one 256 MiB file, multipart, to the local MinIO.
	st, err := upload.NewS3(s3)
	if err != nil {
		b.Fatal(err)
	}
	big := filepath.Join(b.TempDir(), "big.bin")
	data := make([]byte, 256<<20)
	_, _ = rand.Read(data)
	if err := os.WriteFile(big, data, 0o600); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if _, n, err := st.Upload(ctx, big, "throughput/big.bin", "application/octet-stream"); err != nil || n != int64(len(data)) {
		b.Fatalf("upload: %d bytes, %v", n, err)
	}
	secs := time.Since(t0).Seconds()
	fmt.Printf("upload to MinIO (same machine), 256 MiB: %.1f MB/s (%.2f s)\n", float64(len(data))/1e6/secs, secs)
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
