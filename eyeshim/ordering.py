"""Ordering: which address to try next (RFC 8305 §4).

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

import socket
from typing import Any, Callable, Dict, List, Optional

from . import sorting
from .history import History, rtt_bucket
from .resolving import AddrInfo

__all__ = ["Orderer", "policy_table"]

SourceFinder = Callable[[str, int], Optional[Any]]


def policy_table(setting: Any) -> Any:
    """Turn ``Config.policy`` into a ``sorting.PolicyTable``."""
    if isinstance(setting, str):
        if setting == "auto":
            return sorting.PolicyTable.system()
        if setting == "rfc6724":
            return sorting.PolicyTable.rfc6724()
        return sorting.PolicyTable.system(setting)
    return setting


def _default_source(address: str, port: int) -> Optional[Any]:
    return sorting.find_source(address, port)


class Orderer:
    """Orders the candidate addresses of one race (called again whenever a
    late DNS answer adds addresses)."""

    def __init__(
        self,
        policy: Any,
        history: Optional[History],
        first_address_family_count: int = 1,
        find_source: SourceFinder = _default_source,
    ) -> None:
        self.policy = policy
        self.history = history
        self.fafc = first_address_family_count
        self._find_source = find_source
        self._sources: Dict[str, Optional[str]] = {}

    def source_of(self, info: AddrInfo) -> Optional[str]:
        address = str(info[4][0])
        if address not in self._sources:
            found = self._find_source(address, int(info[4][1]))
            self._sources[address] = None if found is None else str(found)
        return self._sources[address]

    def __call__(self, infos: List[AddrInfo]) -> List[AddrInfo]:
        if len(infos) < 2:
            return list(infos)
        by_address = {str(info[4][0]): info for info in infos}
        sources = {address: self.source_of(info) for address, info in by_address.items()}
        history = self.history
        records: Dict[str, Any] = {}
        if history is not None:
            history.observe_sources(sources)
            records = history.snapshot(list(by_address))

        def failed(address: Any) -> bool:
            record = records.get(address)
            return record is not None and record.failures > 0

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

        ordered = sorting.sort_destinations(
            [(address, sources[address]) for address in by_address],
            self.policy,
            unusable=failed if records else None,
            history_key=history_key if records else None,
        )
        usable = [by_address[a] for a in ordered if not failed(a)]
        broken = [by_address[a] for a in ordered if failed(a)]
        return sorting.interleave(usable, self.fafc, family=_family) + sorting.interleave(
            broken, self.fafc, family=_family
        )


def _family(info: AddrInfo) -> Any:
    family = info[0]
    return socket.AF_INET6 if family == socket.AF_INET6 else socket.AF_INET
