"""The RFC 6724 policy table and the glibc ``gai.conf`` that configures it.

What lives here:

* :class:`PolicyTable`: the policy table of RFC 6724 §2.1 (precedence and
  label per IPv6 prefix, longest-prefix match, IPv4 looked up as
  ``::ffff:a.b.c.d`` per §3.2) plus the IPv4 scope table of §3.2, and
  ``Scope(A)`` of §3.1-3.3.  Immutable and hashable.
* The two built-in tables: RFC 6724's (:meth:`PolicyTable.rfc6724`) and
  glibc's (:meth:`PolicyTable.glibc`), which are still RFC 3484's:
  ``::ffff:0:0/96`` at precedence 10, so 6to4 (30) beats native IPv4 there.
* The ``gai.conf`` parser (:meth:`PolicyTable.from_gai_conf`), with glibc's
  semantics: any ``label`` line replaces the whole label table, and the same
  for ``precedence`` and ``scopev4``; a table without a catch-all row gets
  the one glibc adds; malformed lines are skipped (and reported).
* :class:`GaiConfCache`: parsed files kept per path and revalidated with one
  ``stat()`` per call, behind :meth:`PolicyTable.system`.
* :func:`parse_address`, the memoized address parser every module of
  ``eyeshim.sorting`` uses.

Which table a gai.conf is read against.  The tables a file does not
replace come from ``base``.  :meth:`PolicyTable.from_gai_conf` and
:meth:`PolicyTable.system` default to the RFC 6724 tables.  The engine passes
``base=PolicyTable.glibc()`` (``ordering.policy_table``): ``/etc/gai.conf`` is
read exactly as glibc reads it, so eyeshim's first choice is the address
``getaddrinfo`` would have put first.  Where there is no file at all,
:meth:`PolicyTable.system` returns the RFC 6724 table whatever the base,
where glibc would use its built-in (RFC 3484) one: a deliberate difference.

References: RFC 6724 §2.1 (policy table), §3.1-3.3 (scopes), §10.3
(configuring the table); glibc ``sysdeps/posix/getaddrinfo.c`` (gai.conf
format and built-in tables).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at the first connection
    from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

    IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
    AddressLike = Union[ipaddress.IPv4Address, ipaddress.IPv6Address, str]
    _V6Rows = Tuple[Tuple[ipaddress.IPv6Network, int], ...]
    _V4Rows = Tuple[Tuple[ipaddress.IPv4Network, int], ...]
    #: What identifies one version of a file: ``(st_mtime_ns, st_size, st_ino)``.
    Stamp = Tuple[int, int, int]
    _V6RowsIn = Iterable[Tuple[Union[str, ipaddress.IPv6Network], int]]
    _V4RowsIn = Iterable[Tuple[Union[str, ipaddress.IPv4Network], int]]
else:  # run-time stand-ins for names other modules import
    IPAddress = AddressLike = Stamp = tuple


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
# also give site-local, ULA and Teredo their own classes.  glibc uses them
# for whatever its gai.conf does not replace; here they are the base of a
# gai.conf only when asked for (``base=PolicyTable.glibc()``, as the engine
# does).  glibc's IPv4 scopes equal RFC 6724's.
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


# --------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _parse_text(value: str) -> IPAddress:
    # ip_address() understands "fe80::1%eth0" since Python 3.9.  Memoized:
    # one sort looks at each address several times (scope, label,
    # precedence, as destination and as source), and the engine sorts the
    # same few addresses race after race; the objects are immutable.
    return ipaddress.ip_address(value)


def parse_address(value: object, what: str) -> IPAddress:
    """Accept an ipaddress object or a string; name the culprit otherwise.

    ``what`` names the value in the error ("destination", "source", ...):
    ``ValueError`` for a string that is not an IP address, ``TypeError``
    for anything else.  Strings are parsed once (memoized), which matters:
    sorting two addresses parses each of them several times.
    """
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


def policy_key(address: IPAddress) -> int:
    """The 128-bit integer the policy table is searched with (RFC 6724 §3.2).

    An IPv4 address gives its IPv4-mapped form, ``::ffff:a.b.c.d``.
    """
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
        """glibc's built-in table: what getaddrinfo sorts with where no
        gai.conf line replaces it (RFC 3484 precedences: IPv4 10, below 6to4's
        30; labels for site-local, ULA and Teredo).  Pass it as ``base`` to
        read a gai.conf as glibc does.  Always the same instance.
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
        :meth:`glibc` to read the file exactly as glibc does (what the engine
        does with ``/etc/gai.conf``).  ``reload yes|no`` is recorded in
        :attr:`reload`.  ``#`` starts a comment.

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

        Parsed tables are cached per ``(path, base)`` in the process's
        :class:`GaiConfCache` (owned by ``eyeshim.state.STATE``) and
        revalidated by ``stat()``, so a repeated
        call costs one ``stat()`` and an edited (or atomically replaced) file
        is picked up on the next call (see :class:`GaiConfCache`).  Safe to
        call from any number of threads.

        Never raises for file problems: a missing file means the RFC 6724
        table, whatever ``base`` is (glibc would use its built-in table);
        an unreadable one also does, with the reason in :attr:`warnings`.
        Parsing is lenient (see :meth:`from_gai_conf`).
        """
        from ..state import STATE

        return STATE.gai_conf().get(path, base)

    # -- lookups ------------------------------------------------------------

    def precedence(self, address: AddressLike) -> int:
        """Precedence(A): longest-prefix match; IPv4 is looked up as ::ffff:a.b.c.d."""
        value = self._precedence.lookup(policy_key(parse_address(address, "address")))
        # The constructor guarantees a ::/0 row.
        assert value is not None
        return value

    def label(self, address: AddressLike) -> int:
        """Label(A): longest-prefix match; IPv4 is looked up as ::ffff:a.b.c.d."""
        value = self._label.lookup(policy_key(parse_address(address, "address")))
        assert value is not None
        return value

    def scope(self, address: AddressLike) -> int:
        """Scope(A) per RFC 6724 §3.

        IPv4 comes from the scopev4 table (default: 169.254/16 and 127/8
        link-local, the rest global).  IPv6: multicast from its scope field,
        ``::1`` and ``fe80::/10`` link-local, ``fec0::/10`` site-local,
        everything else global (ULAs and IPv4-embedding formats included).
        """
        parsed = parse_address(address, "address")
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


def load_gai_conf(path: str, base: Optional[PolicyTable] = None) -> Tuple[Stamp, PolicyTable]:
    """Read the gai.conf at ``path`` leniently; return (its stamp, its table).

    The stamp comes from ``fstat()`` of the descriptor that is read, so it
    describes exactly the bytes parsed even if the file is replaced between
    a caller's ``stat()`` and this ``open()``.  ``OSError`` propagates.
    """
    with open(path, encoding="utf-8", errors="replace") as file:
        info = os.fstat(file.fileno())
        text = file.read()
    table = PolicyTable.from_gai_conf(text, origin=path, base=base)
    return (info.st_mtime_ns, info.st_size, info.st_ino), table


def _unreadable(path: str, exc: OSError) -> PolicyTable:
    # glibc falls back to its built-in table when fopen() fails; eyeshim
    # falls back to what a missing file gives, the RFC 6724 table, and says
    # why instead of hiding it.
    return PolicyTable(
        origin=path, warnings=(f"{path}: cannot read ({exc}); using the RFC 6724 table",)
    )


class GaiConfCache:
    """Parsed gai.conf files, per ``(path, base)``, revalidated by ``stat()``.

    :meth:`get` stats the file on every call and parses it again only when
    its :data:`Stamp` changed.  The file is read by ``load`` (default
    :func:`load_gai_conf`; tests pass one that counts).  Parsing happens
    under the lock: the file is small, and it keeps a burst of first callers
    from all reading it at once.  The process's instance, behind
    :meth:`PolicyTable.system`, is owned by ``eyeshim.state.STATE`` (which
    gives a forked child a new lock).
    """

    def __init__(
        self,
        load: Callable[[str, Optional[PolicyTable]], Tuple[Stamp, PolicyTable]] = load_gai_conf,
    ) -> None:
        self._load = load
        self._tables: Dict[Tuple[str, Optional[PolicyTable]], Tuple[Stamp, PolicyTable]] = {}
        self._lock = threading.Lock()

    def get(
        self, path: Union[str, os.PathLike[str]], base: Optional[PolicyTable] = None
    ) -> PolicyTable:
        """What :meth:`PolicyTable.system` documents, from this cache."""
        name = os.fspath(path)
        key = (name, base)
        try:
            info = os.stat(name)
        except (FileNotFoundError, NotADirectoryError):
            with self._lock:
                self._tables.pop(key, None)
            return _RFC6724_TABLE
        except OSError as exc:
            return _unreadable(name, exc)
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        with self._lock:
            cached = self._tables.get(key)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            try:
                stamp, table = self._load(name, base)
            except (FileNotFoundError, NotADirectoryError):
                self._tables.pop(key, None)
                return _RFC6724_TABLE
            except OSError as exc:
                return _unreadable(name, exc)
            self._tables[key] = (stamp, table)
            return table

    def after_fork(self) -> None:
        """In a forked child: the lock may have been held by a parent thread."""
        self._lock = threading.Lock()


_RFC6724_TABLE = PolicyTable(origin="RFC 6724")
_GLIBC_TABLE = PolicyTable(_GLIBC_PRECEDENCE, _GLIBC_LABEL, origin="glibc built-in")
