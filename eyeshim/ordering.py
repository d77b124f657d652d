"""Ordering: which address to try next (RFC 8305 §4).

(``sorting`` and with it ``ipaddress`` are imported when there are two
addresses to sort, not before: a first connection to a single address does
not pay for them.)

This is where the pure RFC 6724 sorter (``sorting``) meets what the process
has learned (``history``):

1. Each destination's source address is found once per race (R14), the
   way glibc and Go do it (a UDP ``connect()``, no packet sent).  A changed
   source address means a changed network, and flushes the history (R12).
2. Destinations are sorted by RFC 6724 §6 (R9).  History joins in two
   places: an address that failed recently counts as "known unreachable"
   under rule 1, so it goes behind every address not known to be broken;
   and between rules 8 and 9 (R10, R11) addresses are ranked by
   *family-level* previous use and then by a coarse RTT class.

   Why not "previously used first" per address, as R11 reads?  Because
   within one family that pins every client to whichever server of a DNS
   round-robin set it happened to use first, and the others are never
   tried again: the load-balancing failure seed article 004 describes for
   the JDK.  Applied per family it still does what R11 is for -- keep
   using the family that worked -- without freezing the order inside it.
   The RTT rule uses classes a factor of two wide for the same reason.
3. The usable addresses are interleaved by family (R13, First Address
   Family Count); the known-broken ones follow, so a second attempt is
   never wasted on an address that just failed.
"""

from __future__ import annotations

import operator
import socket

from .addrinfo import AddrInfo, address_of
from .history import History, rtt_bucket

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at the first connection
    from typing import (
        Any,
        Callable,
        Dict,
        Hashable,
        Iterable,
        List,
        Optional,
        Sequence,
        Tuple,
        TypeVar,
    )

    _T = TypeVar("_T")
    SourceFinder = Callable[[str, int], Optional[Any]]

__all__ = ["Orderer", "interleave"]


# A global IPv4 destination with a source on its own network: "IPv4 works".
_IPV4_STAND_IN = ("198.51.100.1", "198.51.100.2")


class Orderer:
    """Orders the candidate addresses of one race (called again whenever a
    late DNS answer adds addresses)."""

    def __init__(
        self,
        policy: Any,
        history: Optional[History],
        first_address_family_count: int = 1,
        find_source: Optional[SourceFinder] = None,
        name: Any = None,
    ) -> None:
        self.policy = policy
        self.history = history
        self.fafc = first_address_family_count
        #: the name being connected to (the history knows dead families per name)
        self.name = name
        if find_source is None:
            from .state import STATE

            find_source = STATE.sources()
        self._find_source = find_source
        self._sources: Dict[str, Optional[str]] = {}
        self._last_plan: Optional[_Plan] = None
        self._beats_ipv4: Dict[str, bool] = {}

    def source_of(self, info: AddrInfo) -> Optional[str]:
        address = address_of(info)
        if address not in self._sources:
            found = self._find_source(address, int(info[4][1]))
            self._sources[address] = None if found is None else str(found)
        return self._sources[address]

    def beats_ipv4(self, info: AddrInfo) -> bool:
        """Would ``info`` (IPv6) sort ahead of a typical, usable IPv4 server?

        RFC 8305 §3 says to connect at once when AAAA answers first, on the
        premise that IPv6 is preferred.  Under RFC 6724 that is not always
        so: a 6to4 address (precedence 30) ranks below IPv4 (35), and a
        gai.conf can prefer IPv4 outright.  When the policy would put IPv4
        first, the race waits for A as it does for AAAA (R4), instead of
        spending an attempt delay on an address the sort ranks second.

        The comparison is made against a stand-in IPv4 destination with a
        stand-in source (documentation addresses), i.e. by the policy alone:
        whether this host can reach IPv4 is learnt from the A answer itself,
        not guessed from a route to an address nobody asked for.
        """
        address = address_of(info)
        verdict = self._beats_ipv4.get(address)
        if verdict is None:
            ordered = _sorting().sort_destinations(
                [(address, self.source_of(info)), _IPV4_STAND_IN], self.policy
            )
            verdict = self._beats_ipv4[address] = str(ordered[0]) == address
        return verdict

    def _plan(self, infos: List[AddrInfo], observe: bool) -> _Plan:
        """Everything the sort of ``infos`` depends on, and its result.

        ``observe`` lets the history see the sources (and flush on a
        network change, R12); only a real ordering does that, never an
        explanation.
        """
        by_address = {address_of(info): info for info in infos}
        sources = {address: self.source_of(info) for address, info in by_address.items()}
        history = self.history
        records: Dict[str, Any] = {}
        failed: frozenset[str] = frozenset()
        if history is not None:
            records, failed = history.ordering_facts(
                {address: (info[0], info[4][1]) for address, info in by_address.items()},
                sources if observe else None,
                self.name,
            )

        family_used: Dict[int, bool] = {}
        best_rtt: Dict[int, int] = {}
        for address, record in records.items():
            family = by_address[address][0]
            if record.last_success is not None:
                family_used[family] = True
            if record.srtt is not None:
                bucket = rtt_bucket(record.srtt)
                best_rtt[family] = min(best_rtt.get(family, bucket), bucket)

        def history_key(address: Any) -> Any:
            family = by_address[address][0]
            record = records.get(address)
            if record is not None and record.srtt is not None:
                bucket = rtt_bucket(record.srtt)
            else:
                # Unknown RTT ranks with the best of its family, so a new
                # server of a round-robin set is not starved by known ones.
                bucket = best_rtt.get(family, 0)
            return (0 if family_used.get(family) else 1, bucket)

        plan = _Plan(
            by_address,
            sources,
            self.policy,
            failed.__contains__ if failed else None,
            history_key if records else None,
        )
        plan.failed = failed
        plan.ordered = _sorted(
            self.policy,
            [(address, sources[address]) for address in by_address],
            failed,
            plan.history_key,
        )
        return plan

    def __call__(self, infos: List[AddrInfo], attempted: Sequence[int] = ()) -> List[AddrInfo]:
        """``infos`` in the order to try them.

        ``attempted`` are the families of the attempts a race has already
        started, in order: addresses that arrive late continue the
        interleaving from there (a late A answer goes next when an IPv6
        attempt is running) instead of starting it afresh behind the
        preferred family.
        """
        if len(infos) < 2:
            return list(infos)
        plan = self._plan(infos, observe=True)
        by_address, failed = plan.by_address, plan.failed
        usable = [by_address[a] for a in plan.ordered if a not in failed]
        broken = [by_address[a] for a in plan.ordered if a in failed]
        result = self._interleave(usable, attempted)
        if broken:
            result += self._interleave(broken, attempted)
        # Kept for explain(), which the race calls right after this when
        # someone records events: explaining with the history as it was
        # when sorting is what makes the explanation true.  Costs one
        # reference when nobody listens.
        plan.result = [address_of(info) for info in result]
        self._last_plan = plan
        return result

    def _interleave(self, infos: List[AddrInfo], attempted: Sequence[int]) -> List[AddrInfo]:
        if len(infos) < 2 or all(info[0] == infos[0][0] for info in infos):
            return list(infos)  # one family: nothing to interleave
        if not attempted:
            return interleave(infos, self.fafc, family=_family)
        first = _family_of(attempted[0])
        if len(attempted) < self.fafc and all(_family_of(f) == first for f in attempted):
            # Still inside the First Address Family Count.
            want, count = first, self.fafc - len(attempted)
        else:
            want, count = (
                (
                    socket.AF_INET
                    if _family_of(attempted[-1]) == socket.AF_INET6
                    else socket.AF_INET6
                ),
                1,
            )
        leading = [info for info in infos if _family(info) == want]
        if not leading:
            return interleave(infos, self.fafc, family=_family)
        rest = [info for info in infos if _family(info) != want]
        return interleave(leading + rest, count, family=_family)

    def stock_order(self, infos: List[AddrInfo]) -> List[AddrInfo]:
        """``infos`` in the order the stdlib would try them: the RFC 6724 sort
        alone (``getaddrinfo``'s order), without history or interleaving.
        What the race reports when everything failed follows this order, so
        the error a caller sees never depends on what the history knew."""
        if len(infos) < 2:
            return list(infos)
        by_address = {address_of(info): info for info in infos}
        ordered = _sorted(
            self.policy,
            [(address, self.source_of(info)) for address, info in by_address.items()],
            frozenset(),
            None,
        )
        return [by_address[str(address)] for address in ordered]

    def describe(self, infos: List[AddrInfo]) -> Tuple[Dict[str, Dict[str, Any]], List[str]]:
        """For the race's events: what the history knew of each address of
        ``infos`` (a list this orderer returned), and :meth:`explain`."""
        known: Dict[str, Dict[str, Any]] = {}
        if self.history is not None:
            for info in infos:
                address = address_of(info)
                record = self.history.get(address)
                if record is not None:
                    known[address] = {
                        "rtt": record.srtt,
                        "failures": record.failures,
                        "used": record.last_success is not None,
                    }
        return known, self.explain(infos)

    def explain(self, infos: List[AddrInfo]) -> List[str]:
        """Why ``infos`` (a list this orderer returned) is in its order.

        One reason per neighbouring pair, ``len(infos) - 1`` in all:

        * ``"history: failed recently"``: the boundary between the usable
          addresses and those that failed recently, which go last;
        * ``"interleave"``: the family interleaving (RFC 8305 §4, R13), not
          the sort, put the first before the second (the sort alone would
          have put them the other way round);
        * otherwise the RFC 6724 rule that sorts the first before the second,
          as :func:`sorting.deciding_rule` names it (``"rule 6: higher
          precedence"``, ``"history"``, ``"rule 10: DNS order"`` ...).

        Only called when someone records events, so it may cost a sort; it
        neither finds sources again nor changes the history.
        """
        if len(infos) < 2:
            return []
        addresses = [address_of(info) for info in infos]
        plan = self._last_plan
        if plan is None or plan.result != addresses:
            # Not the list the last call returned (a caller's own list): sort
            # it again with the history as it is now.
            plan = self._plan(infos, observe=False)
        position = {address: index for index, address in enumerate(plan.ordered)}
        reasons = []
        for first, second in zip(addresses, addresses[1:]):
            reasons.append(plan.reason(first, second, position))
        return reasons


class _Plan:
    """One sort's inputs and result, so that explain() can replay it."""

    def __init__(
        self,
        by_address: Dict[str, AddrInfo],
        sources: Dict[str, Optional[str]],
        policy: Any,
        unusable: Optional[Callable[[str], bool]],
        history_key: Optional[Callable[[str], Any]],
    ) -> None:
        self.by_address = by_address
        self.sources = sources
        self.policy = policy
        self.unusable = unusable
        self.history_key = history_key
        self.ordered: List[str] = []
        self.failed: frozenset[str] = frozenset()
        self.result: Optional[List[str]] = None

    def reason(self, first: str, second: str, position: Dict[str, int]) -> str:
        if first not in position or second not in position:
            return "unknown"  # not an address of this sort; cannot say
        if first not in self.failed and second in self.failed:
            # Rule 1 would say the same, but "failed recently" says why.
            return "history: failed recently"
        if position[first] > position[second]:
            # Interleaving keeps each family's order and only moves families
            # past each other, so a pair against the sort's order is its doing.
            return "interleave"
        try:
            rule: str = _sorting().deciding_rule(
                (first, self.sources.get(first)),
                (second, self.sources.get(second)),
                self.policy,
                unusable=self.unusable,
                history_key=self.history_key,
            )
            return rule
        except ValueError:  # pragma: no cover - the sort and the rules disagree
            # Explaining must never break a connection; say so instead.
            return "unknown"


_SORTING: Any = None

# Sorts already done: the RFC 6724 sort is a pure function of the
# (destination, source) pairs, the policy table, what is known broken and the
# history key of each destination, and races ask for the same sort again and
# again (every connection to a host).  Bounded: cleared when full.
_SORTED: Dict[Any, List[str]] = {}
_SORTED_SIZE = 2048


def _sorted(
    policy: Any,
    pairs: List[Tuple[str, Optional[str]]],
    broken: frozenset[str],
    history_key: Optional[Callable[[str], Any]],
) -> List[str]:
    keys = None if history_key is None else tuple(history_key(a) for a, _ in pairs)
    memo_key = (id(policy), policy, tuple(pairs), broken, keys)
    found = _SORTED.get(memo_key)
    if found is not None:
        return found
    ordered = [
        str(address)
        for address in _sorting().sort_destinations(
            pairs,
            policy,
            unusable=broken.__contains__ if broken else None,
            history_key=history_key,
        )
    ]
    if len(_SORTED) >= _SORTED_SIZE:
        _SORTED.clear()
    _SORTED[memo_key] = ordered
    return ordered


def _sorting() -> Any:
    """The ``sorting`` package, imported the first time two addresses are
    sorted (an ``import`` statement inside a function costs a trip through
    the import machinery on every call)."""
    global _SORTING
    if _SORTING is None:
        from . import sorting

        _SORTING = sorting
    return _SORTING


def _family(info: AddrInfo) -> Any:
    return _family_of(info[0])


def _family_of(family: int) -> int:
    return socket.AF_INET6 if family == socket.AF_INET6 else socket.AF_INET


# -- interleaving (RFC 8305 §4, R13) --------------------------------------------------


def _address_family(item: object) -> int:
    import ipaddress  # only for this odd case: not on every program's first connect

    if isinstance(item, (ipaddress.IPv4Address, ipaddress.IPv6Address, str)):
        address = _sorting().policy.parse_address(item, "address")
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
    RFC 6724 order decided by :func:`eyeshim.sorting.sort_destinations`
    survives::

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
