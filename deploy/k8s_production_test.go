package deploy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The checks that only the production overlay must pass.

const hostnameKey = "kubernetes.io/hostname"

// checkAntiAffinity: NATS servers are required to run on different nodes
// (two on one node would lose the quorum with it), and every EventSync
// service is spread over nodes.
func checkAntiAffinity(s *suite) []error {
	var errs []error
	nonEmpty := func(sel *metav1.LabelSelector) bool {
		return sel != nil && (len(sel.MatchLabels) > 0 || len(sel.MatchExpressions) > 0)
	}
	if w, ok := s.m.workload("StatefulSet", "nats"); !ok {
		errs = append(errs, errors.New("no StatefulSet nats"))
	} else {
		a := w.pod.Spec.Affinity
		var terms []corev1.PodAffinityTerm
		if a != nil && a.PodAntiAffinity != nil {
			terms = a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		}
		if !slices.ContainsFunc(terms, func(t corev1.PodAffinityTerm) bool {
			return t.TopologyKey == hostnameKey && nonEmpty(t.LabelSelector) && matches(t.LabelSelector, w.pod.Labels)
		}) {
			errs = append(errs, fmt.Errorf("%s: no required pod anti-affinity on %s against its own pods", w, hostnameKey))
		}
	}
	for _, bin := range binaryNames() {
		w, _, ok := s.m.eventSync(bin)
		if !ok {
			errs = append(errs, fmt.Errorf("no container runs %s%s", imageRepo, bin))
			continue
		}
		spread := slices.ContainsFunc(w.pod.Spec.TopologySpreadConstraints, func(c corev1.TopologySpreadConstraint) bool {
			return c.TopologyKey == hostnameKey && nonEmpty(c.LabelSelector) && matches(c.LabelSelector, w.pod.Labels)
		})
		if a := w.pod.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
			aa := a.PodAntiAffinity
			terms := slices.Clone(aa.RequiredDuringSchedulingIgnoredDuringExecution)
			for _, p := range aa.PreferredDuringSchedulingIgnoredDuringExecution {
				terms = append(terms, p.PodAffinityTerm)
			}
			spread = spread || slices.ContainsFunc(terms, func(t corev1.PodAffinityTerm) bool {
				return t.TopologyKey == hostnameKey && nonEmpty(t.LabelSelector) && matches(t.LabelSelector, w.pod.Labels)
			})
		}
		if !spread {
			errs = append(errs, fmt.Errorf("%s: not spread over nodes (topologySpreadConstraints or pod anti-affinity on %s against its own pods)", w, hostnameKey))
		}
	}
	return errs
}

// checkDisruptionBudgets: every PodDisruptionBudget selects the pods of
// exactly one workload and lets at least one of them be evicted; every
// workload with more than one pod has one; NATS never loses its quorum.
func checkDisruptionBudgets(s *suite) []error {
	var errs []error
	minReplicas := map[string]int32{}
	for _, w := range s.m.workloads() {
		minReplicas[w.String()] = replicasOf(w)
	}
	for _, h := range s.m.hpas {
		if h.Spec.MinReplicas != nil {
			minReplicas[h.Spec.ScaleTargetRef.Kind+" "+h.Spec.ScaleTargetRef.Name] = *h.Spec.MinReplicas
		}
	}
	covered := map[string]bool{}
	for _, p := range s.m.pdbs {
		sel := p.Spec.Selector
		if sel == nil || len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: no selector", p.Name))
			continue
		}
		ws := s.m.selected(sel)
		if len(ws) != 1 {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: selects the pods of %d workloads %v; want 1", p.Name, len(ws), ws))
			continue
		}
		w := ws[0]
		covered[w.String()] = true
		n := int(minReplicas[w.String()])
		var allowed int
		switch {
		case p.Spec.MaxUnavailable != nil:
			v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MaxUnavailable, n, true)
			if err != nil {
				errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: %w", p.Name, err))
				continue
			}
			allowed = v
		case p.Spec.MinAvailable != nil:
			v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MinAvailable, n, true)
			if err != nil {
				errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: %w", p.Name, err))
				continue
			}
			allowed = n - v
		default:
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: neither minAvailable nor maxUnavailable", p.Name))
			continue
		}
		if allowed < 1 {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: lets no pod of %s (%d) be evicted: node drains would block", p.Name, w, n))
		}
		if w.name == "nats" && allowed > (n-1)/2 {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: lets %d of %d NATS servers go at once: JetStream would lose its quorum", p.Name, allowed, n))
		}
	}
	for _, w := range s.m.workloads() {
		if minReplicas[w.String()] > 1 && !covered[w.String()] {
			errs = append(errs, fmt.Errorf("%s: %d pods and no PodDisruptionBudget", w, minReplicas[w.String()]))
		}
	}
	return errs
}

// checkAutoscaling: HorizontalPodAutoscalers (autoscaling/v2, on CPU) for
// ingest and query, whose Deployments leave replicas to them; store and
// notifier run a fixed number of replicas, at least two.
func checkAutoscaling(s *suite) []error {
	var errs []error
	var targets []string
	for _, h := range s.m.hpas {
		ref := h.Spec.ScaleTargetRef
		targets = append(targets, ref.Kind+" "+ref.Name)
		w, ok := s.m.workload(ref.Kind, ref.Name)
		switch {
		case !ok || ref.APIVersion != "apps/v1":
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler %s: its target %s %s %s is not rendered", h.Name, ref.APIVersion, ref.Kind, ref.Name))
		case w.replicas != nil:
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler %s: %s sets replicas, which every apply would reset under the autoscaler", h.Name, w))
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler %s: minReplicas below 2", h.Name))
		} else if h.Spec.MaxReplicas <= *h.Spec.MinReplicas {
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler %s: maxReplicas %d leaves nothing to scale", h.Name, h.Spec.MaxReplicas))
		}
		if !slices.ContainsFunc(h.Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
			return m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.AverageUtilization != nil
		}) {
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler %s: does not scale on CPU utilization", h.Name))
		}
	}
	slices.Sort(targets)
	if diff := cmp.Diff([]string{"Deployment ingest", "Deployment query"}, targets); diff != "" {
		errs = append(errs, fmt.Errorf("autoscaled workloads differ (-want +got):\n%s", diff))
	}
	for _, bin := range []string{"store", "notifier"} {
		w, _, ok := s.m.eventSync(bin)
		if !ok {
			errs = append(errs, fmt.Errorf("no container runs %s%s", imageRepo, bin))
			continue
		}
		if w.replicas == nil || *w.replicas < 2 {
			errs = append(errs, fmt.Errorf("%s: replicas = %d; want 2 or more", w, replicasOf(w)))
		}
	}
	return errs
}

// source is where a connection comes from, for NetworkPolicy evaluation:
// a pod with these labels in a namespace with these labels.
type source struct {
	name           string
	pod, namespace map[string]string
	// sameNamespace: the pod is in the namespace of the policies.
	sameNamespace bool
}

// admitted reports whether the NetworkPolicies let src connect to the port
// named port of w's pods.
func admitted(nps []*networkingv1.NetworkPolicy, w workload, port string, src source) bool {
	var target corev1.ContainerPort
	found := false
	for i := range w.pod.Spec.Containers {
		if cp, ok := containerPort(&w.pod.Spec.Containers[i], intstr.FromString(port)); ok {
			target, found = cp, true
		}
	}
	if !found {
		return false
	}
	isolated := false
	for _, np := range nps {
		if !matches(&np.Spec.PodSelector, w.pod.Labels) || !hasIngress(np) {
			continue
		}
		isolated = true
		for _, rule := range np.Spec.Ingress {
			if !portAdmitted(rule.Ports, target) {
				continue
			}
			if len(rule.From) == 0 || slices.ContainsFunc(rule.From, func(p networkingv1.NetworkPolicyPeer) bool {
				return peerAdmits(p, src)
			}) {
				return true
			}
		}
	}
	return !isolated
}

func hasIngress(np *networkingv1.NetworkPolicy) bool {
	return len(np.Spec.PolicyTypes) == 0 || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
}

func portAdmitted(ports []networkingv1.NetworkPolicyPort, target corev1.ContainerPort) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.String && p.Port.StrVal == target.Name:
			return true
		case p.Port.Type == intstr.Int && p.EndPort != nil && p.Port.IntVal <= target.ContainerPort && target.ContainerPort <= *p.EndPort:
			return true
		case p.Port.Type == intstr.Int && p.Port.IntVal == target.ContainerPort:
			return true
		}
	}
	return false
}

// peerAdmits reports whether a NetworkPolicy peer matches src. An ipBlock is
// taken to admit any source from outside the namespace.
func peerAdmits(p networkingv1.NetworkPolicyPeer, src source) bool {
	if p.IPBlock != nil {
		return !src.sameNamespace
	}
	if p.NamespaceSelector == nil && p.PodSelector == nil {
		return false
	}
	nsOK := src.sameNamespace
	if p.NamespaceSelector != nil {
		nsOK = matches(p.NamespaceSelector, src.namespace)
	}
	podOK := p.PodSelector == nil || matches(p.PodSelector, src.pod)
	return nsOK && podOK
}

// checkNetworkPolicies: ingress is denied by default; ingest's API is
// reachable from other namespaces, the query and notifier APIs only from
// the ingress controller's namespace; NATS and ClickHouse admit
// EventSync's pods of the namespace and nothing else (no other namespace,
// no address block); Prometheus in the monitoring namespace reaches every
// service's metrics port (served without credentials), and nothing else
// does, while Prometheus reaches no API port that is not open to all
// (ingest's); and the pipeline still works: every service reaches NATS,
// store and query reach ClickHouse, the NATS servers reach each other.
func checkNetworkPolicies(s *suite) []error {
	var errs []error
	if !slices.ContainsFunc(s.m.networkPolicies, func(np *networkingv1.NetworkPolicy) bool {
		sel := np.Spec.PodSelector
		return len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 && hasIngress(np) && len(np.Spec.Ingress) == 0
	}) {
		errs = append(errs, errors.New("no default-deny NetworkPolicy (empty podSelector, Ingress, no rules)"))
	}
	nats, okNATS := s.m.workload("StatefulSet", "nats")
	ch, okCH := s.m.workload("StatefulSet", "clickhouse")
	if !okNATS || !okCH {
		return append(errs, errors.New("no StatefulSet nats or clickhouse"))
	}
	for _, w := range []workload{nats, ch} {
		for _, np := range s.m.networkPolicies {
			if !matches(&np.Spec.PodSelector, w.pod.Labels) {
				continue
			}
			for i, rule := range np.Spec.Ingress {
				if len(rule.From) == 0 {
					errs = append(errs, fmt.Errorf("NetworkPolicy %s: ingress rule %d opens %s to every source", np.Name, i, w))
				}
				for _, p := range rule.From {
					if p.NamespaceSelector != nil {
						errs = append(errs, fmt.Errorf("NetworkPolicy %s: ingress rule %d opens %s to other namespaces", np.Name, i, w))
					}
					if p.IPBlock != nil {
						errs = append(errs, fmt.Errorf("NetworkPolicy %s: ingress rule %d opens %s to address block %s", np.Name, i, w, p.IPBlock.CIDR))
					}
				}
			}
		}
	}

	pods := map[string]map[string]string{}
	apps := map[string]workload{}
	for _, bin := range binaryNames() {
		w, _, ok := s.m.eventSync(bin)
		if !ok {
			return append(errs, fmt.Errorf("no container runs %s%s", imageRepo, bin))
		}
		pods[bin], apps[bin] = w.pod.Labels, w
	}
	pods["nats"] = nats.pod.Labels
	var nsLabels map[string]string
	if len(s.m.namespaces) > 0 {
		nsLabels = map[string]string{"kubernetes.io/metadata.name": s.m.namespaces[0].Name}
	}
	inNS := func(name string) source {
		return source{name: name + " pods", pod: pods[name], namespace: nsLabels, sameNamespace: true}
	}
	// A pod elsewhere may carry any labels, EventSync's own included.
	other := source{name: "a pod of another namespace", pod: pods["ingest"], namespace: map[string]string{"kubernetes.io/metadata.name": "elsewhere"}}
	monitoring := source{name: "Prometheus in namespace monitoring", pod: map[string]string{"app.kubernetes.io/name": "prometheus"}, namespace: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}
	ingress := source{name: "the ingress controller in namespace " + s.ov.ingressNamespace, pod: map[string]string{"app.kubernetes.io/name": "ingress-nginx"}, namespace: map[string]string{"kubernetes.io/metadata.name": s.ov.ingressNamespace}}

	type flow struct {
		src  source
		to   workload
		port string
		want bool
	}
	var flows []flow
	for _, bin := range binaryNames() {
		flows = append(flows,
			flow{inNS(bin), nats, "nats", true},
			flow{inNS(bin), ch, "native", bin == "store" || bin == "query"},
			flow{monitoring, apps[bin], "metrics", true},
			flow{monitoring, apps[bin], "http", bin == "ingest"},
			flow{other, apps[bin], "metrics", false},
			flow{ingress, apps[bin], "metrics", false},
			flow{inNS("nats"), apps[bin], "metrics", false},
			flow{other, apps[bin], "http", bin == "ingest"},
			flow{ingress, apps[bin], "http", bin != "store"},
		)
	}
	flows = append(flows,
		flow{inNS("nats"), nats, "cluster", true},
		flow{other, nats, "nats", false},
		flow{other, nats, "cluster", false},
		flow{monitoring, nats, "nats", false},
		flow{other, ch, "native", false},
		flow{other, ch, "http", false},
		flow{monitoring, ch, "native", false},
		flow{ingress, nats, "nats", false},
	)
	for _, f := range flows {
		if got := admitted(s.m.networkPolicies, f.to, f.port, f.src); got != f.want {
			verb := "cannot"
			if got {
				verb = "can"
			}
			errs = append(errs, fmt.Errorf("%s %s reach port %s of %s", f.src.name, verb, f.port, f.to))
		}
	}
	return errs
}

// checkServiceMonitor: a ServiceMonitor scrapes /metrics of every EventSync
// service, on the Service port that leads to the port the binary serves
// /metrics on without credentials (METRICS_ADDR): on the API port it would
// need the admin token.
func checkServiceMonitor(s *suite) []error {
	var errs []error
	if len(s.m.serviceMonitors) == 0 {
		return []error{errors.New("no ServiceMonitor")}
	}
	for _, sm := range s.m.serviceMonitors {
		if len(sm.Spec.Selector.MatchLabels) == 0 && len(sm.Spec.Selector.MatchExpressions) == 0 {
			errs = append(errs, fmt.Errorf("ServiceMonitor %s: empty selector (it would scrape every Service)", sm.Name))
		}
	}
	for _, bin := range binaryNames() {
		w, c, ok := s.m.eventSync(bin)
		if !ok {
			errs = append(errs, fmt.Errorf("no container runs %s%s", imageRepo, bin))
			continue
		}
		env, _ := s.containerEnv(c)
		port, err := s.metricsPort(bin, env)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		scraped := false
		for _, svc := range s.m.services {
			if !matches(selectorOf(svc.Spec.Selector), w.pod.Labels) {
				continue
			}
			for _, sp := range svc.Spec.Ports {
				if cp, ok := containerPort(&c, sp.TargetPort); !ok || cp.ContainerPort != port {
					continue
				}
				for _, sm := range s.m.serviceMonitors {
					ns := sm.Spec.NamespaceSelector
					nsOK := ns.Any || len(ns.MatchNames) == 0 && sm.Namespace == svc.Namespace || slices.Contains(ns.MatchNames, svc.Namespace)
					if !nsOK || !matches(&sm.Spec.Selector, svc.Labels) {
						continue
					}
					for _, ep := range sm.Spec.Endpoints {
						if ep.Port == sp.Name && (ep.Path == "" || ep.Path == "/metrics") {
							scraped = true
						}
					}
				}
			}
		}
		if !scraped {
			errs = append(errs, fmt.Errorf("%s: no ServiceMonitor endpoint scrapes /metrics on a Service port leading to its metrics port %d", w, port))
		}
	}
	return errs
}
