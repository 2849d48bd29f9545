package config

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var required = map[string]string{
	"LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": "secretsecretsecretsecretsecret12",
	"LIVEKIT_WS_URL": "ws://127.0.0.1:7880", "REDIS_ADDR": "127.0.0.1:6379",
}

// TestYAMLTags catches tags that can never be set (the official egress has fields tagged `ymal:`).
func TestYAMLTags(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		seen := map[string]bool{}
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			tag, ok := f.Tag.Lookup("yaml")
			if !ok || !snake.MatchString(tag) {
				t.Errorf("%s.%s: yaml tag %q is missing or not snake_case (raw tag %q)", path, f.Name, tag, f.Tag)
			}
			if seen[tag] {
				t.Errorf("%s: duplicate yaml key %q", path, tag)
			}
			seen[tag] = true
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(ft, path+"."+tag)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "config")
}

func TestRoundTrip(t *testing.T) {
	c, err := Load("", env(required))
	if err != nil {
		t.Fatal(err)
	}
	c.Capacity.TrackCPUCost = 0.07
	body, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(body)
	if err != nil {
		t.Fatalf("parse own output: %v\n%s", err, body)
	}
	if !reflect.DeepEqual(c, back) {
		t.Fatalf("round trip changed config:\n%+v\n%+v", c, back)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		env     map[string]string
		wantErr string
		check   func(*testing.T, *Config)
	}{
		{name: "env only", env: required, check: func(t *testing.T, c *Config) {
			if c.Redis.Address != "127.0.0.1:6379" || c.Capacity.MaxCPUUtilization != 0.8 {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "body then env override", body: "redis: {address: 10.0.0.1:6379}\ncapacity: {track_cpu_cost: 0.1}\n",
			env: map[string]string{"MEDIAWORKER_CONFIG_BODY": "x", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s", "LIVEKIT_WS_URL": "wss://lk.example.com", "REDIS_ADDR": "127.0.0.1:7000"},
			check: func(t *testing.T, c *Config) {
				if c.Redis.Address != "127.0.0.1:7000" || c.Capacity.TrackCPUCost != 0.1 {
					t.Errorf("got redis %q cost %v", c.Redis.Address, c.Capacity.TrackCPUCost)
				}
			}},
		{name: "unknown key", body: "api_kee: x\n", env: required, wantErr: "api_kee"},
		{name: "misplaced key", body: "redis: {adress: x}\n", env: required, wantErr: "adress"},
		{name: "missing keys", env: map[string]string{}, wantErr: "api_key"},
		{name: "bad ws url", env: map[string]string{"LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s", "LIVEKIT_WS_URL": "127.0.0.1:7880", "REDIS_ADDR": "r:1"}, wantErr: "ws_url"},
		{name: "bad utilization", body: "capacity: {max_cpu_utilization: 1.5}\n", env: required, wantErr: "capacity.max_cpu_utilization"},
		{name: "bad duration", body: "timeouts: {track_wait: -1s}\n", env: required, wantErr: "timeouts.track_wait"},
		{name: "bad log level", body: "log_level: loud\n", env: required, wantErr: "log_level"},
		{name: "default storage", body: "storage: {s3: {bucket: rec, endpoint: 'http://127.0.0.1:9000', force_path_style: true}}\nbackup_storage: {azure: {account_name: a, account_key: k, container_name: c}}\n", env: required,
			check: func(t *testing.T, c *Config) {
				if c.Storage.S3.Bucket != "rec" || !c.Storage.S3.ForcePathStyle || c.BackupStorage.Azure.ContainerName != "c" {
					t.Errorf("got %+v %+v", c.Storage, c.BackupStorage)
				}
			}},
		{name: "two stores", body: "storage: {s3: {bucket: a}, gcp: {bucket: b}}\n", env: required, wantErr: "storage must set exactly one"},
		{name: "store without bucket", body: "backup_storage: {gcp: {credentials_json: x}}\n", env: required, wantErr: "backup_storage.gcp.bucket"},
		{name: "bad REDIS_DB", env: map[string]string{"REDIS_DB": "one"}, wantErr: "REDIS_DB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range tc.env {
				e[k] = v
			}
			if tc.body != "" {
				e["MEDIAWORKER_CONFIG_BODY"] = tc.body
			}
			c, err := Load("", env(e))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error naming %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestExampleConfig(t *testing.T) {
	c, err := Load("../../deploy/mediaworker.yaml", env(nil))
	if err != nil {
		t.Fatalf("deploy/mediaworker.yaml must load: %v", err)
	}
	if c.WsURL == "" {
		t.Fatal("example config has no ws_url")
	}
}
