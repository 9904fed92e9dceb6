"""VirtualService delegation: what istiod silently drops when it merges delegates into a root, and what
its webhook refuses. Before this rule a root route naming a missing delegate, or a delegate with hosts,
gave no finding at all, and a VirtualService whose hosts were forgotten was only called "a delegate that
must have no gateways"."""
from diagnose import analyze
from mesh.config import Snapshot, load_text
from tests.diagnose.rules.config.routing_helpers import findings, run

RULE = "virtualservice.Delegation"


def vs(name: str, ns: str, spec: str) -> str:
    return f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\n" \
           f"spec:\n{spec}\n---\n"


ROUTE = "    route: [{destination: {host: web}}]\n"


def delegate(name: str, ns: str, *rules: str, extra: str = "") -> str:
    """A VirtualService without hosts; each rule is a match line (or '' for none)."""
    body = "".join(f"  - {m}\n{ROUTE}" if m else f"  - {ROUTE[4:]}" for m in rules)
    return vs(name, ns, f"{extra}  http:\n{body}")


def root(name: str, ns: str, *routes: str) -> str:
    return vs(name, ns, "  hosts: [shop.example.com]\n  gateways: [istio-system/gw]\n  http:\n" + "".join(routes))


def test_root_routes_whose_delegate_istiod_cannot_merge():
    text = (root("front", "edge",
                 "  - match: [{uri: {prefix: /a}}]\n    delegate: {name: missing, namespace: team}\n",
                 "  - match: [{uri: {prefix: /b}}]\n    delegate: {name: hosted, namespace: team}\n",
                 "  - match: [{uri: {prefix: /c}}]\n    delegate: {name: private, namespace: team}\n",
                 "  - match: [{uri: {prefix: /d}}]\n    delegate: {name: local}\n",  # namespace: the root's
                 "  - match: [{uri: {prefix: /e}}]\n    delegate: {name: shared, namespace: team}\n",
                 "  - match: [{uri: {prefix: /f}}]\n    delegate: {name: local, namespace: team}\n")  # not there
            + vs("hosted", "team", f"  hosts: [web]\n  http:\n  - {ROUTE[4:]}")
            + delegate("private", "team", "", extra="  exportTo: ['.']\n")
            + delegate("local", "edge", "")
            + delegate("shared", "team", "", extra="  exportTo: [edge]\n"))
    got = run(RULE, text)
    assert got == [("MS1020", "front", "spec/http[0]/delegate"), ("MS1020", "front", "spec/http[1]/delegate"),
                   ("MS1020", "front", "spec/http[2]/delegate"), ("MS1020", "front", "spec/http[5]/delegate")]
    reasons = [f.message for f in findings(RULE, text)]
    assert "no such VirtualService" in reasons[0] and "has hosts" in reasons[1]
    assert "exportTo does not include the root's namespace edge" in reasons[2]
    assert "team/local" in reasons[3]


def test_delegate_routes_must_fit_inside_the_root_match():
    """Istio keeps a delegate rule only when each of its matches fits in one of the root rule's."""
    text = (root("front", "edge",
                 "  - match: [{uri: {prefix: /shop}}, {uri: {exact: /cart}}]\n"
                 "    delegate: {name: shop, namespace: team}\n",
                 "  - match: [{uri: {prefix: /api}, headers: {x-team: {exact: blue}}}]\n"
                 "    delegate: {name: api, namespace: team}\n",
                 "  - delegate: {name: rest, namespace: team}\n")
            + delegate("shop", "team",
                       "match: [{uri: {prefix: /shop/v1}}]",  # 0 extends the root prefix: kept
                       "match: [{uri: {exact: /cart}}]",  # 1 same exact: kept
                       "match: [{uri: {prefix: /catalog}}]",  # 2 outside: dropped
                       "match: [{uri: {regex: /shop/.*}}]",  # 3 regex: dropped
                       "match: [{uri: {prefix: /shop/x}}, {uri: {prefix: /other}}]",  # 4 one clause outside
                       "match: [{uri: {exact: /shop/item}}, {method: {exact: GET}}]",  # 5 fits: kept
                       "")  # 6 no match: takes the root's
            + delegate("api", "team",
                       "match: [{headers: {x-team: {exact: blue}}}]",  # 0 same header: kept
                       "match: [{headers: {x-team: {exact: red}}}]",  # 1 other value: dropped
                       "match: [{uri: {prefix: /api/v2}, port: 80}]")  # 2 kept
            + delegate("rest", "team", "match: [{uri: {regex: .*}}]"))  # root has no match: anything fits
    got = run(RULE, text)
    assert got == [("MS1022", "api", "spec/http[1]/match"), ("MS1022", "shop", "spec/http[2]/match"),
                   ("MS1022", "shop", "spec/http[3]/match"), ("MS1022", "shop", "spec/http[4]/match")]
    (f,) = [f for f in findings(RULE, text) if f.resource.name == "api"]
    assert "edge/front's rule 1" in f.message and f.related[0].path == "spec/http[1]/match"


def test_a_virtual_service_without_hosts_that_no_root_uses():
    text = (root("front", "edge", "  - delegate: {name: used, namespace: team}\n")
            + delegate("used", "team", "")
            + delegate("forgotten", "team", "")  # hosts left out: it is a delegate nobody merges
            + vs("routed", "team", f"  hosts: [web]\n  http:\n  - {ROUTE[4:]}"))
    assert run(RULE, text) == [("MS1021", "forgotten", "spec")]


def test_the_webhook_refuses_mixed_and_nested_delegation_and_says_why_hosts_matter():
    text = (root("front", "edge",
                 "  - delegate: {name: a, namespace: team}\n    route: [{destination: {host: web}}]\n")
            + vs("a", "team", "  http:\n  - delegate: {name: b}\n")
            + vs("nohosts", "team", f"  gateways: [istio-system/gw]\n  http:\n  - {ROUTE[4:]}"))
    got = [(f.code, f.resource.name, f.resource.path, f.message)
           for f in analyze(Snapshot(load_text(text, "t.yaml").objects)) if f.code == "MS0023"]
    paths = {(c, n, p) for c, n, p, _ in got}
    assert ("MS0023", "front", "spec/http[0]/route") in paths  # a root route names a delegate and a route
    assert ("MS0023", "a", "spec/http[0]/delegate") in paths  # a delegate delegating again
    assert ("MS0023", "a", "spec/http[0]") in paths  # ... and so has no route of its own
    (msg,) = [m for c, n, p, m in got if n == "nohosts"]
    assert "spec.hosts is missing" in msg and "add spec.hosts" in msg


def test_a_delegate_flagger_generates_is_not_missing():
    """Flagger's `service.delegation: true` writes the delegate (named after the service, else the target) when
    the canary starts, so the root in the user's files names one that is not in them yet."""
    canary = ("apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {{name: {name}, namespace: test}}\n"
              "spec:\n  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}\n"
              "  service: {{port: 9898{extra}}}\n---\n")
    text = (root("front", "test", "  - match: [{uri: {prefix: /a}}]\n    delegate: {name: podinfo}\n",
                 "  - match: [{uri: {prefix: /b}}]\n    delegate: {name: api, namespace: test}\n",
                 "  - match: [{uri: {prefix: /c}}]\n    delegate: {name: plain}\n")
            + canary.format(name="podinfo", extra=", delegation: true")
            + canary.format(name="backend", extra=", name: api, delegation: true")
            + canary.format(name="plain", extra=""))  # no delegation: Flagger writes a VirtualService with hosts
    assert run(RULE, text) == [("MS1020", "front", "spec/http[2]/delegate")]
