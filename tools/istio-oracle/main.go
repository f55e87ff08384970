// Command istio-oracle runs istiod's own translation in process and prints what istiod would push to
// each proxy it is asked about: listeners, routes, clusters, endpoints and secrets, as JSON.
//
// It drives Istio's in-process discovery server (pilot/test/xds.NewFakeDiscoveryServer), the harness
// Istio's own tests use: Istio configuration goes through the same parsing and validation as the
// admission webhook, Kubernetes objects (Services, Endpoints, Secrets, Pods) through a fake client, and
// each proxy through SetupProxy, BuildListeners, BuildClusters, the route generator and the SDS generator.
// No Istio code is copied here; this file only feeds the harness and serialises its answers.
//
// Gateway API objects (Gateway, HTTPRoute, BackendTLSPolicy) go in "kubernetes": istiod reads them from the
// cluster, not through crd.ParseInputs.
//
// Input (JSON on stdin):
//
//	{"config": "<Istio YAML>", "kubernetes": "<Kubernetes YAML>", "meshConfig": "<MeshConfig YAML>",
//	 "proxies": [{"name": "eks/istio-ingressgateway", "type": "router"|"sidecar"|"waypoint", "ip": "10.0.0.1",
//	              "trustDomain": "cluster.local", "metadata": {"NAMESPACE": "...", "LABELS": {...}, ...}}]}
//
// PILOT_* flags are read from the environment when the process starts, as istiod reads them. A "waypoint"
// (model.Waypoint, as Istio's pilot/pkg/xds/waypoint_test.go sets one up) needs PILOT_ENABLE_AMBIENT=true and
// the objects ambient's index reads from the cluster in "kubernetes": its Gateway (class istio-waypoint, with
// the status address of its Service), that Service and the pod, and the ServiceEntries bound to it.
// Output (JSON on stdout): {"istio": "<release line>", "proxies": [{"name": ..., "listeners": [...],
// "routes": [...], "clusters": [...], "endpoints": [...], "secrets": [...]}]}. Istio's own logs go to
// stderr; a failure is one line on stderr and exit status 1 (bad input) or 2 (the harness failed).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	internalupstream "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/internal_upstream/v3"
	"google.golang.org/protobuf/proto"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/schema/gvr"
	kubelib "istio.io/istio/pkg/kube"
	"istio.io/istio/pkg/kube/kclient/clienttest"
	"istio.io/istio/pkg/log"
	"istio.io/istio/pkg/spiffe"
	"istio.io/istio/pkg/test"
	"istio.io/istio/pkg/util/protomarshal"
	"istio.io/istio/pkg/util/sets"
	xdsserver "istio.io/istio/pkg/xds"
	gatewayapi "sigs.k8s.io/gateway-api/pkg/consts"
)

// IstioLine is the Istio release line of the pinned module (its VERSION file), set by the build.
var IstioLine = "unknown"

// proxyIn is one proxy: its type, id, IP and the node metadata its Envoy would send (NAMESPACE, LABELS,
// SERVICE_ACCOUNT, ISTIO_VERSION, DNS_CAPTURE, ... as the istio-agent writes them into the bootstrap).
type proxyIn struct {
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	IP          string          `json:"ip"`
	TrustDomain string          `json:"trustDomain"`
	Metadata    json.RawMessage `json:"metadata"`
}

type request struct {
	Config     string    `json:"config"`
	Kubernetes string    `json:"kubernetes"`
	MeshConfig string    `json:"meshConfig"`
	Proxies    []proxyIn `json:"proxies"`
}

type proxyOut struct {
	Name      string            `json:"name"`
	Listeners []json.RawMessage `json:"listeners"`
	Routes    []json.RawMessage `json:"routes"`
	Clusters  []json.RawMessage `json:"clusters"`
	Endpoints []json.RawMessage `json:"endpoints"`
	Secrets   []json.RawMessage `json:"secrets"`
}

type response struct {
	Istio   string     `json:"istio"`
	Proxies []proxyOut `json:"proxies"`
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Println(IstioLine)
		return
	}
	// Istio logs to stdout by default; the answer owns stdout.
	opts := log.DefaultOptions()
	opts.OutputPaths = []string{"stderr"}
	opts.ErrorOutputPaths = []string{"stderr"}
	opts.SetDefaultOutputLevel(log.DefaultScopeName, log.ErrorLevel)
	for _, s := range log.Scopes() {
		opts.SetDefaultOutputLevel(s.Name(), log.ErrorLevel)
	}
	if err := log.Configure(opts); err != nil {
		fail(2, "configuring Istio's logs: %v", err)
	}

	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(1, "reading the request from stdin: %v", err)
	}
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		fail(1, "the request on stdin is not the oracle's JSON: %v", err)
	}
	meshConfig := mesh.DefaultMeshConfig()
	if req.MeshConfig != "" {
		if meshConfig, err = mesh.ApplyMeshConfigDefaults(req.MeshConfig); err != nil {
			fail(1, "meshConfig: %v", err)
		}
	}
	var resp response
	resp.Istio = IstioLine
	// Parsed here rather than by the harness: istiod's Kubernetes config source stamps each object with the
	// cluster's domain suffix, which short host names in rules resolve against (reviews ->
	// reviews.<ns>.svc.cluster.local); the harness's own parsing leaves it empty.
	configs, _, err := crd.ParseInputs(req.Config)
	if err != nil {
		fail(1, "istiod refused the configuration: %v", err)
	}
	created := time.Now()
	for i := range configs {
		if configs[i].Namespace == "" {
			configs[i].Namespace = "default"
		}
		configs[i].Domain = constants.DefaultClusterLocalDomain
		if configs[i].CreationTimestamp.IsZero() {
			configs[i].CreationTimestamp = created
		}
	}
	err = test.Wrap(func(t test.Failer) {
		s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
			Configs:                    configs,
			KubernetesObjectString:     req.Kubernetes,
			MeshConfig:                 meshConfig,
			DisableSecretAuthorization: true,
			// The harness installs the Gateway API CRDs Istio's own tests use; BackendTLSPolicy (v1) is not
			// among them, so its informer would never start. Installed here as a cluster has it, with the
			// bundle version istiod checks.
			KubeClientModifier: func(c kubelib.Client) {
				clienttest.MakeCRDWithAnnotations(t, c, gvr.BackendTLSPolicy,
					map[string]string{gatewayapi.BundleVersionAnnotation: gatewayapi.BundleVersion})
			},
		})
		for _, p := range req.Proxies {
			resp.Proxies = append(resp.Proxies, translate(t, s, p))
		}
	})
	if err != nil {
		fail(2, "istiod's harness failed: %v", err)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(resp); err != nil {
		fail(2, "writing the answer: %v", err)
	}
}

func translate(t test.Failer, s *xds.FakeDiscoveryServer, in proxyIn) proxyOut {
	meta := &model.BootstrapNodeMetadata{}
	if len(in.Metadata) > 0 {
		if err := json.Unmarshal(in.Metadata, meta); err != nil {
			t.Fatalf("proxy %s: metadata: %v", in.Name, err)
		}
	}
	md := &meta.NodeMetadata
	if md.ClusterID == "" {
		md.ClusterID = constants.DefaultClusterName
	}
	td := in.TrustDomain
	if td == "" {
		td = constants.DefaultClusterLocalDomain
	}
	typ := model.SidecarProxy
	switch in.Type {
	case "router":
		typ = model.Router
	case "waypoint":
		typ = model.Waypoint
	}
	p := s.SetupProxy(&model.Proxy{
		Type:             typ,
		ID:               in.Name,
		ConfigNamespace:  md.Namespace,
		IPAddresses:      []string{in.IP},
		Labels:           md.Labels,
		Metadata:         md,
		VerifiedIdentity: &spiffe.Identity{TrustDomain: td, Namespace: md.Namespace, ServiceAccount: md.ServiceAccount},
	})
	out := proxyOut{Name: in.Name}
	listeners := s.Listeners(p)
	clusters := s.Clusters(p)
	secretNames := sets.New[string]()
	for _, l := range listeners {
		out.Listeners = append(out.Listeners, marshal(t, l))
		secretNames.InsertAll(xdstest.ExtractListenerSecretResources(t, l)...)
	}
	for _, c := range clusters {
		out.Clusters = append(out.Clusters, marshal(t, c))
		secretNames.InsertAll(xdstest.ExtractClusterSecretResources(t, innerTransport(t, c))...)
	}
	for _, r := range s.RoutesFromListeners(p, listeners) {
		out.Routes = append(out.Routes, marshal(t, r))
	}
	for _, e := range s.Endpoints(p) {
		out.Endpoints = append(out.Endpoints, marshal(t, e))
	}
	gen := s.Discovery.Generators[v3.SecretType]
	res, _, err := gen.Generate(p, &model.WatchedResource{ResourceNames: secretNames},
		&model.PushRequest{Push: s.PushContext(), Forced: true, Start: time.Now()})
	if err != nil {
		t.Fatalf("SDS for %s: %v", in.Name, err)
	}
	secrets := xdstest.ExtractTLSSecrets(t, xdsserver.ResourcesToAny(res))
	for _, n := range sets.SortedList(sets.New(mapKeys(secrets)...)) {
		out.Secrets = append(out.Secrets, marshal(t, secrets[n]))
	}
	return out
}

// innerTransport is c with the transport socket a waypoint wraps in an internal upstream one (its clusters reach
// the internal listener that tunnels them), so that the SDS names of the TLS inside are found.
func innerTransport(t test.Failer, c *cluster.Cluster) *cluster.Cluster {
	ts := c.GetTransportSocket()
	if ts.GetTypedConfig().GetTypeUrl() != xdstest.TypeName[*internalupstream.InternalUpstreamTransport]() {
		return c
	}
	iu := xdstest.UnmarshalAny[internalupstream.InternalUpstreamTransport](t, ts.GetTypedConfig())
	return &cluster.Cluster{Name: c.GetName(), TransportSocket: iu.GetTransportSocket()}
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func marshal(t test.Failer, m proto.Message) json.RawMessage {
	s, err := protomarshal.ToJSON(m)
	if err != nil {
		t.Fatalf("serialising %T: %v", m, err)
	}
	return json.RawMessage(s)
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "istio-oracle: "+format+"\n", args...)
	os.Exit(code)
}
