"""History: what worked, how fast, and what failed, per destination address.

RFC 8305 §4 lets a client use what it learned from earlier connections:
prefer addresses with a lower round-trip time (R10) and addresses that were
used before (R11), and §5 derives the Connection Attempt Delay from the RTT
(R18).  The promise eyeshim makes its users rests on this module: the first
connection to a host with a broken IPv6 path costs one attempt delay, and
the next ones none, because the address that lost is remembered and sorted
to the back.

What is recorded, per address (the IP, scope included, not the port):

* a smoothed RTT and its variance, estimated from connect times the way
  TCP estimates its retransmission timeout (RFC 6298), so the attempt delay
  becomes "when the previous attempt would have sent its second SYN";
* the time of the last success;
* consecutive failures and the time of the last one.  An attempt that was
  still pending when a *later-started* attempt won also counts as a failure:
  it was slower than its own head start, which is exactly the address
  Happy Eyeballs should stop trying first.

What a failure says, and so where it is remembered:

* a **refusal** (RST) says one port is closed on a host that is up: it is
  remembered per (address, port), so ``::1`` refusing port 8080 does not
  demote ``::1`` for port 443;
* a **timeout** or **unreachable** says the path to the address is broken:
  remembered per address, whatever the port;
* a **TLS failure** after a TCP connection that worked (a handshake that
  stalled, failed or lost the race: a path that drops large packets, a
  middlebox that passes TCP but not TLS) says "TCP works, TLS does not":
  remembered per (address, port) like a refusal, and it sends the address
  behind the others for that port as a failure does (in this process only:
  the shared history file does not carry it);
* a **dead family**: when every attempted address of one family of a name
  failed (timed out, unreachable, or overtaken) while the other family
  connected, the family is remembered as dead *for that name*, so the
  next connection does not spend an attempt delay on the family's next
  address; and once a family is dead for two names, for every name (the
  network's IPv6 path is broken, not one server's).  Any success of the
  family clears it.

What the history is not allowed to do (R12): carry knowledge across
networks.  Every record keeps the source address it was made with; when the
source address for a destination changes, the host has moved to another
network and the whole history is flushed.

The store is a bounded LRU with expiry, guarded by one lock: entries are
tiny and the critical sections are a few dictionary operations.

Sharing with other processes (``history_file``, off by default) is
``history_file.py``'s: it reads what other processes learnt into the store
(:meth:`History.restore`) and hears of every lesson through
:attr:`History.journal`, called after the lock is released.  A lesson is
news about what failed: a failure, a refusal, a dead family, a success that
cleared one of them, a flush.  A success that changes nothing of that (the
happy path) tells the journal nothing.
"""

from __future__ import annotations

import _thread
import collections
import math
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at the first connection
    from typing import Any, Callable, Dict, Mapping, Optional, Tuple

__all__ = ["History", "Record"]


class Record:
    """What is known about one destination address."""

    __slots__ = (
        "failures",
        "last_failure",
        "last_success",
        "rttvar",
        "source",
        "srtt",
        "updated",
    )

    def __init__(self) -> None:
        self.srtt: Optional[float] = None
        self.rttvar: float = 0.0
        self.last_success: Optional[float] = None
        self.failures = 0
        self.last_failure: Optional[float] = None
        self.source: Optional[str] = None
        self.updated = 0.0

    def __repr__(self) -> str:
        return (
            f"Record(srtt={self.srtt!r}, rttvar={self.rttvar!r}, failures={self.failures}, "
            f"last_success={self.last_success!r}, source={self.source!r})"
        )


class History:
    """Thread-safe, bounded per-address connection history."""

    def __init__(
        self,
        max_entries: int = 1024,
        failure_ttl: float = 600.0,
        rtt_ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries!r}")
        self.max_entries = max_entries
        self.failure_ttl = failure_ttl
        self.rtt_ttl = rtt_ttl
        self._clock = clock
        self._lock = _thread.allocate_lock()
        self._records: collections.OrderedDict[str, Record] = collections.OrderedDict()
        # (address, port) -> when it last refused
        self._refused: collections.OrderedDict[Tuple[str, Any], float] = collections.OrderedDict()
        # (name, family) -> when every attempted address of the family failed
        self._dead: collections.OrderedDict[Tuple[Any, int], float] = collections.OrderedDict()
        # (address, port) -> when a TLS handshake failed after TCP connected
        self._tls: collections.OrderedDict[Tuple[str, Any], float] = collections.OrderedDict()
        #: Called as ``journal(kind, *fields)`` after each lesson (see the
        #: module doc), outside the lock; set by ``state.STATE`` when the
        #: history is shared through a file.  Must not raise.
        self.journal: Optional[Callable[..., None]] = None

    def configure(self, max_entries: int, failure_ttl: float, rtt_ttl: float) -> None:
        """Adopt new limits; what was learnt stays."""
        self.max_entries, self.failure_ttl, self.rtt_ttl = max_entries, failure_ttl, rtt_ttl

    def after_fork(self) -> None:
        """In a forked child: the lock may have been held by a parent thread.
        What was learnt is as true in the child as in the parent."""
        self._lock = _thread.allocate_lock()

    # -- writing -------------------------------------------------------------

    def _touch(self, address: str, source: Optional[str], now: float) -> Record:
        record = self._records.get(address)
        if record is None:
            record = self._records[address] = Record()
            while len(self._records) > self.max_entries:
                self._records.popitem(last=False)
        else:
            self._records.move_to_end(address)
        if source is not None:
            record.source = source
        record.updated = now
        return record

    def record_success(
        self,
        address: str,
        rtt: float,
        source: Optional[str] = None,
        *,
        port: Any = None,
        family: Optional[int] = None,
    ) -> None:
        """Remember a connect that completed after ``rtt`` seconds (and that
        ``family`` works: every dead-family mark of it goes)."""
        now = self._clock()
        with self._lock:
            cleared = self._refused.pop((address, port), None) is not None
            self._tls.pop((address, port), None)
            if family is not None:
                for key in [key for key in self._dead if key[1] == family]:
                    del self._dead[key]
                    cleared = True
            record = self._touch(address, source, now)
            cleared = cleared or record.failures > 0
            # RFC 6298 §2: the first sample sets SRTT and RTTVAR directly,
            # later ones are smoothed with alpha = 1/8 and beta = 1/4.
            if record.srtt is None or (
                record.last_success is not None and now - record.last_success > self.rtt_ttl
            ):
                record.srtt = rtt
                record.rttvar = rtt / 2
            else:
                record.rttvar = 0.75 * record.rttvar + 0.25 * abs(record.srtt - rtt)
                record.srtt = 0.875 * record.srtt + 0.125 * rtt
            record.last_success = now
            record.failures = 0
            record.last_failure = None
        journal = self.journal
        if cleared and journal is not None:
            journal("ok", address, port, family)

    def record_failure(
        self, address: str, source: Optional[str] = None, *, port: Any = None, refused: bool = False
    ) -> None:
        """Remember that connecting to ``address`` failed or lost the race.

        ``refused`` (with the ``port``): the port is closed, the host is up;
        only that port is demoted.
        """
        now = self._clock()
        with self._lock:
            if refused:
                key = (address, port)
                self._refused[key] = now
                self._refused.move_to_end(key)
                while len(self._refused) > self.max_entries:
                    self._refused.popitem(last=False)
            else:
                record = self._touch(address, source, now)
                record.failures += 1
                record.last_failure = now
        journal = self.journal
        if journal is not None:
            if refused:
                journal("refused", address, port)
            else:
                journal("failed", address)

    def record_tls_failure(self, address: str, *, port: Any = None) -> None:
        """Remember that TCP to ``address`` worked and the TLS handshake on
        ``port`` did not (failed, stalled, or lost the race)."""
        now = self._clock()
        with self._lock:
            key = (address, port)
            self._tls[key] = now
            self._tls.move_to_end(key)
            while len(self._tls) > self.max_entries:
                self._tls.popitem(last=False)

    def tls_failed_recently(self, address: str, port: Any) -> bool:
        """Did a TLS handshake on ``port`` of ``address`` fail lately?"""
        now = self._clock()
        with self._lock:
            when = self._tls.get((address, port))
            return when is not None and now - when <= self.failure_ttl

    def record_dead_family(self, name: Any, family: int) -> None:
        """Every attempted address of ``family`` failed for ``name`` while the
        other family connected."""
        now = self._clock()
        with self._lock:
            key = (name, family)
            self._dead[key] = now
            self._dead.move_to_end(key)
            while len(self._dead) > self.max_entries:
                self._dead.popitem(last=False)
        journal = self.journal
        if journal is not None:
            journal("dead", name, family)

    def dead_family(self, name: Any, family: int) -> bool:
        """Is ``family`` known dead for ``name`` (or for every name: dead for
        two names, and not seen working since)?"""
        now = self._clock()
        with self._lock:
            return family in self._dead_families(name, now)

    def _dead_families(self, name: Any, now: float) -> set[int]:
        """The families dead for ``name``: marked for it, or for two names."""
        if not self._dead:
            return set()
        dead: set[int] = set()
        names: Dict[int, int] = {}
        for (dead_name, family), when in self._dead.items():
            if now - when > self.failure_ttl:
                continue
            if dead_name == name:
                dead.add(family)
            names[family] = names.get(family, 0) + 1
        dead.update(family for family, count in names.items() if count >= 2)
        return dead

    def observe_sources(self, sources: Mapping[str, Optional[str]]) -> bool:
        """Flush everything if any destination now has a different source
        address than when it was recorded (R12: the network changed).

        Returns True when the history was flushed.
        """
        with self._lock:
            for address, source in sources.items():
                record = self._records.get(address)
                if (
                    record is not None
                    and record.source is not None
                    and source is not None
                    and record.source != source
                ):
                    self._records.clear()
                    self._refused.clear()
                    self._dead.clear()
                    self._tls.clear()
                    break
            else:
                return False
        journal = self.journal
        if journal is not None:
            journal("flush")
        return True

    def forget(self, address: str) -> None:
        """Drop what is known about one address."""
        with self._lock:
            self._records.pop(address, None)
        journal = self.journal
        if journal is not None:
            journal("forget", address)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._refused.clear()
            self._dead.clear()
            self._tls.clear()
        journal = self.journal
        if journal is not None:
            journal("flush")

    def restore(
        self,
        failed: Mapping[str, Tuple[float, int]],
        refused: Mapping[Tuple[str, Any], float],
        dead: Mapping[Tuple[Any, int], float],
    ) -> None:
        """Adopt what other processes learnt, each item with its age in
        seconds: ``failed`` address -> (age, failures), ``refused`` (address,
        port) -> age, ``dead`` (name, family) -> age.  What this history
        learnt since then wins; the journal hears nothing (it is not news)."""
        now = self._clock()
        with self._lock:
            for address, (age, failures) in failed.items():
                when = now - age
                record = self._records.get(address)
                if record is not None and (
                    (record.last_success is not None and record.last_success >= when)
                    or (record.last_failure is not None and record.last_failure >= when)
                ):
                    continue
                record = self._touch(address, None, now)
                record.failures = max(1, failures)
                record.last_failure = when
            for table, items in ((self._refused, refused), (self._dead, dead)):
                for key, age in items.items():
                    when = now - age
                    if table.get(key, -math.inf) < when:
                        table[key] = when
                while len(table) > self.max_entries:
                    table.popitem(last=False)

    # -- reading -------------------------------------------------------------

    def get(self, address: str) -> Optional[Record]:
        """A copy of the live record for ``address`` (expired parts dropped)."""
        now = self._clock()
        with self._lock:
            return self._live(address, now)

    def _live(self, address: str, now: float) -> Optional[Record]:
        record = self._records.get(address)
        if record is None:
            return None
        copy = Record()
        copy.source = record.source
        copy.updated = record.updated
        if record.srtt is not None and (
            record.last_success is not None and now - record.last_success <= self.rtt_ttl
        ):
            copy.srtt, copy.rttvar = record.srtt, record.rttvar
            copy.last_success = record.last_success
        if record.last_failure is not None and now - record.last_failure <= self.failure_ttl:
            copy.failures, copy.last_failure = record.failures, record.last_failure
        return copy

    def snapshot(self, addresses: list[str]) -> Dict[str, Record]:
        """Live records for the given addresses (absent ones left out)."""
        out: Dict[str, Record] = {}
        for address in addresses:
            record = self.get(address)
            if record is not None:
                out[address] = record
        return out

    def ordering_facts(
        self,
        destinations: Mapping[str, Tuple[int, Any]],
        sources: Optional[Mapping[str, Optional[str]]],
        name: Any,
    ) -> Tuple[Dict[str, Record], frozenset[str]]:
        """What ordering needs, under one acquisition of the lock: the live
        records of ``destinations`` (address -> (family, port)), and the
        addresses known broken (failed, refused that port or failed TLS on
        it, or of a family dead for ``name``).  With ``sources``, first flush on a network
        change (:meth:`observe_sources`)."""
        if sources is not None:
            self.observe_sources(sources)
        now = self._clock()
        records: Dict[str, Record] = {}
        broken = []
        with self._lock:
            dead = self._dead_families(name, now)
            for address, (family, port) in destinations.items():
                record = self._live(address, now)
                if record is not None:
                    records[address] = record
                refused = self._refused.get((address, port))
                tls = self._tls.get((address, port))
                if (
                    family in dead
                    or (record is not None and record.failures > 0)
                    or (refused is not None and now - refused <= self.failure_ttl)
                    or (tls is not None and now - tls <= self.failure_ttl)
                ):
                    broken.append(address)
        return records, frozenset(broken)

    def failed_recently(self, address: str, port: Any = None) -> bool:
        """Did ``address`` time out or prove unreachable lately (or refuse
        ``port``, or fail TLS on it)?"""
        record = self.get(address)
        if record is not None and record.failures > 0:
            return True
        return port is not None and (
            self.refused_recently(address, port) or self.tls_failed_recently(address, port)
        )

    def refused_recently(self, address: str, port: Any) -> bool:
        now = self._clock()
        with self._lock:
            when = self._refused.get((address, port))
            return when is not None and now - when <= self.failure_ttl

    def attempt_delay(self, address: str, default: float, lo: float, hi: float) -> float:
        """The Connection Attempt Delay after starting ``address`` (R18, R20, R21).

        With an RTT estimate, the delay is the retransmission timeout RFC 6298
        would compute (SRTT + 4 * RTTVAR): the moment the previous attempt's
        SYN is presumed lost.  Without one, the configured default.  Always
        clamped to ``lo..hi``.
        """
        record = self.get(address)
        if record is None or record.srtt is None:
            delay = default
        else:
            delay = record.srtt + 4 * record.rttvar
        return min(max(delay, lo), hi)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


def rtt_bucket(rtt: float) -> int:
    """Coarse RTT class (powers of two above 1 ms) used for sorting.

    Sorting by the exact RTT would make every client pick the single fastest
    server of a DNS round-robin set, the load-balancing failure the seed
    article about the JDK describes; servers within a factor of two of each
    other stay in DNS order.
    """
    if rtt <= 0.001:
        return 0
    return int(math.log2(rtt / 0.001)) + 1
