// Package static checks the Dockerfile and Kubernetes manifests without a container engine.
package static

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mediaworker/mediaworker/pkg/config"
)

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms int
	var user, health, entry string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms++
		case "USER":
			user = f[1]
		case "HEALTHCHECK":
			health = line
		case "ENTRYPOINT":
			entry = line
		}
	}
	if froms < 2 {
		t.Error("Dockerfile should be multi-stage")
	}
	if user == "" || user == "root" || user == "0" {
		t.Errorf("runtime user %q must be non-root", user)
	}
	if !strings.Contains(health, `"healthcheck"`) {
		t.Errorf("HEALTHCHECK should run `mediaworker healthcheck`: %q", health)
	}
	if !strings.Contains(entry, "mediaworker") {
		t.Errorf("ENTRYPOINT %q", entry)
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd", "pkg"} {
		if _, err := os.Stat("../../" + p); err != nil {
			t.Errorf("Dockerfile copies %s, which is missing", p)
		}
	}
}

type deployment struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				Containers                    []struct {
					Args []string `yaml:"args"`
					Env  []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					LivenessProbe struct {
						HTTPGet struct{ Path string } `yaml:"httpGet"`
					} `yaml:"livenessProbe"`
					ReadinessProbe struct {
						HTTPGet struct{ Path string } `yaml:"httpGet"`
					} `yaml:"readinessProbe"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func TestKubernetesManifest(t *testing.T) {
	b, err := os.ReadFile("../../deploy/kubernetes/mediaworker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d deployment
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.APIVersion != "apps/v1" || d.Kind != "Deployment" {
		t.Fatalf("got %s %s", d.APIVersion, d.Kind)
	}
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 || strings.Join(spec.Containers[0].Args, " ") != "worker" {
		t.Fatalf("containers %+v", spec.Containers)
	}
	c := spec.Containers[0]
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Fatalf("probes %q %q", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}
	if spec.TerminationGracePeriodSeconds < 60 {
		t.Fatal("terminationGracePeriodSeconds too short to drain recordings")
	}
	// The env the manifest sets, plus the secret's keys, must make a valid config.
	env := map[string]string{"LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s"}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if _, err := config.Load("", func(k string) string { return env[k] }); err != nil {
		t.Fatalf("manifest env does not make a valid config: %v", err)
	}
}
