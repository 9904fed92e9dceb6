"""`meshscope analyze --kubeconfig` helpers: a cluster's live config, and local files applied on top."""
from __future__ import annotations

import json

import pytest

from diagnose import analyze
from mesh.config import ConfigObject, Snapshot, load_text
from mesh.kube import KubeError, api_client
from meshscope.cluster_analyze import load_cluster_objects, overlay

CANARY = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings-canary, namespace: bookinfo}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings, subset: v9}
"""


def codes(objects) -> set[tuple[str, str]]:
    return {(f.code, f.resource.name) for f in analyze(Snapshot(objects)) if f.resource}


def test_load_cluster_objects_lists_every_kind_once(bookinfo_cluster):
    server, kubeconfig = bookinfo_cluster
    objs = load_cluster_objects(str(kubeconfig))
    kinds = {o.kind for o in objs}
    assert {"Service", "Deployment", "Pod", "ReplicaSet", "DestinationRule", "VirtualService", "Gateway"} <= kinds
    assert all(str(o.source).startswith("k8s:cluster/") for o in objs)
    assert not [r for r in server.requests if "watch=true" in r]  # listed, not watched
    only = load_cluster_objects(str(kubeconfig), namespaces=["istio-system"])
    assert {o.namespace for o in only if o.namespace} == {"istio-system"}


def test_kube_system_is_left_out(bookinfo_cluster):
    server, kubeconfig = bookinfo_cluster
    body = server.lists["/api/v1/services"]
    body["items"].append({"metadata": {"name": "kube-dns", "namespace": "kube-system", "resourceVersion": "7"},
                          "spec": {"ports": [{"port": 53}]}})
    assert "kube-dns" not in {o.name for o in load_cluster_objects(str(kubeconfig))}


def test_overlay_answers_what_if_i_applied_these(bookinfo_cluster):
    _, kubeconfig = bookinfo_cluster
    cluster = load_cluster_objects(str(kubeconfig), api_client=api_client(str(kubeconfig)))
    local = load_text(CANARY, "canary.yaml").objects
    merged = overlay(cluster, local)
    assert len(merged) == len(cluster) + 1
    assert ("MS1002", "ratings-canary") in codes(merged) and ("MS1002", "ratings-canary") not in codes(cluster)
    finding = next(f for f in analyze(Snapshot(merged)) if f.code == "MS1002")
    assert str(finding.resource.source).startswith("canary.yaml:")  # the local file is what gets blamed
    # a local object replaces the cluster's object of the same kind, namespace and name
    dr = next(o for o in cluster if o.kind == "DestinationRule" and o.name == "ratings")
    fixed = ConfigObject(dr.api_version, dr.kind, dr.name, dr.namespace,
                         spec={**dr.spec, "subsets": dr.spec["subsets"] + [{"name": "v9", "labels": {"version": "v9"}}]})
    again = overlay(cluster, local + [fixed])
    assert len(again) == len(merged)
    assert [o for o in again if o.key == dr.key] == [fixed]
    assert ("MS1002", "ratings-canary") not in codes(again)


def test_unreadable_cluster_is_a_clear_error(tmp_path, kube_api):
    cfg = json.loads(kube_api.kubeconfig(tmp_path).read_text())
    cfg["users"][0]["user"]["token"] = "wrong"
    bad = tmp_path / "bad"
    bad.write_text(json.dumps(cfg))
    with pytest.raises(KubeError, match="HTTP 401"):
        load_cluster_objects(str(bad))


def test_analyze_reports_unreadable_cluster_objects_with_their_counts(kube_api, tmp_path, monkeypatch, capsys):
    """`analyze --kubeconfig` says what the listing skipped, per kind and reason with the count (info MS0025, as
    skipped files are said: MS0024), and its summary counts them; everything readable is still analyzed."""
    import io
    import sys
    from argparse import ArgumentParser
    from pathlib import Path

    from meshscope.commands import analyze as cmd

    kube_api.load_dir(Path(__file__).resolve().parents[1] / "mesh" / "kube" / "data")
    vs = kube_api.lists["/apis/networking.istio.io/v1/virtualservices"]["items"]
    pods = kube_api.lists["/api/v1/pods"]["items"]
    good_vs = len(vs)
    vs.insert(0, {**vs[0], "metadata": {**vs[0]["metadata"], "name": 7}})
    vs.append({"metadata": {"namespace": "bookinfo"}, "spec": {}})
    pods.insert(1, {**pods[0], "metadata": ["not", "an", "object"]})
    parser = ArgumentParser()
    cmd.add_arguments(parser)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    code = cmd.run(parser.parse_args(["--kubeconfig", str(kube_api.kubeconfig(tmp_path)), "--color", "never"]))
    out = capsys.readouterr().out
    assert code == 1  # the readable objects' errors (MS1002 reviews) are still found
    skipped = sorted(line for line in out.splitlines() if "[MS0025]" in line)
    assert len(skipped) == 2, out
    assert skipped[0].startswith("Info [MS0025] (File k8s:cluster/Pod) 1 Pod object the API listed could not be "
                                 "read (metadata_not_an_object), skipped")
    assert skipped[1].startswith("Info [MS0025] (File k8s:cluster/VirtualService) 2 VirtualService objects the API "
                                 "listed could not be read (bad_name), skipped")
    assert "[MS1002] (VirtualService bookinfo/reviews)" in out
    assert ", 3 unreadable cluster objects skipped (" in err.getvalue()
    assert good_vs and "Traceback" not in err.getvalue()
