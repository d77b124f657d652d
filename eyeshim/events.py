"""Events and counters: seeing what a race did.

A shim that silently rewires every connection of a process is a black box
until it can show its work, the way ``curl -v`` does.  Every step of a race
is one small typed record, a subclass of :class:`RaceEvent`, stamped with a
process-unique race number and the time since the race began.  This table
is the schema; ``kind`` is what JSON output and log lines call each class.

====================  ===========  ============================================
class                 kind         fields
====================  ===========  ============================================
:class:`RaceStarted`  ``race``     port, timeout, families (queried), known
                                   (addresses known without DNS)
:class:`Query`        ``query``    family (a lookup was sent), resolver
                                   (``stub``, or ``getaddrinfo: why``)
:class:`DnsAnswer`    ``answer``   family, addresses (DNS order) or error
:class:`GateOpened`   ``gate``     reason: ``aaaa``, ``all answered``,
                                   ``resolution delay``, ``known``
:class:`HistoryKnown` ``history``  known: per address what the history knew
:class:`Sorted`       ``sorted``   order (attempt order), rules (per
                                   neighbouring pair, the rule that decided)
:class:`AttemptStarted` ``attempt`` address, family, number, next_in (delay
                                   before the next attempt)
:class:`AttemptFailed` ``failed``  address, errno, error, elapsed,
                                   before_connect, timed_out (the caller's
                                   timeout, from the attempt's start, ended it),
                                   tls (it failed in the TLS handshake,
                                   after its TCP connection worked)
:class:`TlsStarted`   ``tls``      address, tcp (seconds its TCP connection
                                   took), next_in (delay before the next
                                   attempt, now paced by this handshake)
:class:`Connected`    ``connected`` address, rtt, local (source address)
:class:`LosersClosed` ``closed``   addresses of attempts closed after the win
:class:`Nat64`        ``nat64``    ipv4 (found unreachable), synthesized
                                   (IPv6 addresses about to be raced),
                                   discovery (seconds spent on the prefix)
:class:`Recorded`     ``recorded`` address, outcome (``success``,
                                   ``failure``, ``lost``, ``tls failure``)
:class:`Done`         ``done``     outcome (``connected``, ``timeout``,
                                   ``failed``, ``resolve failed``), address,
                                   error, elapsed, attempts
====================  ===========  ============================================

Who sees them: subscribers (:func:`subscribe`, :func:`recording`; ``eyeshim
probe`` is one), and the ``eyeshim`` logger, one DEBUG line per event, only
when asked for explicitly: ``EYESHIM_TRACE=1``, or a level of DEBUG set on
the ``eyeshim`` logger itself (``EYESHIM_VERBOSE`` does that).  A root
logger at DEBUG, which many programs have, is not asking: a connection that
logs is a connection that can re-enter itself through a handler that
connects (``SocketHandler``, ``HTTPHandler``, log shippers).  With nobody
listening a race creates no event at all: each emit point costs one
``is None`` test, and the decision does not depend on logging, so a
program behaves the same at every log level.

Counters are kept always (a lock and a few numbers per race) and read with
:func:`counters`.
"""

from __future__ import annotations

import _thread
import itertools
import os
import socket
import sys

from .config import TRACE_VARIABLE, read_variable
from .state import STATE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import (
        Any,
        Callable,
        ClassVar,
        Dict,
        List,
        Mapping,
        Optional,
        Tuple,
    )

__all__ = [
    "AttemptFailed",
    "AttemptStarted",
    "Connected",
    "DnsAnswer",
    "Done",
    "GateOpened",
    "HistoryKnown",
    "LosersClosed",
    "Nat64",
    "Query",
    "RaceEvent",
    "RaceStarted",
    "Recorded",
    "Sorted",
    "TlsStarted",
    "Trace",
    "counters",
    "format_counters",
    "read_stats",
    "recording",
    "reset_counters",
    "subscribe",
    "write_stats",
]


class RaceEvent:
    """One step of one race: what every event has.

    Each kind is a subclass that names its ``fields`` (which are also its
    slots) and their ``defaults``; the constructor takes them as keywords.
    """

    __slots__ = ("host", "race", "time")
    kind: ClassVar[str] = ""
    #: The event's own fields, in display order (the schema above).
    fields: ClassVar[Tuple[str, ...]] = ()
    #: Values of the fields a constructor may leave out.
    defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, race: int, time: float, host: str, **values: Any) -> None:
        self.race = race  #: a process-unique race number
        self.time = time  #: seconds since the race began (monotonic)
        self.host = host  #: the name (or literal) being connected to
        for name in self.fields:
            value = values.pop(name, self.defaults.get(name, _MISSING))
            if value is _MISSING:
                raise TypeError(f"{type(self).__name__}() needs the field {name!r}")
            setattr(self, name, value)
        if values:
            raise TypeError(f"{type(self).__name__}() has no field {', '.join(map(repr, values))}")

    @property
    def data(self) -> Dict[str, Any]:
        """The event's own fields as a dict (JSON, log lines); fields at an
        "absent" default (None) are left out."""
        data = {}
        for name in self.fields:
            value = getattr(self, name)
            if value is not None or name not in self.defaults:
                data[name] = value
        return data

    def describe(self) -> str:
        """A one-line, human-readable rendering (the trace log line)."""
        parts = " ".join(f"{key}={_short(value)}" for key, value in self.data.items())
        return f"race {self.race} +{self.time * 1000:7.1f} ms {self.kind:<9} {parts}"

    def as_dict(self) -> Dict[str, Any]:
        return {
            "race": self.race,
            "time": self.time,
            "kind": self.kind,
            "host": self.host,
            **{k: _jsonable(v) for k, v in self.data.items()},
        }

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, RaceEvent)
        return (self.race, self.time, self.host, self.data) == (
            other.race,
            other.time,
            other.host,
            other.data,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.data.items())
        return f"{type(self).__name__}(race={self.race}, time={self.time:.6f}, {fields})"


_MISSING: Any = object()


class RaceStarted(RaceEvent):
    kind = "race"
    fields = __slots__ = ("port", "timeout", "families", "known")
    port: Any
    timeout: Optional[float]
    families: List[str]  #: the families looked up ("ipv6", "ipv4")
    known: List[str]  #: addresses known without DNS


class Query(RaceEvent):
    kind = "query"
    fields = __slots__ = ("family", "resolver")
    defaults: ClassVar[Mapping[str, Any]] = {"resolver": None}
    family: str
    resolver: Optional[str]  #: which resolver, and why (None: one passed by the caller)


class DnsAnswer(RaceEvent):
    kind = "answer"
    fields = __slots__ = ("family", "addresses", "error")
    defaults: ClassVar[Mapping[str, Any]] = {"addresses": None, "error": None}
    family: str
    addresses: Optional[List[str]]  #: in DNS order; None for an error
    error: Optional[str]


class GateOpened(RaceEvent):
    kind = "gate"
    fields = __slots__ = ("reason",)
    reason: str


class HistoryKnown(RaceEvent):
    kind = "history"
    fields = __slots__ = ("known",)
    known: Dict[str, Dict[str, Any]]  #: address -> rtt, failures, used


class Sorted(RaceEvent):
    kind = "sorted"
    fields = __slots__ = ("order", "rules")
    order: List[str]
    rules: List[str]  #: per neighbouring pair of ``order``, the rule that decided


class AttemptStarted(RaceEvent):
    kind = "attempt"
    fields = __slots__ = ("address", "family", "number", "next_in")
    address: str
    family: str
    number: int
    next_in: float  #: the delay before the next attempt may start


class AttemptFailed(RaceEvent):
    kind = "failed"
    fields = __slots__ = (
        "address",
        "errno",
        "error",
        "elapsed",
        "before_connect",
        "timed_out",
        "tls",
    )
    defaults: ClassVar[Mapping[str, Any]] = {
        "before_connect": None,
        "timed_out": None,
        "tls": None,
    }
    address: str
    errno: Optional[int]
    error: str
    elapsed: float
    before_connect: Optional[bool]  #: True when the socket failed before connect()
    timed_out: Optional[bool]  #: True when the caller's timeout ended the attempt
    tls: Optional[bool]  #: True when it failed in the TLS handshake (TCP worked)


class TlsStarted(RaceEvent):
    kind = "tls"
    fields = __slots__ = ("address", "tcp", "next_in")
    address: str
    tcp: float  #: seconds its TCP connection took
    next_in: float  #: the delay before the next attempt, paced by this handshake


class Connected(RaceEvent):
    kind = "connected"
    fields = __slots__ = ("address", "rtt", "local")
    address: str
    rtt: float
    local: Optional[str]  #: the source address


class LosersClosed(RaceEvent):
    kind = "closed"
    fields = __slots__ = ("addresses",)
    addresses: List[str]


class Nat64(RaceEvent):
    kind = "nat64"
    fields = __slots__ = ("ipv4", "synthesized", "discovery")
    defaults: ClassVar[Mapping[str, Any]] = {"discovery": None}
    ipv4: List[str]  #: the IPv4 addresses found unreachable
    synthesized: List[str]  #: the IPv6 addresses about to be raced (none: no prefix)
    discovery: Optional[float]  #: seconds spent finding the NAT64 prefix


class Recorded(RaceEvent):
    kind = "recorded"
    fields = __slots__ = ("address", "outcome")
    address: str
    outcome: str  #: success, failure, lost or tls failure


class Done(RaceEvent):
    kind = "done"
    fields = __slots__ = ("outcome", "elapsed", "address", "error", "attempts")
    defaults: ClassVar[Mapping[str, Any]] = {"address": None, "error": None, "attempts": 0}
    outcome: str  #: connected, timeout, failed or resolve failed
    elapsed: float
    address: Optional[str]
    error: Optional[str]
    attempts: int


#: Every event class by its ``kind``: for readers of recorded JSON.
KINDS: Dict[str, type[RaceEvent]] = {
    cls.kind: cls
    for cls in (
        RaceStarted,
        Query,
        DnsAnswer,
        GateOpened,
        HistoryKnown,
        Sorted,
        AttemptStarted,
        AttemptFailed,
        TlsStarted,
        Connected,
        LosersClosed,
        Nat64,
        Recorded,
        Done,
    )
}


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# -- who listens -----------------------------------------------------------------

_lock = _thread.allocate_lock()
_subscribers: Tuple[Callable[[RaceEvent], None], ...] = ()
_race_numbers = itertools.count(1)


def _trace_requested() -> bool:
    try:
        return bool(read_variable(TRACE_VARIABLE))
    except ValueError:
        return False  # reported where configuration is validated (start-up, status)


_trace_env = _trace_requested()


def subscribe(callback: Callable[[RaceEvent], None]) -> Callable[[], None]:
    """Call ``callback(event)`` for every event of every race, in the racing
    thread; returns a function that unsubscribes.  A callback that raises an
    ``Exception`` is reported once on stderr and otherwise ignored: observing
    must never break a connection."""
    global _subscribers
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    with _lock:
        _subscribers = (*_subscribers, callback)

    def unsubscribe() -> None:
        global _subscribers
        with _lock:
            remaining = list(_subscribers)
            if callback in remaining:
                remaining.remove(callback)
            _subscribers = tuple(remaining)

    return unsubscribe


class recording:  # lower case: called like the function it was
    """``with eyeshim.events.recording() as events:`` collects every event
    emitted inside the block (by any thread) into the list.

    (A class, not a ``contextlib.contextmanager``: importing contextlib
    would add a millisecond to the first connect of every program.)"""

    def __init__(self) -> None:
        self._collected: List[RaceEvent] = []
        self._lock = _thread.allocate_lock()
        self._unsubscribe: Optional[Callable[[], None]] = None

    def _collect(self, event: RaceEvent) -> None:
        with self._lock:
            self._collected.append(event)

    def __enter__(self) -> List[RaceEvent]:
        self._unsubscribe = subscribe(self._collect)
        return self._collected

    def __exit__(self, *exc: Any) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


def _trace_logger() -> Any:
    """The ``eyeshim`` logger when it was asked to log every event, else None.

    Asked means ``EYESHIM_TRACE`` or a DEBUG level set on the ``eyeshim``
    logger itself; a level inherited from the root logger does not count.
    logging is never imported here: a program that did not import it has no
    handler to show a record.
    """
    logging = sys.modules.get("logging")
    if logging is None:
        return None
    logger = logging.getLogger("eyeshim")
    if _trace_env or logger.level == logging.DEBUG:
        return logger if logger.isEnabledFor(logging.DEBUG) else None
    return None


def listening() -> bool:
    """Whether anyone would receive events right now."""
    return bool(_subscribers) or _trace_logger() is not None


class Trace:
    """The emitter of one race's events (only exists while someone listens)."""

    __slots__ = ("_clock", "_log", "_start", "_subscribers", "host", "number")

    def __init__(
        self,
        host: str,
        clock: Callable[[], float],
        start: float,
        subscribers: Tuple[Callable[[RaceEvent], None], ...],
        log: Any,
    ) -> None:
        self.number = next(_race_numbers)
        self.host = host
        self._clock = clock
        self._start = start
        self._subscribers = subscribers
        self._log = log

    @classmethod
    def start(cls, host: Any, clock: Callable[[], float], start: float) -> Optional[Trace]:
        """A trace for a race beginning at ``start``, or None when nobody listens."""
        subscribers = _subscribers
        log = _trace_logger()
        if not subscribers and log is None:
            return None
        name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
        return cls(name, clock, start, subscribers, log)

    def __call__(self, kind: type[RaceEvent], **fields: Any) -> None:
        """Emit one event: ``trace(Connected, address=..., rtt=..., local=...)``."""
        event = kind(self.number, self._clock() - self._start, self.host, **fields)
        if self._log is not None:
            with quiet_logging():
                self._log.debug("%s", event.describe())
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception as exc:  # a broken observer must not break a connection
                _report_subscriber(callback, exc)


_reported: set[int] = set()


def _report_subscriber(callback: Any, exc: Exception) -> None:
    # stderr, not logging: the subscriber may be a log handler's friend, and
    # one line per broken subscriber is enough.
    if id(callback) in _reported:
        return
    _reported.add(id(callback))
    stream = sys.stderr
    if stream is not None:
        try:
            stream.write(f"eyeshim: event subscriber {callback!r} failed: {exc!r}\n")
        except Exception:
            pass


# -- logging that cannot re-enter itself -----------------------------------------

_quiet = _thread._local()


class quiet_logging:  # lower case: called like the function it was
    """Inside this block (per thread) eyeshim logs nothing.

    Wraps eyeshim's own calls into logging: a handler that opens a connection
    (``SocketHandler``, ``HTTPHandler``) comes back into eyeshim, which must
    not log again from there.
    """

    def __enter__(self) -> None:
        self._depth = getattr(_quiet, "depth", 0)
        _quiet.depth = self._depth + 1

    def __exit__(self, *exc: Any) -> None:
        _quiet.depth = self._depth


def _inside_logging() -> bool:
    """Is this thread inside eyeshim's own logging, or inside any handler?"""
    if getattr(_quiet, "depth", 0):
        return True
    logging = sys.modules.get("logging")
    if logging is None:
        return False
    handle = logging.Handler.handle.__code__
    frame: Any = sys._getframe(1)
    while frame is not None:
        if frame.f_code is handle:
            return True
        frame = frame.f_back
    return False


def log_summary(message: Callable[[], str]) -> None:
    """One DEBUG record on the ``eyeshim`` logger for a call whose outcome
    Happy Eyeballs changed (``message`` is only called when it is logged).

    Nothing when logging is not imported or not enabled for DEBUG, and
    nothing from inside a logging handler (see :func:`quiet_logging`).
    """
    logging = sys.modules.get("logging")
    if logging is None:
        return
    logger = logging.getLogger("eyeshim")
    if not logger.isEnabledFor(logging.DEBUG) or _inside_logging():
        return
    with quiet_logging():
        logger.debug("%s", message())


# -- counters -------------------------------------------------------------------


class Counters:
    """What every race in this process came to (owned by ``state.STATE``)."""

    NAMES = (
        "races",
        "connected",
        "failed",
        "timeouts",
        "wins_ipv6",
        "wins_ipv4",
        "fallbacks",
        "attempts",
        "time_saved",
    )

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._values: Dict[str, float] = dict.fromkeys(self.NAMES, 0)
        self._values["time_saved"] = 0.0

    def count(self, outcome: str, family: int, attempts: int, fallback: bool, saved: float) -> None:
        with self._lock:
            values = self._values
            values["races"] += 1
            values["attempts"] += attempts
            if outcome == "connected":
                values["connected"] += 1
                values["wins_ipv6" if family == socket.AF_INET6 else "wins_ipv4"] += 1
                if fallback:
                    values["fallbacks"] += 1
                values["time_saved"] += saved
            elif outcome == "timeout":
                values["timeouts"] += 1
            else:
                values["failed"] += 1

    def snapshot(self) -> Dict[str, float]:
        with self._lock:
            return dict(self._values)


def count(
    outcome: str, *, family: int = 0, attempts: int = 0, fallback: bool = False, saved: float = 0.0
) -> None:
    """Record the end of a race (called by the engine)."""
    STATE.counters().count(outcome, family, attempts, fallback, saved)


def counters() -> Dict[str, float]:
    """A snapshot of the process's race counters.

    ``fallbacks`` counts races won by an address other than the first one
    tried (the preferred address was broken or slow).  ``time_saved`` is an
    estimate, in seconds, of what a sequential walk (the stdlib) would have
    spent on the addresses tried before the winner that had not failed by
    the time it won: each of them would have held the stdlib for the full
    timeout (or, with no timeout, for the elapsed race at least).
    """
    return STATE.counters().snapshot()


def reset_counters() -> None:
    STATE.reset_counters()


def format_counters(values: Mapping[str, float]) -> str:
    """One human-readable line for a counters snapshot."""
    races = int(values.get("races", 0))
    if not races:
        return "no races"
    return (
        f"{races} race(s): {int(values.get('connected', 0))} connected "
        f"({int(values.get('wins_ipv6', 0))} over IPv6, {int(values.get('wins_ipv4', 0))} over "
        f"IPv4), {int(values.get('fallbacks', 0))} after a broken or slow preferred address, "
        f"{int(values.get('timeouts', 0))} timed out, {int(values.get('failed', 0))} failed; "
        f"{int(values.get('attempts', 0))} attempts; about "
        f"{values.get('time_saved', 0.0):.1f} s saved against trying addresses one by one"
    )


def write_stats(target: str) -> None:
    """Report this process's counters: ``-`` prints a line to stderr, anything
    else is a file that gets one JSON line appended (``EYESHIM_STATS``; the
    bootstrap calls this at exit).  Several processes may share one file:
    each line is a single small append."""
    import json
    import time

    values = counters()
    if target == "-":
        sys.stderr.write(f"eyeshim: {format_counters(values)}\n")
        return
    line = json.dumps(
        {"pid": os.getpid(), "argv": sys.argv[:1], "time": time.time(), "counters": values}
    )
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def read_stats(path: str) -> Tuple[int, Dict[str, float]]:
    """Sum the counters a stats file collected: (processes, totals).
    Lines that do not parse are skipped."""
    import json

    totals: Dict[str, float] = dict.fromkeys(Counters.NAMES, 0)
    processes = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                values = json.loads(line)["counters"]
            except (ValueError, KeyError, TypeError):
                continue
            processes += 1
            for key in totals:
                totals[key] += float(values.get(key, 0))
    return processes, totals
