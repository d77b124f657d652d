"""NAT64/DNS64 end to end: an IPv6-only client, tayga translating 2001:db8:64::/96 to the
IPv4-only servers, and DNS64 (ipv4only.arpa, synthesized AAAA) in the lab's DNS server.

The first tests are pure Python (address synthesis, DNS64 answers, tayga.conf); the ``lab``
ones need root, namespaces, tayga and /dev/net/tun, and skip with the reason otherwise.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from integrations.conftest import lab_name
from integrations.dnszone import Impairment, NameEntry, Zone, answer_query
from integrations.lab import (
    NETNS_ETC,
    NETNS_RUN,
    PREFIX,
    REPO_ROOT,
    Lab,
    LabUnavailable,
    cleanup,
    lab_status,
    tayga_conf,
)
from integrations.procutil import pid_alive
from integrations.scenarios import matrix_zone
from integrations.topology import (
    DISCOVERY_V4,
    DNS64_V6,
    NAT64_PREFIX,
    NAT64_ROLE,
    nat64_address,
)

V4 = "10.64.78.34"
V4_OTHER = "10.64.78.35"
SYNTH = "2001:db8:64::a40:4e22"  # nat64_address(V4)
SYNTH_DISCOVERY = ["2001:db8:64::c000:aa", "2001:db8:64::c000:ab"]
V6_NATIVE = "2002:a40:4c07:1::faf1"


# --------------------------------------------------------------------------------------------
# Pure Python


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        # RFC 6052 §2.4, the table for 192.0.2.33.
        ("2001:db8::/32", "2001:db8:c000:221::"),
        ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
        ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
        ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
        ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
        ("2001:db8:122:344::/96", "2001:db8:122:344::c000:221"),
        ("64:ff9b::/96", "64:ff9b::c000:221"),
    ],
)
def test_nat64_address_rfc6052_examples(prefix: str, expected: str) -> None:
    assert nat64_address("192.0.2.33", prefix) == expected


def test_lab_addresses() -> None:
    assert nat64_address(V4) == SYNTH
    assert [nat64_address(a) for a in DISCOVERY_V4] == SYNTH_DISCOVERY
    with pytest.raises(ValueError):
        nat64_address(V4, "2001:db8::/80")


def _ask(zone: Zone, name: str, rtype: str, prefix: str | None) -> tuple[Any, float]:
    from dnslib import DNSRecord  # type: ignore[import-untyped]

    answer = answer_query(zone, DNSRecord.question(name, rtype).pack(), prefix)
    return (DNSRecord.parse(answer.payload) if answer.payload else None), answer.delay_s


def test_dns64_answers() -> None:
    dnslib = pytest.importorskip("dnslib")
    RCODE = dnslib.RCODE
    zone = Zone()
    zone.set("only4", [V4, V4_OTHER])
    zone.set("both", [V4], [V6_NATIVE])
    zone.set("late", [V4], impair={"AAAA": Impairment(delay_ms=200)})

    def rdata(name: str, rtype: str, prefix: str | None = NAT64_PREFIX) -> list[str]:
        reply, _ = _ask(zone, name, rtype, prefix)
        return [str(r.rdata) for r in reply.rr]

    # RFC 7050: ipv4only.arpa, only on the DNS64 listener.
    assert rdata("ipv4only.arpa", "AAAA") == SYNTH_DISCOVERY
    assert rdata("IPv4only.ARPA.", "A") == list(DISCOVERY_V4)
    refused, _ = _ask(zone, "ipv4only.arpa", "AAAA", None)
    assert refused.header.rcode == RCODE.REFUSED
    # RFC 6147: AAAA synthesized for A-only names; real AAAA records win; A untouched.
    assert rdata("only4.example.org", "AAAA") == [SYNTH, nat64_address(V4_OTHER)]
    assert rdata("only4.example.org", "A") == [V4, V4_OTHER]
    assert rdata("both.example.org", "AAAA") == [V6_NATIVE]
    assert rdata("only4.example.org", "AAAA", None) == []  # plain listener: NODATA
    assert rdata("only4.example.org", "AAAA", "2001:db8:100::/40") == [
        "2001:db8:10a:404e:22::",
        "2001:db8:10a:404e:23::",
    ]
    # The AAAA impairment applies to the synthesized answer.
    reply, delay = _ask(zone, "late.example.org", "AAAA", NAT64_PREFIX)
    assert [str(r.rdata) for r in reply.rr] == [SYNTH] and delay == pytest.approx(0.2)
    nx, _ = _ask(zone, "nope.example.org", "AAAA", NAT64_PREFIX)
    assert nx.header.rcode == RCODE.NXDOMAIN
    # Discovery can be impaired like any name (Lab.set_dns64_discovery).
    zone.names["ipv4only.arpa"] = NameEntry(impair={"AAAA": Impairment(drop=True)})
    assert _ask(zone, "ipv4only.arpa", "AAAA", NAT64_PREFIX)[0] is None
    assert rdata("ipv4only.arpa", "A") == list(DISCOVERY_V4)


def test_tayga_conf_and_roles() -> None:
    conf = tayga_conf()
    assert "prefix 2001:db8:64::/96\n" in conf and "dynamic-pool 10.64.79.0/24\n" in conf
    assert "map 10.64.79.106 2001:db8:c::106\n" in conf and "tun-device nat64\n" in conf
    # Opt-in: without nat64 there is no gateway namespace and no v6 client.
    plain = Lab("x", clients=("ds",))
    assert not plain.nat64 and plain.namespaces == ["eyl-x-srv", "eyl-x-ds"]
    with pytest.raises(KeyError):
        plain.ns(NAT64_ROLE)
    nat = Lab("x", clients=("ds",), nat64=True)
    assert nat.namespaces == ["eyl-x-srv", "eyl-x-ds", "eyl-x-v6", "eyl-x-nat64"]
    assert Lab("x", clients=("v6",)).nat64  # asking for the v6 client implies NAT64
    assert nat.zone.names["nat64.example.org"].A == [V4]


# --------------------------------------------------------------------------------------------
# In the lab


def _parallel(calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {key: pool.submit(fn) for key, fn in calls.items()}
        return {key: f.result() for key, f in futures.items()}


@pytest.fixture(scope="module")
def nat64_lab() -> Iterator[Lab]:
    try:
        instance = Lab(lab_name("n"), clients=("ds",), zone=matrix_zone(), nat64=True).up()
    except LabUnavailable as exc:
        pytest.skip(f"NAT64 lab unavailable: {exc.reason}")
    try:
        yield instance
    finally:
        instance.down()


def _eyeshim_nat64_missing() -> str | None:
    try:
        importlib.import_module("eyeshim.nat64")
    except ImportError as exc:
        return f"eyeshim NAT64 support not present ({exc})"
    return None


@pytest.mark.lab
def test_ipv6_only_client(nat64_lab: Lab) -> None:
    addresses = nat64_lab.run("v6", ["ip", "-o", "-4", "addr", "show"]).stdout
    # No IPv4 address but loopback's, and no IPv4 route at all.
    assert [line.split()[1] for line in addresses.splitlines()] == ["lo"]
    assert nat64_lab.run("v6", ["ip", "-4", "route", "show", "table", "main"]).stdout == ""
    routes6 = nat64_lab.run("v6", ["ip", "-6", "route", "show", "default"]).stdout
    assert routes6.startswith("default via 2001:db8:c::64 ")
    resolv = nat64_lab.run("v6", ["cat", "/etc/resolv.conf"]).stdout
    assert resolv.splitlines()[0] == f"nameserver {DNS64_V6}"
    assert nat64_lab.alive() == {"servers": True, "tayga": True}


@pytest.mark.lab
def test_discovery_and_synthesis(nat64_lab: Lab) -> None:
    r = _parallel(
        {
            "arpa6": lambda: nat64_lab.probe("v6", "gai", "ipv4only.arpa", "--family", "inet6"),
            "arpa4": lambda: nat64_lab.probe("v6", "gai", "ipv4only.arpa", "--family", "inet"),
            "only4": lambda: nat64_lab.probe("v6", "gai", "s1.example.org", "--family", "inet6"),
            "both": lambda: nat64_lab.probe("v6", "gai", "s3.example.org", "--family", "inet6"),
            "ds": lambda: nat64_lab.probe("ds", "gai", "s1.example.org", "--family", "inet6"),
        }
    )
    # (a) RFC 7050 discovery from the IPv6-only client.
    assert sorted(r["arpa6"]["addresses"]) == SYNTH_DISCOVERY, r["arpa6"]
    assert r["arpa6"]["elapsed"] < 0.5
    assert sorted(r["arpa4"]["addresses"]) == list(DISCOVERY_V4)
    # DNS64 synthesizes for A-only names, keeps real AAAA records...
    assert r["only4"]["addresses"] == [SYNTH]
    assert r["both"]["addresses"] == [V6_NATIVE]
    # ... and only on its own listener: the dual-stack client's plain DNS is unchanged.
    assert r["ds"]["error"] == "gaierror(-5)"  # EAI_NODATA


@pytest.mark.lab
def test_ipv4_literal_fails_and_synthesized_address_works(nat64_lab: Lab) -> None:
    synth_other = nat64_address(V4_OTHER)
    r = _parallel(
        {
            "literal": lambda: nat64_lab.probe("v6", "connect", V4, "--timeout", "2"),
            "synth": lambda: nat64_lab.probe("v6", "get", f"http://[{SYNTH}]/"),
            "synth35": lambda: nat64_lab.probe("v6", "get", f"http://[{synth_other}]/"),
            "name": lambda: nat64_lab.probe("v6", "get", "http://nat64.example.org/"),
            "native": lambda: nat64_lab.probe("v6", "get", f"http://[{V6_NATIVE}]/"),
        }
    )
    # (b) stock Python has no route for IPv4 at all: ENETUNREACH at once.
    assert r["literal"]["error"] == "OSError(101)" and r["literal"]["elapsed"] < 0.1
    # (c) through tayga to the IPv4-only server, whose reply names its IPv4 address.
    assert r["synth"]["body"] == f"server={V4}\n", r["synth"]
    assert r["synth35"]["body"] == f"server={V4_OTHER}\n"
    assert r["name"]["body"] == f"server={V4}\n"  # DNS64-synthesized AAAA, stock urllib
    assert r["native"]["body"] == f"server={V6_NATIVE}\n"  # native IPv6 via the gateway


@pytest.mark.lab
def test_impairments_apply_through_nat64(nat64_lab: Lab) -> None:
    nat64_lab.break_address(V4_OTHER)
    nat64_lab.break_address(V4, how="refuse")
    nat64_lab.set_dns64_discovery({"AAAA": Impairment(delay_ms=300)})
    try:
        r = _parallel(
            {
                "drop": lambda: nat64_lab.probe(
                    "v6", "connect", nat64_address(V4_OTHER), "--timeout", "0.5"
                ),
                "refuse": lambda: nat64_lab.probe("v6", "connect", SYNTH, "--timeout", "1"),
                "late": lambda: nat64_lab.probe("v6", "gai", "ipv4only.arpa", "--family", "inet6"),
            }
        )
        # The IPv4 nft sets in the server namespace see the translated packets.
        assert r["drop"]["error"].startswith("TimeoutError")
        assert r["refuse"]["error"] == "ConnectionRefusedError(111)"
        assert r["refuse"]["elapsed"] < 0.2
        assert sorted(r["late"]["addresses"]) == SYNTH_DISCOVERY
        assert 0.25 < r["late"]["elapsed"] < 1.5
    finally:
        nat64_lab.repair_address(V4, V4_OTHER)
        nat64_lab.set_dns64_discovery(None)
    assert nat64_lab.probe("v6", "connect", SYNTH, "--timeout", "1")["ok"]


_EYESHIM_URLOPEN = """
import time, urllib.request
import eyeshim
eyeshim.install()
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
start = time.perf_counter()
with opener.open("http://10.64.78.34/", timeout=5) as response:
    body = response.read().decode()
print(repr(body), time.perf_counter() - start)
"""


@pytest.mark.lab
def test_eyeshim_reaches_ipv4_literal_on_ipv6_only_host(nat64_lab: Lab) -> None:
    # (d) eyeshim discovers 2001:db8:64::/96 through ipv4only.arpa and connects through
    # the synthesized address (RFC 8305 §7.1).
    missing = _eyeshim_nat64_missing()
    if missing:
        pytest.skip(missing)
    proc = nat64_lab.python("v6", ["-c", _EYESHIM_URLOPEN], timeout=30)
    assert proc.returncode == 0, proc.stderr[-2000:]
    body, elapsed = proc.stdout.split()
    assert body == repr(f"server={V4}\n") and float(elapsed) < 1.0


@pytest.mark.lab
def test_stock_vs_eyeshim_on_ipv6_only_host(nat64_lab: Lab) -> None:
    stacks = ("http.client", "urllib", "urllib3", "requests")
    modes = ("stock",) if _eyeshim_nat64_missing() else ("stock", "eyeshim")

    def cell(stack: str, mode: str) -> Callable[[], Any]:
        args = ["-m", "integrations.cell", "--stack", stack, "--mode", mode]
        return lambda: nat64_lab.python_json("v6", [*args, "--host", V4, "--timeout", "2"])

    r = _parallel({f"{s}/{m}": cell(s, m) for s in stacks for m in modes})
    for stack in stacks:
        stock = r[f"{stack}/stock"]
        assert stock["outcome"] == "error" and stock["error"] == "ENETUNREACH", stock
        assert stock["elapsed"] < 0.5
        if "eyeshim" in modes:
            shimmed = r[f"{stack}/eyeshim"]
            assert shimmed["outcome"] == "ok" and shimmed["winner"] == V4, shimmed
            assert shimmed["elapsed"] < 1.0
    if "eyeshim" not in modes:
        pytest.skip("eyeshim NAT64 support not present (stock half checked)")


def _leftovers(name: str) -> list[str]:
    found = [p.name for p in NETNS_RUN.glob(f"{PREFIX}{name}-*")]
    found += [str(p) for p in NETNS_ETC.glob(f"{PREFIX}{name}-*")]
    if (Path("/run/eyeshim-lab") / name).exists():
        found.append(name)
    return found


@pytest.mark.lab
def test_tayga_dies_with_the_lab_and_cleanup_removes_everything() -> None:
    name = lab_name("nk")
    code = (
        "import time; from integrations.lab import Lab\n"
        f"lab = Lab({name!r}, clients=(), nat64=True).up()\n"
        "print(lab.timings['up'], lab._procs['tayga'].pid, flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if not line:
            assert proc.stderr is not None
            err = proc.stderr.read()
            if "LabUnavailable" in err:
                pytest.skip(f"NAT64 lab unavailable: {err.strip().splitlines()[-1]}")
            raise AssertionError(err)
        up, tayga = float(line[0]), int(line[1])
        assert up < 1.5
        assert pid_alive(tayga)
        assert {"servers", "tayga"} <= set(lab_status(name)[0]["servers"])
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # PR_SET_PDEATHSIG (set before exec): tayga dies with the process that started the lab.
    deadline = time.monotonic() + 3
    while pid_alive(tayga) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(tayga)
    try:
        with Lab(name, clients=(), nat64=True) as again:
            assert again.probe("v6", "connect", SYNTH, "--timeout", "1")["ok"]
            pid = again._procs["tayga"].pid
        assert not pid_alive(pid)
        assert _leftovers(name) == []
    finally:
        cleanup(name)
