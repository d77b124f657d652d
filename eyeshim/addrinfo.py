"""Shared types and names: what a resolved address looks like, everywhere.

Every step of a connection (resolving, ordering, racing, remembering) passes
around ``getaddrinfo()`` entries.  This module is the one place that says
what such an entry is, how to get its address out of it, what each address
family is called, and which families a ``family`` argument asks for, so no
step spells any of that its own way.
"""

from __future__ import annotations

import builtins
import socket

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at the first connection; only mypy needs it
    from typing import Any, Tuple, Union

    #: A getaddrinfo() entry: (family, type, proto, canonname, sockaddr).
    AddrInfo = Tuple[Any, Any, int, str, Tuple[Any, ...]]
    Host = Union[str, bytes, None]
    Port = Union[str, bytes, int, None]
else:  # names that exist at run time too, for modules that import them
    AddrInfo = Host = Port = tuple

__all__ = [
    "AddrInfo",
    "ExceptionGroup",
    "Host",
    "Port",
    "address_of",
    "family_name",
    "lookup_families",
]

_FAMILY_NAMES: dict[int, str] = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}

# What each ``family`` argument resolves, AAAA first (RFC 8305 §3, R1).
_LOOKUP_FAMILIES: dict[int, tuple[int, ...]] = {
    socket.AF_UNSPEC: (socket.AF_INET6, socket.AF_INET),
    socket.AF_INET: (socket.AF_INET,),
    socket.AF_INET6: (socket.AF_INET6,),
}


def address_of(info: AddrInfo) -> str:
    """The destination IP of an entry (with its ``%scope`` for IPv6 link-local)."""
    return str(info[4][0])


def family_name(family: int) -> str:
    """``"ipv6"`` or ``"ipv4"`` (events, counters and documents use these)."""
    return _FAMILY_NAMES.get(family) or str(family)


def lookup_families(family: object) -> tuple[int, ...]:
    """The per-family lookups a ``family`` argument asks for, AAAA first.

    ValueError for anything but AF_UNSPEC, AF_INET or AF_INET6.
    """
    try:
        return _LOOKUP_FAMILIES[family]  # type: ignore[index]
    except (KeyError, TypeError):
        raise ValueError(f"family must be AF_UNSPEC, AF_INET or AF_INET6, got {family!r}") from None


# Python 3.11+: what ``create_connection(..., all_errors=True)`` raises.  On
# 3.9/3.10 there is none, and ``all_errors`` is ignored, as in the stdlib.
ExceptionGroup: Any = getattr(builtins, "ExceptionGroup", None)
