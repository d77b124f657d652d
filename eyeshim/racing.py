"""Racing: staggered connection attempts on non-blocking sockets (RFC 8305 §5).

The race runs entirely in the caller's thread.  Each attempt is a
non-blocking socket whose ``connect()`` has been issued; one selector waits
for whichever of them completes first, for the next DNS answer, or for the
moment the next attempt is due.  Compared with a thread per attempt this
gives real cancellation (a thread blocked in ``connect()`` cannot be
stopped; a non-blocking socket is simply closed), no thread left waiting out
a timeout after the race is decided, and no thread start-up cost on the
happy path.

This module is §5 and nothing else: *which* addresses may be tried and when
the first may start is ``candidates.py``'s (§3), their order is
``ordering.py``'s (§4), and what the process learns from the outcome is
written down by ``connection.py``'s remember step.  The rules enforced here,
with their checklist IDs:

* Attempts start one at a time (R15): the next one after the Connection
  Attempt Delay (R18, from history when there is some; never below 10 ms,
  R19), or at once when a failure leaves no attempt running: a refusal or
  an unreachable route is an answer, not a lost packet, and waiting after
  it would only make eyeshim slower than the stdlib.  An earlier attempt is
  never aborted because a later one starts: on a high-latency link the
  first SYN may simply be slow.
* The caller's timeout bounds each attempt from its own start, as it bounds
  each ``connect()`` in the stdlib; an attempt that times out has failed.
* The first success wins; every other socket is closed at once (R16),
  including one that completed in the same poll.
* Whatever happens -- success, failure, timeout, KeyboardInterrupt -- every
  socket the race opened and did not hand to the caller is closed.

Time and sockets come through a small interface (a connector with a clock)
so that the same loop runs against a fake network with a fake clock in the
tests.

TLS (``tls.py``) is a stage of an attempt that lives in its connector; the
race sees it through one marker.  A connector that runs handshakes reports
an attempt whose TCP connection completed with :data:`HANDSHAKING` instead
of an error: the attempt keeps running (a handshake is never aborted because
another attempt starts), its own timeout now bounds the handshake (the
stdlib bounds the handshake by the socket timeout from the moment it
begins), and the next attempt is paced by the time that handshake should
need instead of the Connection Attempt Delay.  A TLS failure is a failure
of that address after TCP + TLS time, for the stdlib's walk too.
"""

from __future__ import annotations

import errno
import math
import os
import select
import socket
import sys
import time

from . import events
from .addrinfo import AddrInfo, ExceptionGroup, address_of, family_name
from .config import ATTEMPT_DELAY_FLOOR

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Protocol, Set, Tuple

    from .candidates import Candidates, Inbox
    from .dial import Dial
else:
    Protocol = object

__all__ = [
    "HANDSHAKING",
    "Attempt",
    "Connector",
    "Outcome",
    "Race",
    "SocketConnector",
    "failure",
]


class _Handshaking:
    """The marker type of :data:`HANDSHAKING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "HANDSHAKING"


#: What a connector reports for an attempt whose TCP connection has completed
#: when a TLS handshake follows (instead of None, "connected", or an error).
HANDSHAKING: Any = _Handshaking()


class Attempt:
    """One connection attempt: the address, when it started, how it ended."""

    __slots__ = (
        "address",
        "connected",
        "deadline",
        "ended",
        "error",
        "handle",
        "info",
        "result",
        "started",
    )

    #: ``result`` values: how the attempt ended.
    RUNNING, CONNECTED, FAILED, TIMED_OUT, LOST, ABANDONED = (
        "running",
        "connected",
        "failed",  # the connect failed: refused, unreachable, ...
        "timed out",  # still pending when the caller's timeout, from its start, passed
        "lost",  # still pending when a later-started attempt won
        "abandoned",  # started after the winner, closed when it won (or when
        # the stdlib's walk ended in a handshake error)
    )

    def __init__(self, info: AddrInfo, handle: Any) -> None:
        self.info = info
        self.address = address_of(info)
        self.handle = handle
        self.started = math.nan
        #: when its TCP connection completed, if a TLS handshake followed
        self.connected = math.nan
        #: when the caller's timeout ends this attempt (None: never)
        self.deadline: Optional[float] = None
        self.ended = math.nan
        self.result = Attempt.RUNNING
        self.error: Optional[BaseException] = None

    @property
    def elapsed(self) -> float:
        return self.ended - self.started

    @property
    def in_tls(self) -> bool:
        """Whether its TCP connection completed and a TLS handshake followed."""
        return self.connected == self.connected  # not NaN

    @property
    def tcp_time(self) -> float:
        """How long its TCP connection took (the whole attempt without TLS)."""
        return self.connected - self.started if self.in_tls else self.elapsed

    def __repr__(self) -> str:
        return f"Attempt({self.address!r}, started={self.started:.3f}, {self.result})"


_IN_PROGRESS = frozenset(
    code
    for code in (
        errno.EINPROGRESS,
        errno.EWOULDBLOCK,
        errno.EAGAIN,
        getattr(errno, "WSAEWOULDBLOCK", None),
    )
    if code is not None
)

# Linux: bind() with port 0 reserves an ephemeral port immediately unless
# this option is set, which can exhaust ports for a client binding a source
# address; with it, the port is picked at connect() time.  (Value from
# <linux/in.h>; the socket module only exposes the name from 3.12 on.)
_IP_BIND_ADDRESS_NO_PORT = getattr(
    socket, "IP_BIND_ADDRESS_NO_PORT", 24 if sys.platform.startswith("linux") else None
)


# select() and poll() reject timeouts past about 24.8 days (2**31 ms); a
# caller may well pass 1e9 seconds to mean "no timeout".
_LONGEST_WAIT = 86400.0


class Connector(Protocol):
    """Clock and sockets for a race (SocketConnector, or a fake in tests)."""

    def now(self) -> float: ...

    def open(self, info: AddrInfo) -> Attempt:
        """Create and prepare the socket; OSError = this address failed
        before anything was sent."""
        ...

    def connect(self, attempt: Attempt) -> bool:
        """Issue the connect: True if it completed at once; OSError if it
        failed at once."""
        ...

    def wait(
        self, timeout: Optional[float], inbox: Optional[Inbox]
    ) -> List[Tuple[Attempt, Optional[OSError]]]:
        """Block until attempts complete (returned with None or their error;
        :data:`HANDSHAKING` when TCP completed and a TLS handshake follows),
        an answer reaches ``inbox`` (when given), or ``timeout`` passes."""
        ...

    def discard(self, attempt: Attempt) -> None: ...

    def detach(self, attempt: Attempt) -> Any:
        """Hand over the winner's socket; the connector forgets it."""
        ...

    def local_address(self, attempt: Attempt) -> Optional[str]: ...

    def close(self) -> None:
        """Close every socket not detached."""
        ...


class SocketConnector:
    """Real non-blocking sockets, watched with one ``poll()`` object.

    ``select.poll`` rather than the ``selectors`` module's epoll: a race
    watches a handful of descriptors for a few milliseconds, and creating,
    registering with and closing an epoll instance costs more system calls
    than it saves; ``poll`` needs no descriptor of its own and nothing to
    close.  (Where ``poll`` is missing, ``select.select`` serves.)
    """

    def __init__(
        self,
        source_address: Optional[Tuple[Any, ...]] = None,
        prepare_socket: Optional[Callable[[socket.socket], None]] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.now = clock
        self._source_address = source_address
        self._prepare_socket = prepare_socket
        self._poller: Any = None
        # descriptor -> the attempt waiting on it, or the inbox's callback
        self._watched: Dict[int, Any] = {}
        self._open: Dict[int, Attempt] = {}
        # descriptors of the inbox being watched
        self._channel: Set[int] = set()

    def open(self, info: AddrInfo) -> Attempt:
        family, type_, proto = info[0], info[1], info[2]
        # socket.socket looked up at call time, as the stdlib does.
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            # Caller options first: some (SO_REUSEADDR, SO_BINDTODEVICE)
            # must precede bind(), and urllib3 applies them first too.
            if self._prepare_socket is not None:
                self._prepare_socket(sock)
            source = self._source_address
            if source:
                if _IP_BIND_ADDRESS_NO_PORT is not None and len(source) == 2 and not source[1]:
                    try:
                        sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
                    except OSError:
                        pass  # an optimisation only
                # bind() raises for a malformed source_address exactly as in
                # the stdlib (TypeError, not OSError: the race stops there).
                sock.bind(source)
        except BaseException:
            sock.close()
            raise
        attempt = Attempt(info, sock)
        self._open[id(attempt)] = attempt
        return attempt

    def _watch(self, fd: int, data: Any, events: int) -> None:
        if self._poller is None:
            self._poller = _new_poller()
        self._poller.register(fd, events)
        self._watched[fd] = data

    def _unwatch(self, fd: int) -> None:
        if self._watched.pop(fd, None) is not None:
            self._poller.unregister(fd)

    def connect(self, attempt: Attempt) -> bool:
        sock: socket.socket = attempt.handle
        code = sock.connect_ex(attempt.info[4])
        if code == 0:
            return True
        if code in _IN_PROGRESS:
            self._watch(sock.fileno(), attempt, _WRITABLE)
            return False
        raise OSError(code, os.strerror(code))

    def wait(
        self, timeout: Optional[float], inbox: Optional[Inbox]
    ) -> List[Tuple[Attempt, Optional[OSError]]]:
        if timeout is not None and timeout > _LONGEST_WAIT:
            timeout = _LONGEST_WAIT  # the caller's loop simply waits again
        if len(self._watched) == len(self._channel):  # no attempt to watch
            if inbox is not None:
                inbox.wait(timeout)
            elif timeout is not None:
                # Nothing to watch: only a timer (e.g. the Resolution Delay
                # with no lookup left) can be pending.
                time.sleep(timeout)
            return []
        wanted = inbox.watchers() if inbox is not None else {}
        # A descriptor number can come back with another socket and callback
        # (a resolver closed one socket and opened the next): watch it anew.
        for fd in [fd for fd in self._channel if wanted.get(fd) is not self._watched.get(fd)]:
            self._unwatch(fd)
            self._channel.discard(fd)
        for fd, callback in wanted.items():
            if fd not in self._channel:
                self._watch(fd, callback, _READABLE)
                self._channel.add(fd)
        done: List[Tuple[Attempt, Optional[OSError]]] = []
        wait_ms = None if timeout is None else math.ceil(timeout * 1000)
        for fd, _ in self._poller.poll(wait_ms):
            waiting = self._watched.get(fd)
            if waiting is None:
                continue
            if not isinstance(waiting, Attempt):
                waiting()  # the inbox's: a DNS answer to read
                continue
            self._progress(fd, waiting, done)
        return done

    def _progress(
        self, fd: int, attempt: Attempt, done: List[Tuple[Attempt, Optional[OSError]]]
    ) -> None:
        """``attempt``'s descriptor is ready: its connect completed or failed."""
        self._unwatch(fd)
        code = attempt.handle.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        done.append((attempt, None if code == 0 else OSError(code, os.strerror(code))))

    def discard(self, attempt: Attempt) -> None:
        if self._open.pop(id(attempt), None) is None:
            return
        sock: socket.socket = attempt.handle
        self._unwatch(sock.fileno())
        sock.close()

    def detach(self, attempt: Attempt) -> socket.socket:
        self._open.pop(id(attempt), None)
        sock: socket.socket = attempt.handle
        self._unwatch(sock.fileno())
        return sock

    def local_address(self, attempt: Attempt) -> Optional[str]:
        try:
            return str(attempt.handle.getsockname()[0])
        except OSError:
            return None

    def close(self) -> None:
        for attempt in list(self._open.values()):
            self.discard(attempt)
        self._poller = None
        self._watched = {}
        self._channel = set()


_READABLE = getattr(select, "POLLIN", 1)
_WRITABLE = getattr(select, "POLLOUT", 4)


def _new_poller() -> Any:
    if hasattr(select, "poll"):
        return select.poll()
    return _SelectPoller()  # pragma: no cover - platforms without poll()


class _SelectPoller:  # pragma: no cover - platforms without poll()
    """``select.poll``'s interface over ``select.select``."""

    def __init__(self) -> None:
        self._fds: Dict[int, int] = {}

    def register(self, fd: int, events: int) -> None:
        self._fds[fd] = events

    def unregister(self, fd: int) -> None:
        del self._fds[fd]

    modify = register

    def poll(self, timeout_ms: Optional[int]) -> List[Tuple[int, int]]:
        readers = [fd for fd, ev in self._fds.items() if ev & _READABLE]
        writers = [fd for fd, ev in self._fds.items() if ev & _WRITABLE]
        timeout = None if timeout_ms is None else timeout_ms / 1000
        readable, writable, failed = select.select(readers, writers, writers, timeout)
        ready = {fd: _READABLE for fd in readable}
        for fd in (*writable, *failed):
            ready[fd] = _WRITABLE
        return list(ready.items())


def failure(errors: List[BaseException], all_errors: bool) -> BaseException:
    """What ``create_connection`` raises when every attempt failed: the last
    error, or with ``all_errors`` (3.11+) an ExceptionGroup of all of them."""
    if all_errors and ExceptionGroup is not None:
        return ExceptionGroup("create_connection failed", errors)  # type: ignore[no-any-return]
    return errors[-1]


class Outcome:
    """What one race came to: every attempt, the winner, or the error."""

    __slots__ = ("attempts", "ended", "error", "kind", "local", "losers", "sock", "winner")

    def __init__(self) -> None:
        #: Every attempt whose socket was opened, in the order they started.
        self.attempts: List[Attempt] = []
        self.winner: Optional[Attempt] = None
        #: The winner's source address (the history notices network changes by it).
        self.local: Optional[str] = None
        #: The winner's socket (the connector's handle), detached from the race.
        self.sock: Any = None
        #: What to raise when there is no winner.
        self.error: Optional[BaseException] = None
        #: ``connected``, ``timeout``, ``failed`` or ``resolve failed``; ``tcp``
        #: while a race waits for its TLS context (``Race.run`` with ``defer_tls``).
        self.kind = "failed"
        #: Addresses of attempts closed because another one won.
        self.losers: List[str] = []
        self.ended = math.nan

    def result(self) -> Any:
        """The winner's socket, or raise the race's error."""
        if self.sock is not None:
            return self.sock
        error, self.error = self.error, None  # no frame <-> exception cycle
        assert error is not None
        raise error


class Race:
    """One Happy Eyeballs race: ``run()`` tries ``candidates`` until one connects.

    Time, as the stdlib defines it: the caller's timeout bounds each attempt
    from that attempt's own start, as it bounds each ``connect()`` of the
    stdlib's loop; it bounds neither name resolution nor the race as a
    whole.  An attempt that times out has failed, and the next address is
    tried at once.  The race ends when an attempt connects, or when every
    address has been tried and has failed and no lookup is pending.

    Never behind the stdlib.  Interleaving families and staggering attempts
    is what makes a broken family cheap, but with a short timeout or a slow
    other family it can reach an address later than the stdlib's plain walk
    would (the stdlib tries the second IPv6 address as soon as the first
    times out; the interleaved order tries IPv4 first and the second IPv6
    address an attempt delay later).  So the race keeps the stdlib's walk
    alongside (:meth:`_stock_due`): in getaddrinfo's order, each address
    starting when the one before it failed, as long as it took to fail here.
    Whenever that walk reaches an address the race has not tried, the race
    tries it at once.  Every address is then tried no later than the stdlib
    would try it, so every connection that stock makes, eyeshim makes no
    later (tests/test_never_worse_than_stock.py checks this as a property).
    """

    def __init__(self, dial: Dial, candidates: Candidates, defer_tls: bool = False) -> None:
        self.dial = dial
        self.candidates = candidates
        self.connector = dial.connector
        self._trace = dial.trace
        self._outcome = Outcome()
        self._running: List[Attempt] = []
        # A TLS stage whose context the caller hands over later (resume()):
        # the race stops at the first TCP connection and keeps the rest.
        self._defer_tls = defer_tls
        # Keys of the addresses whose TLS handshake failed (TCP had worked),
        # and when the stdlib's walk ends in one of those handshakes.
        self._tls_failed: Set[Tuple[Any, ...]] = set()
        self._stock_ends: Optional[float] = None
        # (address, error) of every failure, including sockets that failed
        # before connect() (those never became attempts)
        self._failures: List[Tuple[AddrInfo, BaseException]] = []
        self._next_start = -math.inf
        self._last_start = -math.inf
        # The stdlib's walk (see the class docstring): how long each address
        # took to fail here (None while running), and how far the walk is.
        self._tried: Dict[Tuple[Any, ...], Optional[float]] = {}
        self._walked = 0
        self._walk_time: Optional[float] = None

    # -- attempts ------------------------------------------------------------

    def _may_start(self, now: float) -> bool:
        # While attempts are in flight, the Connection Attempt Delay timer
        # paces the starts (R15); it is never below 10 ms (R19: Config
        # enforces it).  A failure frees its slot (see _failed): a refusal is
        # an answer, not a lost packet, and the stdlib would move on at once.
        return not self._running or now >= self._next_start

    def _attempt_delay(self, address: str) -> float:
        cfg = self.dial.config
        history = self.dial.history
        if history is None:
            return cfg.connection_attempt_delay
        return history.attempt_delay(
            address,
            cfg.connection_attempt_delay,
            cfg.min_connection_attempt_delay,
            cfg.max_connection_attempt_delay,
        )

    def _start(self, info: AddrInfo) -> Optional[Attempt]:
        """Start an attempt on ``info``; the attempt if it connected at once."""
        self._tried[_key(info)] = 0.0  # failing before connect() takes no time
        try:
            attempt = self.connector.open(info)
        except OSError as exc:
            # Failed before a packet was sent (e.g. source_address of the
            # other family): nothing to pace, try the next address now.
            if self._trace is not None:
                self._trace(
                    events.AttemptFailed,
                    address=address_of(info),
                    errno=exc.errno,
                    error=str(exc),
                    elapsed=0.0,
                    before_connect=True,
                )
            self._failures.append((info, exc))
            return None
        # The clock again, not the loop's: sorting (and explaining, when
        # someone records events) happened since, and must not count as RTT.
        now = self.connector.now()
        attempt.started = now
        self._tried[_key(info)] = None
        timeout = self.dial.timeout
        attempt.deadline = None if timeout is None else now + timeout
        self._outcome.attempts.append(attempt)
        delay = self._attempt_delay(attempt.address)
        if self._trace is not None:
            self._trace(
                events.AttemptStarted,
                address=attempt.address,
                family=family_name(info[0]),
                number=len(self._outcome.attempts),
                next_in=delay,
            )
        try:
            connected = self.connector.connect(attempt)
        except OSError as exc:
            self.connector.discard(attempt)
            self._failed(attempt, exc, now)
            return None
        self._next_start = now + delay
        self._last_start = now
        self._running.append(attempt)
        return attempt if connected else None

    def _failed(
        self, attempt: Attempt, error: BaseException, now: float, result: str = Attempt.FAILED
    ) -> None:
        attempt.result, attempt.error, attempt.ended = result, error, now
        if self._trace is not None:
            self._trace(
                events.AttemptFailed,
                address=attempt.address,
                errno=getattr(error, "errno", None),
                error=str(error),
                elapsed=now - attempt.started,
                timed_out=True if result == Attempt.TIMED_OUT else None,
                tls=True if attempt.in_tls else None,
            )
        if attempt.in_tls:
            self._tls_failed.add(_key(attempt.info))
        self._failures.append((attempt.info, error))
        self._tried[_key(attempt.info)] = now - attempt.started
        # A failure frees its slot: the next address is tried at once.
        self._next_start = min(self._next_start, now)

    def _expire(self, now: float) -> None:
        """Fail the attempts whose own timeout has passed."""
        for attempt in [a for a in self._running if a.deadline is not None and now >= a.deadline]:
            self._running.remove(attempt)
            self.connector.discard(attempt)
            self._failed(attempt, self._timeout_error(attempt), now, Attempt.TIMED_OUT)

    def _handshaking(self, attempt: Attempt, now: float) -> None:
        """``attempt``'s TCP connection completed; its TLS handshake follows."""
        attempt.connected = now
        if self._defer_tls:
            return  # the race stops at this turn's end (see run())
        self._tls_started(attempt, now)

    def _tls_started(self, attempt: Attempt, now: float) -> None:
        """The handshake of ``attempt`` began at ``now``.

        The stdlib bounds a handshake by the socket timeout from the moment
        it begins, so the caller's timeout now bounds the handshake.  The
        next attempt waits for the time this handshake should need (HE v3:
        TCP has completed, TLS is under way), from the TCP time just
        measured, not for the Connection Attempt Delay, which was about a
        lost SYN; behind an older attempt's handshake it only waits longer.
        """
        timeout = self.dial.timeout
        attempt.deadline = None if timeout is None else now + timeout
        cfg = self.dial.config
        spec = self.dial.tls
        delay = spec.handshake_delay(
            attempt.connected - attempt.started,
            cfg.min_connection_attempt_delay,
            cfg.max_connection_attempt_delay,
        )
        if attempt.started == self._last_start:
            self._next_start = now + delay
        else:
            self._next_start = max(self._next_start, now + delay)
        if self._trace is not None:
            self._trace(
                events.TlsStarted,
                address=attempt.address,
                tcp=attempt.connected - attempt.started,
                next_in=self._next_start - now,
            )

    def _stock_due(self) -> Optional[Tuple[AddrInfo, float]]:
        """The address the stdlib's walk has reached without the race having
        tried it, and when the walk reached it; None when there is none (the
        walk waits on an attempt still running, or has not begun)."""
        walk = self.candidates.stock_walk()
        if walk is None:
            return None
        order, resolved_at = walk
        if self._walk_time is None:
            self._walk_time = resolved_at
        while self._walked < len(order):
            info = order[self._walked]
            key = _key(info)
            if key not in self._tried:
                return info, self._walk_time
            took = self._tried[key]
            if took is None:
                return None  # still running: the stdlib would be waiting on it too
            if key in self._tls_failed:
                # The stdlib's walk ends at the first address whose TCP
                # connect works: it raises that handshake's error then.
                if self._stock_ends is None:
                    self._stock_ends = self._walk_time + took
                return None
            self._walk_time += took
            self._walked += 1
        return None

    def _timeout_error(self, attempt: Optional[Attempt] = None) -> OSError:
        if attempt is not None and attempt.in_tls:
            # What ssl raises when the socket timeout ends a handshake.
            return socket.timeout("The handshake operation timed out")
        if self.dial.timeout == 0:
            # timeout=0 is a non-blocking socket: the stdlib's connect()
            # raises "in progress" at once.
            return BlockingIOError(errno.EINPROGRESS, os.strerror(errno.EINPROGRESS))
        return socket.timeout("timed out")

    def _win(self, winners: List[Attempt], now: float) -> None:
        # Several attempts can complete within one poll: the one that started
        # first (the better-ranked address) wins, the rest are closed.
        winner = min(winners, key=lambda a: a.started)
        winner.result, winner.ended = Attempt.CONNECTED, now
        outcome = self._outcome
        outcome.winner, outcome.kind = winner, "connected"
        outcome.local = self.connector.local_address(winner)
        if self._trace is not None:
            self._trace(
                events.Connected,
                address=winner.address,
                rtt=now - winner.started,
                local=outcome.local,
            )
        for other in self._running:
            if other is not winner:
                other.ended = now
                # It had a head start and still lost, or it came after.
                other.result = Attempt.LOST if other.started < winner.started else Attempt.ABANDONED
                outcome.losers.append(other.address)
        self._running = []
        outcome.sock = self.connector.detach(winner)

    # -- outcome -------------------------------------------------------------

    def _fail(self) -> None:
        """Every address failed (or none resolved): decide what to raise.

        The stdlib raises the error of the last address it tried, in
        ``getaddrinfo``'s order, and with ``all_errors`` every error in that
        order.  The race tried the addresses in another order (interleaved,
        history first) and concurrently, so the errors are put back into the
        order the stdlib would have met them: what a caller sees (refused
        or timed out, say) is then what it would have seen without eyeshim,
        whatever the history knew.
        """
        outcome = self._outcome
        error = self.candidates.resolution_error()
        if error is not None:
            outcome.kind, outcome.error = "resolve failed", error
            return
        failures, self._failures = self._failures, []
        walk = self.candidates.stock_walk()
        rank = {_key(info): n for n, info in enumerate(walk[0])} if walk is not None else {}
        failures.sort(key=lambda failure: rank.get(_key(failure[0]), len(rank)))
        tls = [error for info, error in failures if _key(info) in self._tls_failed]
        if tls:
            # The stdlib's walk ends at the first address whose TCP connect
            # works; its handshake's error is what the caller gets, alone
            # (all_errors is about the TCP walk).
            outcome.kind = "timeout" if isinstance(tls[0], socket.timeout) else "failed"
            outcome.error = tls[0]
            return
        errors = [error for _, error in failures]
        if all(isinstance(e, socket.timeout) for e in errors):
            outcome.kind = "timeout"
        outcome.error = failure(errors, self.dial.all_errors)

    # -- the loop ------------------------------------------------------------

    def run(self) -> Outcome:
        """Race to the end; the outcome holds the winner or the error.  Every
        socket but the winner's is closed, whatever happens.

        With ``defer_tls`` the race stops at the first TCP connection
        (``outcome.kind`` is ``"tcp"``, ``outcome.sock`` that socket, still
        the race's) and keeps every other attempt: :meth:`resume` runs the
        handshakes when the caller has its TLS context, :meth:`abandon`
        ends the race there."""
        return self._run(self._loop)

    def resume(self, tls: Any) -> Outcome:
        """Go on after a stop at the first TCP connection, with handshakes:
        every attempt connected so far starts its handshake now."""
        self._defer_tls = False
        outcome = self._outcome
        outcome.kind, outcome.sock, outcome.winner = "failed", None, None

        def go() -> bool:
            now = self.connector.now()
            started = self.connector.start_tls(tls)  # type: ignore[attr-defined]
            for attempt, error in started:
                if error is HANDSHAKING:
                    self._tls_started(attempt, now)
            if self._settle([a for a in started if a[1] is not HANDSHAKING], now):
                return False
            return self._loop()

        return self._run(go)

    def abandon(self) -> Outcome:
        """End a race stopped at its first TCP connection there: that
        connection wins, as in a race without TLS."""
        self._defer_tls = False
        outcome = self._outcome
        winner = outcome.winner
        assert winner is not None

        def win() -> bool:
            outcome.winner = None
            for attempt in self._running:
                # No handshake was tried: not a TLS failure of anyone's.
                attempt.connected = math.nan
            self._win([winner], winner.ended)
            return False

        return self._run(win)

    def _run(self, loop: Callable[[], bool]) -> Outcome:
        stopped = False
        try:
            stopped = loop()
        finally:
            if not stopped:
                self.candidates.close()
                self.connector.close()
                self._outcome.ended = self.connector.now()
        return self._outcome

    def _settle(self, finished: List[Tuple[Attempt, Optional[OSError]]], now: float) -> bool:
        """Take what the connector reported; True when the race is over
        (won), or stops at a TCP connection (``defer_tls``)."""
        connector = self.connector
        winners = []
        for attempt, error in finished:
            if error is None:
                winners.append(attempt)
            elif error is HANDSHAKING:
                self._handshaking(attempt, now)
            elif attempt in self._running:
                self._running.remove(attempt)
                connector.discard(attempt)
                self._failed(attempt, error, now)
        if winners:
            self._win(winners, now)
            return True
        if self._defer_tls:
            tcp = [a for a in self._running if a.in_tls]
            if tcp:
                first = min(tcp, key=lambda a: a.started)
                outcome = self._outcome
                outcome.kind, outcome.winner, outcome.sock = "tcp", first, first.handle
                first.ended = first.connected
                return True
        return False

    def _loop(self) -> bool:
        connector = self.connector
        candidates = self.candidates
        while True:
            now = connector.now()
            candidates.update(now)
            if self._running and any(
                a.deadline is not None and now >= a.deadline for a in self._running
            ):
                # One last look before an attempt is declared timed out: a
                # connection that completed while this thread was busy (or
                # descheduled) must win, as stock's poll() would have seen it.
                # Not for timeout=0: stock's non-blocking connect() does not
                # look again, it raises "in progress" at once.
                if self.dial.timeout:
                    inbox = candidates.inbox if candidates.pending else None
                    finished = connector.wait(0.0, inbox)
                    if finished and self._settle(finished, connector.now()):
                        return self._outcome.kind == "tcp"
                self._expire(now)
            due = self._stock_due()
            if self._stock_ends is not None and now >= self._stock_ends:
                self._give_up(now)
                return False
            overdue = due is not None and due[1] < now
            if due is not None and self._running and self._running[-1].started == self._last_start:
                # Never two starts at once (R15): while the latest attempt
                # runs, a catch-up keeps the 10 ms floor after its start.
                due = (due[0], max(due[1], self._last_start + ATTEMPT_DELAY_FLOOR))
            info: Optional[AddrInfo] = None
            he_may_start = candidates.ready and self._may_start(now)
            if due is not None and now >= due[1] and (overdue or not he_may_start):
                info = due[0]  # the stdlib would be trying it by now
                candidates.take(info)
            elif he_may_start:
                info = candidates.next()
            if info is not None:
                winner = self._start(info)
                if winner is not None:
                    self._win([winner], winner.started)
                    return False
                continue
            if not self._running and candidates.exhausted:
                self._fail()
                return False
            wake = self._next_wakeup(due[1] if due is not None else None)
            timeout = None if wake is None else max(0.0, wake - now)
            finished = connector.wait(timeout, candidates.inbox if candidates.pending else None)
            if finished and self._settle(finished, connector.now()):
                return self._outcome.kind == "tcp"

    def _give_up(self, now: float) -> None:
        """The stdlib would have raised a handshake's error by now: so does
        the race, never later and never hanging on where the stdlib ended
        (the attempts still running are closed)."""
        for attempt in self._running:
            attempt.result, attempt.ended = Attempt.ABANDONED, now
            self.connector.discard(attempt)
        self._running = []
        self._fail()

    def _next_wakeup(self, stock_due: Optional[float]) -> Optional[float]:
        times = [a.deadline for a in self._running if a.deadline is not None]
        if stock_due is not None:
            times.append(stock_due)
        if self._stock_ends is not None:
            times.append(self._stock_ends)
        if self.candidates.ready:
            times.append(self._next_start)
        # The Resolution Delay (when the gate is shut) or a resolver's timer.
        wake = self.candidates.wake_time()
        if wake is not None:
            times.append(wake)
        return min(times) if times else None


def _key(info: AddrInfo) -> Tuple[Any, ...]:
    return (info[0], info[4])
