"""The lab itself: lifecycle, isolation, and that each impairment does what docs/lab.md says.

Needs root and network namespaces (skipped otherwise). Time bounds are generous on purpose:
they separate "impaired" from "not impaired", they do not benchmark.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from integrations.conftest import lab_name
from integrations.dnszone import Impairment
from integrations.lab import (
    NETNS_ETC,
    NETNS_RUN,
    PREFIX,
    REPO_ROOT,
    Lab,
    LabBusy,
    LabUnavailable,
    cleanup,
    lab_status,
)
from integrations.procutil import pid_alive

pytestmark = pytest.mark.lab

V4_A, V4_B = "10.64.78.33", "10.64.78.34"
V6_A, V6_B = "2002:a40:4c07:1::faf2", "2002:a40:4c07:1::faf1"


def _leftovers(name: str) -> list[str]:
    found = [p.name for p in NETNS_RUN.glob(f"{PREFIX}{name}-*")]
    found += [str(p) for p in NETNS_ETC.glob(f"{PREFIX}{name}-*")]
    state = Path("/run/eyeshim-lab") / name
    if state.exists():
        found.append(str(state))
    return found


def _parallel(calls: dict[str, Any]) -> dict[str, Any]:
    """Run independent probes concurrently (several of them wait out DNS timeouts)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {key: pool.submit(fn) for key, fn in calls.items()}
        return {key: f.result() for key, f in futures.items()}


def test_up_down_is_fast_and_leaves_nothing() -> None:
    name = lab_name("ud")
    lab = Lab(name, clients=("ds", "v4"))
    lab.up()
    try:
        assert lab.timings["up"] < 1.0, lab.timings
        assert all(lab.alive().values())
        pids = [p.pid for p in lab._procs.values()]
        assert {p.name for p in NETNS_RUN.glob(f"{PREFIX}{name}-*")} == set(lab.namespaces)
        body = lab.probe("ds", "get", "http://10.64.78.34/")
        assert body["body"] == "server=10.64.78.34\n"
    finally:
        lab.down()
    assert lab.timings["down"] < 1.0, lab.timings
    assert _leftovers(name) == []
    assert not any(pid_alive(p) for p in pids)


def test_two_labs_side_by_side() -> None:
    with Lab(lab_name("a"), clients=("ds",)) as one, Lab(lab_name("b"), clients=("ds",)) as two:
        one.break_address(V4_B)
        # Same addresses in both labs, but impairments are per lab.
        assert not one.probe("ds", "connect", V4_B, "--timeout", "0.5")["ok"]
        assert two.probe("ds", "connect", V4_B, "--timeout", "0.5")["ok"]
        one.down()
        assert two.probe("ds", "get", f"http://[{V6_B}]/")["body"] == f"server={V6_B}\n"


def test_dns_delay_is_per_type(lab: Lab) -> None:
    lab.set_name("late6", a=[V4_B], aaaa=[V6_B], impair={"AAAA": Impairment(delay_ms=400)})
    lab.set_name("late4", a=[V4_B], aaaa=[V6_B], impair={"A": Impairment(delay_ms=400)})
    r = _parallel(
        {
            f"{host}-{fam}": (
                lambda h=host, f=fam: lab.probe("ds", "gai", f"{h}.example.org", "--family", f)
            )
            for host in ("late6", "late4")
            for fam in ("inet", "inet6", "unspec")
        }
    )
    assert r["late6-inet"]["addresses"] == [V4_B] and r["late6-inet"]["elapsed"] < 0.2
    assert r["late6-inet6"]["addresses"] == [V6_B]
    assert 0.35 < r["late6-inet6"]["elapsed"] < 1.5
    assert r["late4-inet6"]["elapsed"] < 0.2
    assert 0.35 < r["late4-inet"]["elapsed"] < 1.5
    # AF_UNSPEC (what stock create_connection uses) waits for the slower family.
    assert 0.35 < r["late6-unspec"]["elapsed"] < 1.5
    assert 0.35 < r["late4-unspec"]["elapsed"] < 1.5


def test_dns_drop_servfail_nxdomain(lab: Lab) -> None:
    lab.set_name("lost6", a=[V4_B], aaaa=[V6_B], impair={"AAAA": Impairment(drop=True)})
    lab.set_name("lost4", a=[V4_B], aaaa=[V6_B], impair={"A": Impairment(drop=True)})
    lab.set_name("fail6", a=[V4_B], aaaa=[V6_B], impair={"AAAA": Impairment(servfail=True)})
    lab.set_name("only4", a=[V4_B])
    calls = {
        "lost6-unspec": ("lost6", "unspec"),
        "lost6-inet": ("lost6", "inet"),
        "lost6-inet6": ("lost6", "inet6"),
        "lost4-unspec": ("lost4", "unspec"),
        "lost4-inet6": ("lost4", "inet6"),
        "fail6-unspec": ("fail6", "unspec"),
        "fail6-inet6": ("fail6", "inet6"),
        "nodata-inet6": ("only4", "inet6"),
        "nxdomain": ("nosuchname", "unspec"),
    }
    r = _parallel(
        {
            key: (lambda h=host, f=fam: lab.probe("ds", "gai", f"{h}.example.org", "--family", f))
            for key, (host, fam) in calls.items()
        }
    )
    # AAAA lost: AF_UNSPEC returns the A answer, but only after the resolver's timeout.
    assert r["lost6-unspec"]["addresses"] == [V4_B]
    assert 0.8 < r["lost6-unspec"]["elapsed"] < 4.0
    assert r["lost6-inet"]["addresses"] == [V4_B] and r["lost6-inet"]["elapsed"] < 0.3
    assert r["lost6-inet6"]["error"] == "gaierror(-3)"  # EAI_AGAIN
    assert 1.5 < r["lost6-inet6"]["elapsed"] < 4.0
    # A lost: the whole AF_UNSPEC lookup fails, although AAAA answered at once.
    assert r["lost4-unspec"]["error"] == "gaierror(-3)"
    assert 1.5 < r["lost4-unspec"]["elapsed"] < 4.0
    assert r["lost4-inet6"]["addresses"] == [V6_B] and r["lost4-inet6"]["elapsed"] < 0.3
    # SERVFAIL is immediate: AF_UNSPEC keeps the A answer, AF_INET6 fails at once.
    assert r["fail6-unspec"]["addresses"] == [V4_B] and r["fail6-unspec"]["elapsed"] < 0.3
    assert r["fail6-inet6"]["error"] is not None and r["fail6-inet6"]["elapsed"] < 0.3
    # NODATA and NXDOMAIN (answered with an SOA) fail fast and distinctly.
    assert r["nodata-inet6"]["error"] == "gaierror(-5)"  # EAI_NODATA
    assert r["nxdomain"]["error"] == "gaierror(-2)"  # EAI_NONAME
    assert r["nxdomain"]["elapsed"] < 0.3


def test_syn_drop_times_out_while_other_address_connects(lab: Lab) -> None:
    lab.break_address(V4_A, V6_A)
    try:
        r = _parallel(
            {
                a: (lambda a=a: lab.probe("ds", "connect", a, "--timeout", "1"))
                for a in (V4_A, V4_B, V6_A, V6_B)
            }
        )
        for broken in (V4_A, V6_A):
            assert not r[broken]["ok"] and r[broken]["error"].startswith("TimeoutError")
            assert 0.9 < r[broken]["elapsed"] < 2.0
        for good in (V4_B, V6_B):
            assert r[good]["ok"] and r[good]["elapsed"] < 0.2
        lab.break_address(V4_B, how="refuse")
        refused = lab.probe("ds", "connect", V4_B, "--timeout", "1")
        assert refused["error"] == "ConnectionRefusedError(111)" and refused["elapsed"] < 0.2
    finally:
        lab.repair_address(V4_A, V6_A, V4_B)
    assert lab.probe("ds", "connect", V4_A, "--timeout", "1")["ok"]
    assert lab.probe("ds", "connect", V4_B, "--timeout", "1")["ok"]


def test_nfqueue_latency(lab: Lab) -> None:
    try:
        lab.set_latency(V4_B, 200)
        lab.set_latency(V6_B, 100)
    except LabUnavailable as exc:
        pytest.skip(f"NFQUEUE unavailable: {exc.reason}")
    try:
        r = _parallel(
            {
                a: (lambda a=a: lab.probe("ds", "connect", a, "--timeout", "2"))
                for a in (V4_B, V6_B, "10.64.78.35")
            }
        )
        assert r[V4_B]["ok"] and 0.18 < r[V4_B]["elapsed"] < 0.6
        assert r[V6_B]["ok"] and 0.09 < r[V6_B]["elapsed"] < 0.5
        assert r["10.64.78.35"]["ok"] and r["10.64.78.35"]["elapsed"] < 0.08  # not delayed
    finally:
        lab.clear_latency(V4_B)
        lab.clear_latency(V6_B)
    fast = lab.probe("ds", "connect", V4_B, "--timeout", "2")
    assert fast["ok"] and fast["elapsed"] < 0.08


def test_gai_conf_per_namespace(lab: Lab) -> None:
    order = {role: lab.probe(role, "gai", "s3.example.org")["addresses"] for role in ("ds", "dsg")}
    # Stock glibc from a 2001:db8 source: label mismatch puts IPv4 first. The dsg namespace's
    # gai.conf (label 2002::/16 1) lets precedence put 6to4 first.
    assert order["ds"] == [V4_B, V6_B]
    assert order["dsg"] == [V6_B, V4_B]
    lab.set_gai_conf("ds", "label 2002::/16 1\n")
    try:
        assert lab.probe("ds", "gai", "s3.example.org")["addresses"] == [V6_B, V4_B]
    finally:
        lab.set_gai_conf("ds", None)
    assert lab.probe("ds", "gai", "s3.example.org")["addresses"] == [V4_B, V6_B]


def test_client_variants(lab: Lab) -> None:
    r = _parallel(
        {
            role: (lambda role=role: lab.probe(role, "connect", V6_B, "--timeout", "1"))
            for role in ("ds", "v4", "nr", "d6")
        }
    )
    assert r["ds"]["ok"] and r["d6"]["ok"]
    assert r["v4"]["error"] == "OSError(99)"  # EADDRNOTAVAIL: IPv6 disabled
    assert r["nr"]["error"] == "OSError(101)"  # ENETUNREACH: link-local only
    assert r["nr"]["elapsed"] < 0.1 and r["v4"]["elapsed"] < 0.1


def test_stale_lab_after_kill_9_is_cleaned() -> None:
    name = lab_name("k")
    code = (
        "import time; from integrations.lab import Lab\n"
        f"lab = Lab({name!r}, clients=('ds',)).up()\n"
        "lab.set_latency('10.64.78.34', 50)\n"
        "print('up', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        servers = lab_status(name)[0]["servers"]
        pids = [pid for pid, alive in servers.values() if alive]
        assert len(pids) == 2  # servers + nfqueue
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # PR_SET_PDEATHSIG: the servers die with their creator, even on SIGKILL.
    deadline = time.monotonic() + 3
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(pid_alive(p) for p in pids)
    status = lab_status(name)
    assert status and status[0]["stale"] and status[0]["namespaces"]
    # A new lab of the same name removes the stale one and starts normally.
    with Lab(name, clients=("ds",)) as again:
        assert again.probe("ds", "connect", "10.64.78.34", "--timeout", "1")["ok"]
    assert _leftovers(name) == []


def test_cli_up_status_down() -> None:
    name = lab_name("c")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "integrations.lab", *args, "--name", name],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    try:
        up = cli("up")
        assert up.returncode == 0, up.stderr
        status = cli("status")
        assert "persistent" in status.stdout and "running" in status.stdout
        # The CLI's lab outlives the command; the Python API refuses to take it over.
        with pytest.raises(LabBusy):
            Lab(name).up()
        down = cli("down")
        assert down.returncode == 0, down.stderr
        assert _leftovers(name) == []
    finally:
        cleanup(name)
