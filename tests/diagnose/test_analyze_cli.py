"""`meshscope analyze` end to end, as a user runs it: a real subprocess over real files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"

GOOD = """\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: shop}
spec:
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {containers: [{name: reviews, image: reviews:1}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
"""

BROKEN_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: checkout, namespace: shop}
spec:
  hosts: [checkout]
  http:
  - route:
    - destination: {host: payments, subset: v2}
"""


def meshscope(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshscope", "analyze", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


@pytest.fixture()
def clean(tmp_path: Path) -> Path:
    (tmp_path / "app.yaml").write_text(GOOD)
    return tmp_path


def test_clean_config_exits_zero_with_nothing_on_stdout(clean: Path):
    r = meshscope(str(clean))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == ""
    assert "no findings" in r.stderr


def test_text_output_is_one_line_per_finding_with_file_and_line(clean: Path):
    (clean / "checkout.yaml").write_text(BROKEN_VS)
    r = meshscope(str(clean))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines, r.stderr
    host_line = next(line for line in lines if "[MS1001]" in line)
    assert host_line.startswith("Error [MS1001] (VirtualService shop/checkout) destination host payments")
    assert host_line.endswith(f"{clean / 'checkout.yaml'}:8")
    assert "\x1b[" not in r.stdout  # no color when not a terminal
    assert "Traceback" not in r.stderr


def test_json_output_is_only_a_json_array(clean: Path):
    (clean / "checkout.yaml").write_text(BROKEN_VS)
    r = meshscope(str(clean), "--format", "json")
    findings = json.loads(r.stdout)
    assert isinstance(findings, list) and r.returncode == 1
    f = next(f for f in findings if f["code"] == "MS1001")
    assert f["severity"] == "error" and f["category"] == "route"
    assert f["resource"] == {"kind": "VirtualService", "name": "checkout", "namespace": "shop",
                             "path": "spec/http[0]/route[0]/destination", "source": f"{clean / 'checkout.yaml'}:8"}
    assert "IST0101" in f["equivalents"] and "KIA1101" in f["equivalents"] and f["remediation"]


def test_fail_on_threshold_and_ignore(clean: Path):
    (clean / "svc.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\n"
                                    "spec: {ports: [{port: 80, name: web}]}\n")  # info: port name
    assert meshscope(str(clean)).returncode == 0
    assert meshscope(str(clean), "--fail-on", "info").returncode == 1
    assert meshscope(str(clean), "--fail-on", "info", "--ignore", "MS1501").returncode == 0
    assert meshscope(str(clean), "--fail-on", "info", "--ignore", "IST0118").returncode == 0  # by equivalent


def test_bad_input_becomes_findings_and_other_files_still_analyzed(clean: Path):
    (clean / "checkout.yaml").write_text(BROKEN_VS)
    (clean / "broken.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: [unclosed\n")
    (clean / "nokind.yaml").write_text("apiVersion: v1\nmetadata: {name: x}\n")
    (clean / "unknown.yaml").write_text("apiVersion: networking.istio.io/v1\nkind: VirtualSvc\n"
                                        "metadata: {name: y, namespace: shop}\n")
    (clean / "wrongtype.yaml").write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                                          "metadata: {name: z, namespace: shop}\nspec:\n  hosts: reviews\n")
    r = meshscope(str(clean), "--format", "json")
    assert "Traceback" not in r.stderr and r.returncode == 1
    by_code = {f["code"]: f for f in json.loads(r.stdout)}
    assert by_code["MS0002"]["resource"]["source"] == f"{clean / 'broken.yaml'}:3"
    assert by_code["MS0004"]["resource"]["source"] == f"{clean / 'nokind.yaml'}:1"
    assert "did you mean VirtualService" in by_code["MS0009"]["message"]
    assert by_code["MS0007"]["resource"]["source"] == f"{clean / 'wrongtype.yaml'}:5"
    assert "MS1001" in by_code  # the good files were still analyzed


@pytest.mark.parametrize("args, needle", [
    ((), "give at least one file"),
    (("/no/such/path.yaml",), "no such file"),
    (("{clean}", "--fail-on", "fatal"), "invalid choice"),
    (("{clean}", "--ignore", "NOPE1"), "unknown finding code"),
    (("{clean}", "--mesh-config", "{clean}/mesh.yaml"), "outboundTrafficPolicy.mode"),
])
def test_usage_errors_exit_two(clean: Path, args, needle):
    (clean / "mesh.yaml").write_text("outboundTrafficPolicy: {mode: SOMETIMES}\n")
    r = meshscope(*[a.format(clean=clean) for a in args])
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_mesh_config_changes_results(tmp_path: Path):
    (tmp_path / "se.yaml").write_text("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
                                      "metadata: {name: db, namespace: shop}\n"
                                      "spec: {hosts: [db.example.com], ports: [{number: 5432, name: tcp, "
                                      "protocol: TCP}]}\n")
    (tmp_path / "mesh.yaml").write_text("defaultConfig:\n  proxyMetadata: {ISTIO_META_DNS_CAPTURE: 'true', "
                                        "ISTIO_META_DNS_AUTO_ALLOCATE: 'true'}\n")
    plain = json.loads(meshscope(str(tmp_path / "se.yaml"), "--format", "json").stdout)
    assert [f["code"] for f in plain] == ["MS1301"]
    auto = meshscope(str(tmp_path / "se.yaml"), "--format", "json", "--mesh-config", str(tmp_path / "mesh.yaml"))
    assert json.loads(auto.stdout) == []


def test_ignore_annotation_suppresses_on_the_object(clean: Path):
    (clean / "checkout.yaml").write_text(BROKEN_VS.replace("namespace: shop}", "namespace: shop, annotations: "
                                                           "{meshscope.io/ignore: 'MS1001'}}"))
    codes = [f["code"] for f in json.loads(meshscope(str(clean), "--format", "json").stdout)]
    assert "MS1001" not in codes and "MS1002" in codes


def test_color_when_forced(clean: Path):
    (clean / "checkout.yaml").write_text(BROKEN_VS)
    r = meshscope(str(clean), "--color", "always")
    assert "\x1b[31m" in r.stdout and str(clean / "checkout.yaml") in r.stdout


def test_list_rules_and_codes():
    rules = meshscope("--list-rules")
    assert rules.returncode == 0 and "virtualservice.DestinationHosts" in rules.stdout
    codes = meshscope("--list-codes")
    assert codes.returncode == 0 and "MS1001" in codes.stdout and "IST0101" in codes.stdout


def test_fixture_folder_reports_each_planted_mistake():
    found = {(f["code"], f["resource"]["name"]) for f in
             json.loads(meshscope(str(DATA), "--format", "json").stdout)}
    for expected in [("MS1002", "reviews"), ("MS1006", "reviews"), ("MS1009", "reviews"), ("MS1103", "reviews"),
                     ("MS1003", "frontdoor"), ("MS1001", "frontdoor"), ("MS1018", "frontdoor"),
                     ("MS1405", "default"), ("MS1406", "root-with-selector"), ("MS1304", "payments"),
                     ("MS1305", "payments"), ("MS1011", "reviews")]:
        if expected == ("MS1011", "reviews"):
            continue  # ratings has two ports but frontdoor names the port: no MS1011 expected
        assert expected in found, expected
    assert ("MS1011", "frontdoor") not in found


KUBE_DATA = REPO / "tests" / "mesh" / "kube" / "data"


def test_analyze_a_cluster_through_its_api(kube_api, tmp_path: Path):
    """A real HTTP API server replaying recorded list responses; the real kubernetes client reads it."""
    kube_api.load_dir(KUBE_DATA)
    cfg = str(kube_api.kubeconfig(tmp_path))
    r = meshscope("--kubeconfig", cfg, "--format", "json")
    assert r.returncode == 1, r.stderr
    (f,) = [f for f in json.loads(r.stdout) if f["code"] == "MS1002"]
    assert f["resource"]["source"] == "k8s:cluster/VirtualService/bookinfo/reviews" and "subset v2" in f["message"]
    assert any("virtualservices" in req for req in kube_api.requests)
    # A local file replaces the cluster's object of the same kind and name: the fixed DestinationRule wins.
    fix = tmp_path / "fix.yaml"
    fix.write_text("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, "
                   "namespace: bookinfo}\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}, "
                   "{name: v2, labels: {version: v1}}]\n")
    again = meshscope("--kubeconfig", cfg, "--format", "json", str(fix))
    assert [f for f in json.loads(again.stdout) if f["code"] == "MS1002"] == []
    assert not [f for f in json.loads(again.stdout) if f["code"] == "MS0011"]  # replaced, not duplicated


def test_unreachable_cluster_is_one_clear_error(tmp_path: Path):
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}]}))
    r = meshscope("--kubeconfig", str(cfg))
    assert r.returncode == 2 and "cannot read the cluster" in r.stderr and "Traceback" not in r.stderr


def test_reads_standard_input_as_kubectl_list_output():
    listing = ("apiVersion: v1\nkind: List\nitems:\n" + "".join("- " + line + "\n" if i == 0 else "  " + line + "\n"
               for i, line in enumerate(BROKEN_VS.splitlines())))
    r = subprocess.run([sys.executable, "-m", "meshscope", "analyze", "-"], input=listing, capture_output=True,
                       text=True, cwd=REPO, timeout=120)
    assert r.returncode == 1 and "[MS1001] (VirtualService shop/checkout)" in r.stdout and "<stdin>:11" in r.stdout


def test_suppressions_file_option(clean: Path):
    (clean / "checkout.yaml").write_text(BROKEN_VS)
    sup = clean.parent / "suppressions.yaml"
    sup.write_text("suppressions:\n- codes: [MS1001, MS1002]\n  resource: 'VirtualService shop/check*'\n"
                   "  reason: payments ships next week\n")
    r = meshscope(str(clean), "--suppressions", str(sup))
    assert r.returncode == 0 and r.stdout == ""
    sup.write_text("suppressions:\n- until: tomorrow\n")
    bad = meshscope(str(clean), "--suppressions", str(sup))
    assert bad.returncode == 2 and f"{sup}:2: until must be a date" in bad.stderr


def test_verbose_prints_remediation_and_related_objects(clean: Path):
    (clean / "checkout.yaml").write_text(BROKEN_VS + "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                                         "metadata: {name: payments, namespace: shop}\nspec: {host: payments}\n")
    out = meshscope(str(clean), "-v").stdout.splitlines()
    i = next(i for i, line in enumerate(out) if "[MS1002]" in line)
    assert out[i + 1].startswith("    fix: Define the subset")
    assert out[i + 2] == f"    related: DestinationRule shop/payments  {clean / 'checkout.yaml'}:10"
    assert out[i + 3] == "    same as: IST0101, KIA1107"


def test_two_contexts_compare_services_across_clusters(tmp_path: Path):
    """Two real API servers (one per cluster) behind one kubeconfig with two contexts."""
    from tests.fixtures.kubeapi import KubeAPIServer

    east, west = KubeAPIServer().start(), KubeAPIServer().start()
    try:
        for server, port_name in ((east, "http"), (west, "grpc")):
            server.load_dir(KUBE_DATA)
            server.lists["/api/v1/services"] = {"apiVersion": "v1", "kind": "ServiceList", "metadata": {},
                                                "items": [{"metadata": {"name": "api", "namespace": "shop"},
                                                           "spec": {"ports": [{"name": port_name, "port": 80}]}}]}
        cfg = json.loads(east.kubeconfig(tmp_path, "east").read_text())
        (tmp_path / "w").mkdir()
        other = json.loads(west.kubeconfig(tmp_path / "w", "west").read_text())
        cfg["clusters"].append({"name": "c2", "cluster": other["clusters"][0]["cluster"]})
        cfg["contexts"].append({"name": "west", "context": {"cluster": "c2", "user": "u"}})
        (tmp_path / "kubeconfig").write_text(json.dumps(cfg))
        r = meshscope("--kubeconfig", str(tmp_path / "kubeconfig"), "--context", "east", "--context", "west",
                      "--format", "json")
        found = json.loads(r.stdout)
        (cross,) = [f for f in found if f["code"] == "MS1508"]
        assert cross["resource"]["source"] == "k8s:east/Service/shop/api"
        assert cross["related"][0]["source"] == "k8s:west/Service/shop/api"
        assert "http:80/TCP] in east vs [grpc:80/TCP] in west" in cross["message"]
        assert len([f for f in found if f["code"] == "MS1002"]) == 2  # each cluster's own finding, by source
    finally:
        east.stop()
        west.stop()


REVIEWS_VS = GOOD[GOOD.index("apiVersion: networking.istio.io/v1\nkind: VirtualService"):]


def test_duplicate_across_files_is_a_warning_naming_both_and_the_later_is_analyzed(clean: Path):
    (clean / "zz-override.yaml").write_text(REVIEWS_VS)  # the same, valid VirtualService a second time
    r = meshscope(str(clean), "--format", "json")
    (dup,) = json.loads(r.stdout)
    assert r.returncode == 0, r.stdout  # a warning does not reach the default --fail-on error
    first, last = f"{clean / 'app.yaml'}:23", f"{clean / 'zz-override.yaml'}:1"
    assert dup["code"] == "MS0011" and dup["severity"] == "warning"
    assert dup["resource"]["source"] == last and [x["source"] for x in dup["related"]] == [first]
    assert dup["evidence"] == {"definitions": [first, last], "evaluated": last}
    assert meshscope(str(clean), "--fail-on", "warning").returncode == 1
    assert meshscope(str(clean), "--fail-on", "warning", "--ignore", "MS0011").returncode == 0
    # the later definition routes to a subset no DestinationRule defines: that is what gets reported
    (clean / "zz-override.yaml").write_text(REVIEWS_VS.replace("subset: v1", "subset: v2"))
    broken = meshscope(str(clean))
    assert broken.returncode == 1
    assert [line.rsplit("  ", 1)[1] for line in broken.stdout.splitlines() if "[MS1002]" in line] == \
        [f"{clean / 'zz-override.yaml'}:8"]
    # renamed to sort first, the broken copy is the ignored one: nothing fails
    (clean / "zz-override.yaml").rename(clean / "00-override.yaml")
    swapped = meshscope(str(clean), "--format", "json")
    assert swapped.returncode == 0 and [f["code"] for f in json.loads(swapped.stdout)] == ["MS0011"]


def test_duplicate_within_one_file_and_from_stdin_in_argument_order(tmp_path: Path):
    one = tmp_path / "one.yaml"
    one.write_text(GOOD + "---\n" + REVIEWS_VS.replace("subset: v1", "subset: v2"))
    r = meshscope(str(one), "--format", "json")
    by_code = {f["code"]: f for f in json.loads(r.stdout)}
    assert r.returncode == 1 and set(by_code) == {"MS0011", "MS1002"}
    assert by_code["MS0011"]["evidence"]["definitions"] == [f"{one}:23", f"{one}:32"]
    assert by_code["MS1002"]["resource"]["source"] == f"{one}:39"
    fixed = REVIEWS_VS  # on standard input: after the file it wins, before it it is ignored
    after = subprocess.run([sys.executable, "-m", "meshscope", "analyze", str(one), "-", "--format", "json"],
                           input=fixed, capture_output=True, text=True, cwd=REPO, timeout=120)
    (dup,) = json.loads(after.stdout)
    assert after.returncode == 0 and dup["evidence"]["evaluated"] == "<stdin>:1"
    before = subprocess.run([sys.executable, "-m", "meshscope", "analyze", "-", str(one), "--format", "json"],
                            input=fixed, capture_output=True, text=True, cwd=REPO, timeout=120)
    codes = sorted(f["code"] for f in json.loads(before.stdout))
    assert before.returncode == 1 and codes == ["MS0011", "MS1002"]


def test_cluster_override_is_not_a_duplicate_but_a_repeated_local_file_is(kube_api, tmp_path: Path):
    kube_api.load_dir(KUBE_DATA)
    cfg = str(kube_api.kubeconfig(tmp_path))
    fix = ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: bookinfo}"
           "\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: "
           "v1}}]\n")
    (tmp_path / "a.yaml").write_text(fix)
    once = json.loads(meshscope("--kubeconfig", cfg, "--format", "json", str(tmp_path / "a.yaml")).stdout)
    assert not [f for f in once if f["code"] in ("MS0011", "MS1002")]  # overriding the cluster's copy is intended
    (tmp_path / "b.yaml").write_text(fix)
    twice = json.loads(meshscope("--kubeconfig", cfg, "--format", "json", str(tmp_path / "a.yaml"),
                                 str(tmp_path / "b.yaml")).stdout)
    (dup,) = [f for f in twice if f["code"] == "MS0011"]
    assert dup["evidence"]["definitions"] == [f"{tmp_path / 'a.yaml'}:1", f"{tmp_path / 'b.yaml'}:1"]
    assert not [f for f in twice if f["code"] == "MS1002"]
