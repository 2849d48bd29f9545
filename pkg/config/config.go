// Package config loads the worker's YAML configuration, applies environment overrides and validates it.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrInvalid marks a configuration that cannot run; the message names the key.
var ErrInvalid = errors.New("invalid config")

// Config is the whole worker configuration. Every field's default is written beside it.
type Config struct {
	// APIKey and APISecret are one of livekit-server's `keys` pairs; used to sign the recorder's join token.
	// Env: LIVEKIT_API_KEY, LIVEKIT_API_SECRET. Required.
	APIKey    string `yaml:"api_key"`
	APISecret string `yaml:"api_secret"`
	// WsURL is the LiveKit server URL the recorder joins, e.g. ws://127.0.0.1:7880. Env: LIVEKIT_WS_URL. Required.
	WsURL string `yaml:"ws_url"`
	// Redis is the livekit-server's Redis, the psrpc bus. Required.
	Redis RedisConfig `yaml:"redis"`
	// HTTPAddr serves /healthz, /readyz and /metrics. Default "127.0.0.1:9090"; "" turns it off. Env: MEDIAWORKER_HTTP_ADDR.
	HTTPAddr string `yaml:"http_addr"`
	// LogLevel is debug, info, warn or error. Default info. Env: MEDIAWORKER_LOG_LEVEL.
	LogLevel string `yaml:"log_level"`
	// TmpDir holds each job's working files (<tmp_dir>/<egress_id>/). Default os.TempDir()/mediaworker.
	TmpDir string `yaml:"tmp_dir"`
	// LocalOutputDir is where outputs without storage are written; request paths are relative to it
	// and cannot escape it. Default "./recordings". Env: MEDIAWORKER_LOCAL_OUTPUT_DIR.
	LocalOutputDir string `yaml:"local_output_dir"`
	// Storage is where outputs go when a request names no storage. Default: none (local disk).
	Storage *StorageConfig `yaml:"storage"`
	// BackupStorage receives an output whose upload to its primary storage failed; the egress then
	// reports backup_storage_used. Default: none (the file is kept on local disk).
	BackupStorage *StorageConfig `yaml:"backup_storage"`
	// AzureBlobEndpoint is the Blob service URL for Azure uploads, "{account}" standing for the
	// account name. Default "https://{account}.blob.core.windows.net/" (change it for sovereign clouds or Azurite).
	AzureBlobEndpoint string `yaml:"azure_blob_endpoint"`
	// PresignURLs, when set, reports stored files and playlists as presigned download URLs valid
	// this long (S3, Azure shared key, GCS with a service account key), at most 7 days.
	PresignURLs time.Duration `yaml:"presign_urls"`
	// Limits end a recording when reached: the egress ends LIMIT_REACHED with what was recorded stored.
	Limits LimitsConfig `yaml:"limits"`
	// Capacity sets what each job costs and how much of the machine the worker may use.
	Capacity CapacityConfig `yaml:"capacity"`
	// Timeouts bound waits on the server and the room.
	Timeouts TimeoutConfig `yaml:"timeouts"`
	// Ingress configures the RTMP(S) listeners that OBS and ffmpeg push to.
	Ingress IngressConfig `yaml:"ingress"`
}

// IngressConfig configures push ingress listeners. The stream key is the last path segment of the
// RTMP URL (OBS: Server rtmp://host:1935/x, Stream Key <key>).
type IngressConfig struct {
	// RTMPAddr is the RTMP listen address. Default ":1935"; "" turns RTMP ingress off. Env: MEDIAWORKER_RTMP_ADDR.
	RTMPAddr string `yaml:"rtmp_addr"`
	// RTMPSAddr is the RTMPS (RTMP over TLS) listen address, e.g. ":1936". Default "" (off); needs
	// tls_cert_file and tls_key_file.
	RTMPSAddr string `yaml:"rtmps_addr"`
	// TLSCertFile and TLSKeyFile are the PEM certificate chain and key RTMPS serves.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// CPUCost is the cores reserved per ingress session (720p30 to 3 layers measured at 0.9). Default 1.0.
	CPUCost float64 `yaml:"cpu_cost"`
}

// RedisConfig addresses the Redis shared with livekit-server.
type RedisConfig struct {
	// Address is host:port. Env: REDIS_ADDR. Required.
	Address string `yaml:"address"`
	// Username and Password authenticate to Redis. Default empty. Env: REDIS_USERNAME, REDIS_PASSWORD.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DB is the database number. Default 0.
	DB int `yaml:"db"`
}

// StorageConfig names one object store; set exactly one of s3, gcp, azure.
type StorageConfig struct {
	S3    *S3Config    `yaml:"s3"`
	GCP   *GCPConfig   `yaml:"gcp"`
	Azure *AzureConfig `yaml:"azure"`
}

// S3Config is an S3 or S3-compatible bucket (MinIO: endpoint + force_path_style).
type S3Config struct {
	AccessKey      string `yaml:"access_key"`
	Secret         string `yaml:"secret"`
	SessionToken   string `yaml:"session_token"`
	Region         string `yaml:"region"`   // default us-east-1
	Endpoint       string `yaml:"endpoint"` // default AWS
	Bucket         string `yaml:"bucket"`
	ForcePathStyle bool   `yaml:"force_path_style"`
}

// GCPConfig is a Google Cloud Storage bucket; empty credentials_json means Application Default Credentials.
type GCPConfig struct {
	CredentialsJSON string `yaml:"credentials_json"`
	Bucket          string `yaml:"bucket"`
}

// AzureConfig is an Azure Blob container.
type AzureConfig struct {
	AccountName   string `yaml:"account_name"`
	AccountKey    string `yaml:"account_key"`
	ContainerName string `yaml:"container_name"`
}

func (s *StorageConfig) validate(key string) error {
	if s == nil {
		return nil
	}
	n := 0
	for _, set := range []bool{s.S3 != nil, s.GCP != nil, s.Azure != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%s must set exactly one of s3, gcp, azure", key)
	}
	switch {
	case s.S3 != nil && s.S3.Bucket == "":
		return fmt.Errorf("%s.s3.bucket is required", key)
	case s.GCP != nil && s.GCP.Bucket == "":
		return fmt.Errorf("%s.gcp.bucket is required", key)
	case s.Azure != nil && (s.Azure.AccountName == "" || s.Azure.AccountKey == "" || s.Azure.ContainerName == ""):
		return fmt.Errorf("%s.azure needs account_name, account_key and container_name", key)
	}
	return nil
}

// LimitsConfig bounds outputs; 0 means no limit.
type LimitsConfig struct {
	// FileOutputMaxDuration is the longest file a recording makes. Default 0 (none).
	FileOutputMaxDuration time.Duration `yaml:"file_output_max_duration"`
	// FileOutputMaxSize is the largest file in bytes. Default 0 (none).
	FileOutputMaxSize int64 `yaml:"file_output_max_size"`
	// StreamOutputMaxDuration, SegmentOutputMaxDuration and ImageOutputMaxDuration bound egresses
	// with stream, HLS and image outputs. Default 0 (none).
	StreamOutputMaxDuration  time.Duration `yaml:"stream_output_max_duration"`
	SegmentOutputMaxDuration time.Duration `yaml:"segment_output_max_duration"`
	ImageOutputMaxDuration   time.Duration `yaml:"image_output_max_duration"`
}

// CapacityConfig is the admission model: a job is claimed only while its cost fits in what is left.
type CapacityConfig struct {
	// MaxCPUUtilization is the share of all cores jobs may use. Default 0.8.
	MaxCPUUtilization float64 `yaml:"max_cpu_utilization"`
	// TrackCPUCost is the cores reserved per track egress (no transcoding). Default 0.02 (measured: see docs/benchmarks.md).
	TrackCPUCost float64 `yaml:"track_cpu_cost"`
	// TranscodeCPUCost is the cores reserved per transcoding egress (participant, track composite; 720p30 measured at 0.58). Default 0.6.
	TranscodeCPUCost float64 `yaml:"transcode_cpu_cost"`
	// CompositeCPUCost is the cores reserved per room composite. Default 1.0.
	CompositeCPUCost float64 `yaml:"composite_cpu_cost"`
	// AudioCPUCost is the cores reserved per audio-only transcoding egress (audio-only room or
	// media composite, audio-only track composite; 3 microphones mixed to Opus measured at 0.088). Default 0.1.
	AudioCPUCost float64 `yaml:"audio_cpu_cost"`
	// MaxJobs caps concurrent jobs whatever their cost. Default 200.
	MaxJobs int `yaml:"max_jobs"`
}

// TimeoutConfig bounds waits.
type TimeoutConfig struct {
	// IOCreate bounds IOInfo.CreateEgress. Default 15s.
	IOCreate time.Duration `yaml:"io_create"`
	// IOUpdate bounds each IOInfo.UpdateEgress attempt series. Default 30s.
	IOUpdate time.Duration `yaml:"io_update"`
	// TrackWait is how long a job waits for its track to be published before failing. Default 30s.
	TrackWait time.Duration `yaml:"track_wait"`
	// DrainGrace is how long SIGTERM lets running jobs finish before stopping them. Default 1h.
	DrainGrace time.Duration `yaml:"drain_grace"`
	// StopGrace is how long a stopped job may take to finalise and upload before it is killed. Default 30m
	// (a multi-gigabyte upload to a slow store takes minutes).
	StopGrace time.Duration `yaml:"stop_grace"`
}

// Default returns the configuration before the file and the environment are applied.
func Default() *Config {
	return &Config{
		HTTPAddr:       "127.0.0.1:9090",
		LogLevel:       "info",
		TmpDir:         os.TempDir() + "/mediaworker",
		LocalOutputDir: "./recordings",
		Capacity: CapacityConfig{
			MaxCPUUtilization: 0.8,
			TrackCPUCost:      0.02,
			TranscodeCPUCost:  0.6,
			CompositeCPUCost:  1.0,
			AudioCPUCost:      0.1,
			MaxJobs:           200,
		},
		Ingress: IngressConfig{RTMPAddr: ":1935", CPUCost: 1.0},
		Timeouts: TimeoutConfig{
			IOCreate:   15 * time.Second,
			IOUpdate:   30 * time.Second,
			TrackWait:  30 * time.Second,
			DrainGrace: time.Hour,
			StopGrace:  30 * time.Minute,
		},
	}
}

// Load reads the YAML at path (or MEDIAWORKER_CONFIG_BODY when path is ""), applies env overrides and validates.
func Load(path string, getenv func(string) string) (*Config, error) {
	var body []byte
	switch {
	case path != "":
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config %s: %w", path, err)
		}
		body = b
	case getenv("MEDIAWORKER_CONFIG_BODY") != "":
		body = []byte(getenv("MEDIAWORKER_CONFIG_BODY"))
	}
	c, err := Parse(body)
	if err != nil {
		return nil, err
	}
	if err := c.applyEnv(getenv); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes YAML strictly over the defaults: unknown keys are errors.
func Parse(body []byte) (*Config, error) {
	c := Default()
	if len(bytes.TrimSpace(body)) == 0 {
		return c, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return c, nil
}

// Marshal renders the config as YAML (used to hand it to job processes).
func (c *Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }

func (c *Config) applyEnv(getenv func(string) string) error {
	str := map[string]*string{
		"LIVEKIT_API_KEY":              &c.APIKey,
		"LIVEKIT_API_SECRET":           &c.APISecret,
		"LIVEKIT_WS_URL":               &c.WsURL,
		"REDIS_ADDR":                   &c.Redis.Address,
		"REDIS_USERNAME":               &c.Redis.Username,
		"REDIS_PASSWORD":               &c.Redis.Password,
		"MEDIAWORKER_HTTP_ADDR":        &c.HTTPAddr,
		"MEDIAWORKER_LOG_LEVEL":        &c.LogLevel,
		"MEDIAWORKER_TMP_DIR":          &c.TmpDir,
		"MEDIAWORKER_LOCAL_OUTPUT_DIR": &c.LocalOutputDir,
		"MEDIAWORKER_RTMP_ADDR":        &c.Ingress.RTMPAddr,
	}
	for k, p := range str {
		if v := getenv(k); v != "" {
			*p = v
		}
	}
	if v := getenv("REDIS_DB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%w: REDIS_DB must be a number, got %q", ErrInvalid, v)
		}
		c.Redis.DB = n
	}
	return nil
}

// Validate checks every field; the error names the key to fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.APIKey == "" || c.APISecret == "" {
		bad("api_key and api_secret are required (or LIVEKIT_API_KEY / LIVEKIT_API_SECRET): one of livekit-server's keys pairs")
	}
	if u, err := url.Parse(c.WsURL); c.WsURL == "" || err != nil || (u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https") {
		bad("ws_url must be the LiveKit server URL like ws://127.0.0.1:7880 (or LIVEKIT_WS_URL), got %q", c.WsURL)
	}
	if c.Redis.Address == "" {
		bad("redis.address is required (or REDIS_ADDR): the Redis livekit-server uses")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.TmpDir == "" {
		bad("tmp_dir must not be empty")
	}
	if c.LocalOutputDir == "" {
		bad("local_output_dir must not be empty")
	}
	if err := c.Storage.validate("storage"); err != nil {
		errs = append(errs, err)
	}
	if err := c.BackupStorage.validate("backup_storage"); err != nil {
		errs = append(errs, err)
	}
	if c.PresignURLs < 0 || c.PresignURLs > 7*24*time.Hour {
		bad("presign_urls must be from 0 (off) to 168h (S3 signatures last at most 7 days), got %s", c.PresignURLs)
	}
	if l := c.Limits; l.FileOutputMaxDuration < 0 || l.FileOutputMaxSize < 0 || l.StreamOutputMaxDuration < 0 ||
		l.SegmentOutputMaxDuration < 0 || l.ImageOutputMaxDuration < 0 {
		bad("limits: every limit must be ≥ 0 (0 = no limit)")
	}
	if u := c.Capacity.MaxCPUUtilization; u <= 0 || u > 1 {
		bad("capacity.max_cpu_utilization must be in (0, 1], got %v", u)
	}
	if c.Capacity.TrackCPUCost <= 0 || c.Capacity.TranscodeCPUCost <= 0 || c.Capacity.CompositeCPUCost <= 0 || c.Capacity.AudioCPUCost <= 0 {
		bad("capacity.track_cpu_cost, transcode_cpu_cost, composite_cpu_cost and audio_cpu_cost must be > 0")
	}
	if c.Ingress.RTMPSAddr != "" && (c.Ingress.TLSCertFile == "" || c.Ingress.TLSKeyFile == "") {
		bad("ingress.rtmps_addr needs ingress.tls_cert_file and ingress.tls_key_file (PEM)")
	}
	if c.Ingress.CPUCost <= 0 {
		bad("ingress.cpu_cost must be > 0, got %v", c.Ingress.CPUCost)
	}
	if c.Capacity.MaxJobs <= 0 {
		bad("capacity.max_jobs must be > 0, got %d", c.Capacity.MaxJobs)
	}
	for key, d := range map[string]time.Duration{
		"timeouts.io_create": c.Timeouts.IOCreate, "timeouts.io_update": c.Timeouts.IOUpdate,
		"timeouts.track_wait": c.Timeouts.TrackWait, "timeouts.drain_grace": c.Timeouts.DrainGrace,
		"timeouts.stop_grace": c.Timeouts.StopGrace,
	} {
		if d <= 0 {
			bad("%s must be a positive duration like 30s, got %v", key, d)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// CPUs is the number of cores the admission model counts.
func CPUs() float64 { return float64(runtime.NumCPU()) }
