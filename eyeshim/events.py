"""Events and counters: seeing what a race did.

A shim that silently rewires every connection of a process is a black box
until it can show its work, the way ``curl -v`` does.  Every step of a race
is a :class:`RaceEvent` with a monotonic timestamp relative to the start of
that race:

==================  =========================================================
kind                data
==================  =========================================================
``race``            host, port, timeout, families queried
``query``           family (a lookup was sent)
``answer``          family, addresses (or ``error``), in DNS order
``gate``            why connecting may begin: ``aaaa``, ``all answered``,
                    ``resolution delay``, ``known``
``sorted``          addresses in attempt order, ``rules``: for each
                    neighbouring pair the rule that put them in that order
``history``         per address what the history knew when sorting
``attempt``         address, family, attempt number, delay before the next
``failed``          address, errno, error, elapsed
``connected``       address, rtt, local address
``closed``          addresses of losing attempts closed after the win
``nat64``           ipv4 addresses found unreachable, synthesized addresses
                    about to be raced (RFC 8305 §7)
``recorded``        address, outcome (``success``/``failure``/``lost``)
``done``            outcome (``connected``, ``timeout``, ``failed``,
                    ``resolve failed``), error, elapsed
==================  =========================================================

With no subscriber and the ``eyeshim`` logger below DEBUG, a race creates
no events at all: each emit point costs one ``is None`` test.  With the
logger at DEBUG, each event is one log line.

Counters are kept always (a lock and a few integers per race) and read with
:func:`counters`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import socket
import threading
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

__all__ = [
    "RaceEvent",
    "counters",
    "format_counters",
    "read_stats",
    "recording",
    "reset_counters",
    "subscribe",
    "write_stats",
]

logger = logging.getLogger("eyeshim")


@dataclasses.dataclass(frozen=True)
class RaceEvent:
    """One step of one race."""

    race: int  #: a process-unique race number
    time: float  #: seconds since the race started (monotonic)
    kind: str
    host: str
    data: Mapping[str, Any]

    def describe(self) -> str:
        """A one-line, human-readable rendering (the DEBUG log line)."""
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


Subscriber = Callable[[RaceEvent], None]

_lock = threading.Lock()
_subscribers: Tuple[Subscriber, ...] = ()
_race_numbers = itertools.count(1)


def subscribe(callback: Subscriber) -> Callable[[], None]:
    """Call ``callback(event)`` for every event of every race, in the racing
    thread; returns a function that unsubscribes.  A callback that raises is
    logged and otherwise ignored: observing must never break a connection."""
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


@contextlib.contextmanager
def recording() -> Iterator[List[RaceEvent]]:
    """``with eyeshim.events.recording() as events:`` collects every event
    emitted inside the block (by any thread) into the list."""
    collected: List[RaceEvent] = []
    lock = threading.Lock()

    def collect(event: RaceEvent) -> None:
        with lock:
            collected.append(event)

    unsubscribe = subscribe(collect)
    try:
        yield collected
    finally:
        unsubscribe()


Emit = Callable[..., None]


def listening() -> bool:
    """Whether anyone would receive events right now."""
    return bool(_subscribers) or logger.isEnabledFor(logging.DEBUG)


def emitter(host: Any, clock: Callable[[], float], start: float) -> Optional[Emit]:
    """An ``emit(kind, **data)`` for one race, or None when nobody listens."""
    subscribers = _subscribers
    log = logger.isEnabledFor(logging.DEBUG)
    if not subscribers and not log:
        return None
    number = next(_race_numbers)
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)

    def emit(kind: str, **data: Any) -> None:
        event = RaceEvent(number, clock() - start, kind, name, data)
        if log:
            logger.debug("%s", event.describe())
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # a broken observer must not break a connection
                logger.exception("eyeshim event subscriber %r failed", callback)

    return emit


# -- counters -------------------------------------------------------------------

_counter_lock = threading.Lock()
_counters: Dict[str, float] = {}


def _blank() -> Dict[str, float]:
    return {
        "races": 0,
        "connected": 0,
        "failed": 0,
        "timeouts": 0,
        "wins_ipv6": 0,
        "wins_ipv4": 0,
        "fallbacks": 0,
        "attempts": 0,
        "time_saved": 0.0,
    }


_counters.update(_blank())


def count(
    outcome: str, *, family: int = 0, attempts: int = 0, fallback: bool = False, saved: float = 0.0
) -> None:
    """Record the end of a race (called by the engine)."""
    with _counter_lock:
        _counters["races"] += 1
        _counters["attempts"] += attempts
        if outcome == "connected":
            _counters["connected"] += 1
            _counters["wins_ipv6" if family == socket.AF_INET6 else "wins_ipv4"] += 1
            if fallback:
                _counters["fallbacks"] += 1
            _counters["time_saved"] += saved
        elif outcome == "timeout":
            _counters["timeouts"] += 1
        else:
            _counters["failed"] += 1


def counters() -> Dict[str, float]:
    """A snapshot of the process's race counters.

    ``fallbacks`` counts races won by an address other than the first one
    tried (the preferred address was broken or slow).  ``time_saved`` is an
    estimate, in seconds, of what a sequential walk (the stdlib) would have
    spent on the addresses tried before the winner that had not failed by
    the time it won: each of them would have held the stdlib for the full
    timeout (or, with no timeout, for the elapsed race at least).
    """
    with _counter_lock:
        return dict(_counters)


def reset_counters() -> None:
    with _counter_lock:
        _counters.clear()
        _counters.update(_blank())


def format_counters(values: Dict[str, float]) -> str:
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
    import os
    import sys
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

    totals = _blank()
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
