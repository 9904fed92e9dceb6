"""Istio's default text access-log formats before 1.9, read field by field from the format string each release used.

Why: a proxy keeps the format its control plane sent, so a cluster still running 1.8 or older sidecars (or logs kept
from then) writes lines the 1.9+ split cannot place. Each format below is the release's own format string
(`EnvoyTextLogFormat*` in istio/istio pilot/pkg/networking/core/v1alpha3, at the tags named); `pattern_of` turns
a format string into one RE2 pattern whose named groups are the access-log columns, so a line is read by the
format that wrote it, never guessed from token counts. Operators no rule reads get unnamed groups.

The formats are mutually exclusive on a well-formed line (they differ in where quotes fall between the response
flags and the byte counts), so trying them in turn cannot read a line by the wrong one.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_REQ = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
_TAIL = ('%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" '
         '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% '
         '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%')

# (release(s), format string); newest first
FORMATS: tuple[tuple[str, str], ...] = (
    # 1.8 (and 1.9's format for pre-1.9 proxies): no mixer status, no response-code/termination details
    ("1.8", _REQ + '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" ' + _TAIL + " %REQUESTED_SERVER_NAME% %ROUTE_NAME%"),
    # 1.3-1.7 (EnvoyTextLogFormat13; 1.6/1.7 EnvoyTextLogFormat): mixer status and transport failure reason quoted
    ("1.3-1.7", _REQ + '"%DYNAMIC_METADATA(istio.mixer:status)%" "%UPSTREAM_TRANSPORT_FAILURE_REASON%" ' + _TAIL
     + " %REQUESTED_SERVER_NAME% %ROUTE_NAME%"),
    # 1.2 (EnvoyTextLogFormat12, also 1.3-1.5 for 1.2 proxies): as above, no route name
    ("1.2", _REQ + '"%DYNAMIC_METADATA(istio.mixer:status)%" "%UPSTREAM_TRANSPORT_FAILURE_REASON%" ' + _TAIL
     + " %REQUESTED_SERVER_NAME%"),
    # 1.1: mixer status only
    ("1.1", _REQ + '"%DYNAMIC_METADATA(istio.mixer:status)%" ' + _TAIL + " %REQUESTED_SERVER_NAME%"),
    # 1.0 (EnvoyHTTPLogFormat): no space between path and protocol in the format itself
    ("1.0", '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%%PROTOCOL%" %RESPONSE_CODE% '
     '%RESPONSE_FLAGS% ' + _TAIL),
    # 1.0 (EnvoyTCPLogFormat): TCP proxy lines
    ("1.0-tcp", '[%START_TIME%] %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "%UPSTREAM_HOST%" '
     '%UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%'),
)

# operator -> (column it fills, what its value may look like); operators missing here match a value, unnamed
_COLUMNS = {
    "START_TIME": ("start_time", r"[^\]]*"),
    "REQ(:METHOD)": ("method", r'[^"\s]*'),
    "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)": ("path", None),
    "PROTOCOL": ("protocol", r"(?:HTTP/[0-9.]+|-)"),
    "RESPONSE_CODE": ("response_code", r"[0-9]+"),
    "RESPONSE_FLAGS": ("response_flags", r"[^\s\"]+"),
    "UPSTREAM_TRANSPORT_FAILURE_REASON": ("upstream_transport_failure_reason", None),
    "BYTES_RECEIVED": ("bytes_received", r"(?:[0-9]+|-)"),
    "BYTES_SENT": ("bytes_sent", r"(?:[0-9]+|-)"),
    "DURATION": ("duration", r"(?:[0-9]+|-)"),
    "REQ(X-REQUEST-ID)": ("request_id", None),
    "REQ(:AUTHORITY)": ("authority", None),
    "UPSTREAM_HOST": ("upstream_host", None),
    "UPSTREAM_CLUSTER": ("upstream_cluster", r"\S+"),
    "REQUESTED_SERVER_NAME": ("requested_server_name", r"\S+"),
    "ROUTE_NAME": ("route_name", r"\S(?:.*\S)?"),
}
_OPERATOR = re.compile(r"%([A-Z_]+(?:\([^)]*\))?)%")


def pattern_of(fmt: str) -> str:
    """An Envoy format string -> an anchored RE2 pattern, one group per operator (named after its column when a
    rule reads it). Quoted operators hold anything but a quote (the User-Agent anything: Envoy does not escape a
    quote in it); bare ones a token; the path, everything up to the protocol."""
    out, pos = ["^"], 0
    for m in _OPERATOR.finditer(fmt):
        out.append(re.escape(fmt[pos:m.start()]))
        op = m.group(1)
        quoted = fmt[m.start() - 1:m.start()] == '"' and fmt[m.end():m.end() + 1] == '"'
        name, shape = _COLUMNS.get(op, (None, None))
        if shape is None:
            shape = ".*?" if op == "REQ(USER-AGENT)" else ('[^"]*?' if op == "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)" else (
                '[^"]*' if quoted else r"\S+"))
        out.append(f"(?P<{name}>{shape})" if name else f"(?:{shape})")
        pos = m.end()
    out.append(re.escape(fmt[pos:]) + r"[ \t\r]*$")
    return "".join(out)


PATTERNS: tuple[tuple[str, str], ...] = tuple((release, pattern_of(fmt)) for release, fmt in FORMATS)


def read_older(lines: pa.Array, idx: np.ndarray) -> tuple[list[pa.Table], np.ndarray]:
    """Read lines[idx] by the older formats in turn (each over the lines the ones before left): the tables of raw
    columns (with `_line`), and which of `idx` none of them matched."""
    tables: list[pa.Table] = []
    left = np.asarray(idx, dtype=np.int64)
    for _release, pattern in PATTERNS:
        if not len(left):
            break
        m = pc.extract_regex(pc.take(lines, pa.array(left)), pattern)
        hit = pc.is_valid(m).to_numpy(zero_copy_only=False)
        if hit.any():
            m = m.filter(pa.array(hit))
            tables.append(pa.table({f.name: m.field(f.name) for f in m.type}).append_column(
                "_line", pa.array(left[hit])))
            left = left[~hit]
    return tables, left
