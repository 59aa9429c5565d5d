package deploy

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
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
// ports, requires the user and password from the Secret, routes to every
// server of the StatefulSet, keeps JetStream on the volume claim within its
// size, and its lame duck shutdown fits the grace period. Every NATS_URL of
// EventSync reaches it with its credentials.
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
	if opts.Username == "" || opts.Password == "" || opts.Username != env["NATS_USER"] || opts.Password != env["NATS_PASSWORD"] {
		errs = append(errs, fmt.Errorf("%s: nats.conf does not require the user and password NATS_USER and NATS_PASSWORD", w))
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
		v := benv["NATS_URL"]
		if !v.known {
			continue // a Secret created outside kustomize
		}
		u, err := url.Parse(v.value)
		if err != nil || u.Scheme != "nats" {
			errs = append(errs, fmt.Errorf("%s: NATS_URL is not a nats:// URL", bw))
			continue
		}
		if err := s.reaches(u, w, "nats"); err != nil {
			errs = append(errs, fmt.Errorf("%s: NATS_URL: %w", bw, err))
		}
		if pass, _ := u.User.Password(); u.User.Username() != opts.Username || pass != opts.Password {
			errs = append(errs, fmt.Errorf("%s: NATS_URL does not carry the NATS user and password", bw))
		}
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
	conf := filepath.Join(s.tb.TempDir(), "nats.conf")
	if err := os.WriteFile(conf, []byte(cm.Data[key]), 0o600); err != nil {
		return nil, nil, err
	}
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
	for _, name := range []string{"NATS_USER", "NATS_PASSWORD"} {
		if _, ok := values.Container.Env[name]; !ok {
			t.Errorf("container.env has no %s (from the Secret eventsync-credentials)", name)
		}
	}
	if _, ok := values.Config.Merge["authorization"]; !ok {
		t.Error("config.merge has no authorization: the chart's NATS would accept clients without credentials")
	}
}
