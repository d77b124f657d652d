"""Source(D): the source address the kernel would use for a destination.

**This module opens sockets**; it is the only part of :mod:`eyeshim.sorting`
that does.  :func:`find_source` creates one UDP socket per call,
``connect()``-s it to the destination and asks it for its local address:
the way glibc's getaddrinfo and Go's ``net`` package find Source(D) for
RFC 6724 §6 (rules 1, 2, 5 and 9 compare a destination with its source).
Connecting a UDP socket only runs the routing decision and binds a source
address; no packet is sent and no connection is made.  The socket is closed
before the call returns.

Which source the kernel picks is RFC 6724 §5 (source address selection);
eyeshim does not reimplement it, it asks.
"""

from __future__ import annotations

import ipaddress
import socket

from .policy import AddressLike, IPAddress, parse_address

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at the first connection
    from typing import Any, Optional, Tuple


def _zone_index(zone: str) -> Optional[int]:
    if zone.isascii() and zone.isdigit():
        return int(zone)
    try:
        return socket.if_nametoindex(zone)
    except OSError:
        return None


def find_source(destination: AddressLike, port: int = 9) -> Optional[IPAddress]:
    """Source(D): the address the kernel would send from to reach ``destination``.

    A UDP socket of the destination's family is ``connect()``-ed to it and
    asked for its local address.  Connecting a UDP socket only runs the
    routing decision and binds a source address; nothing goes on the wire,
    so this costs no round trip.  This is how glibc's getaddrinfo and Go's
    ``net`` package feed RFC 6724 too.  ``port`` only has to be valid (9 is
    "discard").  The socket is closed in every case.

    Returns ``None`` when there is no source: no route, the family is not
    available (IPv6 disabled), an unknown zone name, a link-local
    destination without a zone, or any other ``OSError``.  IPv6 zones work
    (``fe80::1%eth0`` or ``fe80::1%2``).

    The result carries no zone (``fe80::2``, not ``fe80::2%eth0``): the
    RFC 6724 rules never look at zones, ``ipaddress`` counts the zone in
    equality (so ``fe80::2%eth0 != fe80::2``), and the destination already
    names the interface.

    Raises ``ValueError``/``TypeError`` for a bad destination or port.
    """
    address = parse_address(destination, "destination")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int between 0 and 65535, got {port!r}")
    sockaddr: Tuple[Any, ...]
    if isinstance(address, ipaddress.IPv6Address):
        family = socket.AF_INET6
        zone = 0
        if address.scope_id is not None:
            index = _zone_index(address.scope_id)
            if index is None:
                return None
            zone = index
        # str() of the bare integer drops the "%zone"; the zone travels as
        # sin6_scope_id instead, which works for names and numbers alike.
        sockaddr = (str(ipaddress.IPv6Address(int(address))), port, 0, zone)
    else:
        family = socket.AF_INET
        sockaddr = (str(address), port)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(sockaddr)
            local = sock.getsockname()
    except OSError:
        return None
    # Some platforms' getnameinfo() append "%zone" to link-local addresses.
    source = ipaddress.ip_address(str(local[0]).split("%", 1)[0])
    if source.is_unspecified:
        return None
    return source
