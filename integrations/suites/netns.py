"""Loopback-only network namespaces for the suite gate, each with a local tarpit.

The suites aim some tests at addresses that must not answer: urllib3's ``TARPIT_HOST``
(240.0.0.0) and requests' ``TARPIT`` (10.255.255.1). On a normal host those packets would leave
the machine; here every run happens in a fresh namespace of its own (``ip netns add``), whose
only way out is nowhere:

* ``lo`` is up (127.0.0.1, ::1), and ``localhost`` names both (the namespace's own hosts file,
  as on a stock Debian host), so connections to ``localhost`` race ::1 against 127.0.0.1;
* the tarpit: a veth pair with both ends in the namespace; 240.0.0.0/4 and 10.255.255.1 are
  routed to a neighbour with a permanent, made-up MAC address on one end, and the other end,
  which has no address, drops the frames. A connect there times out (the suites' connect-timeout
  tests need that: without a route they would fail at once, stock and eyeshim alike), and
  nothing reaches any real network: the namespace has no link to the host;
* every other destination is unreachable (ENETUNREACH), and name resolution fails at once
  (resolv.conf names 127.0.0.1, where nothing listens; hosts and nsswitch.conf are the
  namespace's own).

Names are ``eys-<pid>-<slot>``; a namespace whose pid is dead is stale and
:func:`cleanup_stale` removes it (and kills what still runs in it), so a crashed run leaves
nothing behind for long.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from integrations.lab import NETNS_ETC, NETNS_RUN, _pids_in_netns
from integrations.procutil import kill_pids, pid_alive

__all__ = [
    "PREFIX",
    "TARPITS",
    "LoopbackNamespace",
    "cleanup_stale",
    "unavailable_reason",
]

PREFIX = "eys-"
_NAME_RE = re.compile(r"^eys-(\d+)-\w+$")
# Destinations that must time out, as the suites' authors expect of them.
TARPITS = ("240.0.0.0/4", "10.255.255.1/32")
# The tarpit's veth: an address from the benchmarking range (RFC 2544), never routed anywhere.
_TARPIT_LOCAL = "198.18.0.1/30"
_TARPIT_GATEWAY = "198.18.0.2"
_TARPIT_MAC = "02:00:5e:00:53:02"
HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
NSSWITCH = "hosts: files dns\nnetworks: files\n"


def _ip(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def unavailable_reason() -> Optional[str]:
    """Why the gate cannot run here (no root, no ``ip``, no namespaces), or None."""
    if not sys.platform.startswith("linux"):
        return "needs Linux network namespaces"
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "ip not found (install iproute2)"
    probe = LoopbackNamespace(f"{PREFIX}{os.getpid()}-probe")
    try:
        probe.create()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return f"cannot make a loopback-only namespace with a tarpit: {exc}"
    finally:
        probe.delete()
    return None


class LoopbackNamespace:
    """One namespace: ``create()``, ``wrap(argv)`` to run in it, ``delete()``."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def for_slot(cls, slot: int) -> LoopbackNamespace:
        return cls(f"{PREFIX}{os.getpid()}-{slot}")

    @property
    def etc(self) -> Path:
        return NETNS_ETC / self.name

    def create(self) -> LoopbackNamespace:
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "hosts").write_text(HOSTS)
        (self.etc / "resolv.conf").write_text(RESOLV_CONF)
        (self.etc / "nsswitch.conf").write_text(NSSWITCH)
        _ip(["netns", "add", self.name])
        lines = [
            "link set lo up",
            "link add tp0 type veth peer name tp1",
            "link set tp0 up",
            "link set tp1 up",
            f"addr add {_TARPIT_LOCAL} dev tp0",
            f"neigh add {_TARPIT_GATEWAY} lladdr {_TARPIT_MAC} dev tp0 nud permanent",
            *(f"route add {prefix} via {_TARPIT_GATEWAY} dev tp0" for prefix in TARPITS),
        ]
        proc = subprocess.run(
            ["ip", "-n", self.name, "-batch", "-"],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"setting up {self.name}: {proc.stderr.strip()}")
        return self

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec`` also bind-mounts the
        namespace's hosts, resolv.conf and nsswitch.conf over /etc's)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def delete(self) -> None:
        if (NETNS_RUN / self.name).exists():
            pids = [p for p in _pids_in_netns([self.name]) if p != os.getpid()]
            if pids:
                kill_pids(pids, timeout=0.5)
            _ip(["netns", "del", self.name], check=False)
        shutil.rmtree(self.etc, ignore_errors=True)


def cleanup_stale() -> list[str]:
    """Delete the namespaces of gate runs whose process is gone. Returns their names."""
    try:
        names = [p.name for p in NETNS_RUN.iterdir()]
    except FileNotFoundError:
        names = []
    names += [p.name for p in NETNS_ETC.glob(f"{PREFIX}*")] if NETNS_ETC.exists() else []
    removed = []
    for name in sorted(set(names)):
        match = _NAME_RE.match(name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        LoopbackNamespace(name).delete()
        removed.append(name)
    return removed
