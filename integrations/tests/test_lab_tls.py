"""The lab's HTTPS part: each TLS impairment does what docs/lab.md says, and eyeshim gets
through where stock waits out its timeout (urllib.request in the dual-stack client)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from integrations.conftest import lab_name
from integrations.lab import Lab, LabUnavailable
from integrations.scenarios import SCENARIOS, apply_tls_impairments, matrix_zone

pytestmark = pytest.mark.lab

FETCH = """
import json, ssl, sys, time, urllib.request
if sys.argv[1] == "eyeshim":
    import eyeshim
    from eyeshim.config import DEFAULT_INTEGRATIONS, TLS_INTEGRATIONS
    eyeshim.install(integrations=[*DEFAULT_INTEGRATIONS, *TLS_INTEGRATIONS])
context = ssl.create_default_context(cafile=sys.argv[2])
out = {}
for host in sys.argv[3:]:
    start = time.perf_counter()
    try:
        body = urllib.request.urlopen(f"https://{host}/", timeout=1.5, context=context).read()
        out[host] = ["ok", body.decode().strip(), time.perf_counter() - start]
    except Exception as exc:
        reason = getattr(exc, "reason", exc)
        out[host] = [type(reason).__name__, str(reason)[:100], time.perf_counter() - start]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def tls_lab() -> Iterator[Lab]:
    try:
        lab = Lab(lab_name("tls"), clients=("ds",), zone=matrix_zone(), tls=True).up()
    except LabUnavailable as exc:
        pytest.skip(f"lab unavailable: {exc.reason}")
    try:
        apply_tls_impairments(lab)
        yield lab
    finally:
        lab.down()


def _fetch(lab: Lab, mode: str, *keys: str) -> dict[str, list[object]]:
    hosts = [f"{key}.example.org" for key in keys]
    proc = lab.python("ds", ["-c", FETCH, mode, str(lab.tls_ca), *hosts])
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, list[object]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {host.split(".")[0]: value for host, value in result.items()}


def test_tls_impairments_stock_and_eyeshim(tls_lab: Lab) -> None:
    assert {s.key for s in SCENARIOS if s.scheme == "https"} >= {"t0", "t1", "t2", "t4"}
    stock = _fetch(tls_lab, "stock", "t0", "t1", "t2", "t4")
    eye = _fetch(tls_lab, "eyeshim", "t0", "t1", "t2", "t4")
    # Healthy: the preferred IPv6 address, both ways.
    assert stock["t0"][:2] == eye["t0"][:2] == ["ok", "server=2001:db8:c::443"]
    # MTU black hole and a TLS-silent address: TCP connects, the handshake never completes;
    # stock waits out its 1.5 s, eyeshim goes to IPv4 after the handshake delay.
    for key in ("t1", "t2"):
        assert stock[key][0] == "TimeoutError" and "handshake" in str(stock[key][1])
        assert eye[key][:2] == ["ok", "server=10.64.78.34"]
        assert float(eye[key][2]) < 1.0  # type: ignore[arg-type]
    # An untrusted certificate everywhere: the same error, both ways.
    assert stock["t4"][0] == eye["t4"][0] == "SSLCertVerificationError"


def test_mtu_black_hole_passes_small_packets(tls_lab: Lab) -> None:
    # TCP (small packets) connects to the black-holed address; only large packets vanish.
    from integrations.topology import TLS_V6_MTU

    assert tls_lab.probe("ds", "connect", TLS_V6_MTU, "--port", "443", "--timeout", "1")["ok"]
