"""REST xDS answers that never reached Envoy, and streams whose only sign of life is a held poll (#18)."""
from __future__ import annotations

import json
import threading

from tests.mesh.controlplane.test_ca_xds import CDS, LATER, N1, P1, _poll, ca, xds  # noqa: F401 (fixtures)
from tests.util import wait_until


def _body(version: str) -> bytes:
    return json.dumps({"node": {"id": "n1"}, "version_info": version, "type_url": CDS}).encode()


def test_an_answer_that_could_not_be_written_is_sent_again_not_taken_for_a_nack(xds):
    xds.set_resources("n1", {CDS: {"a": {"@type": CDS, "name": "a"}}}, N1)
    xds.allow_certificate("n1", P1.serial, LATER)
    v1 = _poll(xds, "n1")[1]["version_info"]
    xds.set_resources("n1", {CDS: {"a": {"@type": CDS, "name": "a", "connect_timeout": "1s"}}}, N1)
    status, payload, sent = xds._handle("/v3/discovery:clusters", _body(v1), P1)
    v2 = json.loads(payload)["version_info"]
    assert status == 200 and sent is not None and sent[1] == v2
    xds._lost(*sent)  # Envoy had given up on the poll: the write failed
    status, resp = _poll(xds, "n1", v1)  # its next poll still reports v1
    assert status == 200 and resp["version_info"] == v2  # sent again
    assert xds.rejections == []
    # a real rejection (the answer was written, the next poll reports the old version) still counts
    status, resp = _poll(xds, "n1", v1)
    assert status == 304 and [r.version for r in xds.rejections] == [v2]


def test_a_stream_with_a_held_poll_is_live_however_long_ago_it_arrived(xds):
    xds.hold_s = 30.0
    xds.set_resources("n1", {CDS: {"a": {"@type": CDS, "name": "a"}}}, N1)
    xds.allow_certificate("n1", P1.serial, LATER)
    v1 = _poll(xds, "n1")[1]["version_info"]
    answers: list[int] = []
    held = threading.Thread(target=lambda: answers.append(_poll(xds, "n1", v1)[0]), daemon=True)
    held.start()
    wait_until(lambda: any(s.holding for s in xds._streams.values()), timeout=10, what="the poll is held")
    xds.stale_after = -1.0  # as if it had arrived long ago
    assert xds.in_sync(["n1"])  # nothing new to apply
    xds.set_resources("n1", {CDS: {"a": {"@type": CDS, "name": "a", "connect_timeout": "2s"}}}, N1)
    held.join(timeout=10)
    assert answers == [200]  # the push answered the held poll at once
    assert xds.out_of_sync(["n1"]) == []  # answered long ago (stale_after < 0) and nothing held: not waited for
    xds.stale_after = 10.0
    assert xds.out_of_sync(["n1"]) == ["n1"]  # answered just now and not yet acknowledged: waited for
