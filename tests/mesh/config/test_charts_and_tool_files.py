"""What a chart, an install profile or a dev-cluster config kept beside the manifests loads as.

Found in trees nobody here wrote (istio/istio manifests/ and samples/, istio/tools, aws-samples/istio-on-eks,
GoogleCloudPlatform/anthos-service-mesh-samples): each class below used to be reported as broken input, a
Chart.yaml as a document without kind, every Helm template as one or more YAML syntax errors, every istioctl
profile as an object without a name. Decided by shape, never by file or repository name.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from diagnose import analyze
from mesh.config import Snapshot, load_paths, load_text
from mesh.config.loader import NO_NAME, NOT_AN_OBJECT, NOT_YAML, UNRENDERED_TEMPLATE

VS = ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\n"
      "spec: {{hosts: [web], http: [{{route: [{{destination: {{host: web}}}}]}}]}}\n")


@pytest.mark.parametrize("text", [
    "apiVersion: v2\nname: gateway\ndescription: Helm chart for deploying Istio gateways\ntype: application\n"
    "version: 1.0.0\nappVersion: 1.0.0\nkeywords: [istio, gateways]\n",
    "apiVersion: v1\nname: luacheck\nversion: 0.1.0\n",  # Helm 2 charts
    "apiVersion: v2\nname: app\nversion: 1.2.3\ndependencies:\n- name: redis\n  version: 17.x\n  repository: oci://r\n",
])
def test_helm_chart_metadata_is_skipped_as_no_object_under_any_file_name(text):
    for name in ("Chart.yaml", "charts/gateway/chart.yml", "meta.yaml"):
        r = load_text(text, name)
        assert r.problems == [] and r.objects == [], name
        assert [(p.reason, p.line) for p in r.skipped] == [(NOT_AN_OBJECT, 1)] and "Helm chart" in r.skipped[0].message


@pytest.mark.parametrize("text", [
    "apiVersion: v1\nname: x\nversion: 1\nkind: Service\n",  # a kind: an object missing its metadata
    "apiVersion: v2\nversion: 1.0.0\n",  # no chart name: meant as an object, its kind is missing
])
def test_a_document_with_a_kind_or_without_a_chart_name_is_no_chart(text):
    r = load_text(text, "Chart.yaml")
    assert r.skipped == [] and len(r.problems) == 1


HELM_TEMPLATES = {
    # the first unquoted action opens a flow mapping that never closes
    "if-block": ("{{- if .Values.gateway.enabled }}\napiVersion: networking.istio.io/v1\nkind: Gateway\n"
                 "metadata:\n  name: {{ .Release.Name }}\nspec:\n  selector: {istio: ingressgateway}\n"
                 "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {{ include \"app.fullname\" . }}\n"
                 "{{- end }}\n", 1),
    # an action as a value, after some plain YAML
    "value": ("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ .Values.name }}\n", 4),
    # a list item that is an action, after a comment holding braces
    "list-item": ("# {{ not here }} is a comment\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels:\n"
                  "    {{- include \"labels\" . | nindent 4 }}\nspec:\n  ports:\n  - {{ .Values.port }}\n", 7),
    # quoted: valid YAML, but the object's identity is still a template
    "quoted-name": ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
                    "  name: \"{{ .Release.Name }}\"\nspec: {hosts: [web]}\n", 4),
    "quoted-namespace": ("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
                         "  namespace: '{{ .Release.Namespace }}'\n", 5),
    # quoted, identity literal, but an Istio object's spec reads Helm's built-in objects: no rendered config does
    "quoted-spec": ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\nspec:\n"
                    "  hosts: [web]\n  http:\n  - route:\n    - destination:\n"
                    "        host: \"{{ .Release.Name }}.{{ .Release.Namespace }}.svc.cluster.local\"\n", 9),
    "quoted-gateway-api": ("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"
                           "  hostnames: ['{{ .Values.host }}']\n", 5),
}


@pytest.mark.parametrize("case", list(HELM_TEMPLATES))
def test_an_unrendered_helm_template_is_one_problem_per_file_at_its_first_action(case):
    text, line = HELM_TEMPLATES[case]
    r = load_text(text, "templates/x.yaml")
    assert r.objects == [] and r.skipped == []
    assert [(p.reason, p.line) for p in r.problems] == [(UNRENDERED_TEMPLATE, line)]
    (finding,) = analyze(Snapshot([]), problems=r.problems)
    assert (finding.code, finding.severity) == ("MS0026", "warning")
    assert "helm template" in finding.message and finding.resource.source == f"templates/x.yaml:{line}"


@pytest.mark.parametrize("text", [
    # Prometheus alert texts: Go templates in string values of a rendered object
    "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: r}\nspec:\n  groups:\n  - name: g\n"
    "    rules:\n    - alert: Down\n      annotations:\n        summary: \"{{ $labels.pod }} is down\"\n",
    # the injector's template inside a ConfigMap of a rendered install, lines starting with actions
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio-sidecar-injector}\ndata:\n  config: |-\n"
    "    {{- if .Values.global.proxy }}\n    policy: enabled\n    {{- end }}\n",
    # an EnvoyFilter's Lua code: braces that are no template
    "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: lua}\nspec:\n  configPatches:\n"
    "  - applyTo: HTTP_FILTER\n    patch:\n      operation: ADD\n      value:\n"
    "        inline_code: 'local t = {{1, 2}, {3}}'\n",
    # Argo Workflows parameters
    "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {name: w}\nspec:\n  templates:\n"
    "  - name: echo\n    container: {args: [\"{{inputs.parameters.message}}\"]}\n",
])
def test_template_actions_inside_the_strings_of_a_rendered_object_are_content(text):
    r = load_text(text, "rendered.yaml")
    assert r.problems == [] and len(r.objects) == 1


def test_a_yaml_error_in_a_file_without_template_actions_stays_a_syntax_error():
    r = load_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: [web\n", "svc.yaml")
    assert [p.reason for p in r.problems] == [NOT_YAML]


@pytest.mark.parametrize("text", [
    "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  profile: demo\n",  # istioctl profile
    "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata:\n  namespace: istio-system\n"
    "spec: {profile: default}\n",
    "apiVersion: operator.istio.io/v1alpha1\nkind: IstioOperator\nspec: {values: {global: {mtls: {auto: true}}}}\n",
    "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n",  # kind create cluster
    "apiVersion: k3d.io/v1alpha4\nkind: Simple\nservers: 1\nnetwork: k3d\n",  # k3d cluster create --config
    "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nnetworking: {podSubnet: 10.244.0.0/16}\n",
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",  # the API server's audit policy
])
def test_install_and_dev_cluster_configs_are_tool_input_not_objects(text):
    r = load_text(text + "---\n" + VS.format(name="web"), "iop.yaml")
    assert r.problems == [] and [o.name for o in r.objects] == ["web"]
    assert [p.reason for p in r.skipped] == [NOT_AN_OBJECT]


@pytest.mark.parametrize("text", [
    "apiVersion: v1\nkind: Service\nspec: {ports: [{port: 80}]}\n",  # core: an object missing its metadata
    "apiVersion: apps/v1\nkind: Deployment\nspec: {replicas: 1}\n",
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nspec: {hosts: [web]}\n",
    "apiVersion: networking.istio.io/v1\nkind: VirtualServce\nspec: {hosts: [web]}\n",  # misspelt, Istio's group
    "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {namespace: x}\nspec: {}\n",  # metadata, no name
])
def test_an_object_of_a_served_group_or_with_metadata_keeps_its_missing_name(text):
    r = load_text(text, "obj.yaml")
    assert r.skipped == [] and [p.reason for p in r.problems] == [NO_NAME]


@pytest.mark.parametrize("value, expected", [("=", "="), ("2024-05-01", "2024-05-01"),
                                             ("2024-05-01 10:00:00", "2024-05-01 10:00:00"), ("'='", "=")])
def test_yaml_1_1_scalars_kubernetes_reads_as_strings(value, expected):
    """A lone `=` (an operator enum in a CRD) made PyYAML fail on the whole document; a date-like label value is a
    valid label (a string to Kubernetes), not a date of the wrong type."""
    text = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {{released: {value}}}\ndata:\n  op: {value}\n"
    r = load_text(text, "cm.yaml")
    assert r.problems == []
    (cm,) = r.objects
    assert cm.labels == {"released": expected} and cm.raw["data"] == {"op": expected}


def test_json_found_in_a_folder_is_read_as_a_stream_and_data_is_skipped(tmp_path: Path):
    """kubectl reads JSON as a stream of values: test data in JSON Lines is no object, nor is a database import that
    is not even JSON (bookinfo's ratings_data.json); an object loads, a broken file that names a kind is reported."""
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}}
    (tmp_path / "svc.json").write_text(json.dumps(svc))
    (tmp_path / "lines.json").write_text('{"rating": 5}\n{"rating": 4}\n')
    (tmp_path / "import.json").write_text("{rating: 5}\n{rating: 4}\n")
    (tmp_path / "broken.json").write_text('{"apiVersion": "v1", "kind": "Service",\n')
    r = load_paths([tmp_path])
    assert [o.name for o in r.objects] == ["a"]
    assert [(Path(p.file).name, p.reason) for p in r.problems] == [("broken.json", NOT_YAML)]


@pytest.mark.parametrize("text, line", [
    # retaildevcrews/istio's mock: args filled by envsubst, the placeholder standing for list items
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: m}\nspec:\n  containers:\n  - name: app\n    args:\n"
     "    - --region\n    ${urls}\n    image: x\n", 9),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  ${EXTRA_METADATA}\ndata: {}\n", 5),
])
def test_an_unsubstituted_placeholder_that_breaks_the_yaml_is_named(text, line):
    """Still invalid YAML (MS0002, at the placeholder's line), but the message says why; the rest of the stream loads."""
    r = load_text(text + "---\n" + VS.format(name="web"), "mock.yaml")
    (p,) = r.problems
    assert (p.reason, p.line) == (NOT_YAML, line) and "${" in p.message and "envsubst" in p.message
    assert [o.name for o in r.objects] == ["web"]


def test_a_placeholder_yaml_reads_as_a_value_is_no_error():
    r = load_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  url: ${URL}\n", "cm.yaml")
    assert r.problems == [] and r.objects[0].raw["data"] == {"url": "${URL}"}
