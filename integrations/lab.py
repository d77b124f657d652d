"""The eyeshim network lab: network namespaces with impaired DNS and TCP, started from Python.

Python::

    from integrations.lab import Lab
    with Lab("demo") as lab:
        lab.break_address("10.64.78.35")             # SYNs to it are dropped (nft set)
        lab.set_latency("10.64.78.34", 200)          # SYNs to it wait 200 ms (NFQUEUE)
        lab.set_name("x", a=["10.64.78.34"], aaaa=["2002:a40:4c07:1::faf1"],
                     impair={"AAAA": Impairment(delay_ms=300)})
        print(lab.probe("ds", "gai", "x.example.org"))

Command line::

    python -m integrations.lab up|down|status|cleanup [--name NAME]

NAT64/DNS64 (opt-in, ``Lab(name, nat64=True)`` or ``up --nat64``) adds a gateway namespace
``eyl-NAME-nat64`` running tayga and an IPv6-only client ``eyl-NAME-v6``; see docs/lab.md.

Every namespace is called ``eyl-NAME-ROLE`` (ROLE: ``srv``, ``nat64`` or a client role from
:data:`integrations.topology.CLIENTS` / ``NAT64_CLIENTS``); per-lab state (zone, latency
table, pidfiles, logs) lives in ``/run/eyeshim-lab/NAME``. ``cleanup`` finds labs by that
prefix alone, so it also removes what a crashed process left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Optional

from integrations.dnszone import Impairment, NameEntry, Zone
from integrations.procutil import kill_pids, pid_alive, read_pidfile
from integrations.topology import (
    CLIENTS,
    DISCOVERY_NAME,
    DNS64_V6,
    DNS_V4,
    DNS_V6,
    GW_V6,
    NAT64_CLIENTS,
    NAT64_GW_V4,
    NAT64_GW_V6,
    NAT64_POOL,
    NAT64_PREFIX,
    NAT64_ROLE,
    NAT64_STATIC_MAP,
    NAT64_TAYGA_V4,
    SERVER_ADDRESSES,
    SERVER_PREFIX4,
    SERVER_PREFIX6,
    ClientSpec,
)

__all__ = [
    "Lab",
    "LabBusy",
    "LabError",
    "LabUnavailable",
    "cleanup",
    "lab_status",
    "nat64_unavailable_reason",
    "tayga_conf",
    "unavailable_reason",
]

PREFIX = "eyl-"
STATE_ROOT = Path("/run/eyeshim-lab")
NETNS_RUN = Path("/run/netns")
NETNS_ETC = Path("/etc/netns")
REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_ROLE = "srv"
NFT_TABLE = "eyeshim_lab"
NFQUEUE_NUM = 0
_NAME_RE = re.compile(r"^[a-z0-9]{1,16}$")
_CLONE_NEWNET = 0x40000000

# glibc: one server, give up on a query after 1 s, try twice. Numbers in docs/lab.md and the
# recipes were measured with these options.
RESOLV_CONF = f"nameserver {DNS_V4}\noptions timeout:1 attempts:2\n"
HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
# Keep name service to files + DNS whatever the host's nsswitch.conf says (mdns, myhostname...).
NSSWITCH = "hosts: files dns\nnetworks: files\n"
RESOLV_OPTIONS = "options timeout:1 attempts:2\n"
# tayga's TUN interface in the gateway namespace, and the A-only name whose AAAA DNS64
# synthesizes (added to the zone of NAT64 labs unless the zone already has it).
NAT64_TUN = "nat64"
NAT64_NAME = "nat64"
NAT64_NAME_A = "10.64.78.34"


class LabError(RuntimeError):
    """A lab operation failed (a command returned an error, a server did not start...)."""


class LabUnavailable(LabError):
    """The lab cannot run here; ``reason`` says why (tests skip with it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LabBusy(LabError):
    """A live lab of the same name belongs to another process."""


# --------------------------------------------------------------------------------------------
# Small helpers


def _run(
    argv: list[str], *, input: Optional[str] = None, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _ns_exec(ns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


_libc: Optional[ctypes.CDLL] = None


def _in_netns(ns: str, func: Callable[[], None]) -> None:
    """Run ``func`` in a short-lived thread that has joined network namespace ``ns``.

    setns() changes only the calling thread, so this needs no fork and no exec: it is how the
    lab writes a namespace's sysctls (/proc/sys/net is resolved against the caller's namespace)
    in microseconds instead of spawning ``ip netns exec sysctl`` per namespace.
    """
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc = _libc
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fd = os.open(NETNS_RUN / ns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            func()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{ns}")
    thread.start()
    thread.join()
    if errors:
        raise LabError(f"in namespace {ns}: {errors[0]}") from errors[0]


def _write_sysctls(values: Mapping[str, str]) -> None:
    for key, value in values.items():
        path = Path("/proc/sys") / key.replace(".", "/")
        if key.startswith("net.bridge.") and not path.exists():
            continue  # br_netfilter not loaded: nothing to turn off
        path.write_text(value)


def _netns_inode(ns: str) -> Optional[tuple[int, int]]:
    try:
        st = os.stat(NETNS_RUN / ns)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _pids_in_netns(namespaces: Iterable[str]) -> list[int]:
    """Processes whose network namespace is one of ``namespaces`` (like ``ip netns pids``,
    without a process per namespace)."""
    wanted = {i for i in (_netns_inode(ns) for ns in namespaces) if i is not None}
    if not wanted:
        return []
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in wanted:
            pids.append(int(entry.name))
    return pids


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (the lab's state directory)."""
    needle = text.encode()
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            pids.append(int(entry.name))
    return pids


def _ns_name(lab: str, role: str) -> str:
    return f"{PREFIX}{lab}-{role}"


def _existing_namespaces() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_RUN.iterdir() if p.name.startswith(PREFIX))
    except FileNotFoundError:
        return []


def _lab_of(ns: str) -> str:
    return ns[len(PREFIX) :].rsplit("-", 1)[0]


def _wait_ready(proc: subprocess.Popen[bytes], read_fd: int, log: Path, timeout: float) -> None:
    """Block until the child writes its ready line (or dies, or ``timeout`` passes)."""
    import select

    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError(f"{log.stem} not ready after {timeout:.0f} s; see {log}")
            ready, _, _ = select.select([read_fd], [], [], min(left, 0.1))
            if ready:
                if os.read(read_fd, 64).startswith(b"ready"):
                    return
                break  # EOF: the child closed the pipe without saying ready
            if proc.poll() is not None:
                break
    finally:
        os.close(read_fd)
    proc.wait(timeout=1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise LabError(f"{log.stem} exited with {proc.returncode} before ready:\n{tail}")


_unavailable_cache: Optional[tuple[Optional[str]]] = None


def unavailable_reason() -> Optional[str]:
    """Why the lab cannot run on this machine, or None. Cached; cheap enough to call often."""
    global _unavailable_cache
    if _unavailable_cache is None:
        _unavailable_cache = (_probe_unavailable(),)
    return _unavailable_cache[0]


def _probe_unavailable() -> Optional[str]:
    if not sys.platform.startswith("linux"):
        return "the lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, nftables, /etc/netns)"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("iptables", "iptables")):
        if shutil.which(tool) is None:
            return f"{tool} not found: install {package} (integrations/setup_system.sh)"
    try:
        import dnslib  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return "dnslib is not installed (pip install dnslib)"
    probe = f"{PREFIX}probe{os.getpid()}"
    proc = _run(["ip", "netns", "add", probe], check=False)
    if proc.returncode != 0:
        return f"cannot create a network namespace: {proc.stderr.strip()}"
    try:
        veth = _run(
            ["ip", "-n", probe, "link", "add", "name", "pa", "type", "veth", "peer", "name", "pb"],
            check=False,
        )
        if veth.returncode != 0:
            return f"cannot create veth pairs: {veth.stderr.strip()}"
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    return None


_nat64_cache: Optional[tuple[Optional[str]]] = None


def tayga_path() -> Optional[str]:
    """The tayga executable (root's PATH has /usr/sbin, sudo'd shells may not), or None."""
    found = shutil.which("tayga")
    if found is None and os.access("/usr/sbin/tayga", os.X_OK):
        found = "/usr/sbin/tayga"
    return found


def nat64_unavailable_reason() -> Optional[str]:
    """Why a NAT64 lab (``Lab(..., nat64=True)``) cannot run here, or None. Cached."""
    global _nat64_cache
    if _nat64_cache is None:
        reason = unavailable_reason()
        if reason is None and tayga_path() is None:
            reason = "tayga not found: install tayga (integrations/setup_system.sh)"
        if reason is None and not Path("/dev/net/tun").exists():
            reason = "no /dev/net/tun: the kernel's TUN driver is needed for tayga"
        _nat64_cache = (reason,)
    return _nat64_cache[0]


# --------------------------------------------------------------------------------------------
# Status and cleanup (work on whatever exists, not on a Lab object, so they survive crashes)


def _state_dir(name: str) -> Path:
    return STATE_ROOT / name


def _read_meta(name: str) -> dict[str, Any]:
    try:
        data = json.loads((_state_dir(name) / "meta.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _known_labs() -> list[str]:
    names = {_lab_of(ns) for ns in _existing_namespaces()}
    if STATE_ROOT.exists():
        names.update(p.name for p in STATE_ROOT.iterdir() if p.is_dir())
    if NETNS_ETC.exists():
        names.update(_lab_of(p.name) for p in NETNS_ETC.iterdir() if p.name.startswith(PREFIX))
    return sorted(names)


def lab_status(name: Optional[str] = None) -> list[dict[str, Any]]:
    """One dict per lab found (namespaces, servers alive, owner, whether it is stale)."""
    out = []
    for lab in _known_labs():
        if name is not None and lab != name:
            continue
        meta = _read_meta(lab)
        namespaces = [ns for ns in _existing_namespaces() if _lab_of(ns) == lab]
        pids = {
            p.stem: pid
            for p in (_state_dir(lab) / "pids").glob("*.pid")
            if (pid := read_pidfile(p)) is not None
        }
        owner = meta.get("owner")
        live = bool(meta.get("persistent")) or (isinstance(owner, int) and pid_alive(owner))
        out.append(
            {
                "name": lab,
                "namespaces": namespaces,
                "servers": {k: (v, pid_alive(v)) for k, v in pids.items()},
                "owner": owner,
                "persistent": bool(meta.get("persistent")),
                "stale": not live,
                "broken": meta.get("broken", []),
            }
        )
    return out


def cleanup(name: Optional[str] = None) -> list[str]:
    """Remove lab ``name`` (or every lab with the prefix): processes, namespaces, /etc/netns
    directories and state. Works from nothing but names on disk, so it also cleans after a
    crash. Returns the namespaces that were deleted."""
    labs = [lab for lab in _known_labs() if name is None or lab == name]
    if not labs:
        return []
    namespaces = [ns for ns in _existing_namespaces() if _lab_of(ns) in labs]
    # Kill first: a process inside a namespace keeps it (and its veths and sockets) alive after
    # `ip netns del`. Servers are found three ways: pidfiles, namespace membership, and their
    # command line (which names the state directory), in case a namespace file is already gone.
    pids: set[int] = set(_pids_in_netns(namespaces))
    for lab in labs:
        for pidfile in (_state_dir(lab) / "pids").glob("*.pid"):
            pid = read_pidfile(pidfile)
            if pid is not None:
                pids.add(pid)
        pids.update(_pids_mentioning(str(_state_dir(lab)) + "/"))
        pids.update(_pids_mentioning(str(_state_dir(lab)) + "\0"))
    pids.discard(os.getpid())
    kill_pids(sorted(p for p in pids if pid_alive(p)), timeout=0.5)
    if namespaces:
        # One `ip` process for all deletions.
        batch = "".join(f"netns del {ns}\n" for ns in namespaces)
        _run(["ip", "-force", "-batch", "-"], input=batch, check=False)
    for lab in labs:
        for directory in NETNS_ETC.glob(f"{PREFIX}{lab}-*"):
            shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(_state_dir(lab), ignore_errors=True)
    # Remove the parent directories only when empty: other tools may keep entries there.
    for directory in (NETNS_ETC, STATE_ROOT):
        with contextlib.suppress(OSError):
            if directory.exists() and not any(directory.iterdir()):
                directory.rmdir()
    return namespaces


# --------------------------------------------------------------------------------------------
# The lab


class Lab:
    """A client/server namespace lab; use as a context manager or call :meth:`up`/:meth:`down`.

    ``persistent=False`` (the default for Python use): the servers get PR_SET_PDEATHSIG, so they
    die with the creating thread's process even after kill -9; namespaces left behind are
    removed by the next ``Lab(name)`` start or by :func:`cleanup`. ``persistent=True`` (the CLI's
    ``up``) detaches them so the lab outlives the command.

    ``nat64=True`` (or a ``"v6"`` client role) adds the NAT64 part: the gateway namespace
    ``eyl-NAME-nat64`` running tayga (prefix ``NAT64_PREFIX``, 2001:db8:64::/96), the IPv6-only
    client ``v6``, the DNS64 listener on ``DNS64_V6`` and the A-only name ``nat64.example.org``.
    Without it none of this is created or started.
    """

    def __init__(
        self,
        name: str = "lab",
        *,
        clients: Optional[Iterable[str]] = None,
        zone: Optional[Zone] = None,
        broken: Iterable[str] = (),
        persistent: bool = False,
        replace: bool = False,
        nat64: bool = False,
        tls: bool = False,
    ) -> None:
        if not _NAME_RE.match(name):
            raise ValueError(f"lab name must match {_NAME_RE.pattern}: {name!r}")
        self.name = name
        roles = list(clients) if clients is not None else list(CLIENTS)
        known = {**CLIENTS, **NAT64_CLIENTS}
        unknown = [r for r in roles if r not in known]
        if unknown:
            raise ValueError(f"unknown client roles {unknown}; known: {sorted(known)}")
        # The IPv6-only client only makes sense behind the NAT64 gateway, and vice versa.
        self.nat64 = nat64 or any(r in NAT64_CLIENTS for r in roles)
        # HTTPS on 443 (certificates made with trustme at start-up; see docs/lab.md).
        self.tls = tls
        if self.nat64:
            roles += [r for r in NAT64_CLIENTS if r not in roles]
        self.clients: dict[str, ClientSpec] = {r: known[r] for r in roles}
        self.zone = zone if zone is not None else Zone()
        if self.nat64 and f"{NAT64_NAME}.{self.zone.origin}" not in self.zone.names:
            self.zone.set(NAT64_NAME, [NAT64_NAME_A])
        self.persistent = persistent
        self.replace = replace
        self.state_dir = _state_dir(name)
        self._initial_broken = list(broken)
        # Addresses currently in the nft sets, per kind ("drop" -> drop4/drop6, ...).
        self._blocked: dict[str, set[str]] = {
            "drop": set(),
            "refuse": set(),
            "unreach": set(),
            "mtu": set(),
        }
        self._latency: dict[str, float] = {}
        # Addresses whose every packet (not only the SYN) is delayed.
        self._latency_all: set[str] = set()
        self._tls_behaviour: dict[str, list[str]] = {"silent": [], "bad_names": []}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._up = False
        self.timings: dict[str, float] = {}

    # -- naming ------------------------------------------------------------------------------

    def ns(self, role: str) -> str:
        """Namespace name for ``role`` (``"srv"``, ``"nat64"`` in NAT64 labs, or a client
        role)."""
        if (
            role != SERVER_ROLE
            and role not in self.clients
            and not (self.nat64 and role == NAT64_ROLE)
        ):
            raise KeyError(f"lab {self.name} has no namespace {role!r}")
        return _ns_name(self.name, role)

    @property
    def namespaces(self) -> list[str]:
        gateway = [self.ns(NAT64_ROLE)] if self.nat64 else []
        return [self.ns(SERVER_ROLE), *(self.ns(r) for r in self.clients), *gateway]

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.down()

    def up(self) -> Lab:
        reason = nat64_unavailable_reason() if self.nat64 else unavailable_reason()
        if reason:
            raise LabUnavailable(reason)
        start = time.perf_counter()
        self._clean_previous()
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        self._up = True
        self.timings["up"] = time.perf_counter() - start
        return self

    def down(self) -> None:
        start = time.perf_counter()
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs.values():
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=1)
        self._procs.clear()
        cleanup(self.name)
        self._up = False
        self.timings["down"] = time.perf_counter() - start

    def _clean_previous(self) -> None:
        if not any(s["name"] == self.name for s in lab_status(self.name)):
            return
        meta = _read_meta(self.name)
        owner = meta.get("owner")
        live = meta.get("persistent") or (
            isinstance(owner, int) and owner != os.getpid() and pid_alive(owner)
        )
        if live and not self.replace:
            raise LabBusy(
                f"lab {self.name!r} is in use (owner pid {owner}, persistent="
                f"{bool(meta.get('persistent'))}); run `python -m integrations.lab cleanup "
                f"--name {self.name}` or pass replace=True"
            )
        cleanup(self.name)

    def _build(self) -> None:
        t0 = time.perf_counter()
        (self.state_dir / "pids").mkdir(parents=True, exist_ok=True)
        self._write_meta()
        self.zone.write(self.state_dir / "zone.json")
        self._write_latency()

        srv = self.ns(SERVER_ROLE)
        batch = "".join(f"netns add {ns}\n" for ns in self.namespaces)
        _run(["ip", "-batch", "-"], input=batch)
        self.timings["netns"] = time.perf_counter() - t0

        # Sysctls before any interface exists, so new interfaces inherit "default".
        _in_netns(srv, lambda: _write_sysctls(_SERVER_SYSCTLS))
        for spec in self.clients.values():
            values = dict(_CLIENT_SYSCTLS)
            if spec.ipv6_mode == "none":
                values.update(_NO_IPV6_SYSCTLS)
            if not spec.has_ipv4:
                values.update(_IPV6_ONLY_SYSCTLS)
            _in_netns(self.ns(spec.role), lambda v=values: _write_sysctls(v))  # type: ignore[misc]
        if self.nat64:
            _in_netns(self.ns(NAT64_ROLE), lambda: _write_sysctls(_GATEWAY_SYSCTLS))
        self.timings["sysctl"] = time.perf_counter() - t0

        # Server side: one bridge holding every server address, one veth per client. The client
        # end is created directly in the client namespace: the root namespace never has a route
        # to the lab's addresses.
        lines = ["link set lo up", "link add br0 type bridge mcast_snooping 0"]
        for cidr in SERVER_ADDRESSES:
            lines.append(f"addr add {cidr} dev br0" + (" nodad" if ":" in cidr else ""))
        if self.nat64:
            lines.append(f"addr add {DNS64_V6}/{SERVER_PREFIX6} dev br0 nodad")
        veths = [*self.clients, *([NAT64_ROLE] if self.nat64 else [])]
        for role in veths:
            lines.append(f"link add p-{role} type veth peer name v-{role} netns {self.ns(role)}")
            lines.append(f"link set p-{role} master br0 up")
        lines.append("link set br0 up")
        if self.nat64:
            # Replies to tayga's pool addresses go back through the gateway.
            lines.append(f"route add {NAT64_POOL} via {NAT64_GW_V4} dev br0")
        _run(["ip", "-n", srv, "-batch", "-"], input="\n".join(lines) + "\n")

        batches: list[tuple[str, list[str]]] = []
        for spec in self.clients.values():
            dev = f"v-{spec.role}"
            lines = ["link set lo up"]
            if spec.has_ipv4:
                lines.append(f"addr add {spec.ipv4} dev {dev}")
            if spec.ipv6 and spec.ipv6_mode in ("global", "onlink"):
                lines.append(f"addr add {spec.ipv6} dev {dev} nodad")
            lines.append(f"link set {dev} up")
            if spec.ipv6_mode == "global":
                lines.append(f"route add default via {spec.ipv6_gateway or GW_V6} dev {dev}")
            batches.append((spec.role, lines))
        if self.nat64:
            dev = f"v-{NAT64_ROLE}"
            lines = [
                "link set lo up",
                f"addr add {NAT64_GW_V4}/{SERVER_PREFIX4} dev {dev}",
                f"addr add {NAT64_GW_V6}/{SERVER_PREFIX6} dev {dev} nodad",
                f"link set {dev} up",
                # Native IPv6 from the IPv6-only client goes on to the server's addresses.
                f"route add default via {GW_V6} dev {dev}",
            ]
            batches.append((NAT64_ROLE, lines))
        client_procs = []
        for role, lines in batches:
            client_procs.append(
                (
                    role,
                    subprocess.Popen(
                        ["ip", "-n", self.ns(role), "-batch", "-"],
                        stdin=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    ),
                    "\n".join(lines) + "\n",
                )
            )
        for role, proc, text in client_procs:
            _, err = proc.communicate(text, timeout=10)
            if proc.returncode:
                raise LabError(f"configuring client {role}: {err.strip()}")
        self.timings["links"] = time.perf_counter() - t0

        # Servers take ~100 ms to import and bind; start them now and do the rest meanwhile.
        server_args = ["--dns", DNS_V4, "--dns", DNS_V6]
        if self.tls:
            self._make_certificates()
            server_args += ["--tls-dir", str(self.tls_dir)]
        if self.nat64:
            server_args += ["--dns64", DNS64_V6, "--dns64-prefix", NAT64_PREFIX]
        servers = self._spawn(
            "servers",
            SERVER_ROLE,
            ["-m", "integrations.servers", "--state-dir", str(self.state_dir), *server_args],
        )
        self._write_etc()
        self._setup_nft()
        self.timings["nft"] = time.perf_counter() - t0
        if self.nat64:
            self._start_tayga()
            self.timings["tayga"] = time.perf_counter() - t0
        self._wait(servers)
        self.timings["servers"] = time.perf_counter() - t0

    def _start_tayga(self) -> None:
        """tayga in the gateway namespace, set up as tayga's documentation does it: ``--mktun``
        makes the TUN device persistent, the gateway brings it up with routes for the prefix
        and the pool, then tayga runs in the foreground as a lab child (``-d``: no detach, log
        to stdout, i.e. ``tayga.log``). The device goes away with the namespace."""
        tayga = tayga_path()
        if tayga is None:
            raise LabUnavailable("tayga not found: install tayga (integrations/setup_system.sh)")
        gw = self.ns(NAT64_ROLE)
        conf = self.state_dir / "tayga.conf"
        conf.write_text(tayga_conf())
        mktun = _run(_ns_exec(gw, [tayga, "--mktun", "-c", str(conf)]), check=False)
        if mktun.returncode:
            raise LabUnavailable(f"tayga --mktun failed: {(mktun.stderr or mktun.stdout).strip()}")
        routes = [
            f"link set {NAT64_TUN} up",
            f"route add {NAT64_POOL} dev {NAT64_TUN}",
            f"route add {NAT64_PREFIX} dev {NAT64_TUN}",
        ]
        _run(["ip", "-n", gw, "-batch", "-"], input="\n".join(routes) + "\n")
        log = self.state_dir / "tayga.log"
        preexec = None if self.persistent else _pdeathsig_preexec(os.getpid())
        with open(log, "ab") as log_file:
            proc = subprocess.Popen(
                # tayga logs with printf: line-buffer it so the log is readable while it runs.
                _ns_exec(gw, [*_line_buffered(), tayga, "-d", "-c", str(conf)]),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                preexec_fn=preexec,
                start_new_session=self.persistent,
            )
        self._procs["tayga"] = proc
        (self.state_dir / "pids" / "tayga.pid").write_text(str(proc.pid))
        # Ready when tayga has attached to the TUN device: the kernel then turns its carrier
        # on (LOWER_UP); until then packets routed to it are dropped.
        deadline = time.monotonic() + 5
        while True:
            shown = _run(["ip", "-n", gw, "-o", "link", "show", NAT64_TUN], check=False)
            if "LOWER_UP" in shown.stdout:
                return
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                state = f"exited with {proc.returncode}" if proc.poll() is not None else "hung"
                raise LabError(f"tayga {state} before attaching to {NAT64_TUN}:\n{tail}")
            time.sleep(0.002)

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    @property
    def tls_ca(self) -> Path:
        """The CA that signed the HTTPS servers' certificate (clients trust it with this file)."""
        return self.tls_dir / "ca.pem"

    def _make_certificates(self) -> None:
        """A CA and a certificate for ``example.org`` and ``*.example.org`` (``good.pem``), and
        the same names from a CA nobody trusts (``bad.pem``). RSA 2048, as most servers use:
        the server's first TLS flight is then larger than 1280 bytes, which is what a path MTU
        black hole eats."""
        try:
            import trustme
        except ImportError as exc:
            raise LabUnavailable("trustme is not installed (the test extras have it)") from exc
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        names = (self.zone.origin, f"*.{self.zone.origin}")
        rsa = trustme.KeyType.RSA
        ca = trustme.CA(key_type=rsa)
        ca.cert_pem.write_to_path(str(self.tls_ca))
        for authority, file in ((ca, "good.pem"), (trustme.CA(key_type=rsa), "bad.pem")):
            leaf = authority.issue_cert(*names, key_type=rsa)
            leaf.private_key_and_cert_chain_pem.write_to_path(str(self.tls_dir / file))
        self._write_tls_behaviour()

    def _write_tls_behaviour(self) -> None:
        path = self.tls_dir / "tls.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._tls_behaviour))
        os.replace(tmp, path)

    def silence_tls(self, *addresses: str) -> None:
        """HTTPS on ``addresses`` accepts TCP and never answers the ClientHello (a middlebox
        that passes TCP but not TLS)."""
        self._tls_behaviour["silent"] = sorted({*self._tls_behaviour["silent"], *addresses})
        self._write_tls_behaviour()

    def set_bad_certificate(self, *names: str) -> None:
        """HTTPS for these names (SNI, fully qualified) presents a certificate from a CA nobody
        trusts, on every address."""
        self._tls_behaviour["bad_names"] = sorted({*self._tls_behaviour["bad_names"], *names})
        self._write_tls_behaviour()

    def _write_meta(self) -> None:
        meta = {
            "name": self.name,
            "owner": os.getpid(),
            "persistent": self.persistent,
            "created": time.time(),
            "clients": list(self.clients),
            "broken": sorted(self._blocked["drop"]),
            "latency_ms": self._latency,
            "nat64": self.nat64,
        }
        (self.state_dir / "meta.json").write_text(json.dumps(meta, indent=1))

    def _write_etc(self) -> None:
        for spec in self.clients.values():
            directory = NETNS_ETC / self.ns(spec.role)
            directory.mkdir(parents=True, exist_ok=True)
            resolv = (
                RESOLV_CONF
                if spec.nameserver is None
                else f"nameserver {spec.nameserver}\n{RESOLV_OPTIONS}"
            )
            (directory / "resolv.conf").write_text(resolv)
            (directory / "hosts").write_text(HOSTS)
            (directory / "nsswitch.conf").write_text(NSSWITCH)
            if spec.gai_conf is not None:
                (directory / "gai.conf").write_text(spec.gai_conf)

    def _setup_nft(self) -> None:
        # Broken = SYN silently dropped at the server's input (like the seed's iptables DROP):
        # the client sees a plain connect timeout. "refuse" = TCP RST at once. Named sets let
        # tests add and remove addresses at runtime without touching the rules.
        drop4 = [a for a in self._initial_broken if ":" not in a]
        drop6 = [a for a in self._initial_broken if ":" in a]

        def elements(items: list[str]) -> str:
            return f"elements = {{ {', '.join(items)} }}" if items else ""

        ruleset = f"""
table inet {NFT_TABLE} {{
    set drop4 {{ type ipv4_addr; {elements(drop4)} }}
    set drop6 {{ type ipv6_addr; {elements(drop6)} }}
    set refuse4 {{ type ipv4_addr; }}
    set refuse6 {{ type ipv6_addr; }}
    set unreach4 {{ type ipv4_addr; }}
    set unreach6 {{ type ipv6_addr; }}
    set mtu4 {{ type ipv4_addr; }}
    set mtu6 {{ type ipv6_addr; }}
    chain input {{
        type filter hook input priority 0; policy accept;
        tcp flags & (syn | ack) == syn ip daddr @drop4 drop
        tcp flags & (syn | ack) == syn ip6 daddr @drop6 drop
        tcp flags & (syn | ack) == syn ip daddr @refuse4 reject with tcp reset
        tcp flags & (syn | ack) == syn ip6 daddr @refuse6 reject with tcp reset
        ip daddr @unreach4 reject with icmp type host-unreachable
        ip6 daddr @unreach6 reject with icmpv6 type addr-unreachable
        ip daddr @mtu4 meta length > 1280 drop
        ip6 daddr @mtu6 meta length > 1280 drop
    }}
    chain output {{
        type filter hook output priority 0; policy accept;
        ip saddr @mtu4 meta length > 1280 drop
        ip6 saddr @mtu6 meta length > 1280 drop
    }}
}}
"""
        _run(_ns_exec(self.ns(SERVER_ROLE), ["nft", "-f", "-"]), input=ruleset)
        self._blocked["drop"].update(self._initial_broken)
        self._write_meta()

    def _spawn(
        self, label: str, role: str, python_args: list[str]
    ) -> tuple[str, subprocess.Popen[bytes], int]:
        """Start ``python <python_args>`` in namespace ``role``; returns what :meth:`_wait`
        needs."""
        read_fd, write_fd = os.pipe()
        log = self.state_dir / f"{label}.log"
        argv = [*python_args, "--ready-fd", str(write_fd)]
        if not self.persistent:
            # The child asks for SIGKILL when we die and checks we are still its parent.
            argv += ["--parent", str(os.getpid())]
        with open(log, "ab") as log_file:
            proc = subprocess.Popen(
                _ns_exec(self.ns(role), [sys.executable, *argv]),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                pass_fds=(write_fd,),
                # Persistent servers get their own session so the CLI's terminal and its
                # signals do not reach them.
                start_new_session=self.persistent,
            )
        os.close(write_fd)
        self._procs[label] = proc
        (self.state_dir / "pids" / f"{label}.pid").write_text(str(proc.pid))
        return label, proc, read_fd

    def _wait(self, spawned: tuple[str, subprocess.Popen[bytes], int]) -> None:
        label, proc, read_fd = spawned
        _wait_ready(proc, read_fd, self.state_dir / f"{label}.log", timeout=15)

    # -- running things in a namespace -------------------------------------------------------

    def exec_argv(self, role: str, argv: list[str]) -> list[str]:
        """``argv`` wrapped in ``ip netns exec`` (which also bind-mounts /etc/netns files)."""
        return _ns_exec(self.ns(role), argv)

    def run(
        self,
        role: str,
        argv: list[str],
        *,
        timeout: float = 60,
        check: bool = False,
        input: Optional[str] = None,
    ) -> subprocess.CompletedProcess[str]:
        return _run(self.exec_argv(role, argv), input=input, check=check, timeout=timeout)

    def python(
        self, role: str, args: list[str], *, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run this interpreter with ``args`` in namespace ``role``, from the repository root
        (so ``-m integrations...`` and ``import eyeshim`` work)."""
        return subprocess.run(
            self.exec_argv(role, [sys.executable, *args]),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def python_json(self, role: str, args: list[str], *, timeout: float = 60) -> Any:
        """Like :meth:`python`, and parse the last line of stdout as JSON."""
        proc = self.python(role, args, timeout=timeout)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise LabError(
                f"{args} in {role} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"
            )
        return json.loads(lines[-1])

    def probe(self, role: str, *args: str, timeout: float = 60) -> dict[str, Any]:
        """Run :mod:`integrations.probe` in ``role``: ``lab.probe("ds", "gai", "x.example.org",
        "--family", "inet")``; returns its JSON (times measured inside the process)."""
        result = self.python_json(role, ["-m", "integrations.probe", *args], timeout=timeout)
        assert isinstance(result, dict)
        return result

    # -- impairments -------------------------------------------------------------------------

    def break_address(self, *addresses: str, how: str = "drop") -> None:
        """Make connects to ``addresses`` fail: ``drop`` (SYN dropped: timeout), ``refuse``
        (TCP reset: ECONNREFUSED at once) or ``unreach`` (an ICMP host-unreachable, as a
        router on the path sends it: EHOSTUNREACH; for IPv6 only after the SYN's
        retransmit on a link without latency, see docs/lab.md) or ``mtu`` (every packet
        larger than 1280 bytes to or from it is dropped and no ICMP says so: a path MTU black
        hole; TCP connects, a TLS server's certificate never arrives)."""
        if how not in self._blocked:
            raise ValueError(f"how must be 'drop', 'refuse', 'unreach' or 'mtu', not {how!r}")
        new = [a for a in addresses if a not in self._blocked[how]]
        self._nft_elements("add", how, new)
        self._blocked[how].update(new)
        self._write_meta()

    def repair_address(self, *addresses: str) -> None:
        """Undo :meth:`break_address` (either kind) for ``addresses``."""
        for how, present in self._blocked.items():
            # Only delete what is in the set: nft rejects the whole command otherwise.
            gone = [a for a in addresses if a in present]
            self._nft_elements("delete", how, gone)
            present.difference_update(gone)
        self._write_meta()

    @property
    def broken(self) -> set[str]:
        """Addresses whose SYNs are currently dropped."""
        return set(self._blocked["drop"])

    def _nft_elements(self, verb: str, how: str, addresses: list[str]) -> None:
        lines = []
        for family, items in (
            ("4", [a for a in addresses if ":" not in a]),
            ("6", [a for a in addresses if ":" in a]),
        ):
            if items:
                lines.append(
                    f"{verb} element inet {NFT_TABLE} {how}{family} {{ {', '.join(items)} }}\n"
                )
        if lines:
            # One nft process for both families; the file is applied atomically.
            self.run(SERVER_ROLE, ["nft", "-f", "-"], input="".join(lines), check=True)

    def set_latency(self, address: str, delay_ms: float, every_packet: bool = False) -> None:
        """Delay every TCP SYN to ``address`` by ``delay_ms`` (NFQUEUE + delayed verdict), so
        connects to it take that much longer; with ``every_packet``, every TCP packet to it (a
        path with that much more round-trip time: the TLS handshake and each request wait too).
        Starts the NFQUEUE daemon on first use."""
        first = address not in self._latency
        self._latency[address] = float(delay_ms)
        # Table first, rule second: a packet queued by the new rule always finds its delay.
        self._write_latency()
        if "nfqueue" not in self._procs:
            spawned = self._spawn(
                "nfqueue",
                SERVER_ROLE,
                [
                    "-m",
                    "integrations.nfqueue",
                    "--queue",
                    str(NFQUEUE_NUM),
                    "--config",
                    str(self.state_dir / "latency.json"),
                ],
            )
            try:
                self._wait(spawned)
            except LabError as exc:
                self._procs.pop("nfqueue", None)
                raise LabUnavailable(f"NFQUEUE daemon failed: {exc}") from exc
        if first:
            if every_packet:
                self._latency_all.add(address)
            self._iptables("-A", address)
        self._write_meta()

    def clear_latency(self, address: str) -> None:
        if address in self._latency:
            self._iptables("-D", address)
            self._latency_all.discard(address)
            del self._latency[address]
            self._write_latency()
            self._write_meta()

    def _iptables(self, op: str, address: str) -> None:
        tool = "ip6tables" if ":" in address else "iptables"
        # mangle PREROUTING sees the SYN as it arrives from the bridge, before the nft input
        # chain, so a delayed-and-broken address is delayed first, then dropped.
        rule = ["-t", "mangle", op, "PREROUTING", "-d", address, "-p", "tcp"]
        if address not in self._latency_all:
            rule.append("--syn")
        rule += ["-j", "NFQUEUE", "--queue-num", str(NFQUEUE_NUM)]
        proc = self.run(SERVER_ROLE, [tool, "-w", *rule])
        if proc.returncode:
            raise LabUnavailable(f"{tool} NFQUEUE rule failed: {proc.stderr.strip()}")

    def _write_latency(self) -> None:
        path = self.state_dir / "latency.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._latency))
        os.replace(tmp, path)

    # -- DNS ---------------------------------------------------------------------------------

    def set_name(
        self,
        name: str,
        *,
        a: Optional[list[str]] = None,
        aaaa: Optional[list[str]] = None,
        impair: Optional[dict[str, Impairment]] = None,
    ) -> str:
        """Add or replace a name in the lab's zone; effective for the next query. Returns the
        fully qualified name."""
        fq = self.zone.set(name, a, aaaa, impair)
        if self._up or self.state_dir.exists():
            self.zone.write(self.state_dir / "zone.json")
        return fq

    def set_dns64_discovery(self, impair: Optional[dict[str, Impairment]] = None) -> None:
        """Impair the DNS64 listener's answers for ``ipv4only.arpa`` (RFC 7050 prefix
        discovery), per record type, as :meth:`set_name` does for zone names; ``None`` or
        ``{}`` restores prompt answers. Effective for the next query."""
        if impair:
            self.zone.names[DISCOVERY_NAME] = NameEntry(impair=dict(impair))
        else:
            self.zone.names.pop(DISCOVERY_NAME, None)
        if self._up or self.state_dir.exists():
            self.zone.write(self.state_dir / "zone.json")

    def set_etc(self, role: str, name: str, text: Optional[str]) -> None:
        """Per-namespace /etc file ``name`` (``resolv.conf``, ``hosts``, ``nsswitch.conf``...;
        ``None`` restores the lab's own, or removes a file the lab does not write); applies to
        processes started afterwards, because ``ip netns exec`` bind-mounts it at start."""
        path = NETNS_ETC / self.ns(role) / name
        if text is None:
            defaults = {"resolv.conf": RESOLV_CONF, "hosts": HOSTS, "nsswitch.conf": NSSWITCH}
            if name in defaults:
                path.write_text(defaults[name])
            else:
                path.unlink(missing_ok=True)
        else:
            path.write_text(text)

    def set_gai_conf(self, role: str, text: Optional[str]) -> None:
        """Per-namespace /etc/gai.conf (``None`` removes it); applies to processes started
        afterwards, because ``ip netns exec`` bind-mounts it at start."""
        path = NETNS_ETC / self.ns(role) / "gai.conf"
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)

    # -- status ------------------------------------------------------------------------------

    def alive(self) -> dict[str, bool]:
        return {label: proc.poll() is None for label, proc in self._procs.items()}

    def describe(self) -> str:
        lines = [f"lab {self.name}: server namespace {self.ns(SERVER_ROLE)}"]
        for spec in self.clients.values():
            six = spec.ipv6 or spec.ipv6_mode
            four = spec.ipv4 or "(no IPv4)"
            lines.append(f"  client {self.ns(spec.role):<16} {four:<16} {six}  ({spec.title})")
        lines.append(f"  DNS {DNS_V4} / {DNS_V6}, HTTP :80 on every server address")
        if self.nat64:
            lines.append(
                f"  NAT64 gateway {self.ns(NAT64_ROLE)} {NAT64_GW_V4} / {NAT64_GW_V6}: tayga, "
                f"prefix {NAT64_PREFIX}, pool {NAT64_POOL}"
            )
            lines.append(f"  DNS64 {DNS64_V6} (ipv4only.arpa, AAAA synthesis)")
        lines.append(f"  state {self.state_dir}")
        return "\n".join(lines)


_SERVER_SYSCTLS = {
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    "net.ipv6.conf.all.accept_ra": "0",
    "net.ipv6.conf.default.accept_ra": "0",
    # Rate-limited ICMP errors would make "refused"/"unreachable" cases flaky.
    "net.ipv4.icmp_ratelimit": "0",
    "net.ipv6.icmp.ratelimit": "0",
    # If br_netfilter is loaded, bridged frames would also traverse iptables; the lab's rules
    # are meant for locally delivered packets only.
    "net.bridge.bridge-nf-call-iptables": "0",
    "net.bridge.bridge-nf-call-ip6tables": "0",
    "net.bridge.bridge-nf-call-arptables": "0",
}
_CLIENT_SYSCTLS = {
    # Without this, new IPv6 addresses stay tentative for 1-2 s after start.
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    "net.ipv6.conf.all.accept_ra": "0",
    "net.ipv6.conf.default.accept_ra": "0",
    # A connect with no timeout to a SYN-dropping address otherwise hangs ~127 s (6 retries);
    # 3 retries give up after ~15 s, far beyond the matrix's 5 s client timeout.
    "net.ipv4.tcp_syn_retries": "3",
}
_NO_IPV6_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
_IPV6_ONLY_SYSCTLS = {
    # The gateway forwards native IPv6 back out of the interface it came in on, and would
    # redirect the client to the server; keep the path fixed (always through the gateway).
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
}
_GATEWAY_SYSCTLS = {
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    "net.ipv6.conf.all.accept_ra": "0",
    "net.ipv6.conf.default.accept_ra": "0",
    # A router: IPv6 from the client to the TUN device, IPv4 from the TUN device to the servers.
    "net.ipv6.conf.all.forwarding": "1",
    "net.ipv4.ip_forward": "1",
    # A new namespace inherits IPv4 settings from the host's; keep reverse-path filtering off
    # whatever the host uses, so translated packets are never dropped by it.
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv4.icmp_ratelimit": "0",
    "net.ipv6.icmp.ratelimit": "0",
}


def tayga_conf(
    prefix: str = NAT64_PREFIX,
    pool: str = NAT64_POOL,
    address: str = NAT64_TAYGA_V4,
    maps: Iterable[tuple[str, str]] = NAT64_STATIC_MAP,
) -> str:
    """tayga.conf for the lab's translator (see tayga.conf(5))."""
    return (
        "# Written by integrations/lab.py; see docs/lab.md (NAT64).\n"
        f"tun-device {NAT64_TUN}\n"
        f"ipv4-addr {address}\n"
        f"prefix {prefix}\n"
        f"dynamic-pool {pool}\n" + "".join(f"map {ipv4} {ipv6}\n" for ipv4, ipv6 in maps)
    )


def _line_buffered() -> list[str]:
    stdbuf = shutil.which("stdbuf")
    return [stdbuf, "-oL"] if stdbuf else []


def _pdeathsig_preexec(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` for non-Python children (tayga): SIGKILL when ``parent`` dies. It
    survives the exec of ``ip netns exec`` and of the program (neither is set-uid). libc is
    loaded here, in the parent: find_library must not run between fork and exec."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def preexec() -> None:
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return preexec


# --------------------------------------------------------------------------------------------
# Command line


def _print_status(name: Optional[str]) -> int:
    labs = lab_status(name)
    if not labs:
        print("no labs" if name is None else f"no lab {name!r}")
        return 0 if name is None else 1
    for info in labs:
        state = "stale" if info["stale"] else ("persistent" if info["persistent"] else "live")
        print(f"lab {info['name']} ({state}, owner {info['owner']})")
        for ns in info["namespaces"]:
            print(f"  netns {ns}")
        for label, (pid, alive) in info["servers"].items():
            print(f"  {label:<8} pid {pid} {'running' if alive else 'dead'}")
        if info["broken"]:
            print(f"  broken (SYN dropped): {', '.join(info['broken'])}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m integrations.lab", description="Start and stop the eyeshim network lab."
    )
    parser.add_argument("command", choices=["up", "down", "status", "cleanup"])
    parser.add_argument("--name", default=None, help="lab name (default: lab; cleanup: all)")
    parser.add_argument(
        "--nat64",
        action="store_true",
        help="up: add the NAT64 gateway (tayga), DNS64 and the IPv6-only client v6",
    )
    parser.add_argument(
        "--matrix-zone",
        action="store_true",
        help="up: load the matrix's zone and break its broken addresses (.33 .35 ::faf2 ::aaa1)",
    )
    args = parser.parse_args(argv)
    name = args.name or "lab"
    try:
        if args.command == "up":
            zone: Optional[Zone] = None
            broken: list[str] = []
            if args.matrix_zone:
                from integrations.scenarios import BROKEN, matrix_zone

                zone, broken = matrix_zone(), list(BROKEN)
            lab = Lab(
                name, zone=zone, broken=broken, persistent=True, replace=True, nat64=args.nat64
            ).up()
            print(lab.describe())
            print(f"up in {lab.timings['up'] * 1000:.0f} ms")
            return 0
        if args.command == "down":
            start = time.perf_counter()
            removed = cleanup(name)
            took = (time.perf_counter() - start) * 1000
            print(f"removed {len(removed)} namespaces in {took:.0f} ms")
            return 0
        if args.command == "status":
            return _print_status(args.name)
        removed = cleanup(args.name)
        listing = f": {' '.join(removed)}" if removed else ""
        print(f"cleanup: removed {len(removed)} namespaces{listing}")
        return 0
    except LabUnavailable as exc:
        print(f"lab unavailable: {exc.reason}", file=sys.stderr)
        return 2
    except LabError as exc:
        print(f"lab error: {exc}", file=sys.stderr)
        return 1


def _sigterm_to_exit(*_: object) -> None:
    raise SystemExit(143)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm_to_exit)
    sys.exit(main())
