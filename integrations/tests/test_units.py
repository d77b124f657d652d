"""Pure-Python parts of the lab (no root needed): DNS answers, matrix check rules, netlink
parsing, error classification."""

from __future__ import annotations

import socket
import struct
import sys
import types
from typing import Any

import pytest

from integrations import nfqueue
from integrations.cell import classify, run_cell
from integrations.dnszone import Impairment, Zone, answer_query
from integrations.matrix import check
from integrations.scenarios import SCENARIOS


def _ask(zone: Zone, name: str, rtype: str) -> tuple[Any, float]:
    from dnslib import DNSRecord  # type: ignore[import-untyped]

    answer = answer_query(zone, DNSRecord.question(name, rtype).pack())
    return (DNSRecord.parse(answer.payload) if answer.payload else None), answer.delay_s


def test_dns_answers() -> None:
    dnslib = pytest.importorskip("dnslib")
    QTYPE, RCODE = dnslib.QTYPE, dnslib.RCODE
    zone = Zone()
    zone.set(
        "x",
        ["10.64.78.34"],
        ["2002:a40:4c07:1::faf1"],
        {"AAAA": Impairment(delay_ms=300), "A": Impairment()},
    )
    zone.set("lost", ["10.64.78.34"], [], {"A": Impairment(drop=True)})
    zone.set("bad", ["10.64.78.34"], [], {"A": Impairment(servfail=True, delay_ms=10)})
    reply, delay = _ask(zone, "x.example.org", "A")
    assert [str(r.rdata) for r in reply.rr] == ["10.64.78.34"] and delay == 0
    reply, delay = _ask(zone, "X.Example.Org.", "AAAA")
    assert [str(r.rdata) for r in reply.rr] == ["2002:a40:4c07:1::faf1"] and delay == 0.3
    assert _ask(zone, "lost.example.org", "A")[0] is None
    reply, delay = _ask(zone, "bad.example.org", "A")
    assert reply.header.rcode == RCODE.SERVFAIL and delay == pytest.approx(0.01)
    nodata, _ = _ask(zone, "lost.example.org", "AAAA")
    assert nodata.header.rcode == RCODE.NOERROR and not nodata.rr
    assert nodata.auth[0].rtype == QTYPE.SOA
    nx, _ = _ask(zone, "nope.example.org", "A")
    assert nx.header.rcode == RCODE.NXDOMAIN and nx.auth[0].rtype == QTYPE.SOA
    refused, _ = _ask(zone, "example.com", "A")
    assert refused.header.rcode == RCODE.REFUSED
    assert answer_query(zone, b"\x00garbage").payload is None


def test_zone_round_trip(tmp_path: Any) -> None:
    zone = Zone()
    zone.set("x", ["10.64.78.34"], [], {"AAAA": Impairment(drop=True)})
    zone.write(tmp_path / "zone.json")
    assert Zone.read(tmp_path / "zone.json") == zone


def _result(
    scenario: str,
    client: str,
    mode: str,
    outcome: str,
    elapsed: float,
    stack: str = "requests",
    winner: str = "",
) -> dict[str, Any]:
    if outcome == "ok" and not winner:
        # The name's first working address for this client, as a server would report it.
        winner = next(s for s in SCENARIOS if s.key == scenario).working(client)[0]
    return {
        "scenario": scenario,
        "client": client,
        "stack": stack,
        "mode": mode,
        "outcome": outcome,
        "elapsed": elapsed,
        "error": None if outcome == "ok" else "x",
        "winner": winner or None,
    }


def test_check_rules() -> None:
    good = [
        _result("s5", "ds", "stock", "ok", 5.0),
        _result("s5", "ds", "eyeshim", "ok", 0.26),
        _result("s2", "v4", "stock", "error", 0.01),
        _result("s2", "v4", "eyeshim", "error", 0.02),
        _result("d2", "v4", "stock", "ok", 0.3),
        _result("d2", "v4", "eyeshim", "ok", 0.31),
    ]
    assert check(good) == []
    slow = [_result("s5", "ds", "stock", "ok", 5.0), _result("s5", "ds", "eyeshim", "ok", 0.9)]
    assert "took" in check(slow)[0]
    failed = [
        _result("d4", "ds", "stock", "error", 3.0),
        _result("d4", "ds", "eyeshim", "error", 3.0),
    ]
    assert "works" in check(failed)[0]  # AAAA answered: eyeshim must connect over IPv6
    slower = [
        _result("s2", "v4", "stock", "error", 0.01),
        _result("s2", "v4", "eyeshim", "error", 0.5),
    ]
    assert "vs stock" in check(slower)[0]
    skipped = [{**_result("s1", "ds", "eyeshim", "skip", 0.0), "error": "unavailable"}]
    assert "not run" in check(skipped)[0]
    # The search-list case: connected, fast, but to the other domain's host.
    elsewhere = [
        _result("n2", "ds", "stock", "ok", 0.02),
        _result("n2", "ds", "eyeshim", "ok", 0.02, winner="2002:a40:4c07:1::faf1"),
    ]
    assert "another host" in check(elsewhere)[0]


def test_scenario_reachability() -> None:
    by_key = {s.key: s for s in SCENARIOS}
    assert by_key["s5"].working("ds") == ["2002:a40:4c07:1::faf1"]
    assert by_key["s5"].working("v4") == []
    assert by_key["s5"].best_case("v4") is None
    assert by_key["d2"].best_case("ds") == 0.0  # AAAA answers at once
    assert by_key["d2"].best_case("v4") == pytest.approx(0.3)
    assert by_key["d4"].working("ds") == ["2002:a40:4c07:1::faf1"]
    assert by_key["s7"].answer_text() == ".33✗ .34 ::faf1"


def test_netlink_helpers() -> None:
    v4 = bytes([0x45]) + bytes(15) + socket.inet_aton("10.64.78.34")
    assert nfqueue.destination(v4) == "10.64.78.34"
    v6 = bytes([0x60]) + bytes(23) + socket.inet_pton(socket.AF_INET6, "2002:a40:4c07:1::faf1")
    assert nfqueue.destination(v6) == "2002:a40:4c07:1::faf1"
    assert nfqueue.destination(b"") is None
    raw = nfqueue._attr(1, b"abc") + nfqueue._attr(10 | 0x8000, struct.pack("!I", 7))
    assert list(nfqueue._attrs(raw)) == [(1, b"abc"), (10, struct.pack("!I", 7))]


def test_classify_errors() -> None:
    assert classify(socket.gaierror(-3, "again")) == "dns"
    assert classify(TimeoutError("timed out")) == "timeout"
    assert classify(ConnectionRefusedError(111, "refused")) == "refused"
    wrapped = OSError("outer")
    wrapped.__cause__ = OSError(101, "Network is unreachable")
    assert classify(wrapped) == "ENETUNREACH"


def test_eyeshim_mode_without_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # Until eyeshim.install exists, eyeshim cells must report that instead of crashing (and
    # must not touch the network).
    monkeypatch.setitem(sys.modules, "eyeshim", types.ModuleType("eyeshim"))
    result = run_cell("http.client", "eyeshim", "s1.example.org", 1.0)
    assert result["outcome"] == "skip"
    assert result["error"] == "eyeshim.install unavailable"
