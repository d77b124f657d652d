"""Destination address sorting for Happy Eyeballs v2.

RFC 8305 §4 says a client MUST sort the addresses it resolved with the
destination address selection of RFC 6724 §6 before it races them, and
SHOULD then interleave the two address families.  ``getaddrinfo`` already
sorts, but only within one call; Happy Eyeballs makes two calls (one per
family, RFC 8305 §3) and has to merge their answers itself, so the sorting
has to be redone here.  This module is that step, and nothing else: it
never resolves names and never opens a connection.

What is implemented:

* :class:`PolicyTable`: the RFC 6724 §2.1 policy table (precedence and
  label per prefix, longest-prefix match) plus the IPv4 scope table of
  §3.2, either the RFC's defaults or read from a glibc ``/etc/gai.conf``
  (:meth:`PolicyTable.system` caches the parsed file and revalidates it
  with one ``stat()`` per call).
* :func:`sort_destinations`: RFC 6724 §6 rules 1, 2, 5, 6, 8, 9 and 10,
  with two hooks the engine needs: ``unusable`` widens rule 1 ("known to be
  unreachable", e.g. an address that failed a moment ago) and
  ``history_key`` sits between rules 8 and 9, where RFC 8305 §4 puts RTT
  and usage history.
* :func:`deciding_rule`: which of those rules put one destination before
  another, for diagnostics (the race's ``sorted`` event).
* :func:`interleave`: RFC 8305 §4's family interleaving with a First
  Address Family Count.
* :func:`find_source`: Source(D), discovered the way glibc's getaddrinfo and
  Go's net package do it: ``connect()`` a UDP socket and ask the kernel
  which address it picked.  No packet is sent.

Deliberate deviations, each explained where it is implemented:

* Rule 9 (longest matching prefix) only compares two IPv6 destinations.
  Applied to IPv4 it defeats DNS round-robin: every client in 10.0.0.0/8
  prefers the same server of a load-balanced set.  Go made the same choice
  for the same reason; glibc restricts it differently.  CommonPrefixLen is
  capped at 64 bits because the source's real prefix length is not
  observable from Python, and /64 is what IPv6 subnets almost always are.
* Rules 3 (avoid deprecated sources), 4 (prefer home addresses) and 7
  (prefer native transport) need address flags and tunnel knowledge that the
  kernel does not expose portably to Python, so they are skipped.  The two
  RFC 6724 §10.2 examples that hinge on rules 3 and 4 therefore come out
  differently (the tests pin down what happens instead).
* Tables that a gai.conf does not mention keep the RFC 6724 defaults, not
  glibc's built-in ones, which are still RFC 3484's (glibc ranks
  ``::ffff:0:0/96`` at precedence 10, so 6to4 beats native IPv4 there).

References: RFC 6724 §2.1 (policy table), §2.2 (CommonPrefixLen), §3.1-3.3
(scopes), §6 (destination rules), §10.2 (examples); RFC 8305 §4 (sorting,
history, interleaving); glibc ``sysdeps/posix/getaddrinfo.c`` (gai.conf
format, source address discovery); Go ``src/net/addrselect.go``.
"""

from __future__ import annotations

import functools
import ipaddress
import operator
import os
import socket
import threading
from typing import (
    Any,
    Callable,
    ClassVar,
    Dict,
    Hashable,
    Iterable,
    List,
    Optional,
    Protocol,
    Tuple,
    TypeVar,
    Union,
)

__all__ = [
    "DEFAULT_GAI_CONF",
    "SCOPE_ADMIN_LOCAL",
    "SCOPE_GLOBAL",
    "SCOPE_INTERFACE_LOCAL",
    "SCOPE_LINK_LOCAL",
    "SCOPE_ORGANIZATION_LOCAL",
    "SCOPE_SITE_LOCAL",
    "AddressLike",
    "IPAddress",
    "PolicyTable",
    "deciding_rule",
    "find_source",
    "interleave",
    "sort_destinations",
]

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
AddressLike = Union[ipaddress.IPv4Address, ipaddress.IPv6Address, str]

_D = TypeVar("_D", bound=AddressLike)
_T = TypeVar("_T")

#: Where glibc reads its configuration from.
DEFAULT_GAI_CONF = "/etc/gai.conf"

# Scope values are the multicast scope field values (RFC 6724 §3.1, RFC 4291
# §2.7); rule 8 compares them numerically, so "smaller" means "more local".
SCOPE_INTERFACE_LOCAL = 0x1
SCOPE_LINK_LOCAL = 0x2
SCOPE_ADMIN_LOCAL = 0x4
SCOPE_SITE_LOCAL = 0x5
SCOPE_ORGANIZATION_LOCAL = 0x8
SCOPE_GLOBAL = 0xE

# glibc stores values as C ints and rejects anything above INT_MAX.
_MAX_VALUE = 2**31 - 1

# ::ffff:0:0/96.  IPv4 addresses are looked up in the (IPv6-only) policy
# table as IPv4-mapped addresses, RFC 6724 §3.2.
_V4_MAPPED = 0xFFFF << 32

# RFC 6724 §2.1, verbatim: (prefix, precedence, label).
_RFC6724_POLICY: Tuple[Tuple[str, int, int], ...] = (
    ("::1/128", 50, 0),
    ("::/0", 40, 1),
    ("::ffff:0:0/96", 35, 4),
    ("2002::/16", 30, 2),
    ("2001::/32", 5, 5),
    ("fc00::/7", 3, 13),
    ("::/96", 1, 3),
    ("fec0::/10", 1, 11),
    ("3ffe::/16", 1, 12),
)

# glibc's built-in tables (sysdeps/posix/getaddrinfo.c, glibc 2.36): RFC
# 3484's precedences, where IPv4 (10) ranks below 6to4 (30), and labels that
# also give site-local, ULA and Teredo their own classes.  They apply to
# whatever a gai.conf does not replace.  Its IPv4 scopes equal RFC 6724's.
_GLIBC_PRECEDENCE: Tuple[Tuple[str, int], ...] = (
    ("::1/128", 50),
    ("2002::/16", 30),
    ("::/96", 20),
    ("::ffff:0:0/96", 10),
    ("::/0", 40),
)
_GLIBC_LABEL: Tuple[Tuple[str, int], ...] = (
    ("::1/128", 0),
    ("2002::/16", 2),
    ("::/96", 3),
    ("::ffff:0:0/96", 4),
    ("fec0::/10", 5),
    ("fc00::/7", 6),
    ("2001::/32", 7),
    ("::/0", 1),
)

# RFC 6724 §3.2: autoconfiguration (169.254/16) and loopback (127/8) are
# link-local, everything else is global.  RFC 3484 also made the RFC 1918
# ranges site-local; RFC 6724 dropped that because NATed private addresses
# then never "matched scope" with a global destination (rule 2) and lost to
# IPv6 even on hosts with no IPv6 connectivity worth the name.
_RFC6724_SCOPEV4: Tuple[Tuple[str, int], ...] = (
    ("169.254.0.0/16", SCOPE_LINK_LOCAL),
    ("127.0.0.0/8", SCOPE_LINK_LOCAL),
    ("0.0.0.0/0", SCOPE_GLOBAL),
)

# What glibc adds when a gai.conf table has no catch-all row, so that every
# lookup finds something.
_IMPLICIT_PRECEDENCE = 40
_IMPLICIT_LABEL = 1
_IMPLICIT_SCOPE = SCOPE_GLOBAL

_V6Rows = Tuple[Tuple[ipaddress.IPv6Network, int], ...]
_V4Rows = Tuple[Tuple[ipaddress.IPv4Network, int], ...]
_V6RowsIn = Iterable[Tuple[Union[str, ipaddress.IPv6Network], int]]
_V4RowsIn = Iterable[Tuple[Union[str, ipaddress.IPv4Network], int]]


class _SupportsLessThan(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


# --------------------------------------------------------------------------
# Address helpers
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _parse_text(value: str) -> IPAddress:
    # ip_address() understands "fe80::1%eth0" since Python 3.9.  Memoized:
    # one sort looks at each address several times (scope, label,
    # precedence, as destination and as source), and the engine sorts the
    # same few addresses race after race; the objects are immutable.
    return ipaddress.ip_address(value)


def _parse_address(value: object, what: str) -> IPAddress:
    """Accept an ipaddress object or a string; name the culprit otherwise."""
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    if isinstance(value, str):
        try:
            return _parse_text(value)
        except ValueError:
            raise ValueError(f"{what} {value!r} is not an IP address") from None
    raise TypeError(
        f"{what} must be an ipaddress.IPv4Address, ipaddress.IPv6Address or str, "
        f"got {type(value).__name__}: {value!r}"
    )


def _policy_key(address: IPAddress) -> int:
    """The 128-bit integer the policy table is searched with (RFC 6724 §3.2)."""
    if address.version == 4:
        return _V4_MAPPED | int(address)
    # int() drops the zone ("%eth0"), which the policy table never looks at.
    return int(address)


def _ipv6_scope(address: ipaddress.IPv6Address) -> int:
    value = int(address)
    if value >> 120 == 0xFF:
        # Multicast carries its scope in the low nibble of the second byte.
        return (value >> 112) & 0xF
    if value == 1:
        # The loopback address is treated as link-local (RFC 4007 §4).
        return SCOPE_LINK_LOCAL
    if value >> 118 == 0xFE80 >> 6:
        return SCOPE_LINK_LOCAL
    if value >> 118 == 0xFEC0 >> 6:
        # Deprecated (RFC 3879), but still has its own scope.
        return SCOPE_SITE_LOCAL
    # Everything else is global, including ULAs (fc00::/7) and, per RFC 6724
    # §3.3, the formats that embed an IPv4 address: IPv4-mapped,
    # IPv4-compatible, 6to4, NAT64 (64:ff9b::/96).  In particular
    # ::ffff:127.0.0.1 is global even though 127.0.0.1 is link-local: an
    # IPv6 destination is judged as IPv6.
    return SCOPE_GLOBAL


def _common_prefix_len(source: ipaddress.IPv6Address, destination: ipaddress.IPv6Address) -> int:
    """CommonPrefixLen(S, D) of RFC 6724 §2.2, capped at a /64 source prefix.

    The RFC stops counting at the end of the source's prefix (the part before
    the interface identifier).  That length is not observable from Python;
    like Go we assume /64, which is what nearly every IPv6 subnet uses.  The
    cap matters: without it two hosts on the same /64 would be ranked by how
    alike their interface identifiers happen to be, which means nothing.
    """
    differing = (int(source) ^ int(destination)).bit_length()
    return min(64, 128 - differing)


# --------------------------------------------------------------------------
# Longest-prefix-match table
# --------------------------------------------------------------------------


class _PrefixMap:
    """An immutable longest-prefix-match map over ``width``-bit integers.

    Tables are tiny (a dozen rows), but a lookup happens several times per
    destination per connection, so rows are bucketed by prefix length and a
    lookup is one dict probe per distinct length, longest first.
    """

    __slots__ = ("_buckets", "_lengths", "_width")

    def __init__(self, rows: Iterable[Tuple[int, int, int]], width: int) -> None:
        buckets: Dict[int, Dict[int, int]] = {}
        for network, prefixlen, value in rows:
            buckets.setdefault(prefixlen, {})[network >> (width - prefixlen)] = value
        self._width = width
        self._buckets = buckets
        self._lengths = tuple(sorted(buckets, reverse=True))

    def lookup(self, key: int) -> Optional[int]:
        for prefixlen in self._lengths:
            value = self._buckets[prefixlen].get(key >> (self._width - prefixlen))
            if value is not None:
                return value
        return None


def _sorted_rows(rows: Dict[Any, int]) -> List[Tuple[Any, int]]:
    # Most specific first, then by address: the order the table is searched
    # in, and a canonical form so that equal tables compare and hash equal.
    return sorted(rows.items(), key=lambda row: (-row[0].prefixlen, int(row[0].network_address)))


def _check_value(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if not 0 <= value <= _MAX_VALUE:
        raise ValueError(f"{what} must be between 0 and {_MAX_VALUE}, got {value}")
    return value


def _v6_rows(rows: _V6RowsIn, what: str, implicit: int) -> _V6Rows:
    table: Dict[ipaddress.IPv6Network, int] = {}
    for prefix, value in rows:
        network = prefix if isinstance(prefix, ipaddress.IPv6Network) else _parse_v6_mask(prefix)
        if network in table:
            raise ValueError(f"duplicate {what} row for {network}")
        table[network] = _check_value(value, f"{what} of {network}")
    # Like glibc: a table without a ::/0 row gets one, so every address has
    # a precedence and a label.
    table.setdefault(ipaddress.IPv6Network("::/0"), implicit)
    return tuple(_sorted_rows(table))


def _v4_rows(rows: _V4RowsIn) -> _V4Rows:
    table: Dict[ipaddress.IPv4Network, int] = {}
    for prefix, value in rows:
        network = prefix if isinstance(prefix, ipaddress.IPv4Network) else _parse_scope_mask(prefix)
        if network in table:
            raise ValueError(f"duplicate scopev4 row for {network}")
        table[network] = _check_value(value, f"scope of {network}")
    table.setdefault(ipaddress.IPv4Network("0.0.0.0/0"), _IMPLICIT_SCOPE)
    return tuple(_sorted_rows(table))


# --------------------------------------------------------------------------
# gai.conf syntax
# --------------------------------------------------------------------------


class _BadLine(Exception):
    """One gai.conf line could not be used; the message says why."""


def _parse_uint(text: str, what: str, maximum: int) -> int:
    # Digits only: glibc's strtoul would also take "+5", " 5" or "0x5" in
    # places; none of that is meant, and a typo should be reported.
    if not (text.isascii() and text.isdigit()):
        raise _BadLine(f"{what} {text!r} is not a whole number")
    value = int(text)
    if value > maximum:
        raise _BadLine(f"{what} {value} is out of range (0-{maximum})")
    return value


def _parse_v6_mask(text: str) -> ipaddress.IPv6Network:
    """``<IPv6 address>[/<0-128>]``, as in glibc's ``label``/``precedence``."""
    address_text, slash, length_text = text.partition("/")
    try:
        address = ipaddress.IPv6Address(address_text)
    except ValueError:
        raise _BadLine(f"{address_text!r} is not an IPv6 address") from None
    if address.scope_id is not None:
        raise _BadLine(f"a prefix cannot carry a zone: {text!r}")
    length = _parse_uint(length_text, "prefix length", 128) if slash else 128
    # Host bits beyond the prefix are ignored, as glibc's matcher does.
    return ipaddress.IPv6Network((int(address), length), strict=False)


def _parse_scope_mask(text: str) -> ipaddress.IPv4Network:
    """``::ffff:a.b.c.d[/96-128]`` or ``a.b.c.d[/0-32]``, as in ``scopev4``."""
    address_text, slash, length_text = text.partition("/")
    if ":" in address_text:
        try:
            mapped = ipaddress.IPv6Address(address_text)
        except ValueError:
            raise _BadLine(f"{address_text!r} is not an IPv6 address") from None
        embedded = mapped.ipv4_mapped
        if embedded is None:
            raise _BadLine(f"an IPv6 scopev4 mask must be IPv4-mapped (::ffff:a.b.c.d): {text!r}")
        length = _parse_uint(length_text, "prefix length", 128) if slash else 128
        if length < 96:
            raise _BadLine(
                f"prefix length {length} of an IPv4-mapped mask is out of range (96-128)"
            )
        return ipaddress.IPv4Network((int(embedded), length - 96), strict=False)
    try:
        address = ipaddress.IPv4Address(address_text)
    except ValueError:
        raise _BadLine(f"{address_text!r} is not an IPv4 address") from None
    length = _parse_uint(length_text, "prefix length", 32) if slash else 32
    return ipaddress.IPv4Network((int(address), length), strict=False)


class _GaiConf:
    """The result of reading a gai.conf text, before it becomes a table."""

    def __init__(self) -> None:
        self.precedence: Dict[ipaddress.IPv6Network, int] = {}
        self.label: Dict[ipaddress.IPv6Network, int] = {}
        self.scopev4: Dict[ipaddress.IPv4Network, int] = {}
        self.first_line: Dict[Tuple[str, object], int] = {}
        self.reload = False
        self.problems: List[str] = []


def _read_line(conf: _GaiConf, lineno: int, directive: str, args: List[str]) -> int:
    """Apply one gai.conf line to ``conf``; return how many arguments it used."""
    if directive == "reload":
        if not args:
            raise _BadLine("expected 'reload yes|no'")
        if args[0] not in ("yes", "no"):
            raise _BadLine(f"reload takes 'yes' or 'no', not {args[0]!r}")
        conf.reload = args[0] == "yes"
        return 1
    if directive not in ("label", "precedence", "scopev4"):
        raise _BadLine(f"unknown directive {directive!r}")
    if len(args) < 2:
        raise _BadLine(f"expected '{directive} <mask> <value>'")
    network: Union[ipaddress.IPv4Network, ipaddress.IPv6Network] = (
        _parse_scope_mask(args[0]) if directive == "scopev4" else _parse_v6_mask(args[0])
    )
    value = _parse_uint(args[1], "value", _MAX_VALUE)
    first = conf.first_line.get((directive, network))
    if first is not None:
        # glibc keeps every row and sorts them by prefix length; for two rows
        # with the same prefix its (in practice stable) qsort leaves the
        # earlier one first, and the first match wins.  Same result here, but
        # said out loud: an "override" appended to the end of the file does
        # nothing.
        raise _BadLine(f"duplicate {directive} {network}; line {first} is used")
    conf.first_line[(directive, network)] = lineno
    if isinstance(network, ipaddress.IPv4Network):
        conf.scopev4[network] = value
    elif directive == "label":
        conf.label[network] = value
    else:
        conf.precedence[network] = value
    return 2


def _read_gai_conf(text: str, origin: str) -> _GaiConf:
    conf = _GaiConf()
    for lineno, raw in enumerate(text.splitlines(), start=1):
        # '#' starts a comment anywhere; there is no escaping (glibc agrees).
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        directive, args = fields[0], fields[1:]
        try:
            used = _read_line(conf, lineno, directive, args)
        except _BadLine as exc:
            conf.problems.append(f"{origin}: line {lineno}: {exc}: {raw.strip()!r}")
            continue
        if len(args) > used:
            # glibc ignores the rest of the line, and so does this parser;
            # but a third word is most likely a mistake worth mentioning.
            extra = " ".join(args[used:])
            conf.problems.append(
                f"{origin}: line {lineno}: ignored trailing text {extra!r}: {raw.strip()!r}"
            )
    return conf


# --------------------------------------------------------------------------
# The policy table
# --------------------------------------------------------------------------


def _rebuild(
    precedence: _V6Rows,
    label: _V6Rows,
    scopev4: _V4Rows,
    reload: bool,
    warnings: Tuple[str, ...],
    origin: str,
) -> PolicyTable:
    return PolicyTable(precedence, label, scopev4, reload=reload, warnings=warnings, origin=origin)


class PolicyTable:
    """An RFC 6724 policy table plus the IPv4 scope table (immutable).

    ``PolicyTable()`` is the RFC 6724 default.  Passing rows for one table
    *replaces* that table, as a gai.conf does; a table without a catch-all
    row gets the implicit one glibc adds (``::/0`` precedence 40, ``::/0``
    label 1, IPv4 scope 14)::

        PolicyTable(precedence=[("::ffff:0:0/96", 100)])   # "prefer IPv4"

    Rows are ``(prefix, value)``; a prefix is an ``IPv6Network``/
    ``IPv4Network`` or a string in gai.conf syntax.  Values are ints from 0
    to 2**31-1.

    Instances cannot be modified, compare equal when their three tables and
    ``reload`` are equal (``origin`` and ``warnings`` are provenance, not
    policy), and are hashable, so one table can be shared by every thread
    and stored in a frozen config.
    """

    __slots__ = (
        "_hash",
        "_label",
        "_precedence",
        "_scopev4",
        "label_table",
        "origin",
        "precedence_table",
        "reload",
        "scopev4_table",
        "warnings",
    )

    #: Rows of the precedence table, most specific first.
    precedence_table: _V6Rows
    #: Rows of the label table, most specific first.
    label_table: _V6Rows
    #: Rows of the IPv4 scope table, most specific first.
    scopev4_table: _V4Rows
    #: gai.conf's ``reload`` flag.  Recorded only: :meth:`system` always
    #: revalidates the file with ``stat()``, which is cheap.
    reload: bool
    #: What was wrong with the gai.conf text (empty for a clean one).
    warnings: Tuple[str, ...]
    #: Where the table came from, for messages and ``repr``.
    origin: str

    _precedence: _PrefixMap
    _label: _PrefixMap
    _scopev4: _PrefixMap
    _hash: int

    _system_cache: ClassVar[
        Dict[Tuple[str, Optional[PolicyTable]], Tuple[Tuple[int, int, int], PolicyTable]]
    ] = {}
    _system_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        precedence: Optional[_V6RowsIn] = None,
        label: Optional[_V6RowsIn] = None,
        scopev4: Optional[_V4RowsIn] = None,
        *,
        reload: bool = False,
        warnings: Iterable[str] = (),
        origin: Optional[str] = None,
    ) -> None:
        if precedence is None:
            precedence = ((prefix, value) for prefix, value, _ in _RFC6724_POLICY)
        if label is None:
            label = ((prefix, value) for prefix, _, value in _RFC6724_POLICY)
        if scopev4 is None:
            scopev4 = _RFC6724_SCOPEV4
        setter = object.__setattr__
        setter(self, "precedence_table", _v6_rows(precedence, "precedence", _IMPLICIT_PRECEDENCE))
        setter(self, "label_table", _v6_rows(label, "label", _IMPLICIT_LABEL))
        setter(self, "scopev4_table", _v4_rows(scopev4))
        setter(self, "reload", bool(reload))
        setter(self, "warnings", tuple(warnings))
        setter(self, "origin", "custom" if origin is None else origin)
        setter(self, "_precedence", _v6_map(self.precedence_table))
        setter(self, "_label", _v6_map(self.label_table))
        setter(
            self,
            "_scopev4",
            _PrefixMap(
                ((int(net.network_address), net.prefixlen, v) for net, v in self.scopev4_table), 32
            ),
        )
        setter(
            self,
            "_hash",
            hash((self.precedence_table, self.label_table, self.scopev4_table, self.reload)),
        )

    # -- construction -------------------------------------------------------

    @classmethod
    def rfc6724(cls) -> PolicyTable:
        """The RFC 6724 §2.1 default table and the §3.2 IPv4 scopes.

        Always the same (immutable) instance.
        """
        return _RFC6724_TABLE

    @classmethod
    def glibc(cls) -> PolicyTable:
        """glibc's built-in table: what getaddrinfo sorts with when no
        gai.conf line replaces it (RFC 3484 precedences: IPv4 10, below 6to4's
        30; labels for site-local, ULA and Teredo).  Always the same instance.
        """
        return _GLIBC_TABLE

    @classmethod
    def from_gai_conf(
        cls,
        text: str,
        *,
        strict: bool = False,
        origin: str = "<gai.conf>",
        base: Optional[PolicyTable] = None,
    ) -> PolicyTable:
        """Build a table from gai.conf text, with glibc's replacement semantics.

        ``label``, ``precedence`` and ``scopev4`` lines replace the whole
        corresponding table (not merge into it); a table that no valid line
        mentions is taken from ``base``: the RFC 6724 table by default, or
        :meth:`glibc` to read the file exactly as glibc does.  ``reload yes|no`` is recorded
        in :attr:`reload`.  ``#`` starts a comment.

        Malformed lines (unknown directive, missing or non-numeric value,
        bad prefix, out-of-range prefix length, duplicate prefix) are skipped
        and described in :attr:`warnings`, which is what glibc does minus the
        description: it drops such lines silently and only discards the whole
        file when it runs out of memory.  With ``strict=True`` the first
        problem raises :class:`ValueError` instead, naming the line number and
        the line.
        """
        conf = _read_gai_conf(text, origin)
        if strict and conf.problems:
            raise ValueError(conf.problems[0])
        defaults = base if base is not None else _RFC6724_TABLE
        return cls(
            conf.precedence.items() if conf.precedence else defaults.precedence_table,
            conf.label.items() if conf.label else defaults.label_table,
            conf.scopev4.items() if conf.scopev4 else defaults.scopev4_table,
            reload=conf.reload,
            warnings=conf.problems,
            origin=origin,
        )

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike[str]], *, strict: bool = False) -> PolicyTable:
        """Read and parse a gai.conf file.  ``OSError`` propagates."""
        name = os.fspath(path)
        with open(name, encoding="utf-8", errors="replace") as file:
            text = file.read()
        return cls.from_gai_conf(text, strict=strict, origin=name)

    @classmethod
    def system(
        cls,
        path: Union[str, os.PathLike[str]] = DEFAULT_GAI_CONF,
        *,
        base: Optional[PolicyTable] = None,
    ) -> PolicyTable:
        """``path`` parsed if it exists (tables it does not mention from
        ``base``, see :meth:`from_gai_conf`), else the RFC 6724 table.

        Parsed tables are cached per path and keyed by the file's
        ``(st_mtime_ns, st_size, st_ino)``, so a repeated call costs one
        ``stat()`` and an edited (or atomically replaced) file is picked up
        on the next call.  Safe to call from any number of threads; the file
        is read at most once per change.

        Never raises for file problems: a missing file means the RFC 6724
        table (as for glibc); an unreadable one also does, with the reason in
        :attr:`warnings`.  Parsing is lenient (see :meth:`from_gai_conf`).
        """
        name = os.fspath(path)
        key = (name, base)
        try:
            info = os.stat(name)
        except (FileNotFoundError, NotADirectoryError):
            with cls._system_lock:
                cls._system_cache.pop(key, None)
            return _RFC6724_TABLE
        except OSError as exc:
            return _unreadable(name, exc)
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        with cls._system_lock:
            cached = cls._system_cache.get(key)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            # Parse under the lock: the file is small, and it keeps a burst
            # of first callers from all reading it at once.
            try:
                stamp, table = _load_system_file(name, base)
            except (FileNotFoundError, NotADirectoryError):
                cls._system_cache.pop(key, None)
                return _RFC6724_TABLE
            except OSError as exc:
                return _unreadable(name, exc)
            cls._system_cache[key] = (stamp, table)
            return table

    # -- lookups ------------------------------------------------------------

    def precedence(self, address: AddressLike) -> int:
        """Precedence(A): longest-prefix match; IPv4 is looked up as ::ffff:a.b.c.d."""
        value = self._precedence.lookup(_policy_key(_parse_address(address, "address")))
        # The constructor guarantees a ::/0 row.
        assert value is not None
        return value

    def label(self, address: AddressLike) -> int:
        """Label(A): longest-prefix match; IPv4 is looked up as ::ffff:a.b.c.d."""
        value = self._label.lookup(_policy_key(_parse_address(address, "address")))
        assert value is not None
        return value

    def scope(self, address: AddressLike) -> int:
        """Scope(A) per RFC 6724 §3.

        IPv4 comes from the scopev4 table (default: 169.254/16 and 127/8
        link-local, the rest global).  IPv6: multicast from its scope field,
        ``::1`` and ``fe80::/10`` link-local, ``fec0::/10`` site-local,
        everything else global (ULAs and IPv4-embedding formats included).
        """
        parsed = _parse_address(address, "address")
        if isinstance(parsed, ipaddress.IPv6Address):
            return _ipv6_scope(parsed)
        value = self._scopev4.lookup(int(parsed))
        assert value is not None
        return value

    # -- presentation -------------------------------------------------------

    def to_gai_conf(self) -> str:
        """The table as gai.conf text; ``from_gai_conf`` of it gives an equal table."""
        lines = [f"# {self.origin}", f"reload {'yes' if self.reload else 'no'}"]
        lines += [f"precedence {net} {value}" for net, value in self.precedence_table]
        lines += [f"label {net} {value}" for net, value in self.label_table]
        lines += [f"scopev4 {net} {value}" for net, value in self.scopev4_table]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        def rows(table: Iterable[Tuple[Any, int]]) -> str:
            return "{" + ", ".join(f"{str(net)!r}: {value}" for net, value in table) + "}"

        return (
            f"PolicyTable(origin={self.origin!r}, "
            f"precedence={rows(self.precedence_table)}, "
            f"label={rows(self.label_table)}, "
            f"scopev4={rows(self.scopev4_table)}, "
            f"reload={self.reload}, warnings={len(self.warnings)})"
        )

    # -- value semantics ----------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PolicyTable):
            return NotImplemented
        return (
            self.precedence_table == other.precedence_table
            and self.label_table == other.label_table
            and self.scopev4_table == other.scopev4_table
            and self.reload == other.reload
        )

    def __hash__(self) -> int:
        return self._hash

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"PolicyTable is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"PolicyTable is immutable (cannot delete {name!r})")

    def __reduce__(self) -> Tuple[Any, ...]:
        # The default slots protocol would restore state through
        # __setattr__, which refuses; rebuild through the constructor.
        return (
            _rebuild,
            (
                self.precedence_table,
                self.label_table,
                self.scopev4_table,
                self.reload,
                self.warnings,
                self.origin,
            ),
        )

    def __copy__(self) -> PolicyTable:
        return self

    def __deepcopy__(self, memo: Dict[int, Any]) -> PolicyTable:
        return self


def _v6_map(rows: _V6Rows) -> _PrefixMap:
    return _PrefixMap(((int(net.network_address), net.prefixlen, v) for net, v in rows), 128)


def _load_system_file(
    path: str, base: Optional[PolicyTable] = None
) -> Tuple[Tuple[int, int, int], PolicyTable]:
    """Read ``path`` and return (its stamp, its table).

    The stamp comes from ``fstat()`` of the descriptor that is read, so it
    describes exactly the bytes parsed even if the file is replaced between
    the caller's ``stat()`` and this ``open()``.
    """
    with open(path, encoding="utf-8", errors="replace") as file:
        info = os.fstat(file.fileno())
        text = file.read()
    table = PolicyTable.from_gai_conf(text, origin=path, base=base)
    return (info.st_mtime_ns, info.st_size, info.st_ino), table


def _unreadable(path: str, exc: OSError) -> PolicyTable:
    # glibc falls back to its built-in table when fopen() fails; so do we,
    # but say why instead of hiding it.
    return PolicyTable(
        origin=path, warnings=(f"{path}: cannot read ({exc}); using the RFC 6724 table",)
    )


_RFC6724_TABLE = PolicyTable(origin="RFC 6724")
_GLIBC_TABLE = PolicyTable(_GLIBC_PRECEDENCE, _GLIBC_LABEL, origin="glibc built-in")


# --------------------------------------------------------------------------
# Destination sorting (RFC 6724 §6)
# --------------------------------------------------------------------------


def _match_source_family(
    destination: IPAddress, source: IPAddress, destination_obj: object, source_obj: object
) -> IPAddress:
    if source.version == destination.version:
        return source
    # A dual-stack AF_INET6 socket reports IPv4 peers and sources as
    # ::ffff:a.b.c.d; that is the same address, not a different family.
    if isinstance(source, ipaddress.IPv6Address) and source.ipv4_mapped is not None:
        return source.ipv4_mapped
    if isinstance(destination, ipaddress.IPv6Address) and destination.ipv4_mapped is not None:
        return ipaddress.IPv6Address(_V4_MAPPED | int(source))
    raise ValueError(
        f"source {source_obj!r} is IPv{source.version} but destination {destination_obj!r} "
        f"is IPv{destination.version}; a source address always has its destination's family"
    )


def _rank(
    candidate: Tuple[_D, Optional[AddressLike]],
    table: PolicyTable,
    unusable: Optional[Callable[[_D], bool]],
    history_key: Optional[Callable[[_D], _SupportsLessThan]],
) -> Tuple[_D, Tuple[Any, ...], Optional[int]]:
    """One candidate's sort key (rules 1-8 and history) and its rule-9 prefix
    length (None where rule 9 does not apply).

    Shared by :func:`sort_destinations` and :func:`deciding_rule`, so that
    the rule the latter names is, by construction, the one the sort used.
    """
    try:
        destination_obj, source_obj = candidate
    except (TypeError, ValueError):
        raise TypeError(
            f"each candidate must be a (destination, source) pair, got {candidate!r}"
        ) from None
    destination = _parse_address(destination_obj, "destination")
    source = None
    if source_obj is not None:
        source = _match_source_family(
            destination, _parse_address(source_obj, "source"), destination_obj, source_obj
        )

    # Called for every destination, with or without a source, so that a
    # caller counting or logging calls sees each destination exactly once.
    known_bad = unusable is not None and unusable(destination_obj)
    usable = source is not None and not known_bad
    destination_scope = table.scope(destination)
    # Rules 2 and 5 cannot hold without a source; treating them as "not
    # matching" keeps two sourceless destinations tied, as glibc and Go do.
    matching_scope = source is not None and table.scope(source) == destination_scope
    matching_label = source is not None and table.label(source) == table.label(destination)
    history: Any = 0 if history_key is None else history_key(destination_obj)
    key = (
        not usable,  # rule 1: False sorts first
        not matching_scope,  # rule 2
        not matching_label,  # rule 5
        -table.precedence(destination),  # rule 6: higher first
        destination_scope,  # rule 8: smaller first
        history,  # RFC 8305 §4: between rules 8 and 9
    )
    prefix_length: Optional[int] = None
    if isinstance(destination, ipaddress.IPv6Address) and isinstance(source, ipaddress.IPv6Address):
        prefix_length = _common_prefix_len(source, destination)
    # else rule 9 does not apply: IPv4 (round-robin), or no source.
    return destination_obj, key, prefix_length


def sort_destinations(
    candidates: Iterable[Tuple[_D, Optional[AddressLike]]],
    policy: Optional[PolicyTable] = None,
    *,
    unusable: Optional[Callable[[_D], bool]] = None,
    history_key: Optional[Callable[[_D], _SupportsLessThan]] = None,
) -> List[_D]:
    """Sort destinations by RFC 6724 §6; return them, best first.

    ``candidates`` holds ``(destination, source)`` pairs: each address an
    ``ipaddress`` object or a string (IPv6 may carry ``%zone``), ``source``
    being Source(D) as :func:`find_source` reports it, or ``None`` when there
    is no route.  The destination objects themselves are returned, not
    copies or parsed forms.

    Rules applied, in order (the first that tells two destinations apart
    decides):

    1. Avoid unusable destinations: no source, or ``unusable(d)`` is true
       (the caller's "known to be unreachable", e.g. failed a moment ago).
    2. Prefer matching scope: Scope(D) == Scope(Source(D)).
    5. Prefer matching label: Label(D) == Label(Source(D)).
    6. Prefer higher Precedence(D).
    8. Prefer smaller Scope(D).
    -  ``history_key(d)``, smaller first: RFC 8305 §4 puts RTT and usage
       history between rules 8 and 9.
    9. Longest matching prefix, only between two IPv6 destinations that both
       have a source (see below).
    10. Otherwise keep the input order (the sort is stable).

    Rules 3 (avoid deprecated source addresses), 4 (prefer home addresses)
    and 7 (prefer native transport) are not applied: address lifetimes,
    Mobile IPv6 home addresses and tunnels are not observable from Python.

    Why rule 9 is not a sort key.  Rules 1-8 and the history key depend on
    one destination at a time, so together they are one sort key, and a key
    sort is consistent by construction.  Rule 9 depends on a pair: it only
    compares two IPv6 destinations (applied to IPv4, where every client in
    10/8 shares a long prefix with the same servers, it would defeat DNS
    round-robin; Go made the same choice).  "Not compared" is not
    transitive: with A (IPv6, prefix 64), B (IPv4) and C (IPv6, prefix 40)
    tied on everything else and given as C, B, A, rule 10 wants C<B and B<A
    while rule 9 wants A<C.  No comparator can satisfy that cycle, and
    what a ``cmp_to_key`` sort (or Go's ``sort.Stable``) returns then
    depends on the sort algorithm's probing order.  So the order is made
    explicit instead: after the key sort, in each group of destinations tied
    on the whole key, the IPv6 destinations that have a source are stably
    reordered by CommonPrefixLen among the positions IPv6 destinations
    already hold in that group; every other destination keeps its place.
    Consequences: rules 1-8 and the history key always hold; IPv4
    destinations keep their relative input order; between IPv6 destinations
    rules 9 and 10 hold exactly; and where the families mix inside a group
    (only possible with a custom table or history key) the input's pattern
    of families is kept, which the interleaving step redoes anyway.

    :func:`interleave` should be applied to the result (RFC 8305 §4).

    Raises ``ValueError`` for a string that is not an IP address and for a
    source whose family differs from its destination's (an IPv4-mapped
    IPv6 address counts as IPv4), ``TypeError`` for other types.
    ``unusable`` and ``history_key`` are called once per destination, with
    the destination object as given.
    """
    table = _RFC6724_TABLE if policy is None else policy
    destinations: List[_D] = []
    keys: List[Tuple[Any, ...]] = []
    prefix_lengths: List[Optional[int]] = []

    for candidate in candidates:
        destination_obj, key, prefix_length = _rank(candidate, table, unusable, history_key)
        keys.append(key)
        prefix_lengths.append(prefix_length)
        destinations.append(destination_obj)

    # Stable: equal keys keep input order, which is rule 10.
    order = sorted(range(len(destinations)), key=keys.__getitem__)

    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and keys[order[end]] == keys[order[start]]:
            end += 1
        slots = [pos for pos in range(start, end) if prefix_lengths[order[pos]] is not None]
        if len(slots) > 1:
            members = [order[pos] for pos in slots]
            # Stable again: equal prefix lengths keep input order (rule 10).
            members.sort(key=lambda index: -(prefix_lengths[index] or 0))
            for pos, index in zip(slots, members):
                order[pos] = index
        start = end

    return [destinations[index] for index in order]


# What deciding_rule() returns, by position in the sort key of _rank().
_KEY_RULES = (
    "rule 1: avoid unusable",
    "rule 2: matching scope",
    "rule 5: matching label",
    "rule 6: higher precedence",
    "rule 8: smaller scope",
    "history",
)
_RULE_9 = "rule 9: longest matching prefix"
_RULE_10 = "rule 10: DNS order"


def deciding_rule(
    a: Tuple[_D, Optional[AddressLike]],
    b: Tuple[_D, Optional[AddressLike]],
    policy: Optional[PolicyTable] = None,
    *,
    unusable: Optional[Callable[[_D], bool]] = None,
    history_key: Optional[Callable[[_D], _SupportsLessThan]] = None,
) -> str:
    """Name the rule by which :func:`sort_destinations` puts ``a`` before ``b``.

    ``a`` and ``b`` are ``(destination, source)`` pairs and the other
    arguments mean what they mean to :func:`sort_destinations` (pass the
    same ones, or the answer describes a different sort).  The result is
    the first rule that tells the two apart:

    ``"rule 1: avoid unusable"``, ``"rule 2: matching scope"``,
    ``"rule 5: matching label"``, ``"rule 6: higher precedence"``,
    ``"rule 8: smaller scope"``, ``"history"`` (``history_key``),
    ``"rule 9: longest matching prefix"``, or ``"rule 10: DNS order"`` when
    nothing does and their order in the input decides.

    Rule 10 is also the answer for an IPv4 and an IPv6 destination tied on
    every key (possible only with a custom table or history key): rule 9
    does not compare them, and the sort keeps the input's pattern of
    families there (see :func:`sort_destinations`).

    Raises ``ValueError`` when a rule puts ``b`` before ``a``: the pair is
    not in an order the sort can produce, so no rule explains it.  Other
    errors are those of :func:`sort_destinations`.
    """
    table = _RFC6724_TABLE if policy is None else policy
    # The very same key the sort uses, so the two cannot disagree.
    _, key_a, prefix_a = _rank(a, table, unusable, history_key)
    _, key_b, prefix_b = _rank(b, table, unusable, history_key)
    for rule, value_a, value_b in zip(_KEY_RULES, key_a, key_b):
        if value_a != value_b:
            if value_b < value_a:
                raise ValueError(f"{rule} puts {b[0]!r} before {a[0]!r}")
            return rule
    if prefix_a is not None and prefix_b is not None and prefix_a != prefix_b:
        if prefix_a < prefix_b:
            raise ValueError(f"{_RULE_9} puts {b[0]!r} before {a[0]!r}")
        return _RULE_9
    return _RULE_10


# --------------------------------------------------------------------------
# Interleaving (RFC 8305 §4)
# --------------------------------------------------------------------------


def _address_family(item: object) -> int:
    if isinstance(item, (ipaddress.IPv4Address, ipaddress.IPv6Address, str)):
        address = _parse_address(item, "address")
        return socket.AF_INET if address.version == 4 else socket.AF_INET6
    raise TypeError(
        f"cannot tell the address family of {item!r}; pass family=, e.g. "
        "family=lambda info: info[0] for getaddrinfo() tuples"
    )


def interleave(
    addresses: Iterable[_T],
    first_family_count: int = 1,
    *,
    family: Optional[Callable[[_T], Hashable]] = None,
) -> List[_T]:
    """Interleave address families, RFC 8305 §4.

    Takes ``first_family_count`` (the First Address Family Count, default 1)
    addresses of the first address's family, then alternates one address of
    the other family and one of the first; when a family runs out the rest of
    the other follows in order.  Order within a family is preserved, so the
    RFC 6724 order decided by :func:`sort_destinations` survives::

        [6a, 6b, 6c, 4a, 4b], 1  ->  [6a, 4a, 6b, 4b, 6c]
        [6a, 6b, 6c, 4a, 4b], 2  ->  [6a, 6b, 4a, 6c, 4b]

    The point is that a broken family costs at most one Connection Attempt
    Delay before the other family gets a turn, instead of one per address.

    Elements are returned as given.  By default their family is read from
    ``ipaddress`` objects or address strings; for anything else pass
    ``family`` (element -> ``socket.AF_INET``/``AF_INET6``), e.g.
    ``family=lambda info: info[0]`` for ``getaddrinfo()`` 5-tuples.  More
    than two families (a custom ``family``) are taken round-robin in order
    of first appearance, which is what asyncio does.

    Raises ``ValueError`` if ``first_family_count`` < 1.
    """
    count = operator.index(first_family_count)
    if count < 1:
        raise ValueError(f"first_family_count must be >= 1, got {count}")
    get_family: Callable[[_T], Hashable] = _address_family if family is None else family

    groups: Dict[Hashable, List[_T]] = {}
    for item in addresses:
        groups.setdefault(get_family(item), []).append(item)
    if not groups:
        return []

    lists = list(groups.values())  # dicts keep insertion order: first family first
    result = lists[0][: count - 1]
    lists[0] = lists[0][count - 1 :]
    for position in range(max(len(group) for group in lists)):
        result.extend(group[position] for group in lists if position < len(group))
    return result


# --------------------------------------------------------------------------
# Source address discovery
# --------------------------------------------------------------------------


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
    address = _parse_address(destination, "destination")
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
