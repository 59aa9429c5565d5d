package deploy

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
)

// composeVersion is EVENTSYNC_VERSION in the tests.
const composeVersion = "1.2.3"

// loadCompose loads docker-compose.yml as docker compose does, with
// schema validation (unknown keys fail), interpolation of env, the
// profiles enabled and the consistency checks.
func loadCompose(t *testing.T, env map[string]string, profiles ...string) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	return loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: env,
	}, func(o *loader.Options) { o.Profiles = profiles })
}

// testSecretsKey is EVENTSYNC_SECRETS_KEY in the tests: 32 bytes in base64.
const testSecretsKey = "dGVzdC1zZWNyZXRzLWtleS1vZi0zMi1ieXRlcyEhISE="

// baseEnv is what a user sets: the admin token, the secrets key and the
// NATS passwords, and here the version.
func baseEnv() map[string]string {
	env := map[string]string{"EVENTSYNC_ADMIN_TOKEN": "test-admin-token", "EVENTSYNC_SECRETS_KEY": testSecretsKey, "EVENTSYNC_VERSION": composeVersion}
	for k, v := range natsPasswordEnv() {
		env[k] = v
	}
	return env
}

// natsPasswordEnv are the required variables of the services' NATS
// passwords, with test values.
func natsPasswordEnv() map[string]string {
	env := map[string]string{}
	for _, s := range binaryNames() {
		env["EVENTSYNC_NATS_"+strings.ToUpper(s)+"_PASSWORD"] = "test" + s + "Password1"
	}
	return env
}

// readEnvFile returns the variables of an env file under the repository.
func readEnvFile(t *testing.T, rel string) map[string]string {
	t.Helper()
	env, err := dotenv.Read(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return env
}

// helpEnv returns the environment variables `go run pkg args -h` lists.
func helpEnv(t *testing.T, pkg string, args ...string) map[string]bool {
	t.Helper()
	cmd := exec.Command("go", append(append([]string{"run", pkg}, args...), "-h")...)
	cmd.Dir = repoRoot(t)
	out, _ := cmd.CombinedOutput() // -h exits non-zero
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`\[\$([A-Z0-9_]+)\]`).FindAllStringSubmatch(string(out), -1) {
		names[m[1]] = true
	}
	if len(names) == 0 {
		t.Fatalf("go run %s %s -h: no environment variables in its output:\n%s", pkg, strings.Join(args, " "), out)
	}
	return names
}

// allowedEnv returns the variables each EventSync image's binary reads.
func allowedEnv(t *testing.T) map[string]map[string]bool {
	t.Helper()
	env := map[string]map[string]bool{"eventsync": helpEnv(t, "./cmd/eventsync", "run")}
	for _, s := range []string{"ingest", "store", "query", "notifier"} {
		env[s] = serviceEnv(t, s)
	}
	return env
}

func TestComposeProfiles(t *testing.T) {
	d := readDockerfile(t)
	allowed := allowedEnv(t)
	cluster := readEnvFile(t, "deploy/compose/cluster.env")
	services := []string{"clickhouse", "ingest", "nats", "notifier", "query", "store"}
	nodes := []string{"nats-1", "nats-2", "nats-3"}
	tests := []struct {
		name     string
		env      map[string]string // added to baseEnv
		profiles []string
		want     []string // the services that run
		natsURL  []string // the NATS servers the services use
		replicas string
	}{
		{name: "default", want: services, natsURL: []string{"nats"}, replicas: "1"},
		{name: "cluster", env: cluster, profiles: []string{"cluster"}, want: append(services, nodes...), natsURL: nodes, replicas: "3"},
		{name: "all-in-one", profiles: []string{"all-in-one"}, want: append(services, "eventsync"), natsURL: []string{"nats"}, replicas: "1"},
		{name: "every profile", env: cluster, profiles: []string{"*"}, want: append(services, append(nodes, "eventsync")...), natsURL: nodes, replicas: "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv()
			for k, v := range tt.env {
				env[k] = v
			}
			p, err := loadCompose(t, env, tt.profiles...)
			if err != nil {
				t.Fatalf("load docker-compose.yml with profiles %q: %v", tt.profiles, err)
			}
			got := slices.Sorted(func(yield func(string) bool) {
				for name := range p.Services {
					if !yield(name) {
						return
					}
				}
			})
			if diff := cmp.Diff(slices.Sorted(slices.Values(tt.want)), got); diff != "" {
				t.Errorf("services with profiles %q (-want +got):\n%s", tt.profiles, diff)
			}
			for _, name := range got {
				t.Run(name, func(t *testing.T) {
					s := p.Services[name]
					checkComposeService(t, p, s)
					if s.Build != nil {
						checkEventSyncService(t, p, d, s, allowed[s.Build.Target])
					}
					if strings.HasPrefix(s.Image, "nats:") {
						checkNATSService(t, p, s)
					}
				})
			}
			checkStreamSettings(t, p, allowed, tt.replicas)
			for _, name := range []string{"ingest", "store", "query", "notifier"} {
				if got := natsHosts(t, p.Services[name]); !slices.Equal(got, tt.natsURL) {
					t.Errorf("%s uses the NATS servers %q; want %q", name, got, tt.natsURL)
				}
			}
		})
	}
}

// checkComposeService checks what every service needs: a pinned image,
// a health check, a restart policy, healthy dependencies, ports on
// loopback and volumes that exist.
func checkComposeService(t *testing.T, p *types.Project, s types.ServiceConfig) {
	t.Helper()
	if s.Build == nil && !pinned(s.Image) {
		t.Errorf("image %q is not pinned to a version", s.Image)
	}
	if hc := s.HealthCheck; hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
		t.Errorf("healthcheck = %+v; want a test in exec form [CMD, …]", hc)
	}
	if s.Restart == "" || s.Restart == "no" {
		t.Errorf("restart = %q; want a restart policy", s.Restart)
	}
	for dep, cfg := range s.DependsOn {
		if cfg.Condition != types.ServiceConditionHealthy {
			t.Errorf("depends_on %s: condition %q; want %s", dep, cfg.Condition, types.ServiceConditionHealthy)
		}
		ds, ok := p.Services[dep]
		switch {
		case !ok && cfg.Required:
			t.Errorf("depends_on %s: no such service", dep)
		case !ok:
			if _, disabled := p.DisabledServices[dep]; !disabled {
				t.Errorf("depends_on %s: no such service, even in a profile", dep)
			}
		case ds.HealthCheck == nil || ds.HealthCheck.Disable:
			t.Errorf("depends_on %s: it has no health check, so it never becomes healthy", dep)
		}
	}
	for _, port := range s.Ports {
		if port.HostIP != "127.0.0.1" {
			t.Errorf("port %d is published on %q; want 127.0.0.1 only", port.Target, port.HostIP)
		}
		for other, o := range p.Services {
			if other == s.Name {
				continue
			}
			for _, op := range o.Ports {
				if op.Published == port.Published && op.HostIP == port.HostIP {
					t.Errorf("port %s is published by %s too", port.Published, other)
				}
			}
		}
	}
	for _, v := range s.Volumes {
		switch v.Type {
		case types.VolumeTypeVolume:
			if _, ok := p.Volumes[v.Source]; !ok {
				t.Errorf("volume %s is not declared", v.Source)
			}
		case types.VolumeTypeBind:
			info, err := os.Stat(v.Source)
			if err != nil || info.IsDir() {
				t.Errorf("bind mount %s: want a file of the repository: %v", v.Source, err)
			}
			if !v.ReadOnly {
				t.Errorf("bind mount %s is writable; want read-only", v.Source)
			}
		default:
			t.Errorf("volume %s of type %s; want a named volume or a read-only file", v.Source, v.Type)
		}
	}
}

// checkEventSyncService checks a service built from the Dockerfile: image
// name and build, the binary's own health check, environment variables the
// binary reads, and DSNs that name services it waits for.
func checkEventSyncService(t *testing.T, p *types.Project, d dockerfile, s types.ServiceConfig, allowed map[string]bool) {
	t.Helper()
	target := s.Build.Target
	final, ok := d.stage(target)
	if !ok {
		t.Fatalf("build target %q is not a stage of the Dockerfile", target)
	}
	if want := "ghcr.io/eventsync/" + target + ":" + composeVersion; s.Image != want {
		t.Errorf("image = %q; want %q", s.Image, want)
	}
	if s.Build.Context != repoRoot(t) || s.Build.Dockerfile != "Dockerfile" {
		t.Errorf("build context %s, dockerfile %s; want the repository root and its Dockerfile", s.Build.Context, s.Build.Dockerfile)
	}
	if v := s.Build.Args["VERSION"]; v == nil || *v != composeVersion {
		t.Errorf("build arg VERSION = %v; want %q", v, composeVersion)
	}
	var entrypoint string
	for _, in := range final.instrs {
		if in.cmd == "entrypoint" && len(in.args) > 0 {
			entrypoint = in.args[0]
		}
	}
	want := []string{"CMD", entrypoint, "healthcheck"}
	if s.HealthCheck == nil || !slices.Equal(s.HealthCheck.Test, want) {
		var got []string
		if s.HealthCheck != nil {
			got = s.HealthCheck.Test
		}
		t.Errorf("healthcheck test = %q; want %q (the image's entrypoint)", got, want)
	}
	for _, port := range s.Ports {
		if !slices.Contains(exposed(final), strconv.Itoa(int(port.Target))) {
			t.Errorf("port %d is published; the image exposes %q", port.Target, exposed(final))
		}
	}
	for k, v := range s.Environment {
		if !allowed[k] {
			t.Errorf("environment sets %s, which %s does not read", k, target)
		}
		if v == nil {
			t.Errorf("environment %s has no value: it would leak in from the host", k)
		}
	}
	if v := s.Environment["NATS_URL"]; v != nil {
		for _, host := range natsHosts(t, s) {
			if _, ok := s.DependsOn[host]; !ok {
				t.Errorf("NATS_URL names %s, which is not among depends_on", host)
			}
		}
	}
	if v := s.Environment["CLICKHOUSE_URL"]; v != nil {
		checkClickHouseURL(t, p, s, *v)
	}
}

// natsHosts returns the services NATS_URL of s names, sorted; each must
// be a NATS service of the project on the client port.
func natsHosts(t *testing.T, s types.ServiceConfig) []string {
	t.Helper()
	v := s.Environment["NATS_URL"]
	if v == nil {
		t.Errorf("%s sets no NATS_URL", s.Name)
		return nil
	}
	var hosts []string
	for _, raw := range strings.Split(*v, ",") {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "nats" || u.Port() != "4222" {
			t.Errorf("%s: NATS_URL %q: want nats://<service>:4222[,…]", s.Name, *v)
			continue
		}
		hosts = append(hosts, u.Hostname())
	}
	slices.Sort(hosts)
	return hosts
}

// checkClickHouseURL checks that dsn names the ClickHouse service, which s
// waits for, with the user, password and database it creates.
func checkClickHouseURL(t *testing.T, p *types.Project, s types.ServiceConfig, dsn string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "clickhouse" || u.Port() != "9000" {
		t.Fatalf("CLICKHOUSE_URL %q: want clickhouse://user:password@<service>:9000/database", dsn)
	}
	ch, ok := p.Services[u.Hostname()]
	if !ok || !strings.HasPrefix(ch.Image, "clickhouse/clickhouse-server:") {
		t.Fatalf("CLICKHOUSE_URL names %s, which is no ClickHouse service", u.Hostname())
	}
	if _, ok := s.DependsOn[u.Hostname()]; !ok {
		t.Errorf("CLICKHOUSE_URL names %s, which is not among depends_on", u.Hostname())
	}
	env := func(k string) string {
		if v := ch.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	pass, _ := u.User.Password()
	got := []string{u.User.Username(), pass, strings.TrimPrefix(u.Path, "/")}
	want := []string{env("CLICKHOUSE_USER"), env("CLICKHOUSE_PASSWORD"), env("CLICKHOUSE_DB")}
	if diff := cmp.Diff(want, got); diff != "" || want[0] == "" || want[1] == "" {
		t.Errorf("CLICKHOUSE_URL user, password and database differ from what %s creates, or are empty (-want +got):\n%s", ch.Name, diff)
	}
}

// checkStreamSettings checks that the services which create EventSync's
// streams agree on their settings: whichever starts first creates them.
func checkStreamSettings(t *testing.T, p *types.Project, allowed map[string]map[string]bool, replicas string) {
	t.Helper()
	keys := map[string]bool{}
	for _, env := range allowed {
		for k := range env {
			if strings.HasPrefix(k, "STREAM_") {
				keys[k] = true
			}
		}
	}
	for k := range keys {
		values := map[string][]string{}
		for _, name := range []string{"ingest", "store", "query", "notifier"} {
			if !allowed[name][k] {
				continue
			}
			v := "(unset)"
			if pv := p.Services[name].Environment[k]; pv != nil {
				v = *pv
			}
			values[v] = append(values[v], name)
		}
		if len(values) > 1 {
			t.Errorf("%s differs between services: %v", k, values)
		}
	}
	if v := p.Services["ingest"].Environment["STREAM_REPLICAS"]; v == nil || *v != replicas {
		t.Errorf("STREAM_REPLICAS = %v; want %s", v, replicas)
	}
}

// checkNATSService checks a NATS server against its configuration file,
// parsed by nats-server itself: JetStream on a named volume, the health
// check on its monitoring port, and for a cluster node its name and routes
// to every node of the project that shares the file.
func checkNATSService(t *testing.T, p *types.Project, s types.ServiceConfig) {
	t.Helper()
	conf, opts := natsConfig(t, s)
	if !opts.JetStream {
		t.Errorf("%s: JetStream is off", conf)
	}
	if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && v.Target == opts.StoreDir
	}) {
		t.Errorf("JetStream's store_dir %q is not on a named volume", opts.StoreDir)
	}
	u, err := url.Parse(s.HealthCheck.Test[len(s.HealthCheck.Test)-1])
	if err != nil || u.Port() != strconv.Itoa(opts.HTTPPort) || u.Path != "/healthz" {
		t.Errorf("health check %q: want /healthz on the monitoring port %d", s.HealthCheck.Test, opts.HTTPPort)
	}
	checkNATSUsers(t, p, s, opts)
	if opts.Cluster.Port == 0 {
		return
	}
	if i := slices.Index(s.Command, "--server_name"); i < 0 || i+1 >= len(s.Command) || s.Command[i+1] != s.Name {
		t.Errorf("command %q: want --server_name %s (JetStream clustering needs a stable, unique name)", s.Command, s.Name)
	}
	var nodes, routes []string
	for name, other := range p.Services {
		if strings.HasPrefix(other.Image, "nats:") {
			if c, _ := natsConfig(t, other); c == conf {
				nodes = append(nodes, name)
			}
		}
	}
	for _, r := range opts.Routes {
		if r.Port() != strconv.Itoa(opts.Cluster.Port) {
			t.Errorf("route %s: want the cluster port %d", r, opts.Cluster.Port)
		}
		routes = append(routes, r.Hostname())
	}
	slices.Sort(nodes)
	slices.Sort(routes)
	if diff := cmp.Diff(nodes, routes); diff != "" || len(nodes) != 3 {
		t.Errorf("%s: the routes name other servers than the three nodes sharing it (-nodes +routes):\n%s", conf, diff)
	}
}

// checkNATSUsers checks the authorization of a NATS server: no anonymous
// clients and no shared login, and every EventSync service that uses the
// server logs in as its own user, with the password the server has for it
// and permissions that limit it. What the permissions allow is proven by
// TestNATSAuthorization.
func checkNATSUsers(t *testing.T, p *types.Project, s types.ServiceConfig, opts *server.Options) {
	t.Helper()
	if opts.NoAuthUser != "" || opts.Username != "" || opts.Authorization != "" || len(opts.Nkeys) > 0 || len(opts.Users) == 0 {
		t.Errorf("%s: want users with passwords only (no no_auth_user, no single user or token); got no_auth_user %q, user %q, %d users",
			s.Name, opts.NoAuthUser, opts.Username, len(opts.Users))
	}
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	for _, name := range binaryNames() {
		svc, ok := p.Services[name]
		if !ok || !slices.Contains(natsHosts(t, svc), s.Name) {
			continue
		}
		env := func(k string) string {
			if v := svc.Environment[k]; v != nil {
				return *v
			}
			return ""
		}
		u := users[env("NATS_USER")]
		switch {
		case env("NATS_USER") != name:
			t.Errorf("%s: NATS_USER = %q; want %q, a user of its own", name, env("NATS_USER"), name)
		case u == nil:
			t.Errorf("%s: NATS_USER %q is not a user of %s", name, env("NATS_USER"), s.Name)
		case u.Password == "" || u.Password != env("NATS_PASSWORD"):
			t.Errorf("%s: NATS_PASSWORD is not the password %s has for the user %s", name, s.Name, u.Username)
		case u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil:
			t.Errorf("%s: the user %s may publish or subscribe to anything; want allow lists", s.Name, u.Username)
		}
	}
}

// natsConfig returns the configuration file s runs with (the bind mount
// at its --config path) and the options nats-server reads from it as in
// the container: with every bind mount at its place (the files it
// includes) and the container's environment (the passwords).
func natsConfig(t *testing.T, s types.ServiceConfig) (string, *server.Options) {
	t.Helper()
	i := slices.Index(s.Command, "--config")
	if i < 0 || i+1 >= len(s.Command) {
		t.Fatalf("%s: command %q has no --config", s.Name, s.Command)
	}
	root, source := t.TempDir(), ""
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		b, err := os.ReadFile(v.Source)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		dst := filepath.Join(root, filepath.FromSlash(v.Target))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if v.Target == s.Command[i+1] {
			source = v.Source
		}
	}
	if source == "" {
		t.Fatalf("%s: nothing is mounted at --config %s", s.Name, s.Command[i+1])
	}
	for k, v := range s.Environment {
		if v != nil {
			t.Setenv(k, *v)
		}
	}
	opts, err := server.ProcessConfigFile(filepath.Join(root, filepath.FromSlash(s.Command[i+1])))
	if err != nil {
		t.Fatalf("%s: nats-server refuses %s: %v", s.Name, source, err)
	}
	return source, opts
}

// TestComposeNeedsAccessCredentials: the admin token and the secrets key
// are required; defaults would be known to everyone.
func TestComposeNeedsAccessCredentials(t *testing.T) {
	for _, name := range []string{"EVENTSYNC_ADMIN_TOKEN", "EVENTSYNC_SECRETS_KEY"} {
		env := baseEnv()
		delete(env, name)
		_, err := loadCompose(t, env)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("load docker-compose.yml without %s = %v; want an error naming it", name, err)
		}
	}
}

// TestComposeNeedsNATSPasswords: every service's NATS password is
// required, like the admin token.
func TestComposeNeedsNATSPasswords(t *testing.T) {
	for name := range natsPasswordEnv() {
		env := baseEnv()
		delete(env, name)
		_, err := loadCompose(t, env)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("load docker-compose.yml without %s = %v; want an error naming it", name, err)
		}
	}
}

func TestComposeDefaults(t *testing.T) {
	// With only the required variables set, the images are the dev build
	// of the source and the services use the single NATS server.
	env := natsPasswordEnv()
	env["EVENTSYNC_ADMIN_TOKEN"] = "t"
	env["EVENTSYNC_SECRETS_KEY"] = testSecretsKey
	p, err := loadCompose(t, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ingest", "store", "query", "notifier"} {
		if got, want := p.Services[name].Image, "ghcr.io/eventsync/"+name+":dev"; got != want {
			t.Errorf("%s image = %q; want %q", name, got, want)
		}
		if v := p.Services[name].Environment["NATS_URL"]; v == nil || *v != "nats://nats:4222" {
			t.Errorf("%s NATS_URL = %v; want nats://nats:4222", name, v)
		}
	}
}

// TestComposeAccess checks the access gate of the four services: every one
// authenticates (AUTH is not none) with the same admin token and secrets
// key (a secret sealed by one is opened by the others), the old keys are
// optional, and /metrics is on a listener of its own (METRICS_ADDR), on
// another port than the API, which is not published (or on loopback only).
func TestComposeAccess(t *testing.T) {
	env := natsPasswordEnv()
	env["EVENTSYNC_ADMIN_TOKEN"] = "t"
	env["EVENTSYNC_SECRETS_KEY"] = testSecretsKey
	p, err := loadCompose(t, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range binaryNames() {
		s := p.Services[name]
		get := func(k string) string {
			if v := s.Environment[k]; v != nil {
				return *v
			}
			return ""
		}
		want := map[string]string{"ADMIN_TOKEN": "t", "SECRETS_KEY": testSecretsKey, "SECRETS_OLD_KEYS": ""}
		for k, v := range want {
			if got := get(k); got != v {
				t.Errorf("%s %s = %q; want %q", name, k, got, v)
			}
		}
		if get("AUTH") == "none" {
			t.Errorf("%s AUTH = none; want every request authenticated", name)
		}
		_, metricsPort, err := net.SplitHostPort(get("METRICS_ADDR"))
		if err != nil || metricsPort == "" {
			t.Errorf("%s METRICS_ADDR = %q; want a listen address of its own (/metrics without credentials)", name, get("METRICS_ADDR"))
			continue
		}
		httpPort := strconv.Itoa(int(p.Services[name].Ports[0].Target))
		if metricsPort == httpPort {
			t.Errorf("%s METRICS_ADDR = %q: the API port", name, get("METRICS_ADDR"))
		}
		for _, port := range s.Ports {
			if strconv.Itoa(int(port.Target)) == metricsPort && port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes its metrics port %s on %q; want it unpublished or on 127.0.0.1", name, metricsPort, port.HostIP)
			}
		}
	}
	env["EVENTSYNC_SECRETS_OLD_KEYS"] = "b2xk"
	if p, err = loadCompose(t, env); err != nil {
		t.Fatal(err)
	}
	for _, name := range binaryNames() {
		if v := p.Services[name].Environment["SECRETS_OLD_KEYS"]; v == nil || *v != "b2xk" {
			t.Errorf("%s SECRETS_OLD_KEYS = %v; want the value of EVENTSYNC_SECRETS_OLD_KEYS", name, v)
		}
	}
}

// TestComposeVariables checks that every variable docker-compose.yml
// reads is EventSync's, documented, and that the cluster env file sets
// only such variables.
func TestComposeVariables(t *testing.T) {
	root := repoRoot(t)
	compose, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := os.ReadFile(filepath.Join(root, "docs", "deployment.md"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z0-9_]+)`).FindAllStringSubmatch(string(compose), -1) {
		used[m[1]] = true
	}
	for v := range used {
		if !strings.HasPrefix(v, "EVENTSYNC_") {
			t.Errorf("docker-compose.yml reads %s; want EVENTSYNC_ variables only", v)
		}
		if !strings.Contains(string(docs), v) {
			t.Errorf("docker-compose.yml reads %s, which docs/deployment.md does not mention", v)
		}
	}
	for k := range readEnvFile(t, "deploy/compose/cluster.env") {
		if !used[k] {
			t.Errorf("deploy/compose/cluster.env sets %s, which docker-compose.yml does not read", k)
		}
	}
}
