package deploy

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The checks TestK8s runs on every overlay. Each returns what it found wrong.

// envVar is one environment variable of a container as the kubelet sets it.
type envVar struct {
	source string // "value", "ConfigMap <name>", "Secret <name>", "fieldRef", "resourceFieldRef"
	value  string
	known  bool // value is known: a literal or a key of a rendered object
	secret bool // from a Secret
}

// containerEnv resolves a container's envFrom and env. A variable set by two
// sources, or an object that is not rendered, is reported; env still holds
// what could be resolved.
func (s *suite) containerEnv(c corev1.Container) (map[string]envVar, []error) {
	env := map[string]envVar{}
	var errs []error
	set := func(name string, v envVar) {
		if prev, ok := env[name]; ok {
			errs = append(errs, fmt.Errorf("container %s: %s is set twice: by %s and by %s", c.Name, name, prev.source, v.source))
		}
		env[name] = v
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm := s.m.configMap(from.ConfigMapRef.Name)
			if cm == nil {
				errs = append(errs, fmt.Errorf("container %s: envFrom ConfigMap %s is not rendered", c.Name, from.ConfigMapRef.Name))
				continue
			}
			for k, v := range cm.Data {
				set(from.Prefix+k, envVar{source: "ConfigMap " + cm.Name, value: v, known: true})
			}
		case from.SecretRef != nil:
			sec := s.m.secret(from.SecretRef.Name)
			if sec == nil {
				errs = append(errs, fmt.Errorf("container %s: envFrom Secret %s: its keys cannot be checked (not rendered); use env with secretKeyRef", c.Name, from.SecretRef.Name))
				continue
			}
			for k := range sec.Data {
				v, _ := secretValue(sec, k)
				set(from.Prefix+k, envVar{source: "Secret " + sec.Name, value: v, known: true, secret: true})
			}
			for k, v := range sec.StringData {
				set(from.Prefix+k, envVar{source: "Secret " + sec.Name, value: v, known: true, secret: true})
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			set(e.Name, envVar{source: "value", value: e.Value, known: true})
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v := envVar{source: "Secret " + ref.Name, secret: true}
			if sec := s.m.secret(ref.Name); sec != nil {
				v.value, v.known = secretValue(sec, ref.Key)
			}
			set(e.Name, v)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v := envVar{source: "ConfigMap " + ref.Name}
			if cm := s.m.configMap(ref.Name); cm != nil {
				v.value, v.known = cm.Data[ref.Key]
			}
			set(e.Name, v)
		case e.ValueFrom.FieldRef != nil:
			set(e.Name, envVar{source: "fieldRef " + e.ValueFrom.FieldRef.FieldPath})
		case e.ValueFrom.ResourceFieldRef != nil:
			set(e.Name, envVar{source: "resourceFieldRef " + e.ValueFrom.ResourceFieldRef.Resource})
		}
	}
	return env, errs
}

// setting returns a binary's setting in a container: its value there, or
// the binary's default.
func (s *suite) setting(bin string, env map[string]envVar, name string) (string, bool) {
	if v, ok := env[name]; ok {
		return v.value, v.known
	}
	v, ok := s.defaults[bin][name]
	return v, ok
}

func (s *suite) durationSetting(bin string, env map[string]envVar, name string) (time.Duration, error) {
	v, ok := s.setting(bin, env, name)
	if !ok {
		return 0, fmt.Errorf("%s: %s has no known value", bin, name)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %s=%q: %w", bin, name, v, err)
	}
	return d, nil
}

// httpPort returns the port a binary serves HTTP on in a container: the port
// of its HTTP_ADDR.
func (s *suite) httpPort(bin string, env map[string]envVar) (int32, error) {
	return s.listenPort(bin, env, "HTTP_ADDR")
}

// metricsPort returns the port a binary serves /metrics on without
// credentials in a container: the port of its METRICS_ADDR.
func (s *suite) metricsPort(bin string, env map[string]envVar) (int32, error) {
	return s.listenPort(bin, env, "METRICS_ADDR")
}

// listenPort returns the port of the listen address setting name.
func (s *suite) listenPort(bin string, env map[string]envVar, name string) (int32, error) {
	addr, ok := s.setting(bin, env, name)
	if !ok || addr == "" {
		return 0, fmt.Errorf("%s: %s has no known value", bin, name)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("%s: %s=%q: %w", bin, name, addr, err)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: %s=%q: %w", bin, name, addr, err)
	}
	return int32(n), nil
}

// containerPort resolves a port (a name or a number) against the ports a
// container declares.
func containerPort(c *corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

type namedProbe struct {
	kind  string
	probe *corev1.Probe
}

func probes(c *corev1.Container) []namedProbe {
	return []namedProbe{{"startup", c.StartupProbe}, {"readiness", c.ReadinessProbe}, {"liveness", c.LivenessProbe}}
}

// checkResources: every container has CPU and memory requests and limits,
// requests not above limits.
func checkResources(s *suite) []error {
	var errs []error
	for _, w := range s.m.workloads() {
		for _, c := range allContainers(&w.pod.Spec) {
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, okReq := c.Resources.Requests[r]
				lim, okLim := c.Resources.Limits[r]
				switch {
				case !okReq || req.IsZero():
					errs = append(errs, fmt.Errorf("%s container %s: no %s request", w, c.Name, r))
				case !okLim || lim.IsZero():
					errs = append(errs, fmt.Errorf("%s container %s: no %s limit", w, c.Name, r))
				case req.Cmp(lim) > 0:
					errs = append(errs, fmt.Errorf("%s container %s: %s request %s above its limit %s", w, c.Name, r, req.String(), lim.String()))
				}
			}
		}
	}
	return errs
}

// checkProbes: every EventSync container has an httpGet readiness probe on
// /readyz and liveness probe on /healthz, on the port it serves HTTP on;
// every other container has startup, readiness and liveness probes; every
// httpGet probe targets a port its container declares. EventSync images
// have no shell, so no exec probes or hooks there.
func checkProbes(s *suite) []error {
	var errs []error
	for _, w := range s.m.workloads() {
		for _, c := range allContainers(&w.pod.Spec) {
			bin := binaryOf(c)
			for _, p := range probes(&c) {
				switch {
				case p.probe == nil:
					if bin == "" {
						errs = append(errs, fmt.Errorf("%s container %s: no %s probe", w, c.Name, p.kind))
					}
				case p.probe.Exec != nil && bin != "":
					errs = append(errs, fmt.Errorf("%s container %s: %s probe runs a command, but the image has no shell or tools: use httpGet", w, c.Name, p.kind))
				case p.probe.HTTPGet != nil:
					if _, ok := containerPort(&c, p.probe.HTTPGet.Port); !ok {
						errs = append(errs, fmt.Errorf("%s container %s: %s probe port %s is not declared by the container", w, c.Name, p.kind, p.probe.HTTPGet.Port.String()))
					}
				}
			}
			if bin == "" {
				continue
			}
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Exec != nil {
				errs = append(errs, fmt.Errorf("%s container %s: preStop runs a command, but the image has no shell or tools: use sleep", w, c.Name))
			}
			env, _ := s.containerEnv(c)
			port, err := s.httpPort(bin, env)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s container %s: %w", w, c.Name, err))
				continue
			}
			for _, want := range []struct {
				kind, path string
				probe      *corev1.Probe
			}{{"readiness", "/readyz", c.ReadinessProbe}, {"liveness", "/healthz", c.LivenessProbe}} {
				if want.probe == nil || want.probe.HTTPGet == nil {
					errs = append(errs, fmt.Errorf("%s container %s: no httpGet %s probe on %s", w, c.Name, want.kind, want.path))
					continue
				}
				if got := want.probe.HTTPGet.Path; got != want.path {
					errs = append(errs, fmt.Errorf("%s container %s: %s probe path = %q; want %q", w, c.Name, want.kind, got, want.path))
				}
				if cp, ok := containerPort(&c, want.probe.HTTPGet.Port); ok && cp.ContainerPort != port {
					errs = append(errs, fmt.Errorf("%s container %s: %s probe port = %d; want %d (HTTP_ADDR)", w, c.Name, want.kind, cp.ContainerPort, port))
				}
			}
		}
	}
	return errs
}

// checkImages: every image is pinned (a tag other than latest, or a
// digest), and EventSync's images are one release.
func checkImages(s *suite) []error {
	var errs []error
	tags := map[string][]string{}
	for _, w := range s.m.workloads() {
		for _, c := range allContainers(&w.pod.Spec) {
			repo, tag, digest := splitImage(c.Image)
			switch {
			case tag == "" && digest == "":
				errs = append(errs, fmt.Errorf("%s container %s: image %q is not pinned: give it a tag or a digest", w, c.Name, c.Image))
			case tag == "latest":
				errs = append(errs, fmt.Errorf("%s container %s: image %q uses the tag latest", w, c.Name, c.Image))
			}
			if bin := binaryOf(c); bin != "" {
				if !slices.Contains(binaryNames(), bin) && bin != "eventsync" {
					errs = append(errs, fmt.Errorf("%s container %s: %s is not an EventSync binary", w, c.Name, repo))
				}
				tags[tag+"@"+digest] = append(tags[tag+"@"+digest], c.Image)
			}
		}
	}
	if len(tags) > 1 {
		errs = append(errs, fmt.Errorf("EventSync images of different releases: %v", tags))
	}
	return errs
}

// checkEnv: every variable an EventSync container gets (env, and every key
// of the ConfigMaps and Secrets of envFrom) is one its binary reads, set
// once; credentials come from Secrets; the connection settings are there.
func checkEnv(s *suite) []error {
	var errs []error
	// Every service runs the access gate: it needs the admin token (or
	// it refuses to start while no client is registered) and the secrets
	// key (the one that sealed what the others read).
	access := []string{"ADMIN_TOKEN", "SECRETS_KEY"}
	required := map[string][]string{
		"ingest":   slices.Concat([]string{"NATS_URL", "NATS_USER", "NATS_PASSWORD"}, access),
		"store":    slices.Concat([]string{"NATS_URL", "NATS_USER", "NATS_PASSWORD", "CLICKHOUSE_URL"}, access),
		"query":    slices.Concat([]string{"NATS_URL", "NATS_USER", "NATS_PASSWORD", "CLICKHOUSE_URL"}, access),
		"notifier": slices.Concat([]string{"NATS_URL", "NATS_USER", "NATS_PASSWORD"}, access),
	}
	for _, bin := range binaryNames() {
		w, c, ok := s.m.eventSync(bin)
		if !ok {
			errs = append(errs, fmt.Errorf("no container runs %s%s", imageRepo, bin))
			continue
		}
		env, envErrs := s.containerEnv(c)
		for _, err := range envErrs {
			errs = append(errs, fmt.Errorf("%s %w", w, err))
		}
		names := make([]string, 0, len(env))
		for name := range env {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			v := env[name]
			if !s.env[bin][name] && name != runtimeEnv {
				errs = append(errs, fmt.Errorf("%s container %s: %s does not read %s (set by %s)", w, c.Name, bin, name, v.source))
			}
			if slices.Contains(credentialEnv(), name) && !v.secret {
				errs = append(errs, fmt.Errorf("%s container %s: %s carries credentials and must come from a Secret, not %s", w, c.Name, name, v.source))
			}
		}
		for _, name := range required[bin] {
			if _, ok := env[name]; !ok {
				errs = append(errs, fmt.Errorf("%s container %s: %s is not set", w, c.Name, name))
			}
		}
		if v, ok := s.setting(bin, env, "AUTH"); ok && v == "none" {
			errs = append(errs, fmt.Errorf("%s container %s: AUTH=none: every request must authenticate", w, c.Name))
		}
	}
	for _, name := range []string{"AUTH", "TOKEN_LIFETIME", "AUTH_MAX_FAILURES", "AUTH_FAILURE_WINDOW", "AUTH_COOLDOWN", "TRUSTED_PROXIES"} {
		errs = append(errs, s.agree(name)...)
	}
	return errs
}

// agree reports a setting that differs between the services: the access
// gate is one, whichever service a client calls.
func (s *suite) agree(name string) []error {
	values := map[string][]string{}
	for _, bin := range binaryNames() {
		_, c, ok := s.m.eventSync(bin)
		if !ok {
			continue
		}
		env, _ := s.containerEnv(c)
		v, _ := s.setting(bin, env, name)
		values[v] = append(values[v], bin)
	}
	if len(values) > 1 {
		return []error{fmt.Errorf("%s differs between services: %v", name, values)}
	}
	return nil
}

// checkMetricsPort: every EventSync service serves /metrics on a listener
// of its own (METRICS_ADDR, no credentials there), on another port than
// its API, which its container declares as port metrics and a Service
// exposes (what the ServiceMonitor scrapes).
func checkMetricsPort(s *suite) []error {
	var errs []error
	for _, bin := range binaryNames() {
		w, c, ok := s.m.eventSync(bin)
		if !ok {
			errs = append(errs, fmt.Errorf("no container runs %s%s", imageRepo, bin))
			continue
		}
		env, _ := s.containerEnv(c)
		port, err := s.metricsPort(bin, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s container %s: %w: /metrics would be on the API port, behind admin scope", w, c.Name, err))
			continue
		}
		if api, err := s.httpPort(bin, env); err == nil && api == port {
			errs = append(errs, fmt.Errorf("%s container %s: METRICS_ADDR is on the API port %d", w, c.Name, port))
		}
		cp, ok := containerPort(&c, intstr.FromString("metrics"))
		if !ok || cp.ContainerPort != port {
			errs = append(errs, fmt.Errorf("%s container %s: no container port metrics on %d (METRICS_ADDR)", w, c.Name, port))
			continue
		}
		exposed := false
		for _, svc := range s.m.services {
			if !matches(selectorOf(svc.Spec.Selector), w.pod.Labels) {
				continue
			}
			for _, sp := range svc.Spec.Ports {
				if p, ok := containerPort(&c, sp.TargetPort); ok && p.ContainerPort == port {
					exposed = true
				}
			}
		}
		if !exposed {
			errs = append(errs, fmt.Errorf("%s: no Service port leads to its metrics port %d", w, port))
		}
	}
	return errs
}

// checkReferences: every ConfigMap, Secret, volume and Service a workload
// refers to exists in the render (Secrets also on the overlay's list of
// Secrets created outside kustomize), with the keys it refers to.
func checkReferences(s *suite) []error {
	var errs []error
	secretOK := func(where, name, key string, optional bool) {
		sec := s.m.secret(name)
		switch {
		case sec == nil && slices.Contains(s.ov.external, name):
		case sec == nil && !optional:
			errs = append(errs, fmt.Errorf("%s: Secret %s is neither rendered nor one the overlay documents as created outside kustomize", where, name))
		case sec != nil && key != "" && !optional:
			if _, ok := secretValue(sec, key); !ok {
				errs = append(errs, fmt.Errorf("%s: Secret %s has no key %s", where, name, key))
			}
		}
	}
	configMapOK := func(where, name, key string, optional bool) {
		cm := s.m.configMap(name)
		switch {
		case cm == nil && !optional:
			errs = append(errs, fmt.Errorf("%s: ConfigMap %s is not rendered", where, name))
		case cm != nil && key != "" && !optional:
			_, inData := cm.Data[key]
			_, inBinary := cm.BinaryData[key]
			if !inData && !inBinary {
				errs = append(errs, fmt.Errorf("%s: ConfigMap %s has no key %s", where, name, key))
			}
		}
	}
	for _, w := range s.m.workloads() {
		spec := &w.pod.Spec
		volumes := map[string]bool{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = true
			where := fmt.Sprintf("%s volume %s", w, v.Name)
			switch {
			case v.ConfigMap != nil:
				configMapOK(where, v.ConfigMap.Name, "", v.ConfigMap.Optional != nil && *v.ConfigMap.Optional)
				for _, it := range v.ConfigMap.Items {
					configMapOK(where, v.ConfigMap.Name, it.Key, v.ConfigMap.Optional != nil && *v.ConfigMap.Optional)
				}
			case v.Secret != nil:
				secretOK(where, v.Secret.SecretName, "", v.Secret.Optional != nil && *v.Secret.Optional)
			case v.PersistentVolumeClaim != nil:
				errs = append(errs, fmt.Errorf("%s: PersistentVolumeClaim %s is not rendered (use volumeClaimTemplates)", where, v.PersistentVolumeClaim.ClaimName))
			case v.Projected != nil:
				for _, p := range v.Projected.Sources {
					if p.ConfigMap != nil {
						configMapOK(where, p.ConfigMap.Name, "", p.ConfigMap.Optional != nil && *p.ConfigMap.Optional)
					}
					if p.Secret != nil {
						secretOK(where, p.Secret.Name, "", p.Secret.Optional != nil && *p.Secret.Optional)
					}
				}
			}
		}
		claimed := map[string]bool{}
		for _, pvc := range w.claims {
			if volumes[pvc.Name] {
				errs = append(errs, fmt.Errorf("%s: volume %s is both a volume and a volumeClaimTemplate", w, pvc.Name))
			}
			volumes[pvc.Name] = true
		}
		for _, c := range allContainers(spec) {
			where := fmt.Sprintf("%s container %s", w, c.Name)
			for _, from := range c.EnvFrom {
				if from.ConfigMapRef != nil {
					configMapOK(where+" envFrom", from.ConfigMapRef.Name, "", from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional)
				}
				if from.SecretRef != nil {
					secretOK(where+" envFrom", from.SecretRef.Name, "", from.SecretRef.Optional != nil && *from.SecretRef.Optional)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
					configMapOK(where+" env "+e.Name, ref.Name, ref.Key, ref.Optional != nil && *ref.Optional)
				}
				if ref := e.ValueFrom.SecretKeyRef; ref != nil {
					secretOK(where+" env "+e.Name, ref.Name, ref.Key, ref.Optional != nil && *ref.Optional)
				}
			}
			for _, vm := range c.VolumeMounts {
				if !volumes[vm.Name] {
					errs = append(errs, fmt.Errorf("%s: mounts volume %s, which the pod does not have", where, vm.Name))
				}
				claimed[vm.Name] = true
			}
		}
		for _, pvc := range w.claims {
			if !claimed[pvc.Name] {
				errs = append(errs, fmt.Errorf("%s: volumeClaimTemplate %s is mounted by no container", w, pvc.Name))
			}
		}
		if spec.ServiceAccountName != "" && spec.ServiceAccountName != "default" {
			errs = append(errs, fmt.Errorf("%s: ServiceAccount %s is not rendered", w, spec.ServiceAccountName))
		}
		if w.kind == "StatefulSet" {
			svc := s.m.service(w.serviceName)
			switch {
			case svc == nil:
				errs = append(errs, fmt.Errorf("%s: its serviceName %q is not a rendered Service", w, w.serviceName))
			case svc.Spec.ClusterIP != corev1.ClusterIPNone:
				errs = append(errs, fmt.Errorf("%s: its Service %s is not headless (clusterIP: None)", w, svc.Name))
			case !matches(selectorOf(svc.Spec.Selector), w.pod.Labels):
				errs = append(errs, fmt.Errorf("%s: its Service %s does not select its pods", w, svc.Name))
			}
		}
	}
	return errs
}

// checkServices: every Service selects the pods of exactly one workload, and
// each of its ports targets a port those pods declare.
func checkServices(s *suite) []error {
	var errs []error
	for _, svc := range s.m.services {
		if len(svc.Spec.Selector) == 0 {
			errs = append(errs, fmt.Errorf("Service %s: no selector", svc.Name))
			continue
		}
		ws := s.m.selected(selectorOf(svc.Spec.Selector))
		if len(ws) != 1 {
			errs = append(errs, fmt.Errorf("Service %s: selects the pods of %d workloads %v; want 1", svc.Name, len(ws), ws))
			continue
		}
		w := ws[0]
		for _, p := range svc.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			found := false
			for i := range w.pod.Spec.Containers {
				if _, ok := containerPort(&w.pod.Spec.Containers[i], target); ok {
					found = true
				}
			}
			if !found {
				errs = append(errs, fmt.Errorf("Service %s port %s: targetPort %s is not declared by %s", svc.Name, p.Name, target.String(), w))
			}
		}
	}
	return errs
}

// natsDrainMin is the least time a binary gives its NATS connection to
// drain once its shutdown timeout is used up (minDrain in pkg/service).
const natsDrainMin = time.Second

// drainTime is how long a binary may take to stop after SIGTERM with the
// settings in env. Every binary stops through pkg/service: HTTP requests,
// the parts' work in hand and the NATS drain all fit in SHUTDOWN_TIMEOUT,
// and NATS gets at least natsDrainMin beyond it.
func (s *suite) drainTime(bin string, env map[string]envVar) (time.Duration, error) {
	switch bin {
	case "ingest", "query", "store", "notifier":
		d, err := s.durationSetting(bin, env, "SHUTDOWN_TIMEOUT")
		return d + natsDrainMin, err
	}
	return 0, fmt.Errorf("no drain time known for %s", bin)
}

// checkTermination: every EventSync pod pauses in preStop (sleep, no shell
// needed) and has a terminationGracePeriodSeconds longer than that pause
// plus its binary's drain time with the settings it gets.
func checkTermination(s *suite) []error {
	var errs []error
	for _, bin := range binaryNames() {
		w, c, ok := s.m.eventSync(bin)
		if !ok {
			errs = append(errs, fmt.Errorf("no container runs %s%s", imageRepo, bin))
			continue
		}
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
			errs = append(errs, fmt.Errorf("%s container %s: no preStop sleep", w, c.Name))
			continue
		}
		pause := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		env, _ := s.containerEnv(c)
		drain, err := s.drainTime(bin, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w, err))
			continue
		}
		grace := w.pod.Spec.TerminationGracePeriodSeconds
		if grace == nil {
			errs = append(errs, fmt.Errorf("%s: no terminationGracePeriodSeconds (the default 30 s is not derived from its drain time)", w))
			continue
		}
		if g := time.Duration(*grace) * time.Second; g <= pause+drain {
			errs = append(errs, fmt.Errorf("%s: terminationGracePeriodSeconds %s is not longer than the preStop pause %s + the drain time %s = %s", w, g, pause, drain, pause+drain))
		}
	}
	return errs
}

// checkSecurity: the restricted Pod Security Standard and more: no service
// account token, no Service links, non-root, RuntimeDefault seccomp, no
// privilege escalation, read-only root filesystems, every capability
// dropped; EventSync containers as uid 65532 (distroless nonroot).
func checkSecurity(s *suite) []error {
	var errs []error
	if len(s.m.namespaces) == 0 {
		errs = append(errs, fmt.Errorf("no Namespace rendered: the overlay must create its namespace with the Pod Security labels"))
	}
	for _, ns := range s.m.namespaces {
		if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			errs = append(errs, fmt.Errorf("Namespace %s: pod-security.kubernetes.io/enforce = %q; want \"restricted\"", ns.Name, got))
		}
	}
	allowedVolume := func(v corev1.Volume) bool {
		return v.ConfigMap != nil || v.Secret != nil || v.EmptyDir != nil || v.PersistentVolumeClaim != nil ||
			v.Projected != nil || v.DownwardAPI != nil || v.Ephemeral != nil || v.CSI != nil
	}
	for _, w := range s.m.workloads() {
		spec := &w.pod.Spec
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			errs = append(errs, fmt.Errorf("%s: automountServiceAccountToken is not false (nothing here talks to the API server)", w))
		}
		if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
			errs = append(errs, fmt.Errorf("%s: enableServiceLinks is not false (Service links add variables such as NATS_PORT and CLICKHOUSE_PORT)", w))
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			errs = append(errs, fmt.Errorf("%s: shares a host namespace", w))
		}
		for _, v := range spec.Volumes {
			if !allowedVolume(v) {
				errs = append(errs, fmt.Errorf("%s: volume %s is of a type the restricted Pod Security Standard refuses", w, v.Name))
			}
		}
		psc := spec.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		for _, c := range allContainers(spec) {
			csc := c.SecurityContext
			where := fmt.Sprintf("%s container %s", w, c.Name)
			if csc == nil {
				errs = append(errs, fmt.Errorf("%s: no securityContext", where))
				continue
			}
			nonRoot := csc.RunAsNonRoot
			if nonRoot == nil {
				nonRoot = psc.RunAsNonRoot
			}
			if nonRoot == nil || !*nonRoot {
				errs = append(errs, fmt.Errorf("%s: runAsNonRoot is not true", where))
			}
			uid := csc.RunAsUser
			if uid == nil {
				uid = psc.RunAsUser
			}
			switch {
			case uid == nil || *uid == 0:
				errs = append(errs, fmt.Errorf("%s: no non-zero runAsUser", where))
			case binaryOf(c) != "" && *uid != 65532:
				errs = append(errs, fmt.Errorf("%s: runAsUser = %d; want 65532 (the distroless nonroot user of EventSync's images)", where, *uid))
			}
			seccomp := csc.SeccompProfile
			if seccomp == nil {
				seccomp = psc.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost {
				errs = append(errs, fmt.Errorf("%s: seccompProfile is not RuntimeDefault", where))
			}
			if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
				errs = append(errs, fmt.Errorf("%s: allowPrivilegeEscalation is not false", where))
			}
			if csc.Privileged != nil && *csc.Privileged {
				errs = append(errs, fmt.Errorf("%s: privileged", where))
			}
			if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
				errs = append(errs, fmt.Errorf("%s: readOnlyRootFilesystem is not true", where))
			}
			if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
				errs = append(errs, fmt.Errorf("%s: capabilities do not drop ALL", where))
			} else if len(csc.Capabilities.Add) > 0 {
				errs = append(errs, fmt.Errorf("%s: adds capabilities %v", where, csc.Capabilities.Add))
			}
		}
	}
	return errs
}

// checkStreamReplicas: the services that create the streams (those that
// read STREAM_REPLICAS) agree on every stream setting, since each applies
// its own at start-up, and create them with as many replicas as there are
// NATS servers.
func checkStreamReplicas(s *suite) []error {
	var errs []error
	if w, ok := s.m.workload("StatefulSet", "nats"); !ok {
		errs = append(errs, fmt.Errorf("no StatefulSet nats"))
	} else if got := replicasOf(w); got != s.ov.natsReplicas {
		errs = append(errs, fmt.Errorf("%s: replicas = %d; want %d", w, got, s.ov.natsReplicas))
	}
	want := strconv.Itoa(int(s.ov.natsReplicas))
	seen := map[string]string{} // variable → "binary=value" of the first service
	for _, bin := range binaryNames() {
		if !s.env[bin]["STREAM_REPLICAS"] {
			continue
		}
		w, c, ok := s.m.eventSync(bin)
		if !ok {
			errs = append(errs, fmt.Errorf("no container runs %s%s", imageRepo, bin))
			continue
		}
		env, _ := s.containerEnv(c)
		if got, _ := s.setting(bin, env, "STREAM_REPLICAS"); got != want {
			errs = append(errs, fmt.Errorf("%s container %s: STREAM_REPLICAS = %q; want %q (the NATS servers)", w, c.Name, got, want))
		}
		var names []string
		for name := range s.env[bin] {
			if strings.HasPrefix(name, "STREAM_") {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			v, _ := s.setting(bin, env, name)
			first, ok := seen[name]
			if !ok {
				seen[name] = bin + "=" + v
				continue
			}
			if _, fv, _ := strings.Cut(first, "="); fv != v {
				errs = append(errs, fmt.Errorf("%s: %s disagrees between services: %s, %s=%s", name, name, first, bin, v))
			}
		}
	}
	return errs
}

// checkClickHouse: the official image of a current release line, the
// native and HTTP ports, /ping probes, data on the volume claim, the user
// from the Secret, and a CLICKHOUSE_URL in store and query that reaches it
// as that user.
func checkClickHouse(s *suite) []error {
	var errs []error
	w, c, ok := s.m.container("StatefulSet", "clickhouse")
	if !ok {
		return []error{fmt.Errorf("no StatefulSet clickhouse with a container clickhouse")}
	}
	repo, tag, _ := splitImage(c.Image)
	if repo != "clickhouse/clickhouse-server" {
		errs = append(errs, fmt.Errorf("%s: image %s; want the official clickhouse/clickhouse-server", w, c.Image))
	}
	if major, err := strconv.Atoi(strings.SplitN(tag, ".", 2)[0]); err != nil || major < 24 {
		errs = append(errs, fmt.Errorf("%s: image tag %q is not a current release line (24 or later)", w, tag))
	}
	native, okNative := containerPort(c, intstr.FromString("native"))
	http, okHTTP := containerPort(c, intstr.FromString("http"))
	if !okNative || native.ContainerPort != 9000 || !okHTTP || http.ContainerPort != 8123 {
		errs = append(errs, fmt.Errorf("%s: ports native 9000 and http 8123 are not both declared", w))
	}
	for _, p := range probes(c) {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != "/ping" || p.probe.HTTPGet.Port != intstr.FromString("http") {
			errs = append(errs, fmt.Errorf("%s: %s probe is not httpGet /ping on port http", w, p.kind))
		}
	}
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm.Name
	}
	if name := mounts["/var/lib/clickhouse"]; !slices.ContainsFunc(w.claims, func(p corev1.PersistentVolumeClaim) bool { return p.Name == name }) {
		errs = append(errs, fmt.Errorf("%s: /var/lib/clickhouse is not on a volumeClaimTemplate", w))
	}
	// The entrypoint writes the user file there; the root filesystem is read-only.
	if _, ok := mounts["/etc/clickhouse-server/users.d"]; !ok {
		errs = append(errs, fmt.Errorf("%s: /etc/clickhouse-server/users.d is not a writable volume", w))
	}
	// Configuration files: well-formed XML with ClickHouse's root element.
	for _, v := range w.pod.Spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		cm := s.m.configMap(v.ConfigMap.Name)
		if cm == nil {
			continue // reported by references
		}
		for key, data := range cm.Data {
			var root struct{ XMLName xml.Name }
			if !strings.HasSuffix(key, ".xml") {
				continue
			}
			if err := xml.Unmarshal([]byte(data), &root); err != nil || root.XMLName.Local != "clickhouse" {
				errs = append(errs, fmt.Errorf("%s: ConfigMap %s %s is not a <clickhouse> XML configuration: %v", w, cm.Name, key, err))
			}
		}
	}
	env, _ := s.containerEnv(*c)
	for _, name := range []string{"CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD"} {
		if v, ok := env[name]; !ok || !v.secret {
			errs = append(errs, fmt.Errorf("%s: %s does not come from a Secret", w, name))
		}
	}
	db := env["CLICKHOUSE_DB"]
	for _, bin := range []string{"store", "query"} {
		sw, sc, ok := s.m.eventSync(bin)
		if !ok {
			continue
		}
		senv, _ := s.containerEnv(sc)
		v := senv["CLICKHOUSE_URL"]
		if !v.known {
			continue // a Secret created outside kustomize
		}
		u, err := url.Parse(v.value)
		if err != nil || u.Scheme != "clickhouse" {
			errs = append(errs, fmt.Errorf("%s: CLICKHOUSE_URL is not a clickhouse:// DSN", sw))
			continue
		}
		if err := s.reaches(u, w, "native"); err != nil {
			errs = append(errs, fmt.Errorf("%s: CLICKHOUSE_URL: %w", sw, err))
		}
		pass, _ := u.User.Password()
		if user := env["CLICKHOUSE_USER"]; user.known && u.User.Username() != user.value {
			errs = append(errs, fmt.Errorf("%s: CLICKHOUSE_URL user = %q; want %q (CLICKHOUSE_USER of %s)", sw, u.User.Username(), user.value, w))
		}
		if want := env["CLICKHOUSE_PASSWORD"]; want.known && pass != want.value {
			errs = append(errs, fmt.Errorf("%s: CLICKHOUSE_URL password is not CLICKHOUSE_PASSWORD of %s", sw, w))
		}
		if db.known && strings.TrimPrefix(u.Path, "/") != db.value {
			errs = append(errs, fmt.Errorf("%s: CLICKHOUSE_URL database = %q; want %q (CLICKHOUSE_DB of %s)", sw, u.Path, db.value, w))
		}
	}
	return errs
}

// reaches reports why u's host and port do not lead to the port named
// portName of w's pods through a rendered Service (nil if they do).
func (s *suite) reaches(u *url.URL, w workload, portName string) error {
	host, port := u.Hostname(), u.Port()
	svcName, _, _ := strings.Cut(host, ".") // nats or nats.<namespace>.svc…
	svc := s.m.service(svcName)
	if svc == nil {
		return fmt.Errorf("host %s is not a rendered Service", host)
	}
	if !matches(selectorOf(svc.Spec.Selector), w.pod.Labels) {
		return fmt.Errorf("Service %s does not select the pods of %s", svc.Name, w)
	}
	for _, p := range svc.Spec.Ports {
		if strconv.Itoa(int(p.Port)) != port {
			continue
		}
		for i := range w.pod.Spec.Containers {
			cp, ok := containerPort(&w.pod.Spec.Containers[i], p.TargetPort)
			if ok && cp.Name == portName {
				return nil
			}
		}
		return fmt.Errorf("Service %s port %s does not target the %s port of %s", svc.Name, port, portName, w)
	}
	return fmt.Errorf("Service %s has no port %s", svc.Name, port)
}

// checkExternalSecretsDocumented: an overlay that keeps credentials out of
// the repository renders no Secret, and README.md shows how to create each
// Secret it references, with every key its pods need.
func checkExternalSecretsDocumented(s *suite) []error {
	var errs []error
	if s.ov.production {
		for _, sec := range s.m.secrets {
			errs = append(errs, fmt.Errorf("Secret %s is rendered from the repository; production Secrets are created outside kustomize", sec.Name))
		}
	}
	for _, name := range s.ov.external {
		if !strings.Contains(s.readme, "create secret generic "+name) {
			errs = append(errs, fmt.Errorf("README.md does not show `kubectl create secret generic %s` (the command creating it)", name))
		}
		keys := map[string]bool{}
		for _, w := range s.m.workloads() {
			for _, c := range allContainers(&w.pod.Spec) {
				for _, e := range c.Env {
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name {
						ref := e.ValueFrom.SecretKeyRef
						keys[ref.Key] = keys[ref.Key] || ref.Optional == nil || !*ref.Optional
					}
				}
			}
		}
		if len(keys) == 0 {
			errs = append(errs, fmt.Errorf("Secret %s is on the overlay's list but nothing uses it", name))
		}
		for _, key := range slices.Sorted(maps.Keys(keys)) {
			if keys[key] && !strings.Contains(s.readme, "--from-literal="+key+"=") {
				errs = append(errs, fmt.Errorf("README.md does not give %s in the command creating Secret %s (--from-literal=%s=…)", key, name, key))
			}
		}
	}
	return errs
}

// checkSingleReplicas (dev): one replica of everything and no autoscaling.
func checkSingleReplicas(s *suite) []error {
	var errs []error
	for _, w := range s.m.workloads() {
		if got := replicasOf(w); got != 1 {
			errs = append(errs, fmt.Errorf("%s: replicas = %d; want 1", w, got))
		}
	}
	for _, h := range s.m.hpas {
		errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler %s in a single-replica overlay", h.Name))
	}
	return errs
}

// checkDevCredentials (dev): the Secret is generated, and every password
// and token in it says it is for development.
func checkDevCredentials(s *suite) []error {
	var errs []error
	if len(s.m.secrets) == 0 {
		errs = append(errs, fmt.Errorf("no Secret rendered: the dev overlay generates its credentials"))
	}
	for _, sec := range s.m.secrets {
		for key := range sec.Data {
			v, _ := secretValue(sec, key)
			// A key is random bytes in base64: the bytes say it.
			if b, err := base64.StdEncoding.DecodeString(v); err == nil && strings.HasSuffix(key, "_KEY") {
				v = string(b)
			}
			if (strings.Contains(key, "PASSWORD") || strings.Contains(key, "TOKEN") || strings.HasSuffix(key, "_KEY")) && !strings.Contains(v, "dev") {
				errs = append(errs, fmt.Errorf("Secret %s: %s does not look like a development value (it should say dev)", sec.Name, key))
			}
		}
	}
	return errs
}

// replicasOf returns a workload's replicas (1 when unset).
func replicasOf(w workload) int32 {
	if w.replicas == nil {
		return 1
	}
	return *w.replicas
}

// mountFor returns the volume mount of c whose path holds p.
func mountFor(c *corev1.Container, p string) (corev1.VolumeMount, bool) {
	var best corev1.VolumeMount
	found := false
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path.Clean(p), path.Clean(vm.MountPath))
		if ok && (rel == "" || strings.HasPrefix(rel, "/")) && len(vm.MountPath) >= len(best.MountPath) {
			best, found = vm, true
		}
	}
	return best, found
}
