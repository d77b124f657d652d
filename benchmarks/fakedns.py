"""A fixed answer for made-up names, for loopback scenarios.

On loopback there is no DNS server to ask, but the resolver path of each
contender (eyeshim's per-family lookups on its thread pool, asyncio's
``run_in_executor(getaddrinfo)``, urllib3.future's system resolver) is part
of what a hostname costs.  So ``socket.getaddrinfo`` is wrapped to answer a
few ``*.eyeshim.invalid`` names from a table, and every contender resolves
through the same wrapper: the lookup itself costs the same for all of them,
and what differs is the machinery around it.  Every other name goes to the
real resolver.

The wrapper behaves like glibc for the cases the contenders provoke:
``AI_NUMERICHOST`` probes (eyeshim's literal fast path) get EAI_NONAME, and a
family with no answers gets EAI_NODATA, as an AAAA query for a name that has
only A records does.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["install_fake_names", "uninstall_fake_names"]

_real_getaddrinfo = socket.getaddrinfo
_table: dict[str, list[str]] = {}
# glibc's "No address associated with hostname"; Python exposes it on Linux only.
_EAI_NODATA = getattr(socket, "EAI_NODATA", socket.EAI_NONAME)


def _fake_getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[tuple[Any, ...]]:
    name = host.decode() if isinstance(host, bytes) else host
    addresses = _table.get(name) if isinstance(name, str) else None
    if addresses is None:
        return _real_getaddrinfo(host, port, family, type, proto, flags)
    if flags & socket.AI_NUMERICHOST:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    out: list[tuple[Any, ...]] = []
    for address in addresses:
        fam = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        if family in (socket.AF_UNSPEC, fam):
            # The real function builds the tuples (sockaddr shapes, type and
            # proto expansion) for a literal, so the answers are exactly what
            # a DNS answer would have produced.
            out.extend(
                _real_getaddrinfo(address, port, fam, type, proto, flags | socket.AI_NUMERICHOST)
            )
    if not out:
        raise socket.gaierror(_EAI_NODATA, "No address associated with hostname")
    return out


def install_fake_names(table: Mapping[str, Sequence[str]]) -> None:
    """Answer each name in ``table`` with its addresses, in that order."""
    _table.update({name: list(addresses) for name, addresses in table.items()})
    socket.getaddrinfo = _fake_getaddrinfo


def uninstall_fake_names() -> None:
    _table.clear()
    socket.getaddrinfo = _real_getaddrinfo
