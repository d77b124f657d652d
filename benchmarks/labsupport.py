"""The network lab (integrations/lab.py) as the lab scenarios use it, and the
DNS namespace of the loopback rungs.

**The lab.** One lab, named ``bench``, with the one client P2 and P3 need: ``ds``, a
dual-stack host with a global IPv6 address (2001:db8:c::101).  Its IPv6
destination is the server bridge's ``2001:db8:c::1`` (on-link, served by the
lab's wildcard HTTP listener): native IPv6, which glibc and eyeshim alike
prefer over IPv4 (RFC 6724 precedence 40 against 35), as on most dual-stack
hosts.  (The 6to4 addresses of the matrix would not do: glibc and eyeshim
order them differently against IPv4.)  Every connection of these scenarios
goes from that namespace to the lab's server namespace, and nowhere else.

**The DNS namespace** (:class:`DnsNamespace`, :func:`get_dns_namespace`).  A
name resolved through a real DNS server, by the system's resolver, is what
P1, P4 and P5 measure next to the microsecond fake resolver.  glibc reads
``/etc/resolv.conf``, so the clients need a namespace whose resolv.conf names
the benchmark's server: a network namespace with nothing but loopback, made
the way the lab makes its clients (``ip netns add``, files in
``/etc/netns/NS/`` that ``ip netns exec`` mounts over ``/etc``: resolv.conf,
hosts, an nsswitch.conf of ``files dns``), with
:mod:`benchmarks.dnsserver` on its 127.0.0.1 and ::1, port 53.  The clients,
the accept-and-close server and the DNS server all run inside it, so every
packet stays on that namespace's loopback.  It is named like a lab
(``eyl-bloPID-lo``, state in ``/run/eyeshim-lab/bloPID``), one per benchmark
process, so two runs never share one, and ``python -m integrations.lab
cleanup`` removes what a crashed run left behind (a new run also removes
those of dead runs).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from benchmarks.harness import REPO_ROOT, Context, Skip

__all__ = [
    "CLIENT",
    "DNS_NAME",
    "SERVER_V4",
    "SERVER_V6",
    "DnsNamespace",
    "client_prefix",
    "get_dns_namespace",
    "get_lab",
]

CLIENT = "ds"
SERVER_V4 = "10.64.78.34"
SERVER_V6 = "2001:db8:c::1"
HTTP_PORT = 80


def get_lab(ctx: Context) -> Any:
    """The running lab, started on first use; :class:`Skip` when it cannot run."""
    if ctx.no_lab:
        raise Skip("lab scenarios disabled by --no-lab")
    if "lab" in ctx.resources:
        return ctx.resources["lab"]
    if "lab_error" in ctx.resources:
        raise Skip(ctx.resources["lab_error"])
    try:
        from integrations.lab import Lab, LabError, LabUnavailable
    except ImportError as exc:
        ctx.resources["lab_error"] = f"the lab cannot be imported: {exc}"
        raise Skip(ctx.resources["lab_error"]) from exc
    try:
        lab = Lab("bench", clients=[CLIENT]).up()
    except LabUnavailable as exc:
        ctx.resources["lab_error"] = f"lab unavailable: {exc.reason}"
        raise Skip(ctx.resources["lab_error"]) from exc
    except LabError as exc:
        ctx.resources["lab_error"] = f"lab failed to start: {exc}"
        raise Skip(ctx.resources["lab_error"]) from exc
    ctx.resources["lab"] = lab
    ctx.on_close(lab.down)
    ctx.log(f"lab up in {lab.timings['up'] * 1000:.0f} ms")
    return lab


def client_prefix(lab: Any) -> list[str]:
    """argv prefix that runs a command inside the client namespace."""
    prefix: list[str] = lab.exec_argv(CLIENT, [])
    return prefix


# -- the DNS namespace -------------------------------------------------------------------------

DNS_ORIGIN = "bench.test"
#: answered by the DNS namespace's server with AAAA ::1 and A 127.0.0.1
DNS_NAME = f"dual.{DNS_ORIGIN}"
_LAB_PREFIX = "blo"
RESOLV_CONF = "nameserver 127.0.0.1\nnameserver ::1\noptions timeout:1 attempts:2\n"
HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
NSSWITCH = "hosts: files dns\nnetworks: files\n"


class DnsNamespace:
    """A loopback-only network namespace whose resolv.conf names a DNS server on
    its own 127.0.0.1 and ::1 (see the module docstring)."""

    def __init__(self) -> None:
        from integrations import lab as labmod

        reason = labmod.unavailable_reason()
        if reason:
            raise Skip(f"no DNS namespace: {reason}")
        for found in labmod.lab_status():  # what crashed runs left behind
            if found["name"].startswith(_LAB_PREFIX) and found["stale"]:
                labmod.cleanup(found["name"])
        self.name = f"{_LAB_PREFIX}{os.getpid()}"
        self.ns = f"{labmod.PREFIX}{self.name}-lo"
        self.prefix = ["ip", "netns", "exec", self.ns]
        self._cleanup = labmod.cleanup
        self._server: Optional[subprocess.Popen[str]] = None
        state = labmod.STATE_ROOT / self.name
        try:
            self._build(labmod, state)
        except BaseException:
            self.close()
            raise

    def _build(self, labmod: Any, state: Path) -> None:
        from integrations.dnszone import Zone

        (state / "pids").mkdir(parents=True, exist_ok=True)
        meta = {
            "name": self.name,
            "owner": os.getpid(),
            "persistent": False,
            "created": time.time(),
            "clients": ["lo"],
        }
        (state / "meta.json").write_text(json.dumps(meta))
        zone = Zone(origin=DNS_ORIGIN, ttl=60)
        zone.set(DNS_NAME, a=["127.0.0.1"], aaaa=["::1"])
        zone.write(state / "zone.json")
        etc = labmod.NETNS_ETC / self.ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(RESOLV_CONF)
        (etc / "hosts").write_text(HOSTS)
        (etc / "nsswitch.conf").write_text(NSSWITCH)
        for argv in (
            ["ip", "netns", "add", self.ns],
            ["ip", "-n", self.ns, "link", "set", "lo", "up"],
        ):
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
            if proc.returncode:
                raise Skip(f"no DNS namespace: {' '.join(argv)}: {proc.stderr.strip()}")
        # The server needs dnslib: this interpreter's environment has it (the
        # test extras), the benchmark's contender environments need not.
        self._server = subprocess.Popen(
            [
                *self.prefix,
                sys.executable,
                "-m",
                "benchmarks.dnsserver",
                "--zone",
                str(state / "zone.json"),
                "--listen",
                "127.0.0.1",
                "--listen",
                "::1",
            ],
            cwd=REPO_ROOT,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        (state / "pids" / "dns.pid").write_text(str(self._server.pid))
        line = self._read_line(15.0)
        if not line or not json.loads(line).get("ready"):
            raise Skip(f"no DNS namespace: the DNS server did not start ({line!r})")

    def _read_line(self, bound: float) -> str:
        assert self._server is not None and self._server.stdout is not None
        ready, _, _ = select.select([self._server.stdout], [], [], bound)
        return self._server.stdout.readline().strip() if ready else ""

    def queries(self) -> dict[str, int]:
        """Queries the server has answered so far, per type ("A", "AAAA", ...)."""
        assert self._server is not None and self._server.stdin is not None
        self._server.stdin.write("stats\n")
        self._server.stdin.flush()
        line = self._read_line(10.0)
        counts: dict[str, int] = json.loads(line)["by_type"] if line else {}
        return counts

    def close(self) -> None:
        if self._server is not None:
            if self._server.stdin is not None:
                self._server.stdin.close()  # the server exits when its stdin closes
            try:
                self._server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
            self._server = None
        self._cleanup(self.name)


def get_dns_namespace(ctx: Context) -> DnsNamespace:
    """The run's DNS namespace, made on first use; :class:`Skip` when it cannot be."""
    if ctx.no_lab:
        raise Skip("the DNS namespace is part of the lab: disabled by --no-lab")
    if "dns_namespace" in ctx.resources:
        namespace: DnsNamespace = ctx.resources["dns_namespace"]
        return namespace
    if "dns_namespace_error" in ctx.resources:
        raise Skip(ctx.resources["dns_namespace_error"])
    try:
        namespace = DnsNamespace()
    except Skip as exc:
        ctx.resources["dns_namespace_error"] = str(exc)
        raise
    except Exception as exc:  # LabError and the like: the rung is skipped, with why
        ctx.resources["dns_namespace_error"] = f"no DNS namespace: {type(exc).__name__}: {exc}"
        raise Skip(ctx.resources["dns_namespace_error"]) from exc
    ctx.resources["dns_namespace"] = namespace

    def close() -> None:
        ctx.drop_workers(namespace.prefix)
        namespace.close()

    ctx.on_close(close)
    ctx.log(f"DNS namespace {namespace.ns} up ({DNS_NAME} -> ::1, 127.0.0.1)")
    return namespace
