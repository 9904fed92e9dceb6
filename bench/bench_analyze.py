"""`meshscope analyze` over a generated mesh of 10,000 config objects (2,000 services).

Each service gets a Service, a Deployment, a DestinationRule and a VirtualService
(8,000 objects); 1,000 ServiceEntries, 500 Gateways, 250 Sidecars and 250
PeerAuthentications make 10,000. Files hold 100 objects each. The figure is the
whole in-process path `meshscope analyze` takes (load with line tracking, index,
every rule, suppressions); the baseline is a plain `yaml.safe_load_all` (libyaml)
of the same files, measured in the same run. Wall time (best of 2) and CPU time
are both reported: on a shared machine the CPU figure is the one-core cost. The
whole path includes the schema layer (every Istio object checked against Istio's
API definition); its own CPU cost is reported on its own line.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from bench.common import best_of, report

SERVICES = 2000
PER_FILE = 100
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _service_objects(i: int) -> list[dict]:
    ns, name = f"team{i % 40}", f"svc{i}"
    labels = {"app": name}
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 8080}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{name}-v1", "namespace": ns},
         "spec": {"template": {"metadata": {"labels": {**labels, "version": "v1"}},
                               "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}},
        {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
         "metadata": {"name": name, "namespace": ns},
         "spec": {"host": name, "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                            {"name": "v2", "labels": {"version": "v2"}}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": name, "namespace": ns},
         "spec": {"hosts": [name], "http": [
             {"match": [{"uri": {"prefix": "/v2"}}], "route": [{"destination": {"host": name, "subset": "v2"}}]},
             {"route": [{"destination": {"host": name, "subset": "v1"}, "weight": 90},
                        {"destination": {"host": f"svc{(i + 1) % SERVICES}.team{(i + 1) % 40}.svc.cluster.local",
                                         "subset": "v1"}, "weight": 10}]}]}},
    ]


def _other_objects() -> list[dict]:
    out: list[dict] = []
    for i in range(1000):
        out.append({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                    "metadata": {"name": f"ext{i}", "namespace": f"team{i % 40}"},
                    "spec": {"hosts": [f"api{i}.example.com"], "ports": [{"number": 443, "name": "tls",
                                                                           "protocol": "TLS"}],
                             "resolution": "DNS", "location": "MESH_EXTERNAL"}})
    for i in range(500):
        out.append({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                    "metadata": {"name": f"gw{i}", "namespace": f"team{i % 40}"},
                    "spec": {"selector": {"istio": "ingressgateway"},
                             "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                                          "hosts": [f"site{i}.example.com"]}]}})
    for i in range(250):
        out.append({"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
                    "metadata": {"name": f"sc{i}", "namespace": f"team{i % 40}"},
                    "spec": {"workloadSelector": {"labels": {"app": f"svc{i}"}},
                             "egress": [{"hosts": ["./*", "istio-system/*"]}]}})
        out.append({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                    "metadata": {"name": f"pa{i}", "namespace": f"team{i % 40}"},
                    "spec": {"selector": {"matchLabels": {"app": f"svc{i}"}}, "mtls": {"mode": "STRICT"}}})
    return out


def generate(folder: Path) -> int:
    objects = [o for i in range(SERVICES) for o in _service_objects(i)] + _other_objects()
    for n in range(0, len(objects), PER_FILE):
        (folder / f"mesh-{n // PER_FILE:03d}.yaml").write_text(
            yaml.dump_all(objects[n:n + PER_FILE], Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                          sort_keys=False))
    return len(objects)


def _cpu(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    from diagnose import analyze
    from mesh.config import Snapshot, load_paths

    with tempfile.TemporaryDirectory(prefix="meshscope-bench-") as tmp:
        folder = Path(tmp)
        count = generate(folder)
        files = sorted(folder.glob("*.yaml"))

        def baseline() -> None:
            for f in files:
                list(yaml.load_all(f.read_text(), Loader=_Loader))

        findings: list = []

        def full() -> None:
            loaded = load_paths([folder])
            findings[:] = analyze(Snapshot(loaded.objects), problems=loaded.problems)

        base = best_of(baseline, repeat=2)
        total = best_of(full, repeat=2)
        # CPU time of one run: what one core spends, independent of other work on a shared machine.
        base_cpu, total_cpu = _cpu(baseline), _cpu(full)
        t0 = time.process_time()
        loaded = load_paths([folder])
        load_cpu = time.process_time() - t0
        report("analyze_10k_objects_seconds", total, "s", baseline=("yaml.safe_load_all", base))
        report("analyze_objects_per_second", count / total, "objects/s",
               baseline=("yaml.safe_load_all", count / base))
        report("analyze_10k_objects_cpu_seconds", total_cpu, "s", baseline=("yaml.safe_load_all", base_cpu))
        report("analyze_load_only_cpu_seconds", load_cpu, "s", baseline=("yaml.safe_load_all", base_cpu))
        # The schema layer alone (every Istio object against Istio's API definition), compiled once per kind.
        from mesh.config.schema import validate_object
        schema_cpu = _cpu(lambda: [validate_object(o) for o in loaded.objects])
        report("analyze_schema_only_cpu_seconds", schema_cpu, "s", baseline=("yaml.safe_load_all", base_cpu))
        print(f"# {count} objects in {len(files)} files, {len(loaded.objects)} loaded, {len(findings)} findings",
              flush=True)


if __name__ == "__main__":
    main()
