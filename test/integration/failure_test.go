package integration

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	"github.com/redis/go-redis/v9"
	"github.com/twitchtv/twirp"

	"github.com/mediaworker/mediaworker/test/stack"
	"github.com/mediaworker/mediaworker/test/storagetest"
)

// TestBadRequests: refused requests reach the API caller with a clear code, a missing track ends
// FAILED with a reason, and the worker keeps serving.
func TestBadRequests(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "timeouts: {track_wait: 2s}\n")
	s.CreateRoom(t, "bad-room")

	t.Run("unknown track id fails with a reason", func(t *testing.T) {
		info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{
			RoomName: "bad-room", TrackId: "TR_doesnotexist",
			Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{}},
		})
		if err != nil {
			t.Fatal(err)
		}
		end := waitEvent(t, s, info.EgressId, "egress_ended", 15*time.Second)
		if end.Status != livekit.EgressStatus_EGRESS_FAILED || !strings.Contains(end.Error, "TR_doesnotexist") || end.ErrorCode != 404 {
			t.Fatalf("got %s code %d %q", end.Status, end.ErrorCode, end.Error)
		}
	})

	t.Run("a layout not built yet is unimplemented, at once", func(t *testing.T) {
		start := time.Now()
		_, err := s.Egress().StartRoomCompositeEgress(ctx(t), &livekit.RoomCompositeEgressRequest{
			RoomName: "bad-room", Layout: "mosaic", FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "x.mp4"}},
		})
		var te twirp.Error
		if !errors.As(err, &te) || te.Code() != twirp.Unimplemented || !strings.Contains(te.Msg(), "not implemented") {
			t.Fatalf("want twirp unimplemented, got %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("refusal took %s", d)
		}
	})

	t.Run("impossible encoding is refused naming the field", func(t *testing.T) {
		_, err := s.Egress().StartRoomCompositeEgress(ctx(t), &livekit.RoomCompositeEgressRequest{
			RoomName: "bad-room", FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "x.mp4"}},
			Options: &livekit.RoomCompositeEgressRequest_Advanced{Advanced: &livekit.EncodingOptions{Width: 1279, Height: 720}},
		})
		var te twirp.Error
		if !errors.As(err, &te) || te.Code() != twirp.InvalidArgument || !strings.Contains(te.Msg(), "width") {
			t.Fatalf("want invalid_argument naming width, got %v", err)
		}
	})

	t.Run("a websocket_url that is not ws:// is refused", func(t *testing.T) {
		_, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{
			RoomName: "bad-room", TrackId: "TR_x", Output: &livekit.TrackEgressRequest_WebsocketUrl{WebsocketUrl: "https://127.0.0.1:1/x"},
		})
		var te twirp.Error
		if !errors.As(err, &te) || te.Code() != twirp.InvalidArgument || !strings.Contains(te.Msg(), "websocket_url") {
			t.Fatalf("want invalid_argument naming websocket_url, got %v", err)
		}
	})

	t.Run("duplicate egress id is rejected", func(t *testing.T) {
		rc := redis.NewClient(&redis.Options{Addr: s.RedisAddr})
		defer rc.Close()
		client, err := rpc.NewEgressInternalClient(psrpc.NewRedisMessageBus(rc))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		room := s.CreateRoom(t, "dup-room")
		req := &rpc.StartEgressRequest{EgressId: "EG_duplicate", RoomId: room.Sid, Request: &rpc.StartEgressRequest_Track{
			Track: &livekit.TrackEgressRequest{RoomName: "dup-room", TrackId: "TR_dup", Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{}}}}}
		if _, err := client.StartEgress(ctx(t), "", req); err != nil {
			t.Fatalf("first start: %v", err)
		}
		_, err = client.StartEgress(ctx(t), "", req)
		var pe psrpc.Error
		if !errors.As(err, &pe) || pe.Code() != psrpc.AlreadyExists {
			t.Fatalf("second start: want AlreadyExists, got %v", err)
		}
	})
}

// TestJobCrashIsolation crashes one job's process (SIGQUIT: the Go runtime prints its crash report
// and exits 2): that egress ends FAILED with the crash's first line, while a second egress on the
// same worker records on and completes.
func TestJobCrashIsolation(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "crash-room")
	pub := s.Publish(t, "crash-room", "carol", stack.Media{Name: "mic", Codec: "opus", Seconds: 30})
	var ids []string
	for i := 0; i < 2; i++ {
		info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{
			RoomName: "crash-room", TrackId: pub.Tracks["mic"],
			Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{Filepath: "crash/{time}-" + string(rune('a'+i))}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.EgressId)
	}
	for _, id := range ids {
		waitEvent(t, s, id, "egress_updated", 10*time.Second)
	}
	var victim int
	for _, j := range w.Jobs(t) {
		if j.EgressID == ids[0] {
			victim = j.PID
		}
	}
	if victim == 0 {
		t.Fatalf("job %s not in /jobs: %v", ids[0], w.Jobs(t))
	}
	killedAt := time.Now()
	if err := syscall.Kill(victim, syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	failed := waitEvent(t, s, ids[0], "egress_ended", 10*time.Second)
	t.Logf("crashed job: %q", failed.Error)
	if failed.Status != livekit.EgressStatus_EGRESS_FAILED || !strings.Contains(failed.Error, "exit status 2") || !strings.Contains(failed.Error, "SIGQUIT: quit") {
		t.Fatalf("crashed job: %s %q", failed.Status, failed.Error)
	}
	time.Sleep(2 * time.Second) // the survivor keeps recording after the crash
	if _, err := s.Egress().StopEgress(ctx(t), &livekit.StopEgressRequest{EgressId: ids[1]}); err != nil {
		t.Fatalf("stop survivor: %v", err)
	}
	ok := waitEvent(t, s, ids[1], "egress_ended", 20*time.Second)
	if ok.Status != livekit.EgressStatus_EGRESS_COMPLETE {
		t.Fatalf("survivor: %s %q", ok.Status, ok.Error)
	}
	// The survivor recorded through the crash: its file covers at least the time since the kill.
	if d, since := time.Duration(ok.FileResults[0].Duration), time.Since(killedAt); d < since-500*time.Millisecond {
		t.Fatalf("survivor recorded %s, but %s passed since the crash", d, since)
	}
	if e := stack.DecodeErrors(t, ok.FileResults[0].Location); e != "" {
		t.Fatalf("survivor's file: %s", e)
	}
	if code, _ := w.Get(t, "/healthz"); code != 200 {
		t.Fatalf("worker unhealthy after a job crash: %d", code)
	}
}

// TestTwoWorkersShareJobs runs two workers on one Redis: consecutive jobs go to different workers.
func TestTwoWorkersShareJobs(t *testing.T) {
	s := stack.New(t)
	w1 := s.StartWorker(t, "worker-1", "")
	w2 := s.StartWorker(t, "worker-2", "")
	s.CreateRoom(t, "share-room")
	pub := s.Publish(t, "share-room", "dave", stack.Media{Name: "mic", Codec: "opus", Seconds: 30})
	var ids []string
	for i := 0; i < 2; i++ {
		info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{
			RoomName: "share-room", TrackId: pub.Tracks["mic"],
			Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{Filepath: "share/" + string(rune('a'+i))}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.EgressId)
		waitEvent(t, s, info.EgressId, "egress_updated", 10*time.Second)
	}
	n1, n2 := len(w1.Jobs(t)), len(w2.Jobs(t))
	if n1 != 1 || n2 != 1 {
		t.Fatalf("jobs per worker: %d and %d, want 1 and 1", n1, n2)
	}
	for _, id := range ids {
		if _, err := s.Egress().StopEgress(ctx(t), &livekit.StopEgressRequest{EgressId: id}); err != nil {
			t.Fatal(err)
		}
		if e := waitEvent(t, s, id, "egress_ended", 20*time.Second); e.Status != livekit.EgressStatus_EGRESS_COMPLETE {
			t.Fatalf("%s: %s %q", id, e.Status, e.Error)
		}
	}
}

// TestSignals: SIGTERM stops claiming but lets the running job record on; SIGINT ends it cleanly.
func TestSignals(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "sig-room")
	pub := s.Publish(t, "sig-room", "erin", stack.Media{Name: "mic", Codec: "opus", Seconds: 30})
	info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{
		RoomName: "sig-room", TrackId: pub.Tracks["mic"],
		Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{Filepath: "sig"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 10*time.Second)
	w.Signal(syscall.SIGTERM)
	stack.Eventually(t, 5*time.Second, "readyz 503 while draining", func() bool { code, _ := w.Get(t, "/readyz"); return code == 503 })
	time.Sleep(2 * time.Second)
	if evs, _ := s.Webhooks.ForEgress(info.EgressId); evs[len(evs)-1].Event == "egress_ended" {
		t.Fatal("SIGTERM ended the running job; it should drain")
	}
	short, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if _, err := s.Egress().StartTrackEgress(short, &livekit.TrackEgressRequest{
		RoomName: "sig-room", TrackId: pub.Tracks["mic"], Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{}},
	}); err == nil {
		t.Fatal("a draining worker claimed a new job")
	}
	w.Signal(syscall.SIGINT)
	end := waitEvent(t, s, info.EgressId, "egress_ended", 20*time.Second)
	if end.Status != livekit.EgressStatus_EGRESS_COMPLETE {
		t.Fatalf("after SIGINT: %s %q", end.Status, end.Error)
	}
	if !w.Wait(10 * time.Second) {
		t.Fatal("worker did not exit after its jobs ended")
	}
	if e := stack.DecodeErrors(t, end.FileResults[0].Location); e != "" {
		t.Fatalf("decode errors: %s", e)
	}
}

// TestWorkerKilled SIGKILLs the worker mid-recording: its job process finalises the file on its
// own and reports FAILED with the partial recording in file_results, instead of leaving it ACTIVE.
func TestWorkerKilled(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "orphan-room")
	pub := s.Publish(t, "orphan-room", "hank", stack.Media{Name: "cam", Codec: "h264", Seconds: 30})
	info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{
		RoomName: "orphan-room", TrackId: pub.Tracks["cam"],
		Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{Filepath: "orphan"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 10*time.Second)
	time.Sleep(3 * time.Second)
	w.Signal(syscall.SIGKILL)
	end := waitEvent(t, s, info.EgressId, "egress_ended", 30*time.Second)
	if end.Status != livekit.EgressStatus_EGRESS_FAILED || !strings.Contains(end.Error, "worker process died") || len(end.FileResults) != 1 {
		t.Fatalf("got %s %q %v", end.Status, end.Error, end.FileResults)
	}
	p := stack.FFprobe(t, end.FileResults[0].Location)
	if !near(p.Duration(), 3, 1) {
		t.Fatalf("partial recording is %.2fs, want ≈3 s", p.Duration())
	}
	if e := stack.DecodeErrors(t, end.FileResults[0].Location); e != "" {
		t.Fatalf("partial recording: %s", e)
	}
}

// TestJobKilledWithWorker kills the worker and its job process at once (as a node or pod loss
// would): the next worker started on the same tmp_dir stores the partial recording in MinIO and
// ends the egress FAILED with it.
func TestJobKilledWithWorker(t *testing.T) {
	s := stack.New(t)
	minio := storagetest.StartMinIO(t)
	minio.CreateBucket(t, "rec")
	w := s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "loss-room")
	pub := s.Publish(t, "loss-room", "kim", stack.Media{Name: "cam", Codec: "h264", Seconds: 60})
	info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{RoomName: "loss-room", TrackId: pub.Tracks["cam"],
		Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{Filepath: "loss/{track_id}", Output: &livekit.DirectFileOutput_S3{
			S3: &livekit.S3Upload{AccessKey: minio.AccessKey, Secret: minio.Secret, Endpoint: minio.Endpoint, Bucket: "rec", ForcePathStyle: true}}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 10*time.Second)
	time.Sleep(6 * time.Second)
	job := w.Jobs(t)[0].PID
	_ = syscall.Kill(job, syscall.SIGKILL)
	w.Signal(syscall.SIGKILL)
	if !w.Wait(5 * time.Second) {
		t.Fatal("worker survived SIGKILL")
	}
	if evs, _ := s.Webhooks.ForEgress(info.EgressId); evs[len(evs)-1].Event == "egress_ended" {
		t.Fatal("egress ended before any worker could know")
	}
	s.RestartWorker(t, "worker-restarted", w, "")
	end := waitEvent(t, s, info.EgressId, "egress_ended", 30*time.Second)
	if end.Status != livekit.EgressStatus_EGRESS_FAILED || !strings.Contains(end.Error, "killed") || len(end.FileResults) != 1 {
		t.Fatalf("got %s %q %v", end.Status, end.Error, end.FileResults)
	}
	key := "loss/" + pub.Tracks["cam"] + ".mp4"
	if fr := end.FileResults[0]; fr.Location != minio.Endpoint+"/rec/"+key || fr.Size == 0 {
		t.Fatalf("file result %v", fr)
	}
	got := minio.Get(t, "rec", key, t.TempDir())
	if e := stack.DecodeErrors(t, got); e != "" {
		t.Fatalf("partial recording does not decode: %s", e)
	}
	// fragments are closed at least every second: at most ~1 s of the 6 s is lost
	out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", got).Output()
	if n, _ := strconv.Atoi(strings.TrimSpace(string(out))); err != nil || n < 5*30 {
		t.Fatalf("partial recording holds %d frames (%v), want ≥ 150 of the ~180 recorded", n, err)
	}
}

// TestFullWorkerDoesNotClaim: at capacity a worker is not ready and does not bid; a freed slot is
// claimed again.
func TestFullWorkerDoesNotClaim(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "capacity: {max_jobs: 1}\n")
	s.CreateRoom(t, "full-room")
	pub := s.Publish(t, "full-room", "max", stack.Media{Name: "mic", Codec: "opus", Seconds: 30})
	start := func(c context.Context) (*livekit.EgressInfo, error) {
		return s.Egress().StartTrackEgress(c, &livekit.TrackEgressRequest{RoomName: "full-room", TrackId: pub.Tracks["mic"],
			Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{}}})
	}
	first, err := start(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := w.Get(t, "/readyz"); code != 503 {
		t.Fatalf("readyz %d at capacity, want 503", code)
	}
	short, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if _, err := start(short); err == nil {
		t.Fatal("a full worker claimed a second job")
	}
	if _, err := s.Egress().StopEgress(ctx(t), &livekit.StopEgressRequest{EgressId: first.EgressId}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, first.EgressId, "egress_ended", 20*time.Second)
	stack.Eventually(t, 5*time.Second, "ready again", func() bool { code, _ := w.Get(t, "/readyz"); return code == 200 })
	if _, err := start(ctx(t)); err != nil {
		t.Fatalf("freed worker refused: %v", err)
	}
}
