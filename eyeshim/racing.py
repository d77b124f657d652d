"""Racing: staggered connection attempts on non-blocking sockets (RFC 8305 §5).

The race runs entirely in the caller's thread.  Each attempt is a
non-blocking socket whose ``connect()`` has been issued; one ``selectors``
selector waits for whichever of them completes first, for the next DNS
answer, or for the moment the next attempt is due.  Compared with a thread
per attempt this gives real cancellation (a thread blocked in ``connect()``
cannot be stopped; a non-blocking socket is simply closed), no thread left
waiting out a timeout after the race is decided, and no thread start-up
cost on the happy path.

The rules the loop enforces, with their checklist IDs:

* Attempts start one at a time (R15): the next one after the Connection
  Attempt Delay (R18, from history when there is some), or at once when a
  running attempt fails -- but never within 10 ms of the previous start
  (R19), so an address that refuses instantly cannot turn the race into a
  SYN flood.  An earlier attempt is never aborted because a later one
  starts: on a high-latency link the first SYN may simply be slow.
* The first success wins; every other socket is closed at once (R16),
  including one that completed in the same poll.
* Connecting begins as soon as AAAA answers (R3), or when A answered and
  either AAAA failed (R6) or the Resolution Delay passed (R4, R5); answers
  that arrive later join the untried part of the list, sorted (R7, R24).
* Whatever happens -- success, failure, timeout, KeyboardInterrupt -- every
  socket the race opened and did not hand to the caller is closed.

Time, sockets and DNS all come through small interfaces (a connector with a
clock, a resolver, an inbox) so that the same loop runs against a fake
network with a fake clock in the tests.
"""

from __future__ import annotations

import collections
import errno
import math
import os
import selectors
import socket
import sys
import threading
import time
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    List,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
)

from . import events as _events
from .config import ATTEMPT_DELAY_FLOOR, Config
from .history import History
from .resolving import AddrInfo, Answer

__all__ = ["Attempt", "Connector", "Inbox", "Race", "SocketConnector", "address_of"]

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


def address_of(info: AddrInfo) -> str:
    """The destination IP (with its scope, for IPv6 link-local) of an entry."""
    return str(info[4][0])


class Attempt:
    """One connection attempt: the address, when it started, its socket."""

    __slots__ = ("address", "failed_after", "handle", "info", "started")

    def __init__(self, info: AddrInfo, handle: Any) -> None:
        self.info = info
        self.address = address_of(info)
        self.handle = handle
        self.started = math.nan
        self.failed_after: Optional[float] = None

    def __repr__(self) -> str:
        return f"Attempt({self.address!r}, started={self.started:.3f})"


class Inbox:
    """DNS answers travelling from resolver threads to the racing thread.

    The racer blocks either on a condition variable (while it has no socket
    to watch) or in ``select()`` (while attempts run), so a delivery both
    notifies the condition and, once the racer asked for one, writes a byte
    to a wake-up socket pair.  The pair is created only when needed: on the
    happy path both answers arrive before any attempt starts, and the race
    costs no extra file descriptors.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._answers: Deque[Answer] = collections.deque()
        self._reader: Optional[socket.socket] = None
        self._writer: Optional[socket.socket] = None
        self._closed = False

    def deliver(self, answer: Answer) -> None:
        """Called from any thread; an answer for a finished race is dropped."""
        with self._lock:
            if self._closed:
                return
            self._answers.append(answer)
            self._arrived.notify()
            if self._writer is not None:
                try:
                    self._writer.send(b"\0")
                except OSError:
                    pass  # the pipe is full: the reader is awake anyway

    def take(self) -> List[Answer]:
        with self._lock:
            answers = list(self._answers)
            self._answers.clear()
            return answers

    def wait(self, timeout: Optional[float]) -> None:
        """Block until an answer is waiting or ``timeout`` passes."""
        with self._lock:
            if not self._answers:
                self._arrived.wait(timeout)

    def fileno(self) -> int:
        """A descriptor that becomes readable when an answer arrives."""
        with self._lock:
            if self._reader is None:
                self._reader, self._writer = socket.socketpair()
                self._reader.setblocking(False)
                self._writer.setblocking(False)
                if self._answers:
                    self._writer.send(b"\0")
            return self._reader.fileno()

    def drain(self) -> None:
        with self._lock:
            if self._reader is None:
                return
            try:
                while self._reader.recv(512):
                    pass
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._answers.clear()
            for sock in (self._reader, self._writer):
                if sock is not None:
                    sock.close()
            self._reader = self._writer = None


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
        """Block until attempts complete (returned with None or their error),
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
    """Real non-blocking sockets watched by one selector."""

    def __init__(
        self,
        source_address: Optional[Tuple[Any, ...]] = None,
        prepare_socket: Optional[Callable[[socket.socket], None]] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.now = clock
        self._source_address = source_address
        self._prepare_socket = prepare_socket
        self._selector: Optional[selectors.BaseSelector] = None
        self._open: Dict[int, Attempt] = {}
        self._inbox_fd: Optional[int] = None

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
            if self._source_address:
                if _IP_BIND_ADDRESS_NO_PORT is not None and not self._source_address[1]:
                    try:
                        sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
                    except OSError:
                        pass  # an optimisation only
                sock.bind(self._source_address)
        except BaseException:
            sock.close()
            raise
        attempt = Attempt(info, sock)
        self._open[id(attempt)] = attempt
        return attempt

    def connect(self, attempt: Attempt) -> bool:
        sock: socket.socket = attempt.handle
        code = sock.connect_ex(attempt.info[4])
        if code == 0:
            return True
        if code in _IN_PROGRESS:
            if self._selector is None:
                self._selector = selectors.DefaultSelector()
            self._selector.register(sock, selectors.EVENT_WRITE, attempt)
            return False
        raise OSError(code, os.strerror(code))

    def wait(
        self, timeout: Optional[float], inbox: Optional[Inbox]
    ) -> List[Tuple[Attempt, Optional[OSError]]]:
        selector = self._selector
        if selector is None or not selector.get_map():
            if inbox is not None:
                inbox.wait(timeout)
            elif timeout is not None:
                # Nothing to watch: only a timer (e.g. the Resolution Delay
                # with no lookup left) can be pending.
                threading.Event().wait(timeout)
            return []
        if inbox is not None and self._inbox_fd is None:
            self._inbox_fd = inbox.fileno()
            selector.register(self._inbox_fd, selectors.EVENT_READ, None)
        elif inbox is None and self._inbox_fd is not None:
            selector.unregister(self._inbox_fd)
            self._inbox_fd = None
        done: List[Tuple[Attempt, Optional[OSError]]] = []
        for key, _ in selector.select(timeout):
            attempt = key.data
            if attempt is None:
                if inbox is not None:
                    inbox.drain()
                continue
            selector.unregister(key.fileobj)
            code = attempt.handle.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            done.append((attempt, None if code == 0 else OSError(code, os.strerror(code))))
        return done

    def discard(self, attempt: Attempt) -> None:
        if self._open.pop(id(attempt), None) is None:
            return
        sock: socket.socket = attempt.handle
        if self._selector is not None:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
        sock.close()

    def detach(self, attempt: Attempt) -> socket.socket:
        self._open.pop(id(attempt), None)
        sock: socket.socket = attempt.handle
        if self._selector is not None:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
        return sock

    def local_address(self, attempt: Attempt) -> Optional[str]:
        try:
            return str(attempt.handle.getsockname()[0])
        except OSError:
            return None

    def close(self) -> None:
        for attempt in list(self._open.values()):
            self.discard(attempt)
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        self._inbox_fd = None


_FAMILY_NAMES: Dict[int, str] = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}

OrderFunc = Callable[[List[AddrInfo]], List[AddrInfo]]


def _dedupe_key(info: AddrInfo) -> Tuple[Any, ...]:
    return (info[0], info[1], info[2], info[4])


class Race:
    """One Happy Eyeballs race; ``run()`` returns the winning socket.

    ``lookups`` names the families still being resolved (their answers come
    through ``inbox``); ``initial`` holds addresses already known (literals,
    hosts-file answers).
    """

    def __init__(
        self,
        connector: Connector,
        *,
        config: Config,
        order: OrderFunc,
        history: Optional[History] = None,
        deadline: Optional[float] = None,
        all_errors: bool = False,
        inbox: Optional[Inbox] = None,
        lookups: Sequence[int] = (),
        initial: Sequence[AddrInfo] = (),
        cancel_lookups: Sequence[Callable[[], None]] = (),
        emit: Optional[Callable[..., None]] = None,
        timeout: Optional[float] = None,
    ) -> None:
        self.connector = connector
        self.emit = emit
        self.timeout = timeout
        self.config = config
        self.order = order
        self.history = history
        self.deadline = deadline
        self.all_errors = all_errors
        self.inbox = inbox if inbox is not None else Inbox()
        self.pending: Set[int] = set(lookups)
        self.cancel_lookups = list(cancel_lookups)
        self.untried: List[AddrInfo] = []
        self.running: List[Attempt] = []
        self.started: List[Attempt] = []  # every attempt whose connect() was issued
        self.errors: List[BaseException] = []
        self.dns_errors: Dict[int, BaseException] = {}
        self._seen: Set[Tuple[Any, ...]] = set()
        self._first_answer: Optional[float] = None
        self._may_connect = False
        self._last_start: Optional[float] = None
        self._next_start = -math.inf
        self._started_at = connector.now()
        self._winner: Optional[Attempt] = None
        self._won_at = math.nan
        self._closed_losers: List[str] = []
        if initial:
            self._add(list(initial))
            self._may_connect = bool(self.untried)
            if emit is not None and self.untried:
                emit("gate", reason="known")

    # -- DNS answers ---------------------------------------------------------

    def _add(self, infos: List[AddrInfo]) -> bool:
        new = []
        for info in infos:
            key = _dedupe_key(info)
            if key not in self._seen:
                self._seen.add(key)
                new.append(info)
        if new:
            # R7/R24: newcomers are sorted together with the addresses not yet
            # tried; attempts already running are left alone (R22).
            self.untried = self.order(self.untried + new)
            if self.emit is not None:
                self._emit_order()
        return bool(new)

    def _emit_order(self) -> None:
        assert self.emit is not None
        addresses = [address_of(info) for info in self.untried]
        explain = getattr(self.order, "explain", None)
        rules = explain(self.untried) if explain is not None else []
        if self.history is not None:
            known = {}
            for address in addresses:
                record = self.history.get(address)
                if record is not None:
                    known[address] = {
                        "rtt": record.srtt,
                        "failures": record.failures,
                        "used": record.last_success is not None,
                    }
            if known:
                self.emit("history", known=known)
        self.emit("sorted", order=addresses, rules=rules)

    def _take_answers(self, now: float) -> None:
        for answer in self.inbox.take():
            self.pending.discard(answer.family)
            if self.emit is not None:
                if answer.error is not None:
                    self.emit(
                        "answer",
                        family=_FAMILY_NAMES.get(answer.family, answer.family),
                        error=str(answer.error),
                    )
                else:
                    self.emit(
                        "answer",
                        family=_FAMILY_NAMES.get(answer.family, answer.family),
                        addresses=[address_of(info) for info in answer.infos],
                    )
            if answer.error is not None:
                self.dns_errors[answer.family] = answer.error
            elif self._add(answer.infos) and self._first_answer is None:
                self._first_answer = now

    def _update_gate(self, now: float) -> None:
        if self._may_connect or not self.untried:
            return
        if not self.pending:
            # Every lookup has answered: nothing left to wait for (R6 when
            # the AAAA answer was negative).
            self._open_gate("all answered")
            return
        head = self.untried[0]
        if head[0] == socket.AF_INET6 and not self._known_broken(head) and self._preferred(head):
            self._open_gate("aaaa")  # R3: a usable, preferred IPv6 address: go
        elif (
            self._first_answer is not None
            and now >= self._first_answer + self.config.resolution_delay
        ):
            # R4: A came first and AAAA is late.  The same wait applies when
            # AAAA came first but history says its addresses just failed:
            # give the other family the Resolution Delay to answer rather
            # than walk straight into a known-broken address, or into an IPv6
            # address the policy ranks below IPv4 (6to4, a gai.conf).
            self._open_gate("resolution delay")

    def _open_gate(self, reason: str) -> None:
        self._may_connect = True
        if self.emit is not None:
            self.emit("gate", reason=reason)

    def _preferred(self, info: AddrInfo) -> bool:
        beats_ipv4 = getattr(self.order, "beats_ipv4", None)
        return beats_ipv4 is None or bool(beats_ipv4(info))

    def _known_broken(self, info: AddrInfo) -> bool:
        return self.history is not None and self.history.failed_recently(address_of(info))

    # -- attempts ------------------------------------------------------------

    def _may_start(self, now: float) -> bool:
        if self._last_start is None:
            return True
        if now < self._last_start + ATTEMPT_DELAY_FLOOR:
            return False  # R19, even when the previous attempt failed at once
        return not self.running or now >= self._next_start

    def _attempt_delay(self, address: str) -> float:
        cfg = self.config
        if self.history is None:
            return cfg.connection_attempt_delay
        return self.history.attempt_delay(
            address,
            cfg.connection_attempt_delay,
            cfg.min_connection_attempt_delay,
            cfg.max_connection_attempt_delay,
        )

    def _start_next(self, now: float) -> Optional[Any]:
        info = self.untried.pop(0)
        try:
            attempt = self.connector.open(info)
        except OSError as exc:
            # Failed before a packet was sent (e.g. source_address of the
            # other family): nothing to pace, try the next address now.
            if self.emit is not None:
                self.emit(
                    "failed",
                    address=address_of(info),
                    errno=exc.errno,
                    error=str(exc),
                    elapsed=0.0,
                    before_connect=True,
                )
            self.errors.append(exc)
            return None
        # The clock again, not the loop's: sorting (and explaining, when
        # someone records events) happened since, and must not count as RTT.
        now = self.connector.now()
        attempt.started = now
        self.started.append(attempt)
        self._last_start = now
        delay = self._attempt_delay(attempt.address)
        if self.emit is not None:
            self.emit(
                "attempt",
                address=attempt.address,
                family=_FAMILY_NAMES.get(info[0], info[0]),
                number=len(self.started),
                next_in=delay,
            )
        try:
            connected = self.connector.connect(attempt)
        except OSError as exc:
            self.connector.discard(attempt)
            self._failed(attempt, exc, now)
            return None
        self._next_start = now + delay
        self.running.append(attempt)
        if connected:
            return self._win([attempt], now)
        return None

    def _failed(self, attempt: Attempt, error: BaseException, now: float) -> None:
        attempt.failed_after = now - attempt.started
        if self.emit is not None:
            self.emit(
                "failed",
                address=attempt.address,
                errno=getattr(error, "errno", None),
                error=str(error),
                elapsed=now - attempt.started,
            )
        self.errors.append(error)
        if self.history is not None:
            self.history.record_failure(attempt.address)
            if self.emit is not None:
                self.emit("recorded", address=attempt.address, outcome="failure")
        # A failure hands over to the next attempt immediately (the 10 ms
        # floor still applies in _may_start).
        self._next_start = min(self._next_start, now)

    def _win(self, winners: List[Attempt], now: float) -> Any:
        # Several attempts can complete within one poll: the one that started
        # first (the better-ranked address) wins, the rest are closed.
        attempt = min(winners, key=lambda a: a.started)
        self._winner, self._won_at = attempt, now
        local = self.connector.local_address(attempt)
        if self.emit is not None:
            self.emit("connected", address=attempt.address, rtt=now - attempt.started, local=local)
        if self.history is not None:
            self.history.record_success(attempt.address, now - attempt.started, local)
            if self.emit is not None:
                self.emit("recorded", address=attempt.address, outcome="success")
            for other in self.running:
                if other is not attempt and other.started < attempt.started:
                    # It had a head start and still lost: remember it, so the
                    # next race leads with the address that works.
                    self.history.record_failure(other.address)
                    if self.emit is not None:
                        self.emit("recorded", address=other.address, outcome="lost")
        self._closed_losers = [other.address for other in self.running if other is not attempt]
        self.running = []
        return self.connector.detach(attempt)

    # -- outcome -------------------------------------------------------------

    def _raise_failure(self) -> None:
        if not self._seen:
            # Nothing resolved: both lookups failed.  The A lookup's error is
            # the one AF_UNSPEC would most often have reported.
            for family in (socket.AF_INET, socket.AF_INET6):
                if family in self.dns_errors:
                    raise self.dns_errors[family]
            if self.dns_errors:
                raise next(iter(self.dns_errors.values()))
            raise OSError("getaddrinfo returns an empty list")
        self._raise_errors()

    def _raise_errors(self) -> None:
        errors = list(self.errors)
        self.errors.clear()  # break the frame <-> exception reference cycle
        if self.all_errors and _ExceptionGroup is not None:
            raise _ExceptionGroup("create_connection failed", errors)
        raise errors[-1]

    def _raise_timeout(self) -> None:
        for attempt in self.running:
            self.errors.append(socket.timeout("timed out"))
            if self.history is not None:
                self.history.record_failure(attempt.address)
        if self.all_errors and self.errors:
            self._raise_errors()
        raise socket.timeout("timed out")

    # -- the loop ------------------------------------------------------------

    def run(self) -> Any:
        outcome = "failed"
        error: Optional[BaseException] = None
        try:
            sock = self._loop()
            outcome = "connected"
            return sock
        except socket.timeout as exc:
            outcome, error = "timeout", exc
            raise
        except socket.gaierror as exc:
            outcome, error = "resolve failed", exc
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            for cancel in self.cancel_lookups:
                cancel()
            self.connector.close()
            self.inbox.close()
            self._finish(outcome, error)

    def _finish(self, outcome: str, error: Optional[BaseException]) -> None:
        winner = self._winner
        saved = 0.0
        if winner is not None and self.started:
            # What the stdlib's sequential walk would have spent before
            # reaching the winner: the full timeout on every earlier address
            # still pending at the win (or at least the time it had been
            # pending), the failure time of the ones that failed.
            first = self.started[0].started
            sequential = 0.0
            for earlier in self.started:
                if earlier is winner:
                    break
                if earlier.failed_after is not None:
                    sequential += earlier.failed_after
                else:
                    pending = self._won_at - earlier.started
                    sequential += max(self.timeout or 0.0, pending)
            sequential += self._won_at - winner.started
            saved = max(0.0, sequential - (self._won_at - first))
        _events.count(
            outcome,
            family=winner.info[0] if winner is not None else 0,
            attempts=len(self.started),
            fallback=winner is not None and winner is not self.started[0],
            saved=saved,
        )
        if self.emit is not None:
            if self._closed_losers:
                self.emit("closed", addresses=self._closed_losers)
            self.emit(
                "done",
                outcome=outcome,
                elapsed=self.connector.now() - self._started_at,
                address=winner.address if winner is not None else None,
                error=None if error is None else f"{type(error).__name__}: {error}",
                attempts=len(self.started),
            )

    def _loop(self) -> Any:
        connector = self.connector
        while True:
            now = connector.now()
            if self.pending:
                self._take_answers(now)
            self._update_gate(now)
            if self.deadline is not None and now >= self.deadline:
                self._raise_timeout()  # before starting anything: no SYN after the deadline
            if self._may_connect and self.untried and self._may_start(now):
                winner = self._start_next(now)
                if winner is not None:
                    return winner
                continue
            if not self.running and not self.untried and not self.pending:
                self._raise_failure()
            wake = self._next_wakeup()
            timeout = None if wake is None else max(0.0, wake - now)
            finished = connector.wait(timeout, self.inbox if self.pending else None)
            if not finished:
                continue
            now = connector.now()
            winners = []
            for attempt, error in finished:
                if error is None:
                    winners.append(attempt)
                else:
                    self.running.remove(attempt)
                    connector.discard(attempt)
                    self._failed(attempt, error, now)
            if winners:
                return self._win(winners, now)

    def _next_wakeup(self) -> Optional[float]:
        times = []
        if self.deadline is not None:
            times.append(self.deadline)
        if self.untried:
            if self._may_connect:
                assert self._last_start is not None
                floor = self._last_start + ATTEMPT_DELAY_FLOOR
                times.append(floor if not self.running else max(floor, self._next_start))
            elif self._first_answer is not None:
                times.append(self._first_answer + self.config.resolution_delay)
        return min(times) if times else None


_ExceptionGroup: Optional[Any]
try:  # Python 3.11+
    _ExceptionGroup = ExceptionGroup  # type: ignore[name-defined,unused-ignore]
except NameError:  # pragma: no cover - 3.9/3.10: all_errors is ignored, as in the stdlib
    _ExceptionGroup = None
