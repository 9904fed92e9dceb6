"""What a files-only analysis assumes an Istio install provides: istiod and the ingress gateway.

Gateways in published manifests select `istio: ingressgateway`, the gateway every install
profile with an ingress runs in the Istio namespace. Analyzing files without a cluster,
istioctl adds a stand-in for it (a pod with that label and the `istio-ingressgateway`
Service) unless the mesh config turns the ingress controller off; meshscope does the
same, so a sample's Gateway is not "selecting no pod". Unlike istioctl's bare dummy pod, the
stand-in is the pod an install runs: it carries the gateway chart's two labels (`istio: <selector>`
and `app: <ingressService>`) and an injected proxy (an istio-proxy container with an image), so a
policy that selects the ingress gateway by either label (JWT, ext-authz or IP rules at the edge) is
judged against an in-mesh workload, also when the files declare the root Namespace with injection
disabled, as install manifests do. The Service maps ports as Istio's
gateway chart installs it (80->8080, 443->8443, plus the demo profile's 31400 and 15443),
not as istioctl's older stand-in (80->80), so Gateways listening on 8080 like today's
samples are not flagged. The stand-ins give way to anything the files define: a Service
of that name, or any workload carrying the selector label in that namespace.

istiod is in every install, whatever the profile or the ingress mode: the `istiod` Service in the
root namespace (selector app=istiod, istio=pilot; ports 15010 xDS, 15012 xDS over TLS, 443 to the
webhook's 15017, 15014 monitoring) and its pods, which run no proxy. Manifests that route to it
(istio's multicluster samples expose istiod through the east-west gateway with a VirtualService and
a DestinationRule for istiod.istio-system.svc.cluster.local) are not "routing to no Service".
"""
from __future__ import annotations

from mesh.config.loader import load_text
from mesh.config.meshconfig import MeshConfig
from mesh.config.model import ConfigObject
from mesh.config.workloads import workload_of

SOURCE = "(assumed: the Istio install's ingress gateway)"
CONTROL_PLANE_SOURCE = "(assumed: the Istio install's istiod)"


def assumed_install(mesh_config: MeshConfig, objects: list[ConfigObject]) -> list[ConfigObject]:
    """Every stand-in a files-only analysis adds: istiod, then the ingress gateway."""
    return assumed_control_plane(mesh_config, objects) + assumed_ingress(mesh_config, objects)


def assumed_control_plane(mesh_config: MeshConfig, objects: list[ConfigObject]) -> list[ConfigObject]:
    """The stand-in istiod pod and Service of the root namespace, unless `objects` define them."""
    ns = mesh_config.root_namespace
    text = f"""\
apiVersion: v1
kind: Pod
metadata:
  name: istiod-stand-in
  namespace: {ns}
  labels: {{app: istiod, istio: pilot}}
spec:
  containers:
  - name: discovery
    image: docker.io/istio/pilot
    ports: [{{containerPort: 8080}}, {{containerPort: 15010}}, {{containerPort: 15012}}, {{containerPort: 15014}},
            {{containerPort: 15017}}]
---
apiVersion: v1
kind: Service
metadata:
  name: istiod
  namespace: {ns}
spec:
  selector: {{app: istiod, istio: pilot}}
  ports:
  - {{name: grpc-xds, protocol: TCP, port: 15010}}
  - {{name: https-dns, protocol: TCP, port: 15012}}
  - {{name: https-webhook, protocol: TCP, port: 443, targetPort: 15017}}
  - {{name: http-monitoring, protocol: TCP, port: 15014}}
"""
    has_service = any(o.kind == "Service" and o.namespace == ns and o.name == "istiod" for o in objects)
    has_pods = any(w.namespace == ns and w.labels.get("app") == "istiod"
                   for w in (workload_of(o) for o in objects if o.namespace == ns) if w is not None)
    return [o for o in load_text(text, CONTROL_PLANE_SOURCE).objects
            if (o.kind == "Service" and not has_service) or (o.kind == "Pod" and not has_pods)]


def assumed_ingress(mesh_config: MeshConfig, objects: list[ConfigObject]) -> list[ConfigObject]:
    """The stand-in ingress pod and Service not already defined by `objects` (none with ingress OFF)."""
    if mesh_config.ingress_controller_mode == "OFF":
        return []
    ns, svc, label = mesh_config.root_namespace, mesh_config.ingress_service, mesh_config.ingress_selector
    text = f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {svc}-stand-in
  namespace: {ns}
  labels: {{istio: {label}, app: {svc}}}
spec:
  containers:
  - name: istio-proxy
    image: docker.io/istio/proxyv2
---
apiVersion: v1
kind: Service
metadata:
  name: {svc}
  namespace: {ns}
spec:
  selector: {{istio: {label}}}
  ports:
  - {{name: http2, protocol: TCP, port: 80, targetPort: 8080}}
  - {{name: https, protocol: TCP, port: 443, targetPort: 8443}}
  - {{name: tcp, protocol: TCP, port: 31400, targetPort: 31400}}
  - {{name: tls, protocol: TCP, port: 15443, targetPort: 15443}}
"""
    has_service = any(o.kind == "Service" and o.namespace == ns and o.name == svc for o in objects)
    has_pods = any(w.namespace == ns and w.labels.get("istio") == label
                   for w in (workload_of(o) for o in objects if o.namespace == ns) if w is not None)
    out = []
    for obj in load_text(text, SOURCE).objects:
        if (obj.kind == "Service" and not has_service) or (obj.kind == "Pod" and not has_pods):
            out.append(obj)
    return out
