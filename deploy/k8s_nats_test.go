package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// checkNATS: the NATS StatefulSet runs the nats-server version EventSync is
// built with, and its nats.conf, parsed by that nats-server with the pod's
// environment, names the server after the pod, listens on the declared
// ports, admits no anonymous client, routes to every server of the
// StatefulSet, keeps JetStream on the volume claim within its size, and its
// lame duck shutdown fits the grace period. Every EventSync service's
// NATS_URL reaches it without credentials, and the service logs in as its
// own user with the password the server has for that user (the same key of
// the same Secret) and permissions that limit it; what the permissions
// allow is proven by TestNATSAuthorization.
func checkNATS(s *suite) []error {
	w, c, ok := s.m.container("StatefulSet", "nats")
	if !ok {
		return []error{errors.New("no StatefulSet nats with a container nats")}
	}
	var errs []error
	if want := "nats:" + s.natsVersion + "-alpine"; c.Image != want {
		errs = append(errs, fmt.Errorf("%s: image = %q; want %q (the nats-server version in pkg/go.mod)", w, c.Image, want))
	}
	opts, env, err := s.natsOptions(w, c)
	if err != nil {
		return append(errs, fmt.Errorf("%s: %w", w, err))
	}
	if pod := w.name + "-0"; opts.ServerName != pod {
		errs = append(errs, fmt.Errorf("%s: server_name = %q; want the pod name %q (SERVER_NAME from metadata.name)", w, opts.ServerName, pod))
	}
	for _, p := range []struct {
		name string
		port int
	}{{"nats", opts.Port}, {"monitor", opts.HTTPPort}} {
		if cp, ok := containerPort(c, intstr.FromString(p.name)); !ok || int(cp.ContainerPort) != p.port {
			errs = append(errs, fmt.Errorf("%s: nats.conf listens on %d, but the container port %s is not that port", w, p.port, p.name))
		}
	}
	for _, p := range probes(c) {
		if p.probe == nil || p.probe.HTTPGet == nil || !strings.HasPrefix(p.probe.HTTPGet.Path, "/healthz") {
			errs = append(errs, fmt.Errorf("%s: %s probe is not httpGet /healthz on the monitoring port", w, p.kind))
		} else if cp, ok := containerPort(c, p.probe.HTTPGet.Port); ok && int(cp.ContainerPort) != opts.HTTPPort {
			errs = append(errs, fmt.Errorf("%s: %s probe port %d is not the monitoring port %d", w, p.kind, cp.ContainerPort, opts.HTTPPort))
		}
	}
	if opts.NoAuthUser != "" || opts.Username != "" || opts.Authorization != "" || len(opts.Nkeys) > 0 || len(opts.Users) == 0 {
		errs = append(errs, fmt.Errorf("%s: nats.conf admits clients without a user of their own: want users with passwords only (no no_auth_user, no single user or token); got no_auth_user %q, user %q, %d users",
			w, opts.NoAuthUser, opts.Username, len(opts.Users)))
	}
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	// The values the server's environment takes from each Secret key.
	fromSecret := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			fromSecret[e.ValueFrom.SecretKeyRef.Name+" "+e.ValueFrom.SecretKeyRef.Key] = env[e.Name]
		}
	}
	errs = append(errs, s.checkNATSCluster(w, c, opts)...)
	errs = append(errs, s.checkNATSStorage(w, c, opts)...)

	if _, ok := mountFor(c, opts.PidFile); opts.PidFile == "" || !ok {
		errs = append(errs, fmt.Errorf("%s: pid_file %q is not on a volume (the root filesystem is read-only)", w, opts.PidFile))
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil ||
		!slices.Contains(c.Lifecycle.PreStop.Exec.Command, "-sl=ldm="+opts.PidFile) {
		errs = append(errs, fmt.Errorf("%s: preStop does not put the server in lame duck mode (nats-server -sl=ldm=%s)", w, opts.PidFile))
	}
	ldm := opts.LameDuckGracePeriod + opts.LameDuckDuration
	if g := w.pod.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= ldm {
		errs = append(errs, fmt.Errorf("%s: terminationGracePeriodSeconds is not longer than lame_duck_grace_period + lame_duck_duration = %s", w, ldm))
	}

	for _, bin := range binaryNames() {
		bw, bc, ok := s.m.eventSync(bin)
		if !ok {
			continue
		}
		benv, _ := s.containerEnv(bc)
		errs = append(errs, checkNATSLogin(w, bw, bin, benv, users, fromSecret, bc)...)
		v := benv["NATS_URL"]
		if !v.known {
			continue
		}
		u, err := url.Parse(v.value)
		if err != nil || u.Scheme != "nats" {
			errs = append(errs, fmt.Errorf("%s: NATS_URL is not a nats:// URL", bw))
			continue
		}
		if err := s.reaches(u, w, "nats"); err != nil {
			errs = append(errs, fmt.Errorf("%s: NATS_URL: %w", bw, err))
		}
		if u.User != nil {
			errs = append(errs, fmt.Errorf("%s: NATS_URL carries credentials; they belong in NATS_USER and NATS_PASSWORD", bw))
		}
	}
	return errs
}

// checkNATSLogin: the service bin of workload bw logs in to the server of
// workload w as its own user, named by NATS_USER, with the password the
// server reads for that user: NATS_PASSWORD comes from the same key of the
// same Secret as the server's variable (fromSecret: Secret and key to the
// value the server got).
func checkNATSLogin(w, bw workload, bin string, env map[string]envVar, users map[string]*server.User, fromSecret map[string]string, c corev1.Container) []error {
	user := env["NATS_USER"]
	if !user.known || user.value != bin {
		return []error{fmt.Errorf("%s: NATS_USER = %q; want %q, a user of its own", bw, user.value, bin)}
	}
	u := users[user.value]
	if u == nil {
		return []error{fmt.Errorf("%s: NATS_USER %s is not a user of the nats.conf of %s", bw, user.value, w)}
	}
	var ref *corev1.SecretKeySelector
	for _, e := range c.Env {
		if e.Name == "NATS_PASSWORD" && e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
	}
	var errs []error
	if ref == nil {
		errs = append(errs, fmt.Errorf("%s: NATS_PASSWORD does not come from a Secret key", bw))
	} else if want, ok := fromSecret[ref.Name+" "+ref.Key]; !ok {
		errs = append(errs, fmt.Errorf("%s: NATS_PASSWORD comes from Secret %s key %s, which %s does not read", bw, ref.Name, ref.Key, w))
	} else if u.Password == "" || u.Password != want {
		errs = append(errs, fmt.Errorf("%s: NATS_PASSWORD (Secret %s key %s) is not the password %s has for the user %s", bw, ref.Name, ref.Key, w, u.Username))
	}
	if u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil {
		errs = append(errs, fmt.Errorf("%s: the user %s may publish or subscribe to anything; want allow lists", w, u.Username))
	}
	return errs
}

// checkNATSCluster: with several servers, routes to each of them through
// the headless Service on the declared cluster port; with one, none.
func (s *suite) checkNATSCluster(w workload, c *corev1.Container, opts *server.Options) []error {
	n := replicasOf(w)
	if n == 1 {
		if len(opts.Routes) > 0 {
			return []error{fmt.Errorf("%s: one server, but nats.conf has %d routes", w, len(opts.Routes))}
		}
		return nil
	}
	var errs []error
	cp, ok := containerPort(c, intstr.FromString("cluster"))
	if !ok || int(cp.ContainerPort) != opts.Cluster.Port {
		errs = append(errs, fmt.Errorf("%s: the cluster port %d of nats.conf is not the container port cluster", w, opts.Cluster.Port))
	}
	if opts.Cluster.Name == "" {
		errs = append(errs, fmt.Errorf("%s: nats.conf names no cluster", w))
	}
	var want, got []string
	for i := range n {
		want = append(want, fmt.Sprintf("%s-%d.%s:%d", w.name, i, w.serviceName, opts.Cluster.Port))
	}
	for _, r := range opts.Routes {
		got = append(got, r.Host)
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		errs = append(errs, fmt.Errorf("%s: %d servers, but the routes of nats.conf differ (-want +got):\n%s", w, n, diff))
	}
	if svc := s.m.service(w.serviceName); svc != nil {
		if !svc.Spec.PublishNotReadyAddresses {
			errs = append(errs, fmt.Errorf("Service %s: publishNotReadyAddresses is false: the servers cannot find each other before they are ready", svc.Name))
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return int(p.Port) == opts.Cluster.Port }) {
			errs = append(errs, fmt.Errorf("Service %s: no port %d for the routes", svc.Name, opts.Cluster.Port))
		}
	}
	return errs
}

// checkNATSStorage: JetStream on, its store on the volume claim and smaller
// than it, the memory store smaller than the container's memory, and the
// EVENTS stream's size limit within the file store.
func (s *suite) checkNATSStorage(w workload, c *corev1.Container, opts *server.Options) []error {
	if !opts.JetStream {
		return []error{fmt.Errorf("%s: nats.conf does not enable JetStream", w)}
	}
	var errs []error
	vm, ok := mountFor(c, opts.StoreDir)
	i := slices.IndexFunc(w.claims, func(p corev1.PersistentVolumeClaim) bool { return p.Name == vm.Name })
	if !ok || i < 0 {
		errs = append(errs, fmt.Errorf("%s: store_dir %q is not on a volumeClaimTemplate", w, opts.StoreDir))
	} else {
		size := w.claims[i].Spec.Resources.Requests[corev1.ResourceStorage]
		if opts.JetStreamMaxStore <= 0 || opts.JetStreamMaxStore >= size.Value() {
			errs = append(errs, fmt.Errorf("%s: max_file_store %d is not below the volume's %s", w, opts.JetStreamMaxStore, size.String()))
		}
	}
	limit := c.Resources.Limits[corev1.ResourceMemory]
	if opts.JetStreamMaxMemory <= 0 || opts.JetStreamMaxMemory >= limit.Value() {
		errs = append(errs, fmt.Errorf("%s: max_memory_store %d is not set below the memory limit %s", w, opts.JetStreamMaxMemory, limit.String()))
	}
	if _, bc, ok := s.m.eventSync("ingest"); ok {
		env, _ := s.containerEnv(bc)
		v, _ := s.setting("ingest", env, "STREAM_MAX_BYTES")
		maxBytes, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("STREAM_MAX_BYTES=%q: %w", v, err))
		case maxBytes >= opts.JetStreamMaxStore:
			errs = append(errs, fmt.Errorf("STREAM_MAX_BYTES %d is not below max_file_store %d of %s", maxBytes, opts.JetStreamMaxStore, w))
		}
	}
	return errs
}

// natsOptions parses the container's configuration file with nats-server,
// in the environment the container gets: SERVER_NAME is the first pod's
// name, Secret values are the rendered ones or placeholders. It returns the
// options and that environment.
func (s *suite) natsOptions(w workload, c *corev1.Container) (*server.Options, map[string]string, error) {
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		return nil, nil, fmt.Errorf("container %s: no --config argument", c.Name)
	}
	file := c.Args[i+1]
	vm, ok := mountFor(c, file)
	if !ok {
		return nil, nil, fmt.Errorf("container %s: %s is on no volume", c.Name, file)
	}
	var cm *corev1.ConfigMap
	for _, v := range w.pod.Spec.Volumes {
		if v.Name == vm.Name && v.ConfigMap != nil {
			cm = s.m.configMap(v.ConfigMap.Name)
		}
	}
	key := strings.TrimPrefix(strings.TrimPrefix(path.Clean(file), path.Clean(vm.MountPath)), "/")
	if cm == nil || cm.Data[key] == "" {
		return nil, nil, fmt.Errorf("container %s: %s is not a key of a rendered ConfigMap", c.Name, file)
	}
	env := map[string]string{}
	vars, _ := s.containerEnv(*c)
	for name, v := range vars {
		switch {
		case v.known:
			env[name] = v.value
		case v.source == "fieldRef metadata.name":
			env[name] = w.name + "-0"
		case v.secret:
			env[name] = "placeholder-" + strings.ToLower(name)
		}
	}
	for name, v := range env {
		s.tb.Setenv(name, v)
	}
	// Every key of the ConfigMap, as the volume holds them: nats.conf
	// includes the others.
	dir := s.tb.TempDir()
	for k, v := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600); err != nil {
			return nil, nil, err
		}
	}
	conf := filepath.Join(dir, key)
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		return nil, nil, fmt.Errorf("ConfigMap %s %s: %w", cm.Name, key, err)
	}
	return opts, env, nil
}

// TestNATSHelmValues keeps k8s/nats-helm-values.yaml, the official chart's
// values for the same NATS, in step with the production StatefulSet.
func TestNATSHelmValues(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("k8s", "nats-helm-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config struct {
			Cluster struct {
				Enabled  bool  `json:"enabled"`
				Replicas int32 `json:"replicas"`
			} `json:"cluster"`
			JetStream struct {
				Enabled   bool `json:"enabled"`
				FileStore struct {
					PVC struct {
						Size string `json:"size"`
					} `json:"pvc"`
				} `json:"fileStore"`
			} `json:"jetstream"`
			Merge map[string]any `json:"merge"`
		} `json:"config"`
		Container struct {
			Image struct {
				Tag string `json:"tag"`
			} `json:"image"`
			Env map[string]any `json:"env"`
		} `json:"container"`
	}
	// Not strict: the chart has many more values than this test looks at.
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatalf("nats-helm-values.yaml: %v", err)
	}
	m, err := decodeDocs(renderDocs(t, filepath.Join("k8s", "overlays", "production")))
	if err != nil {
		t.Fatal(err)
	}
	w, c, ok := m.container("StatefulSet", "nats")
	if !ok {
		t.Fatal("production: no StatefulSet nats")
	}
	if want := strings.TrimPrefix(c.Image, "nats:"); values.Container.Image.Tag != want {
		t.Errorf("container.image.tag = %q; want %q", values.Container.Image.Tag, want)
	}
	if !values.Config.Cluster.Enabled || values.Config.Cluster.Replicas != replicasOf(w) {
		t.Errorf("config.cluster = %+v; want enabled with %d replicas", values.Config.Cluster, replicasOf(w))
	}
	size := w.claims[0].Spec.Resources.Requests[corev1.ResourceStorage]
	if !values.Config.JetStream.Enabled || values.Config.JetStream.FileStore.PVC.Size != size.String() {
		t.Errorf("config.jetstream = %+v; want enabled on a %s volume", values.Config.JetStream, size.String())
	}
	// The users and permissions: the same as those the kustomize NATS
	// includes, both parsed by nats-server with the same passwords.
	for _, bin := range binaryNames() {
		name := "NATS_" + strings.ToUpper(bin) + "_PASSWORD"
		if _, ok := values.Container.Env[name]; !ok {
			t.Errorf("container.env has no %s (from the Secret eventsync-credentials)", name)
		}
		t.Setenv(name, "test"+bin+"Password1")
	}
	chart := helmMergeConf(t, values.Config.Merge)
	if _, ok := values.Config.Merge["authorization"]; !ok {
		t.Error("config.merge has no authorization: the chart's NATS would accept clients without credentials")
	}
	want, err := server.ProcessConfigFile(filepath.Join("k8s", "base", "nats-users.conf"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := server.ProcessConfigFile(chart)
	if err != nil {
		t.Fatalf("config.merge as the chart renders it: %v", err)
	}
	if diff := cmp.Diff(natsUsers(want), natsUsers(got)); diff != "" {
		t.Errorf("config.merge.authorization differs from k8s/base/nats-users.conf (-nats-users.conf +values):\n%s", diff)
	}
	if got.NoAuthUser != "" {
		t.Errorf("config.merge sets no_auth_user %q: anonymous clients would be %s", got.NoAuthUser, got.NoAuthUser)
	}
}

// helmMergeConf writes config.merge of the chart's values the way the
// chart renders it into nats.conf: as JSON (which nats-server reads),
// with "<< X >>" strings written unquoted as X. It returns the file.
func helmMergeConf(t *testing.T, merge map[string]any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<< >>" and subjects like events.> as they are
	enc.SetIndent("", "  ")
	if err := enc.Encode(merge); err != nil {
		t.Fatal(err)
	}
	conf := regexp.MustCompile(`"<< (.*?) >>"`).ReplaceAll(b.Bytes(), []byte("$1"))
	file := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(file, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// natsUser is what a NATS user may do, comparable.
type natsUser struct {
	Password                             string
	PubAllow, PubDeny, SubAllow, SubDeny []string
	Responses                            string
}

// natsUsers returns the users of a parsed configuration by name.
func natsUsers(opts *server.Options) map[string]natsUser {
	users := map[string]natsUser{}
	for _, u := range opts.Users {
		v := natsUser{Password: u.Password}
		if p := u.Permissions; p != nil {
			if p.Publish != nil {
				v.PubAllow, v.PubDeny = p.Publish.Allow, p.Publish.Deny
			}
			if p.Subscribe != nil {
				v.SubAllow, v.SubDeny = p.Subscribe.Allow, p.Subscribe.Deny
			}
			if p.Response != nil {
				v.Responses = fmt.Sprintf("max %d, expires %s", p.Response.MaxMsgs, p.Response.Expires)
			}
		}
		users[u.Username] = v
	}
	return users
}
