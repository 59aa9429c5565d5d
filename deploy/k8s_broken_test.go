package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Negative tests: deliberately broken manifests go through the same
// rendering, decoding and checks as the real ones, and must fail.

// TestK8sDecodeRejects renders small broken kustomizations and expects the
// strict decoding to refuse them.
func TestK8sDecodeRejects(t *testing.T) {
	const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ingest
spec:
  selector:
    matchLabels: {app: ingest}
  template:
    metadata:
      labels: {app: ingest}
    spec:
      containers:
        - name: ingest
          image: ghcr.io/eventsync/ingest:0.1.0
`
	tests := []struct {
		name     string
		manifest string
		want     string
	}{
		{"valid", deployment, ""},
		{"unknown field", strings.Replace(deployment, "image:", "imagePullPolcy: Always\n          image:", 1), `unknown field "spec.template.spec.containers[0].imagePullPolcy"`},
		{"wrong type", strings.Replace(deployment, "spec:\n  selector:", "spec:\n  replicas: two\n  selector:", 1), "replicas"},
		{"port as a string", strings.Replace(deployment, "image: ghcr.io/eventsync/ingest:0.1.0", "image: ghcr.io/eventsync/ingest:0.1.0\n          ports:\n            - containerPort: \"8080\"", 1), "containerPort"},
		{"unknown kind", strings.Replace(deployment, "kind: Deployment", "kind: Deploymnet", 1), "unknown kind"},
		{"unknown apiVersion", strings.Replace(deployment, "apps/v1", "apps/v1beta2", 1), "unknown kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, content string) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write("kustomization.yaml", "resources:\n  - deployment.yaml\n")
			write("deployment.yaml", tt.manifest)
			_, err := decodeDocs(renderDocs(t, dir))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("decodeDocs(%s) = %v; want no error", tt.name, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("decodeDocs(%s) = %v; want an error about %s", tt.name, err, tt.want)
			}
		})
	}
	t.Run("duplicate field", func(t *testing.T) {
		d := doc{apiVersion: "v1", kind: "ConfigMap", name: "x", json: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{},"data":{}}`)}
		if _, err := decodeDocs([]doc{d}); err == nil || !strings.Contains(err.Error(), "duplicate field") {
			t.Errorf("decodeDocs(duplicate data) = %v; want a duplicate field error", err)
		}
	})
}

// testBrokenManifests breaks one thing at a time in a rendered overlay and
// expects the check responsible for it to report it. Each check must be
// made to fail by at least one case.
func testBrokenManifests(t *testing.T, b binaries) {
	docs := map[string][]doc{}
	for _, ov := range overlays() {
		docs[ov.name] = renderDocs(t, filepath.Join("k8s", "overlays", ov.name))
	}
	tests := []struct {
		name    string
		overlay string // production unless set
		check   string
		breakIt func(t *testing.T, s *suite)
		want    string
	}{
		{"no limits", "", "resources", func(t *testing.T, s *suite) {
			container(t, s, "ingest").Resources.Limits = nil
		}, "no cpu limit"},
		{"request above limit", "", "resources", func(t *testing.T, s *suite) {
			container(t, s, "store").Resources.Requests[corev1.ResourceMemory] = mustQuantity(t, "2Gi")
		}, "above its limit"},
		{"no readiness probe", "", "probes", func(t *testing.T, s *suite) {
			container(t, s, "query").ReadinessProbe = nil
		}, "no httpGet readiness probe"},
		{"probe on an undeclared port", "", "probes", func(t *testing.T, s *suite) {
			container(t, s, "notifier").LivenessProbe.HTTPGet.Port = intstr.FromString("debug")
		}, "port debug is not declared"},
		{"exec probe in a distroless image", "", "probes", func(t *testing.T, s *suite) {
			container(t, s, "ingest").ReadinessProbe.ProbeHandler = corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "curl -f localhost:8080/readyz"}}}
		}, "runs a command"},
		{"readiness on /healthz", "", "probes", func(t *testing.T, s *suite) {
			container(t, s, "ingest").ReadinessProbe.HTTPGet.Path = "/healthz"
		}, `path = "/healthz"; want "/readyz"`},
		{"HTTP_ADDR moved off the probed port", "", "probes", func(t *testing.T, s *suite) {
			configMapByBase(t, s, "query-config").Data["HTTP_ADDR"] = ":9090"
		}, "probe port = 8082; want 9090 (HTTP_ADDR)"},
		{"NATS without a startup probe", "", "probes", func(t *testing.T, s *suite) {
			container(t, s, "nats").StartupProbe = nil
		}, "no startup probe"},
		{"unpinned image", "", "images", func(t *testing.T, s *suite) {
			container(t, s, "ingest").Image = "ghcr.io/eventsync/ingest"
		}, "is not pinned"},
		{"latest", "", "images", func(t *testing.T, s *suite) {
			container(t, s, "clickhouse").Image = "clickhouse/clickhouse-server:latest"
		}, "uses the tag latest"},
		{"two releases", "", "images", func(t *testing.T, s *suite) {
			container(t, s, "store").Image = "ghcr.io/eventsync/store:0.0.9"
		}, "different releases"},
		{"variable the binary does not read", "", "env", func(t *testing.T, s *suite) {
			c := container(t, s, "ingest")
			c.Env = append(c.Env, corev1.EnvVar{Name: "NATS_SERVER", Value: "nats://nats:4222"})
		}, "ingest does not read NATS_SERVER"},
		{"ConfigMap key the binary does not read", "", "env", func(t *testing.T, s *suite) {
			configMapByBase(t, s, "ingest-config").Data["STORE_BATCH_SIZE"] = "5000"
		}, "ingest does not read STORE_BATCH_SIZE"},
		{"credentials in a literal", "", "env", func(t *testing.T, s *suite) {
			env(t, container(t, s, "query"), "NATS_PASSWORD").ValueFrom = nil
		}, "must come from a Secret"},
		{"no NATS user", "", "env", func(t *testing.T, s *suite) {
			delete(configMapByBase(t, s, "store-config").Data, "NATS_USER")
		}, "NATS_USER is not set"},
		{"no secrets key", "", "env", func(t *testing.T, s *suite) {
			c := container(t, s, "query")
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "SECRETS_KEY" })
		}, "SECRETS_KEY is not set"},
		{"no admin token in the notifier", "", "env", func(t *testing.T, s *suite) {
			c := container(t, s, "notifier")
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "ADMIN_TOKEN" })
		}, "ADMIN_TOKEN is not set"},
		{"secrets key in a ConfigMap", "", "env", func(t *testing.T, s *suite) {
			env(t, container(t, s, "store"), "SECRETS_KEY").ValueFrom = nil
		}, "SECRETS_KEY carries credentials and must come from a Secret"},
		{"authentication off", "", "env", func(t *testing.T, s *suite) {
			configMapByBase(t, s, "access-config").Data["AUTH"] = "none"
		}, "AUTH=none"},
		{"services disagree on the access gate", "", "env", func(t *testing.T, s *suite) {
			configMapByBase(t, s, "query-config").Data["AUTH_COOLDOWN"] = "5m"
		}, "AUTH_COOLDOWN differs between services"},
		{"variable set twice", "", "env", func(t *testing.T, s *suite) {
			c := container(t, s, "notifier")
			c.Env = append(c.Env, corev1.EnvVar{Name: "LOG_LEVEL", Value: "debug"})
		}, "LOG_LEVEL is set twice"},
		{"metrics on the API port", "", "metrics-port", func(t *testing.T, s *suite) {
			delete(configMapByBase(t, s, "store-config").Data, "METRICS_ADDR")
		}, "METRICS_ADDR has no known value"},
		{"metrics listener moved off the declared port", "", "metrics-port", func(t *testing.T, s *suite) {
			configMapByBase(t, s, "ingest-config").Data["METRICS_ADDR"] = ":9100"
		}, "no container port metrics on 9100"},
		{"metrics port not in the Service", "", "metrics-port", func(t *testing.T, s *suite) {
			svc := s.m.service("query")
			svc.Spec.Ports = slices.DeleteFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "metrics" })
		}, "Deployment query: no Service port leads to its metrics port"},
		{"missing ConfigMap", "", "references", func(t *testing.T, s *suite) {
			container(t, s, "store").EnvFrom[0].ConfigMapRef.Name = "store-settings"
		}, "ConfigMap store-settings is not rendered"},
		{"undocumented Secret", "", "references", func(t *testing.T, s *suite) {
			env(t, container(t, s, "ingest"), "ADMIN_TOKEN").ValueFrom.SecretKeyRef.Name = "admin"
		}, "Secret admin is neither rendered nor"},
		{"missing Secret key", "dev", "references", func(t *testing.T, s *suite) {
			delete(s.m.secrets[0].Data, "ADMIN_TOKEN")
		}, "has no key ADMIN_TOKEN"},
		{"missing volume", "", "references", func(t *testing.T, s *suite) {
			container(t, s, "nats").VolumeMounts[0].Name = "certs"
		}, "mounts volume certs"},
		{"Service selecting nothing", "", "services", func(t *testing.T, s *suite) {
			s.m.service("query").Spec.Selector["app.kubernetes.io/name"] = "querry"
		}, "selects the pods of 0 workloads"},
		{"Service targeting an undeclared port", "", "services", func(t *testing.T, s *suite) {
			s.m.service("ingest").Spec.Ports[0].TargetPort = intstr.FromString("api")
		}, "targetPort api is not declared"},
		{"grace period below the drain time", "", "termination", func(t *testing.T, s *suite) {
			deployment(t, s, "store").Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(20))
		}, "is not longer than the preStop pause"},
		{"drain time raised past the grace period", "", "termination", func(t *testing.T, s *suite) {
			configMapByBase(t, s, "ingest-config").Data["SHUTDOWN_TIMEOUT"] = "60s"
		}, "is not longer than the preStop pause"},
		{"no preStop pause", "", "termination", func(t *testing.T, s *suite) {
			container(t, s, "notifier").Lifecycle = nil
		}, "no preStop sleep"},
		{"writable root filesystem", "", "security", func(t *testing.T, s *suite) {
			container(t, s, "notifier").SecurityContext.ReadOnlyRootFilesystem = ptr(false)
		}, "readOnlyRootFilesystem is not true"},
		{"service account token", "", "security", func(t *testing.T, s *suite) {
			deployment(t, s, "query").Spec.Template.Spec.AutomountServiceAccountToken = nil
		}, "automountServiceAccountToken is not false"},
		{"root", "", "security", func(t *testing.T, s *suite) {
			statefulSet(t, s, "clickhouse").Spec.Template.Spec.SecurityContext.RunAsUser = ptr(int64(0))
		}, "no non-zero runAsUser"},
		{"added capability", "", "security", func(t *testing.T, s *suite) {
			container(t, s, "nats").SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		}, "adds capabilities"},
		{"namespace without Pod Security", "", "security", func(t *testing.T, s *suite) {
			s.m.namespaces[0].Labels = nil
		}, "pod-security.kubernetes.io/enforce"},
		{"stream replicas 1 on three servers", "", "stream-replicas", func(t *testing.T, s *suite) {
			configMapByBase(t, s, "stream-config").Data["STREAM_REPLICAS"] = "1"
		}, `STREAM_REPLICAS = "1"; want "3"`},
		{"services disagree on a stream setting", "", "stream-replicas", func(t *testing.T, s *suite) {
			c := container(t, s, "store")
			c.Env = append(c.Env, corev1.EnvVar{Name: "STREAM_MAX_AGE", Value: "24h"})
		}, "STREAM_MAX_AGE disagrees"},
		{"two NATS servers for three routes", "", "nats", func(t *testing.T, s *suite) {
			statefulSet(t, s, "nats").Spec.Replicas = ptr(int32(2))
		}, "routes of nats.conf differ"},
		{"missing route", "", "nats", func(t *testing.T, s *suite) {
			cm := configMapByBase(t, s, "nats-config")
			cm.Data["nats.conf"] = strings.Replace(cm.Data["nats.conf"], `"nats://nats-2.nats-headless:6222"`, "", 1)
		}, "routes of nats.conf differ"},
		{"NATS image of another version", "", "nats", func(t *testing.T, s *suite) {
			container(t, s, "nats").Image = "nats:2.10.0-alpine"
		}, "the nats-server version in pkg/go.mod"},
		{"nats.conf syntax error", "", "nats", func(t *testing.T, s *suite) {
			configMapByBase(t, s, "nats-config").Data["nats.conf"] += "\njetstream {\n"
		}, "ConfigMap nats-config"},
		{"unknown field in the NATS users", "", "nats", func(t *testing.T, s *suite) {
			cm := configMapByBase(t, s, "nats-config")
			cm.Data["nats-users.conf"] = strings.Replace(cm.Data["nats-users.conf"], "authorization {", "authorisation {", 1)
		}, "ConfigMap nats-config"},
		{"NATS users not included", "", "nats", func(t *testing.T, s *suite) {
			cm := configMapByBase(t, s, "nats-config")
			cm.Data["nats.conf"] = strings.Replace(cm.Data["nats.conf"], `include "nats-users.conf"`, "", 1)
		}, "admits clients without a user of their own"},
		{"anonymous NATS clients", "", "nats", func(t *testing.T, s *suite) {
			cm := configMapByBase(t, s, "nats-config")
			cm.Data["nats-users.conf"] = strings.Replace(cm.Data["nats-users.conf"], "authorization {", "no_auth_user: query\nauthorization {", 1)
		}, "admits clients without a user of their own"},
		{"NATS user without a password", "", "nats", func(t *testing.T, s *suite) {
			cm := configMapByBase(t, s, "nats-config")
			cm.Data["nats-users.conf"] = strings.Replace(cm.Data["nats-users.conf"], "      password: $NATS_STORE_PASSWORD\n", "", 1)
		}, "is not the password StatefulSet nats has for the user store"},
		{"NATS user with every permission", "", "nats", func(t *testing.T, s *suite) {
			cm := configMapByBase(t, s, "nats-config")
			conf := cm.Data["nats-users.conf"]
			i := strings.Index(conf, "      user: query\n")
			j := i + strings.Index(conf[i:], "\n    }\n")
			cm.Data["nats-users.conf"] = conf[:i] + "      user: query\n      password: $NATS_QUERY_PASSWORD" + conf[j:]
		}, "the user query may publish or subscribe to anything"},
		{"service logged in as another", "", "nats", func(t *testing.T, s *suite) {
			configMapByBase(t, s, "store-config").Data["NATS_USER"] = "query"
		}, `NATS_USER = "query"; want "store"`},
		{"service with another's password", "", "nats", func(t *testing.T, s *suite) {
			env(t, container(t, s, "store"), "NATS_PASSWORD").ValueFrom.SecretKeyRef.Key = "NATS_QUERY_PASSWORD"
		}, "is not the password StatefulSet nats has for the user store"},
		{"service password the server does not read", "", "nats", func(t *testing.T, s *suite) {
			env(t, container(t, s, "store"), "NATS_PASSWORD").ValueFrom.SecretKeyRef.Key = "NATS_PASSWORD"
		}, "which StatefulSet nats does not read"},
		{"file store above the volume", "", "nats", func(t *testing.T, s *suite) {
			cm := configMapByBase(t, s, "nats-config")
			cm.Data["nats.conf"] = strings.Replace(cm.Data["nats.conf"], "max_file_store: 180GB", "max_file_store: 320GB", 1)
		}, "is not below the volume"},
		{"NATS grace period below lame duck", "", "nats", func(t *testing.T, s *suite) {
			statefulSet(t, s, "nats").Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(30))
		}, "lame_duck_grace_period + lame_duck_duration"},
		{"NATS_URL with credentials", "", "nats", func(t *testing.T, s *suite) {
			configMapByBase(t, s, "nats-client").Data["NATS_URL"] = "nats://ingest:secret@nats:4222"
		}, "NATS_URL carries credentials"},
		{"NATS_URL to no Service", "", "nats", func(t *testing.T, s *suite) {
			configMapByBase(t, s, "nats-client").Data["NATS_URL"] = "nats://nats-server:4222"
		}, "host nats-server is not a rendered Service"},
		{"ClickHouse readiness not on /ping", "", "clickhouse", func(t *testing.T, s *suite) {
			container(t, s, "clickhouse").ReadinessProbe.HTTPGet.Path = "/"
		}, "readiness probe is not httpGet /ping"},
		{"ClickHouse configuration not XML", "", "clickhouse", func(t *testing.T, s *suite) {
			cm := configMapByBase(t, s, "clickhouse-config")
			cm.Data["clickhouse-logging.xml"] = strings.Replace(cm.Data["clickhouse-logging.xml"], "</logger>", "", 1)
		}, "is not a <clickhouse> XML configuration"},
		{"CLICKHOUSE_URL to another database", "dev", "clickhouse", func(t *testing.T, s *suite) {
			s.m.secrets[0].Data["CLICKHOUSE_URL"] = []byte("clickhouse://eventsync:dev-clickhouse-password@clickhouse:9000/default")
		}, "CLICKHOUSE_URL database"},
		{"CLICKHOUSE_URL on the HTTP port", "dev", "clickhouse", func(t *testing.T, s *suite) {
			s.m.secrets[0].Data["CLICKHOUSE_URL"] = []byte("clickhouse://eventsync:dev-clickhouse-password@clickhouse:8123/eventsync")
		}, "has no port 8123"},
		{"undocumented Secret key", "", "external-secrets-documented", func(t *testing.T, s *suite) {
			s.readme = strings.ReplaceAll(s.readme, "--from-literal=ADMIN_TOKEN=", "")
		}, "does not give ADMIN_TOKEN"},
		{"Secret committed to the repository", "", "external-secrets-documented", func(t *testing.T, s *suite) {
			s.m.secrets = append(s.m.secrets, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "eventsync-credentials"}})
		}, "is rendered from the repository"},
		{"two store replicas in dev", "dev", "single-replicas", func(t *testing.T, s *suite) {
			deployment(t, s, "store").Spec.Replicas = ptr(int32(2))
		}, "replicas = 2; want 1"},
		{"real-looking password in dev", "dev", "dev-credentials", func(t *testing.T, s *suite) {
			s.m.secrets[0].Data["NATS_INGEST_PASSWORD"] = []byte("s3cret")
		}, "NATS_INGEST_PASSWORD does not look like a development value"},
		{"real-looking secrets key in dev", "dev", "dev-credentials", func(t *testing.T, s *suite) {
			s.m.secrets[0].Data["SECRETS_KEY"] = []byte("q8Jm1cX0rV2nZ3aT5yB7uD9fH4kL6pS8wE0gR2tY4iU=")
		}, "SECRETS_KEY does not look like a development value"},
		{"NATS servers on one node", "", "anti-affinity", func(t *testing.T, s *suite) {
			statefulSet(t, s, "nats").Spec.Template.Spec.Affinity = nil
		}, "no required pod anti-affinity"},
		{"query not spread", "", "anti-affinity", func(t *testing.T, s *suite) {
			deployment(t, s, "query").Spec.Template.Spec.TopologySpreadConstraints = nil
		}, "Deployment query: not spread over nodes"},
		{"no PodDisruptionBudget for store", "", "disruption-budgets", func(t *testing.T, s *suite) {
			s.m.pdbs = slices.DeleteFunc(s.m.pdbs, func(p *policyv1.PodDisruptionBudget) bool { return p.Name == "store" })
		}, "Deployment store: 2 pods and no PodDisruptionBudget"},
		{"PodDisruptionBudget selecting nothing", "", "disruption-budgets", func(t *testing.T, s *suite) {
			pdb(t, s, "ingest").Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "ingestt"
		}, "selects the pods of 0 workloads"},
		{"NATS quorum at risk", "", "disruption-budgets", func(t *testing.T, s *suite) {
			pdb(t, s, "nats").Spec.MaxUnavailable = ptr(intstr.FromInt32(2))
		}, "lose its quorum"},
		{"blocked drains", "", "disruption-budgets", func(t *testing.T, s *suite) {
			pdb(t, s, "notifier").Spec.MaxUnavailable = ptr(intstr.FromInt32(0))
		}, "node drains would block"},
		{"HPA target missing", "", "autoscaling", func(t *testing.T, s *suite) {
			s.m.hpas[0].Spec.ScaleTargetRef.Name = "ingester"
		}, "is not rendered"},
		{"fixed replicas under an HPA", "", "autoscaling", func(t *testing.T, s *suite) {
			deployment(t, s, "query").Spec.Replicas = ptr(int32(3))
		}, "sets replicas"},
		{"one store", "", "autoscaling", func(t *testing.T, s *suite) {
			deployment(t, s, "store").Spec.Replicas = ptr(int32(1))
		}, "replicas = 1; want 2 or more"},
		{"NATS open to other namespaces", "", "network-policies", func(t *testing.T, s *suite) {
			np := networkPolicy(t, s, "nats")
			np.Spec.Ingress[0].From = append(np.Spec.Ingress[0].From, networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}})
		}, "opens StatefulSet nats to other namespaces"},
		{"ClickHouse open to every source", "", "network-policies", func(t *testing.T, s *suite) {
			networkPolicy(t, s, "clickhouse").Spec.Ingress[0].From = nil
		}, "opens StatefulSet clickhouse to every source"},
		{"no default deny", "", "network-policies", func(t *testing.T, s *suite) {
			s.m.networkPolicies = slices.DeleteFunc(s.m.networkPolicies, func(np *networkingv1.NetworkPolicy) bool { return np.Name == "default-deny-ingress" })
		}, "no default-deny NetworkPolicy"},
		{"store cut off from ClickHouse", "", "network-policies", func(t *testing.T, s *suite) {
			s.m.networkPolicies = slices.DeleteFunc(s.m.networkPolicies, func(np *networkingv1.NetworkPolicy) bool { return np.Name == "clickhouse" })
		}, "store pods cannot reach port native of StatefulSet clickhouse"},
		{"metrics opened to every namespace", "", "network-policies", func(t *testing.T, s *suite) {
			networkPolicy(t, s, "eventsync-metrics").Spec.Ingress[0].From = nil
		}, "a pod of another namespace can reach port metrics of Deployment store"},
		{"Prometheus on the API ports", "", "network-policies", func(t *testing.T, s *suite) {
			networkPolicy(t, s, "eventsync-metrics").Spec.Ingress[0].Ports[0].Port = ptr(intstr.FromString("http"))
		}, "Prometheus in namespace monitoring can reach port http of Deployment query"},
		{"query API opened to every namespace", "", "network-policies", func(t *testing.T, s *suite) {
			networkPolicy(t, s, "query-notifier-api").Spec.Ingress[0].From[0].NamespaceSelector = &metav1.LabelSelector{}
		}, "a pod of another namespace can reach port http of Deployment query"},
		{"notifier API from anywhere", "", "network-policies", func(t *testing.T, s *suite) {
			networkPolicy(t, s, "query-notifier-api").Spec.Ingress[0].From = nil
		}, "a pod of another namespace can reach port http of Deployment notifier"},
		{"ingress controller cut off", "", "network-policies", func(t *testing.T, s *suite) {
			networkPolicy(t, s, "query-notifier-api").Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] = "ingress"
		}, "the ingress controller in namespace ingress-nginx cannot reach port http of Deployment query"},
		{"ServiceMonitor on a missing port", "", "service-monitor", func(t *testing.T, s *suite) {
			s.m.serviceMonitors[0].Spec.Endpoints[0].Port = "prometheus"
		}, "no ServiceMonitor endpoint scrapes /metrics"},
		{"ServiceMonitor on the API port", "", "service-monitor", func(t *testing.T, s *suite) {
			s.m.serviceMonitors[0].Spec.Endpoints[0].Port = "http"
		}, "Deployment ingest: no ServiceMonitor endpoint scrapes /metrics on a Service port leading to its metrics port 9090"},
		{"ServiceMonitor without store", "", "service-monitor", func(t *testing.T, s *suite) {
			s.m.serviceMonitors[0].Spec.Selector.MatchExpressions[0].Values = []string{"ingest", "query", "notifier"}
		}, "Deployment store: no ServiceMonitor endpoint"},
	}
	byName := map[string]check{}
	for _, c := range checks() {
		byName[c.name] = c
	}
	tested := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.overlay
			if name == "" {
				name = "production"
			}
			ov := overlayNamed(t, name)
			c, ok := byName[tt.check]
			if !ok {
				t.Fatalf("no check %q", tt.check)
			}
			tested[tt.check] = true
			m, err := decodeDocs(docs[name])
			if err != nil {
				t.Fatal(err)
			}
			s := b.suite(t, ov, m)
			if errs := c.run(s); len(errs) > 0 {
				t.Fatalf("%s on the unbroken %s overlay: %v", tt.check, name, errs)
			}
			tt.breakIt(t, s)
			errs := c.run(s)
			if !slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), tt.want) }) {
				t.Errorf("%s after %s = %v; want an error containing %q", tt.check, tt.name, errs, tt.want)
			}
		})
	}
	for _, c := range checks() {
		if !tested[c.name] {
			t.Errorf("check %s has no broken manifest that makes it fail", c.name)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func mustQuantity(t *testing.T, s string) resource.Quantity {
	t.Helper()
	q, err := resource.ParseQuantity(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// container returns the container named name (ingest, store, query,
// notifier, nats, clickhouse) of the workload of the same name.
func container(t *testing.T, s *suite, name string) *corev1.Container {
	t.Helper()
	for _, w := range s.m.workloads() {
		if w.name != name {
			continue
		}
		for i := range w.pod.Spec.Containers {
			if w.pod.Spec.Containers[i].Name == name {
				return &w.pod.Spec.Containers[i]
			}
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

func env(t *testing.T, c *corev1.Container, name string) *corev1.EnvVar {
	t.Helper()
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	t.Fatalf("container %s: no env %s", c.Name, name)
	return nil
}

func deployment(t *testing.T, s *suite, name string) *appsv1.Deployment {
	t.Helper()
	for _, d := range s.m.deployments {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no Deployment %s", name)
	return nil
}

func statefulSet(t *testing.T, s *suite, name string) *appsv1.StatefulSet {
	t.Helper()
	for _, d := range s.m.statefulSets {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no StatefulSet %s", name)
	return nil
}

// configMapByBase returns the generated ConfigMap base-<hash>.
func configMapByBase(t *testing.T, s *suite, base string) *corev1.ConfigMap {
	t.Helper()
	for _, c := range s.m.configMaps {
		if rest, ok := strings.CutPrefix(c.Name, base+"-"); ok && !strings.Contains(rest, "-") {
			return c
		}
	}
	t.Fatalf("no ConfigMap %s-<hash>", base)
	return nil
}

func pdb(t *testing.T, s *suite, name string) *policyv1.PodDisruptionBudget {
	t.Helper()
	for _, p := range s.m.pdbs {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no PodDisruptionBudget %s", name)
	return nil
}

func networkPolicy(t *testing.T, s *suite, name string) *networkingv1.NetworkPolicy {
	t.Helper()
	for _, np := range s.m.networkPolicies {
		if np.Name == name {
			return np
		}
	}
	t.Fatalf("no NetworkPolicy %s", name)
	return nil
}
