package deploy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The Kubernetes manifests under k8s/ are checked without a cluster: each
// overlay is rendered in-process by kustomize (the engine behind `kubectl
// kustomize`), every object is decoded strictly into its Kubernetes API type
// (an unknown field or a wrong type fails), and the checks below run on the
// typed objects. Every check returns its findings as errors, so that
// TestK8s/broken can feed deliberately broken manifests through the same
// code and see it fail.

// imageRepo is where EventSync's images live: ghcr.io/eventsync/<binary>.
const imageRepo = "ghcr.io/eventsync/"

// runtimeEnv is read by the Go runtime of every binary (the soft memory
// limit), so EventSync containers may set it besides the binaries' flags.
const runtimeEnv = "GOMEMLIMIT"

// credentialEnv are the variables that carry credentials: they must come
// from a Secret, never from a ConfigMap or a literal value. (NATS_URL
// carries none: checkNATS refuses credentials in it.)
func credentialEnv() []string {
	return []string{"NATS_PASSWORD", "CLICKHOUSE_URL", "ADMIN_TOKEN", "SECRETS_KEY", "SECRETS_OLD_KEYS", "SMTP_PASSWORD"}
}

// binaryNames are the service binaries the manifests deploy.
func binaryNames() []string { return []string{"ingest", "store", "query", "notifier"} }

// overlay is what one kustomize overlay under k8s/overlays must render.
type overlay struct {
	name string
	// natsReplicas is the number of NATS servers, and so every stream's
	// replicas.
	natsReplicas int32
	// external are the Secrets the overlay references but does not render:
	// the operator creates them as k8s/README.md says.
	external []string
	// production overlays keep credentials out of the repository.
	production bool
	// ingressNamespace is the namespace of the ingress controller, the one
	// source the query and notifier APIs admit (with NetworkPolicies).
	ingressNamespace string
}

// overlayNamed returns the overlay called name.
func overlayNamed(t testing.TB, name string) overlay {
	t.Helper()
	for _, ov := range overlays() {
		if ov.name == name {
			return ov
		}
	}
	t.Fatalf("no overlay %s", name)
	return overlay{}
}

func overlays() []overlay {
	return []overlay{
		{name: "dev", natsReplicas: 1},
		{name: "production", natsReplicas: 3, external: []string{"eventsync-credentials"}, production: true, ingressNamespace: "ingress-nginx"},
	}
}

// check is one assertion over a rendered overlay.
type check struct {
	name string
	// scope is "" for every overlay, "production" or "dev" for one.
	scope string
	run   func(s *suite) []error
}

func checks() []check {
	return []check{
		{name: "resources", run: checkResources},
		{name: "probes", run: checkProbes},
		{name: "images", run: checkImages},
		{name: "env", run: checkEnv},
		{name: "metrics-port", run: checkMetricsPort},
		{name: "references", run: checkReferences},
		{name: "services", run: checkServices},
		{name: "termination", run: checkTermination},
		{name: "security", run: checkSecurity},
		{name: "stream-replicas", run: checkStreamReplicas},
		{name: "nats", run: checkNATS},
		{name: "clickhouse", run: checkClickHouse},
		{name: "external-secrets-documented", run: checkExternalSecretsDocumented},
		{name: "single-replicas", scope: "dev", run: checkSingleReplicas},
		{name: "dev-credentials", scope: "dev", run: checkDevCredentials},
		{name: "anti-affinity", scope: "production", run: checkAntiAffinity},
		{name: "disruption-budgets", scope: "production", run: checkDisruptionBudgets},
		{name: "autoscaling", scope: "production", run: checkAutoscaling},
		{name: "network-policies", scope: "production", run: checkNetworkPolicies},
		{name: "service-monitor", scope: "production", run: checkServiceMonitor},
	}
}

// suite is what the checks look at: one decoded render and what the
// binaries expect.
type suite struct {
	tb testing.TB
	ov overlay
	m  *manifests
	// env are the variables each binary reads (from its -h output).
	env map[string]map[string]bool
	// defaults are their defaults, by variable, where -h prints one.
	defaults map[string]map[string]string
	// natsVersion is the nats-server version EventSync is built with.
	natsVersion string
	// readme is k8s/README.md.
	readme string
}

// TestK8s renders every overlay and runs the checks on it (overlays), feeds
// broken manifests through the checks (broken), and renders production with
// external NATS and ClickHouse (external-servers). The subtests share what
// the binaries' -h output says, which takes a build of each.
func TestK8s(t *testing.T) {
	b := loadBinaries(t)
	t.Run("overlays", func(t *testing.T) { testOverlays(t, b) })
	t.Run("broken", func(t *testing.T) { testBrokenManifests(t, b) })
	t.Run("external-servers", func(t *testing.T) { testExternalServers(t, b) })
}

func testOverlays(t *testing.T, b binaries) {
	for _, ov := range overlays() {
		t.Run(ov.name, func(t *testing.T) {
			m, err := decodeDocs(renderDocs(t, filepath.Join("k8s", "overlays", ov.name)))
			if err != nil {
				t.Fatalf("decode the rendered overlay %s: %v", ov.name, err)
			}
			for _, c := range checks() {
				if c.scope != "" && c.scope != ov.name {
					continue
				}
				t.Run(c.name, func(t *testing.T) {
					s := b.suite(t, ov, m)
					for _, err := range c.run(s) {
						t.Error(err)
					}
				})
			}
		})
	}
}

// binaries holds what the checks need to know about the service binaries.
type binaries struct {
	env         map[string]map[string]bool
	defaults    map[string]map[string]string
	natsVersion string
	readme      string
}

func loadBinaries(t *testing.T) binaries {
	t.Helper()
	b := binaries{env: map[string]map[string]bool{}, defaults: map[string]map[string]string{}}
	for _, bin := range binaryNames() {
		b.env[bin] = serviceEnv(t, bin)
		b.defaults[bin] = flagDefaults(t, bin)
	}
	b.natsVersion = natsServerVersion(t)
	readme, err := os.ReadFile(filepath.Join("k8s", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	b.readme = string(readme)
	return b
}

func (b binaries) suite(tb testing.TB, ov overlay, m *manifests) *suite {
	return &suite{tb: tb, ov: ov, m: m, env: b.env, defaults: b.defaults, natsVersion: b.natsVersion, readme: b.readme}
}

// flagDefaults returns the defaults a service binary prints in its -h
// output, by environment variable ("SHUTDOWN_TIMEOUT" → "20s").
func flagDefaults(t *testing.T, service string) map[string]string {
	t.Helper()
	out := serviceHelp(t, service)
	line := regexp.MustCompile(`\[\$([A-Z0-9_]+)\] \(default "?([^")]*)"?\)`)
	defaults := map[string]string{}
	for _, m := range line.FindAllStringSubmatch(out, -1) {
		defaults[m[1]] = m[2]
	}
	if len(defaults) == 0 {
		t.Fatalf("%s -h: no defaults in its output:\n%s", service, out)
	}
	return defaults
}

// natsServerVersion returns the nats-server module version in pkg/go.mod,
// which the NATS image must match.
func natsServerVersion(t *testing.T) string {
	t.Helper()
	mod, err := os.ReadFile(filepath.Join("..", "pkg", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github\.com/nats-io/nats-server/v2 v(\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("pkg/go.mod does not require github.com/nats-io/nats-server/v2")
	}
	return string(m[1])
}

// doc is one rendered object in JSON.
type doc struct {
	apiVersion, kind, name string
	json                   []byte
}

// renderDocs renders the kustomization in dir as `kubectl kustomize dir`
// does, offline.
func renderDocs(t testing.TB, dir string) []doc {
	t.Helper()
	docs, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func render(dir string) ([]doc, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	var docs []doc
	for _, r := range rm.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: %s: %w", dir, r.CurId(), err)
		}
		docs = append(docs, doc{apiVersion: r.GetApiVersion(), kind: r.GetKind(), name: r.GetName(), json: b})
	}
	return docs, nil
}

// manifests is a render decoded into the Kubernetes API types.
type manifests struct {
	namespaces      []*corev1.Namespace
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	services        []*corev1.Service
	deployments     []*appsv1.Deployment
	statefulSets    []*appsv1.StatefulSet
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	pdbs            []*policyv1.PodDisruptionBudget
	networkPolicies []*networkingv1.NetworkPolicy
	serviceMonitors []*monitoringv1.ServiceMonitor
}

// decodeDocs decodes every object strictly into the type of its kind. An
// unknown kind, an unknown or duplicate field or a value of the wrong type
// is an error.
func decodeDocs(docs []doc) (*manifests, error) {
	m := &manifests{}
	var errs []error
	for _, d := range docs {
		var err error
		switch d.apiVersion + " " + d.kind {
		case "v1 Namespace":
			m.namespaces, err = decodeInto(m.namespaces, d)
		case "v1 ConfigMap":
			m.configMaps, err = decodeInto(m.configMaps, d)
		case "v1 Secret":
			m.secrets, err = decodeInto(m.secrets, d)
		case "v1 Service":
			m.services, err = decodeInto(m.services, d)
		case "apps/v1 Deployment":
			m.deployments, err = decodeInto(m.deployments, d)
		case "apps/v1 StatefulSet":
			m.statefulSets, err = decodeInto(m.statefulSets, d)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			m.hpas, err = decodeInto(m.hpas, d)
		case "policy/v1 PodDisruptionBudget":
			m.pdbs, err = decodeInto(m.pdbs, d)
		case "networking.k8s.io/v1 NetworkPolicy":
			m.networkPolicies, err = decodeInto(m.networkPolicies, d)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			m.serviceMonitors, err = decodeInto(m.serviceMonitors, d)
		default:
			err = fmt.Errorf("%s %s %s: unknown kind (add it to decodeDocs with its type)", d.apiVersion, d.kind, d.name)
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

func decodeInto[T any](list []*T, d doc) ([]*T, error) {
	v := new(T)
	strict, err := k8sjson.UnmarshalStrict(d.json, v)
	if err != nil {
		return list, fmt.Errorf("%s %s: %w", d.kind, d.name, err)
	}
	if len(strict) > 0 {
		return list, fmt.Errorf("%s %s: %w", d.kind, d.name, errors.Join(strict...))
	}
	return append(list, v), nil
}

// workload is a Deployment or a StatefulSet.
type workload struct {
	kind, name string
	replicas   *int32
	selector   *metav1.LabelSelector
	pod        *corev1.PodTemplateSpec
	// claims are a StatefulSet's volumeClaimTemplates.
	claims []corev1.PersistentVolumeClaim
	// serviceName is a StatefulSet's governing Service.
	serviceName string
}

func (w workload) String() string { return w.kind + " " + w.name }

func (m *manifests) workloads() []workload {
	var ws []workload
	for _, d := range m.deployments {
		ws = append(ws, workload{kind: "Deployment", name: d.Name, replicas: d.Spec.Replicas, selector: d.Spec.Selector, pod: &d.Spec.Template})
	}
	for _, s := range m.statefulSets {
		ws = append(ws, workload{kind: "StatefulSet", name: s.Name, replicas: s.Spec.Replicas, selector: s.Spec.Selector, pod: &s.Spec.Template,
			claims: s.Spec.VolumeClaimTemplates, serviceName: s.Spec.ServiceName})
	}
	return ws
}

func (m *manifests) workload(kind, name string) (workload, bool) {
	for _, w := range m.workloads() {
		if w.kind == kind && w.name == name {
			return w, true
		}
	}
	return workload{}, false
}

// eventSync returns the workload running binary's image.
func (m *manifests) eventSync(binary string) (workload, corev1.Container, bool) {
	for _, w := range m.workloads() {
		for _, c := range w.pod.Spec.Containers {
			if binaryOf(c) == binary {
				return w, c, true
			}
		}
	}
	return workload{}, corev1.Container{}, false
}

// container returns the container named name of the workload named name
// (nats, clickhouse).
func (m *manifests) container(kind, name string) (workload, *corev1.Container, bool) {
	w, ok := m.workload(kind, name)
	if !ok {
		return w, nil, false
	}
	for i := range w.pod.Spec.Containers {
		if w.pod.Spec.Containers[i].Name == name {
			return w, &w.pod.Spec.Containers[i], true
		}
	}
	return w, nil, false
}

func (m *manifests) configMap(name string) *corev1.ConfigMap {
	for _, c := range m.configMaps {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (m *manifests) secret(name string) *corev1.Secret {
	for _, s := range m.secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (m *manifests) service(name string) *corev1.Service {
	for _, s := range m.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// secretValue returns a key of a rendered Secret (Data or StringData).
func secretValue(s *corev1.Secret, key string) (string, bool) {
	if v, ok := s.StringData[key]; ok {
		return v, true
	}
	v, ok := s.Data[key]
	return string(v), ok
}

// matches reports whether sel selects objects labelled lbls, with the API's
// meaning: a nil or invalid selector selects nothing, an empty one
// everything. Checks that need a selector to pick something refuse empty
// ones themselves.
func matches(sel *metav1.LabelSelector, lbls map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(lbls))
}

// selectorOf turns a Service's selector into a LabelSelector; an empty one
// into nil (a Service without a selector selects nothing).
func selectorOf(sel map[string]string) *metav1.LabelSelector {
	if len(sel) == 0 {
		return nil
	}
	return &metav1.LabelSelector{MatchLabels: sel}
}

// selected returns the workloads whose pods sel selects.
func (m *manifests) selected(sel *metav1.LabelSelector) []workload {
	var ws []workload
	for _, w := range m.workloads() {
		if matches(sel, w.pod.Labels) {
			ws = append(ws, w)
		}
	}
	return ws
}

// binaryOf returns the EventSync binary a container runs, or "" for any
// other image.
func binaryOf(c corev1.Container) string {
	repo, _, _ := splitImage(c.Image)
	bin, ok := strings.CutPrefix(repo, imageRepo)
	if !ok {
		return ""
	}
	return bin
}

// splitImage splits an image reference into repository, tag and digest.
func splitImage(ref string) (repo, tag, digest string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref, digest = ref[:i], ref[i+1:]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref, tag = ref[:i], ref[i+1:]
	}
	return ref, tag, digest
}

// allContainers returns a pod's init and app containers.
func allContainers(spec *corev1.PodSpec) []corev1.Container {
	return slices.Concat(spec.InitContainers, spec.Containers)
}

// testExternalServers renders the production overlay with the components
// that replace the bundled NATS and ClickHouse by external ones, and runs the
// checks that still apply: nothing may refer to the removed objects.
func testExternalServers(t *testing.T, b binaries) {
	dir := t.TempDir()
	rel := func(p string) string {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := filepath.Rel(dir, abs)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.ToSlash(r)
	}
	kustomization := fmt.Sprintf("resources:\n  - %s\ncomponents:\n  - %s\n  - %s\n",
		rel("k8s/overlays/production"), rel("k8s/components/external-nats"), rel("k8s/components/external-clickhouse"))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := decodeDocs(renderDocs(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.statefulSets) > 0 {
		t.Errorf("StatefulSets left: %d; want none", len(m.statefulSets))
	}
	for _, name := range []string{"nats", "nats-headless", "clickhouse", "clickhouse-headless"} {
		if m.service(name) != nil {
			t.Errorf("Service %s left", name)
		}
	}
	ov := overlayNamed(t, "production")
	for _, c := range checks() {
		if !slices.Contains([]string{"resources", "probes", "images", "env", "metrics-port", "references", "services", "termination", "security", "autoscaling", "service-monitor"}, c.name) {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			for _, err := range c.run(b.suite(t, ov, m)) {
				t.Error(err)
			}
		})
	}
}
