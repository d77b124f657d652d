"""A fake network with a fake clock, for testing the race logic exactly.

``FakeNet`` is a ``Connector`` (clock + sockets) and hands out a
``FakeResolver``; both schedule their outcomes on one event queue.  Time only
moves inside ``wait()``, straight to the next scheduled event, so a test that
says "AAAA answers at 300 ms" gets the engine's reaction at exactly 300 ms
and runs in microseconds.

Address behaviours (``net.behave(address, ...)``):

* ``ok(ms)``: the connect completes after ``ms``;
* ``refuse(ms)``: fails with ECONNREFUSED after ``ms`` (0 = inside connect());
* ``drop()``: the SYN vanishes, the attempt never completes;
* ``unbindable()``: fails when the socket is prepared (before any packet).

TLS (a race with ``tls=``; set ``net.tls = True``): ``ok(ms, tls=...)``
with ``tls_ok(ms)`` (the handshake completes ``ms`` after TCP),
``tls_fail(ms)`` (a certificate error ``ms`` after TCP) or ``tls_stall()``
(the handshake never completes); an ``ok`` without ``tls=`` completes its
handshake at once.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import math
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from eyeshim.addrinfo import AddrInfo
from eyeshim.config import Config
from eyeshim.connection import connect
from eyeshim.history import History
from eyeshim.racing import HANDSHAKING, Attempt
from eyeshim.resolving import Answer

V6 = socket.AF_INET6
V4 = socket.AF_INET


def info(address: str, port: int = 80) -> AddrInfo:
    if ":" in address:
        return (V6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
    return (V4, socket.SOCK_STREAM, 6, "", (address, port))


@dataclass
class Behaviour:
    kind: str  # ok | refuse | drop | unbindable
    after: float = 0.0
    errno: int = errno.ECONNREFUSED
    tls: Optional[Tuple[str, float]] = None  # ("ok" | "fail" | "stall", seconds)


def ok(ms: float = 1.0, tls: Optional[Tuple[str, float]] = None) -> Behaviour:
    return Behaviour("ok", ms / 1000, tls=tls)


def tls_ok(ms: float = 1.0) -> Tuple[str, float]:
    return ("ok", ms / 1000)


def tls_fail(ms: float = 1.0) -> Tuple[str, float]:
    return ("fail", ms / 1000)


def tls_stall() -> Tuple[str, float]:
    return ("stall", math.inf)


def certificate_error() -> OSError:
    import ssl

    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_code = 20
    return error


def refuse(ms: float = 0.0, code: int = errno.ECONNREFUSED) -> Behaviour:
    return Behaviour("refuse", ms / 1000, code)


def drop() -> Behaviour:
    return Behaviour("drop")


def unbindable() -> Behaviour:
    return Behaviour("unbindable")


@dataclass
class FakeSocket:
    address: str
    closed: bool = False
    detached: bool = False

    def close(self) -> None:
        self.closed = True


@dataclass
class Event:
    time: float
    what: str
    address: str = ""
    detail: Any = None


@dataclass
class FakeNet:
    now_value: float = 0.0
    behaviours: Dict[str, Behaviour] = field(default_factory=dict)
    log: List[Event] = field(default_factory=list)
    sockets: List[FakeSocket] = field(default_factory=list)
    interrupt_at: Optional[float] = None
    #: Attempts run a TLS handshake after TCP (the race was given ``tls=``).
    tls: bool = False
    _queue: List[Tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _seq: Any = field(default_factory=itertools.count)
    _done: List[Tuple[Attempt, Optional[OSError]]] = field(default_factory=list)
    #: The resolver handed out last (tests look at its queries and cancellations).
    last_resolver: Optional[FakeResolver] = None

    # -- scripting -----------------------------------------------------------

    def behave(self, address: str, behaviour: Behaviour) -> None:
        self.behaviours[address] = behaviour

    def at(self, seconds: float, func: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (seconds, next(self._seq), func))

    def resolver(self, answers: Dict[int, Any]) -> FakeResolver:
        self.last_resolver = FakeResolver(self, answers)
        return self.last_resolver

    def starts(self) -> List[Tuple[float, str]]:
        """(ms, address) of every connect() issued, in order."""
        return [(round(e.time * 1000, 3), e.address) for e in self.log if e.what == "start"]

    def events(self, what: str) -> List[Tuple[float, str]]:
        return [(round(e.time * 1000, 3), e.address) for e in self.log if e.what == what]

    def open_sockets(self) -> List[FakeSocket]:
        return [s for s in self.sockets if not s.closed and not s.detached]

    # -- Connector -----------------------------------------------------------

    def now(self) -> float:
        return self.now_value

    def open(self, info: AddrInfo) -> Attempt:
        address = str(info[4][0])
        behaviour = self.behaviours.get(address, drop())
        if behaviour.kind == "unbindable":
            self.log.append(Event(self.now_value, "unbindable", address))
            raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
        sock = FakeSocket(address)
        self.sockets.append(sock)
        return Attempt(info, sock)

    def connect(self, attempt: Attempt) -> bool:
        address = attempt.address
        behaviour = self.behaviours.get(address, drop())
        self.log.append(Event(self.now_value, "start", address))
        if behaviour.kind == "refuse" and behaviour.after == 0:
            self.log.append(Event(self.now_value, "failed", address))
            raise OSError(behaviour.errno, os.strerror(behaviour.errno))
        if behaviour.kind == "drop":
            return False
        result: Optional[OSError] = None
        if behaviour.kind == "refuse":
            result = OSError(behaviour.errno, os.strerror(behaviour.errno))

        def complete() -> None:
            sock: FakeSocket = attempt.handle
            if sock.closed or sock.detached:
                return
            if result is not None or not self.tls:
                self._done.append((attempt, result))
                return
            self._done.append((attempt, HANDSHAKING))
            kind, after = behaviour.tls or ("ok", 0.0)
            if kind == "stall":
                return

            def handshake() -> None:
                if not sock.closed and not sock.detached:
                    self.log.append(Event(self.now_value, "tls " + kind, address))
                    self._done.append((attempt, None if kind == "ok" else certificate_error()))

            self.at(self.now_value + after, handshake)

        self.at(self.now_value + behaviour.after, complete)
        return False

    def wait(self, timeout: Optional[float], inbox: Any) -> List[Tuple[Attempt, Optional[OSError]]]:
        target = math.inf if timeout is None else self.now_value + timeout
        next_event = self._queue[0][0] if self._queue else math.inf
        if self.interrupt_at is not None and self.interrupt_at <= min(target, next_event):
            self.now_value = max(self.now_value, self.interrupt_at)
            raise KeyboardInterrupt
        if not self._queue or self._queue[0][0] > target:
            if target == math.inf:
                raise AssertionError("the race would wait forever")
            self.now_value = target
            return []
        when = self._queue[0][0]
        self.now_value = max(self.now_value, when)
        while self._queue and self._queue[0][0] == when:
            heapq.heappop(self._queue)[2]()
        done, self._done = self._done, []
        for attempt, error in done:
            what = "connected" if error is None else "failed"
            if error is HANDSHAKING:
                what = "tcp"
            self.log.append(Event(self.now_value, what, attempt.address))
        return done

    def discard(self, attempt: Attempt) -> None:
        sock: FakeSocket = attempt.handle
        if not sock.closed:
            sock.closed = True
            self.log.append(Event(self.now_value, "closed", attempt.address))

    def detach(self, attempt: Attempt) -> FakeSocket:
        sock: FakeSocket = attempt.handle
        sock.detached = True
        return sock

    def local_address(self, attempt: Attempt) -> Optional[str]:
        return SOURCES[V6 if ":" in attempt.address else V4]

    def close(self) -> None:
        for sock in self.sockets:
            if not sock.closed and not sock.detached:
                sock.closed = True
                self.log.append(Event(self.now_value, "closed", sock.address))


# Global-scope sources, so RFC 6724 prefers IPv6 (precedence 40 > 35).
SOURCES = {V6: "2001:db8:ffff::100", V4: "192.0.2.100"}


def fake_source(address: str, port: int) -> Optional[str]:
    return SOURCES[V6 if ":" in address else V4]


Scripted = Union[
    Tuple[float, List[str]], Tuple[float, List[str], str], Tuple[float, BaseException], None
]


class FakeResolver:
    """Answers per family: ``(ms, [addresses])``, ``(ms, [addresses], name)``
    (the canonical name that answered), ``(ms, exception)``, or ``None`` for
    a lookup that never answers.  ``socket.AF_UNSPEC`` answers the one-lookup
    fallback with every scripted family's addresses, or as scripted."""

    def __init__(self, net: FakeNet, answers: Dict[int, Scripted]) -> None:
        self.net = net
        self.answers = answers
        self.queries: List[Tuple[float, int]] = []
        self.cancelled: List[int] = []

    def resolve(
        self, host: Any, port: Any, family: int, deliver: Callable[[Answer], None]
    ) -> Callable[[], None]:
        self.queries.append((self.net.now_value, family))
        scripted = self.answers.get(family)
        if scripted is not None:
            ms, result, *name = scripted
            if isinstance(result, BaseException):
                answer = Answer(family, [], result)
            else:
                infos = [info(a, int(port)) for a in result]
                answer = Answer(family, infos, None, name[0] if name else None)

            def fire() -> None:
                self.net.log.append(Event(self.net.now_value, "answer", str(family)))
                deliver(answer)

            self.net.at(self.net.now_value + ms / 1000, fire)
        return lambda: self.cancelled.append(family)


def nodata() -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, "Name or service not known")


# -- the engine on the fake network ------------------------------------------------

A1, A2, A3 = "192.0.2.1", "192.0.2.2", "192.0.2.3"


S1, S2, S3 = "2001:db8::1", "2001:db8::2", "2001:db8::3"


class Clock:
    """A clock the History can share with the fake network."""

    def __init__(self, net: FakeNet) -> None:
        self.net = net

    def __call__(self) -> float:
        return self.net.now_value


def run(
    net: FakeNet,
    answers: Dict[int, Any],
    *,
    config: Optional[Config] = None,
    history: Any = None,
    timeout: Any = None,
    all_errors: bool = False,
    family: int = socket.AF_UNSPEC,
    tls: Any = None,
) -> Any:
    if tls is not None:
        net.tls = True
    return connect(
        ("example.test", 80),
        timeout,
        config=config or Config(policy="rfc6724"),
        resolver=net.resolver(answers),
        connector=net,
        history=history,
        find_source=fake_source,
        all_errors=all_errors,
        family=family,
        tls=tls,
    )


def spec() -> Any:
    """A TLS spec for a race on the fake network (which never reads it)."""
    import ssl

    from eyeshim.tls import TlsSpec

    return TlsSpec(ssl.create_default_context(), "example.test")


def make_history(net: FakeNet, **kw: Any) -> History:
    return History(clock=Clock(net), **kw)
