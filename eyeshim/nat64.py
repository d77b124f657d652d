"""NAT64: reaching IPv4 literals from an IPv6-only network (RFC 8305 §7).

On an IPv6-only network a NAT64 gateway translates IPv6 packets addressed to
``PREFIX + IPv4`` into IPv4 packets, and DNS64 synthesizes such AAAA records
for names that only have A records.  Names therefore just work; IPv4
*literals* do not: ``connect(("192.0.2.1", 80))`` fails at once with
ENETUNREACH, because the host has no IPv4 route.  Config files with an
address in them, FTP's PASV replies and hard-coded addresses all break.

RFC 8305 §7.1 asks the client to do what DNS64 does for names: discover the
NAT64 prefix (RFC 7050: the AAAA records of ``ipv4only.arpa`` embed the
well-known addresses 192.0.0.170 and 192.0.0.171 at the RFC 6052 position,
and what precedes them is the prefix), synthesize IPv6 addresses for the
literal (RFC 6052 §2.2), and race them as if DNS had returned them.

When eyeshim does this: only on a host without a usable IPv4 route, found
out the way source addresses are (a UDP ``connect()`` to the IPv4 address:
no packet is sent, and the kernel says "network unreachable"), and only
after connecting to the IPv4 addresses has failed at once with "network
unreachable" (or "no route").  A router's ICMP host-unreachable on a
dual-stack host fails the connect the same way, but the route check tells
the two apart.  So dual-stack and IPv4-only hosts never look for a prefix;
an IPv6-only host pays one ``ipv4only.arpa`` lookup per prefix lifetime.

The same fallback covers names whose answers were IPv4 only, from a
resolver without DNS64 (§7.3, R28): see step 5 in ``connection.py``.  The
process's discovered prefixes are kept by ``state.STATE``.
Not implemented: the Last Resort Local Synthesis timer (§7.2, R27).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time

from .addrinfo import AddrInfo

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at the first connection
    from typing import Callable, List, Optional, Sequence, Tuple, Union

    IPv4Like = Union[str, ipaddress.IPv4Address]
    IPv6Like = Union[str, ipaddress.IPv6Address]
    Lookup = Callable[[], Sequence[IPv6Like]]

__all__ = [
    "PREFIX_LENGTHS",
    "WELL_KNOWN_IPV4",
    "WELL_KNOWN_PREFIX",
    "Prefixes",
    "extract",
    "prefixes_from_answers",
    "synthesize",
    "synthesized_infos",
    "unreachable",
]

WELL_KNOWN_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
WELL_KNOWN_IPV4 = (ipaddress.IPv4Address("192.0.0.170"), ipaddress.IPv4Address("192.0.0.171"))
PREFIX_LENGTHS = (32, 40, 48, 56, 64, 96)
DISCOVERY_NAME = "ipv4only.arpa"

# Errors that mean "this host cannot send IPv4 there at all", as opposed to
# a server that refused or a path that dropped packets.
UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL})


def _positions(prefix_length: int) -> List[int]:
    """Byte offsets of the four IPv4 bytes for a prefix length (RFC 6052 §2.2):
    right after the prefix, skipping byte 8 (bits 64-71, the "u" octet,
    which must be zero)."""
    if prefix_length not in PREFIX_LENGTHS:
        raise ValueError(
            f"NAT64 prefix length must be one of {PREFIX_LENGTHS} (RFC 6052), got {prefix_length}"
        )
    return [i for i in range(prefix_length // 8, 16) if i != 8][:4]


def synthesize(ipv4: IPv4Like, prefix: ipaddress.IPv6Network) -> ipaddress.IPv6Address:
    """The IPv4-embedded IPv6 address of ``ipv4`` under ``prefix`` (RFC 6052 §2.2).

    The Well-Known Prefix must not carry non-global IPv4 addresses (RFC 6052
    §3.1, checklist N8): that raises ValueError.
    """
    address = ipaddress.IPv4Address(ipv4)
    if prefix == WELL_KNOWN_PREFIX and not address.is_global:
        raise ValueError(
            f"{address} is not a global IPv4 address: the Well-Known Prefix "
            "64:ff9b::/96 must not be used for it (RFC 6052 §3.1)"
        )
    out = bytearray(prefix.network_address.packed)
    for position in range(prefix.prefixlen // 8, 16):
        out[position] = 0  # suffix and "u" octet are zero
    for position, byte in zip(_positions(prefix.prefixlen), address.packed):
        out[position] = byte
    return ipaddress.IPv6Address(bytes(out))


def extract(ipv6: IPv6Like, prefix_length: int) -> ipaddress.IPv4Address:
    """The IPv4 address embedded in ``ipv6`` for a prefix length (RFC 6052 §2.2)."""
    packed = ipaddress.IPv6Address(ipv6).packed
    return ipaddress.IPv4Address(bytes(packed[p] for p in _positions(prefix_length)))


def prefixes_from_answers(answers: Sequence[IPv6Like]) -> List[ipaddress.IPv6Network]:
    """NAT64 prefixes found in the AAAA answers for ``ipv4only.arpa`` (RFC 7050 §3).

    For each answer, every RFC 6052 length is tried; where a well-known IPv4
    address sits at that length's position (with a zero "u" octet), the bits
    before it are the prefix.  Several prefixes may be in use; they are
    returned in answer order, without duplicates.
    """
    found: List[ipaddress.IPv6Network] = []
    for answer in answers:
        address = ipaddress.IPv6Address(str(answer).split("%", 1)[0])
        packed = address.packed
        for length in PREFIX_LENGTHS:
            if length < 96 and packed[8] != 0:
                continue
            if extract(address, length) in WELL_KNOWN_IPV4:
                network = ipaddress.IPv6Network((address, length), strict=False)
                if network not in found:
                    found.append(network)
                break  # the shortest match wins; longer ones are coincidence
    return found


def _lookup_ipv4only() -> List[str]:
    try:
        infos = socket.getaddrinfo(DISCOVERY_NAME, None, socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


class Prefixes:
    """The NAT64 prefixes of the current network, discovered once per lifetime.

    Re-discovered when the lifetime passes (getaddrinfo reports no TTL) or
    when the IPv6 source address towards the discovered prefix changes (a
    different network).

    Discovery is a DNS lookup, which can take seconds when the network's
    DNS is unwell, so it never runs in a caller's thread and never under a
    lock anyone waits on: it runs on a thread of its own, callers wait for
    its result at most as long as they are willing to (their timeout), and
    concurrent callers share one discovery.  A result that arrives after a
    caller gave up still serves the next one.
    """

    def __init__(
        self,
        lookup: Lookup = _lookup_ipv4only,
        lifetime: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        source_of: Optional[Callable[[str], Optional[str]]] = None,
    ) -> None:
        self._lookup = lookup
        self.lifetime = lifetime
        self._clock = clock
        self._source_of = source_of if source_of is not None else _ipv6_source
        self._lock = threading.Lock()
        self._value: Tuple[ipaddress.IPv6Network, ...] = ()
        self._expires = -1.0
        self._source: Optional[str] = None
        self._discovering: Optional[threading.Event] = None

    def get(self, timeout: Optional[float] = None) -> Tuple[ipaddress.IPv6Network, ...]:
        """The prefixes, discovering them if needed and waiting at most
        ``timeout`` seconds (None: until discovery ends); () when there are
        none, or when discovery has not finished in time."""
        with self._lock:
            now = self._clock()
            if now < self._expires and (
                not self._value
                or self._source == self._source_of(str(self._value[0].network_address))
            ):
                return self._value
            done = self._discovering
            if done is None:
                done = self._discovering = threading.Event()
                threading.Thread(
                    target=self._discover, args=(done,), name="eyeshim-nat64", daemon=True
                ).start()
        if not done.wait(timeout):
            return ()
        with self._lock:
            return self._value

    def _discover(self, done: threading.Event) -> None:
        try:
            prefixes = tuple(prefixes_from_answers(self._lookup()))
            source = self._source_of(str(prefixes[0].network_address)) if prefixes else None
        except Exception:
            prefixes, source = (), None
        with self._lock:
            self._value, self._source = prefixes, source
            self._expires = self._clock() + self.lifetime
            self._discovering = None
        done.set()

    def after_fork(self) -> None:
        """In a forked child: the lock may have been held by a parent thread."""
        self._lock = threading.Lock()

    def forget(self) -> None:
        with self._lock:
            self._value, self._expires, self._source = (), -1.0, None


def _ipv6_source(address: str) -> Optional[str]:
    from .sorting import find_source

    found = find_source(address)
    return None if found is None else str(found)


def unreachable(exc: BaseException) -> bool:
    """True if ``exc`` (or every error of a group) says "no route from here"."""
    inner = getattr(exc, "exceptions", None)
    if inner is not None:
        return bool(inner) and all(unreachable(e) for e in inner)
    return isinstance(exc, OSError) and exc.errno in UNREACHABLE


def synthesized_infos(
    ipv4: str, port: int, prefixes: Sequence[ipaddress.IPv6Network]
) -> List[AddrInfo]:
    """getaddrinfo-style entries for ``ipv4`` under each usable prefix."""
    infos: List[AddrInfo] = []
    for prefix in prefixes:
        try:
            address = synthesize(ipv4, prefix)
        except ValueError:
            continue  # e.g. a private IPv4 address under the Well-Known Prefix
        infos.append(
            (
                socket.AF_INET6,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (str(address), port, 0, 0),
            )
        )
    return infos
