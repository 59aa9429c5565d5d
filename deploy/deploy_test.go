// Package deploy holds the tests of EventSync's deployment files: the
// Dockerfile, docker-compose.yml and the Kubernetes manifests under k8s/.
// They render and decode the files offline, without a Docker engine or a
// cluster.
package deploy

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// serviceHelp returns a service binary's -h output: ingest, store, query
// or notifier.
func serviceHelp(t *testing.T, service string) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "./services/"+service+"/cmd/"+service, "-h")
	cmd.Dir = root
	out, _ := cmd.CombinedOutput() // -h exits non-zero
	return string(out)
}

// serviceEnv returns the environment variables a service binary reads, from
// its -h output. Deployment files that set any other variable are wrong.
func serviceEnv(t *testing.T, service string) map[string]bool {
	t.Helper()
	out := serviceHelp(t, service)
	// Every flag's usage line ends with the variable as "[$NAME]".
	envName := regexp.MustCompile(`\[\$([A-Z0-9_]+)\]`)
	names := map[string]bool{}
	for _, m := range envName.FindAllStringSubmatch(out, -1) {
		names[m[1]] = true
	}
	if len(names) == 0 {
		t.Fatalf("%s -h: no environment variables in its output:\n%s", service, out)
	}
	return names
}

func TestServiceEnv(t *testing.T) {
	for _, s := range []string{"ingest", "store", "query", "notifier"} {
		env := serviceEnv(t, s)
		for _, want := range []string{"NATS_URL", "HTTP_ADDR", "LOG_LEVEL"} {
			if !env[want] {
				t.Errorf("serviceEnv(%q) lacks %s: %v", s, want, env)
			}
		}
	}
}
