"""RFC 6724 §6: the destination address rules, as RFC 8305 §4 asks for them.

RFC 8305 §4 says a client MUST sort the addresses it resolved with the
destination address selection of RFC 6724 §6 before it races them.
``getaddrinfo`` already sorts, but only within one call; Happy Eyeballs
makes two calls (one per family, RFC 8305 §3) and has to merge their answers
itself, so the sorting has to be redone.  This module is that sort, and it
is pure: the policy comes from :mod:`eyeshim.sorting.policy`, each
destination's source address from the caller (see
:mod:`eyeshim.sorting.sources`).

* :func:`sort_destinations`: rules 1, 2, 5, 6, 8, 9 and 10, with two hooks
  the engine needs: ``unusable`` widens rule 1 ("known to be unreachable",
  e.g. an address that failed a moment ago) and ``history_key`` sits between
  rules 8 and 9, where RFC 8305 §4 puts RTT and usage history.
* :func:`deciding_rule`: which of those rules put one destination before
  another, for diagnostics (the race's ``sorted`` event); :data:`RULES`
  lists its answers.
* :func:`common_prefix_len`: CommonPrefixLen of §2.2, for rule 9.

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

References: RFC 6724 §2.2 (CommonPrefixLen), §6 (destination rules), §10.2
(examples); RFC 8305 §4 (sorting, history); Go ``src/net/addrselect.go``.
"""

from __future__ import annotations

import ipaddress

from .policy import AddressLike, IPAddress, PolicyTable, parse_address, policy_key

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at the first connection
    from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, Tuple, TypeVar

    _D = TypeVar("_D", bound=AddressLike)

    class _SupportsLessThan(Protocol):
        def __lt__(self, other: Any, /) -> bool: ...


# policy=None means RFC 6724's table; looked up once, not once per sort.
_DEFAULT_POLICY = PolicyTable.rfc6724()


def common_prefix_len(source: ipaddress.IPv6Address, destination: ipaddress.IPv6Address) -> int:
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
        # The source as the destination is written: ::ffff:a.b.c.d.
        return ipaddress.IPv6Address(policy_key(source))
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
    # Called for every destination, with or without a source, so that a
    # caller counting or logging calls sees each destination exactly once.
    known_bad = unusable is not None and unusable(destination_obj)
    history: Any = 0 if history_key is None else history_key(destination_obj)
    static = _static_rank(destination_obj, source_obj, table)
    has_source, rules_2_to_8, prefix_length = static
    # rule 1 (False sorts first), rules 2-8, then history (RFC 8305 §4:
    # between rules 8 and 9)
    key = (not (has_source and not known_bad), *rules_2_to_8, history)
    return destination_obj, key, prefix_length


# The part of a destination's rank that depends only on it, its source and
# the policy table, which races ask for again and again (a few hundred
# microseconds of address parsing and table look-ups each time otherwise).
# Per table, bounded: cleared when full.
_STATIC: Dict[int, Tuple[PolicyTable, Dict[Any, Any]]] = {}
_STATIC_SIZE = 4096


def _static_rank(destination_obj: Any, source_obj: Any, table: PolicyTable) -> Any:
    per_table = _STATIC.get(id(table))
    if per_table is None or per_table[0] is not table:
        if len(_STATIC) > 16:
            _STATIC.clear()
        per_table = _STATIC[id(table)] = (table, {})
    cache = per_table[1]
    try:
        return cache[(destination_obj, source_obj)]
    except KeyError:
        pass
    except TypeError:  # not hashable: compute every time
        return _compute_static_rank(destination_obj, source_obj, table)
    found = _compute_static_rank(destination_obj, source_obj, table)
    if len(cache) >= _STATIC_SIZE:
        cache.clear()
    cache[(destination_obj, source_obj)] = found
    return found


def _compute_static_rank(destination_obj: Any, source_obj: Any, table: PolicyTable) -> Any:
    destination = parse_address(destination_obj, "destination")
    source = None
    if source_obj is not None:
        source = _match_source_family(
            destination, parse_address(source_obj, "source"), destination_obj, source_obj
        )

    destination_scope = table.scope(destination)
    # Rules 2 and 5 cannot hold without a source; treating them as "not
    # matching" keeps two sourceless destinations tied, as glibc and Go do.
    matching_scope = source is not None and table.scope(source) == destination_scope
    matching_label = source is not None and table.label(source) == table.label(destination)
    rules = (
        not matching_scope,  # rule 2
        not matching_label,  # rule 5
        -table.precedence(destination),  # rule 6: higher first
        destination_scope,  # rule 8: smaller first
    )
    prefix_length: Optional[int] = None
    if isinstance(destination, ipaddress.IPv6Address) and isinstance(source, ipaddress.IPv6Address):
        prefix_length = common_prefix_len(source, destination)
    # else rule 9 does not apply: IPv4 (round-robin), or no source.
    return source is not None, rules, prefix_length


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

    :func:`eyeshim.ordering.interleave` should be applied to the result
    (RFC 8305 §4).

    Raises ``ValueError`` for a string that is not an IP address and for a
    source whose family differs from its destination's (an IPv4-mapped
    IPv6 address counts as IPv4), ``TypeError`` for other types.
    ``unusable`` and ``history_key`` are called once per destination, with
    the destination object as given.
    """
    table = _DEFAULT_POLICY if policy is None else policy
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


#: Every answer :func:`deciding_rule` can give, in the order the rules apply.
RULES: Tuple[str, ...] = (
    "rule 1: avoid unusable",
    "rule 2: matching scope",
    "rule 5: matching label",
    "rule 6: higher precedence",
    "rule 8: smaller scope",
    "history",
    "rule 9: longest matching prefix",
    "rule 10: DNS order",
)
# The first six name the fields of _rank()'s sort key, in order; rules 9 and
# 10 act after the key sort.
_KEY_RULES = RULES[:-2]
_RULE_9, _RULE_10 = RULES[-2:]


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
    table = _DEFAULT_POLICY if policy is None else policy
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
