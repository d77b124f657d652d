"""Resolving: AAAA and A looked up separately and concurrently (RFC 8305 §3).

``getaddrinfo`` blocks and cannot be cancelled, and a single ``AF_UNSPEC``
call returns only when *both* families have answered: one slow or lost AAAA
reply holds up a perfectly good A answer for seconds (see
docs/design.md).  RFC 8305 §3 explicitly allows a synchronous platform to
issue "two separate synchronous queries on different threads", so that is
what this module provides: one ``getaddrinfo`` per family, each on a thread
of a small shared pool, each answer handed to the race the moment it
arrives.  *Which* lookups a race starts, and what it does with the answers,
is ``candidates.py``'s business; this module is only the mechanism.

The pool is bounded (a burst of connections must not become a burst of
threads), created lazily (importing eyeshim starts nothing), owned by
``state.STATE`` (so a forked child gets a fresh, empty pool rather than the
parent's dead threads and held locks) and lets idle threads exit after a
short linger.  Threads are daemons: a lookup that hangs must never keep the
interpreter from exiting.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from typing import Any, Callable, Deque, Dict, List, NamedTuple, Optional, Protocol

from .addrinfo import AddrInfo, Host, Port

__all__ = [
    "Answer",
    "AnswerCache",
    "Lookups",
    "Resolver",
    "ResolverPool",
    "ThreadedResolver",
]


class Answer(NamedTuple):
    """One family's answer: the addresses, or the error getaddrinfo raised."""

    family: int
    infos: List[AddrInfo]
    error: Optional[BaseException]


class Resolver(Protocol):
    """What the racer needs from a resolver (tests substitute a fake one)."""

    def resolve(
        self,
        host: Host,
        port: Port,
        family: int,
        deliver: Callable[[Answer], None],
    ) -> Callable[[], None]:
        """Start looking up ``host`` for ``family``; call ``deliver`` exactly
        once with the answer, from any thread.  Return a function that
        cancels the lookup if it has not started yet."""
        ...


class _Job:
    __slots__ = ("cancelled", "func")

    def __init__(self, func: Callable[[], None]) -> None:
        self.func = func
        self.cancelled = False

    def cancel(self) -> None:
        # Only a job still waiting in the queue can be cancelled: a running
        # getaddrinfo cannot be interrupted, and its answer is simply ignored.
        self.cancelled = True


class ResolverPool:
    """A bounded, lazily grown pool of daemon threads (``state.STATE`` replaces
    it with a fresh one in a forked child)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._queue: Deque[_Job] = collections.deque()
        self._threads = 0
        self._idle = 0

    def submit(
        self, func: Callable[[], None], max_threads: int, idle_timeout: float
    ) -> Callable[[], None]:
        """Run ``func`` on a pool thread; return a cancel function."""
        job = _Job(func)
        with self._lock:
            self._queue.append(job)
            if self._idle >= len(self._queue):
                self._work.notify()
            elif self._threads < max_threads:
                self._threads += 1
                try:
                    thread = threading.Thread(
                        target=self._worker,
                        args=(idle_timeout,),
                        name="eyeshim-resolver",
                        daemon=True,
                    )
                    thread.start()
                except BaseException:
                    self._threads -= 1
                    self._queue.remove(job)
                    raise
            # else: every thread is busy and the bound is reached; the job
            # waits for the first thread that finishes.
        return job.cancel

    def _worker(self, idle_timeout: float) -> None:
        lock = self._lock
        work = self._work
        while True:
            with lock:
                if not self._queue:
                    self._idle += 1
                    work.wait(idle_timeout)
                    self._idle -= 1
                    if not self._queue:
                        self._threads -= 1
                        return
                job = self._queue.popleft()
            if not job.cancelled:
                job.func()

    @property
    def thread_count(self) -> int:
        """Threads alive in the pool right now (for tests and status)."""
        with self._lock:
            return self._threads


class Lookups:
    """The process's resolver threads and the lookups they are running.

    Owned by ``state.STATE``: a forked child gets a new one, because the
    parent's threads (and the answers they would have delivered) do not
    exist there.
    """

    def __init__(self) -> None:
        self.pool = ResolverPool()
        self._lock = threading.Lock()
        # (name, port, family) -> receivers of the answer of the lookup in flight
        self._inflight: Dict[Any, List[Callable[[Answer], None]]] = {}

    def join(self, key: Any, deliver: Callable[[Answer], None]) -> bool:
        """Wait for the lookup of ``key`` already in flight, if there is one;
        otherwise mark one as started.  True when joined."""
        with self._lock:
            waiting = self._inflight.get(key)
            if waiting is not None:
                waiting.append(deliver)
                return True
            self._inflight[key] = [deliver]
            return False

    def finish(self, key: Any) -> List[Callable[[Answer], None]]:
        """The receivers of ``key``'s lookup, which is no longer in flight."""
        with self._lock:
            return self._inflight.pop(key, [])

    def leave(self, key: Any, deliver: Callable[[Answer], None]) -> None:
        """``deliver`` no longer wants the answer (its race is over)."""
        with self._lock:
            receivers = self._inflight.get(key)
            if receivers is not None and deliver in receivers:
                receivers.remove(deliver)


class AnswerCache:
    """Per-family answers remembered for a while (off by default).

    getaddrinfo reports no TTL, so lifetimes are configured, like the JDK's
    ``networkaddress.cache.ttl`` (30 s) and ``...negative.ttl`` (10 s).  A
    burst of connections to one host then resolves once per family per
    lifetime; concurrent misses for the same name share one lookup.

    The price of caching, as seed article 004 shows for the JDK, is that
    every connection sees the same order for the whole lifetime, and with a
    fixed order every client picks the same server of a round-robin set.
    With ``rotate`` (the default) each hit hands out the list rotated by one
    more place, so consecutive connections spread over the answers the way
    a rotating DNS server would have spread them.
    """

    def __init__(
        self,
        size: int = 1024,
        ttl: float = 30.0,
        negative_ttl: float = 10.0,
        rotate: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.rotate = rotate
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (expires, answer, hits)
        self._entries: collections.OrderedDict[Any, List[Any]] = collections.OrderedDict()

    def get(self, key: Any) -> Optional[Answer]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, answer, hits = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            entry[2] = hits + 1
            self._entries.move_to_end(key)
        infos = answer.infos
        if self.rotate and len(infos) > 1:
            shift = hits % len(infos)
            infos = infos[shift:] + infos[:shift]
        return Answer(answer.family, list(infos), answer.error)

    def put(self, key: Any, answer: Answer) -> None:
        lifetime = self.ttl if answer.error is None and answer.infos else self.negative_ttl
        if lifetime <= 0:
            return
        with self._lock:
            # The lookup that filled the entry handed out the DNS order; the
            # first hit continues with the next rotation.
            self._entries[key] = [self._clock() + lifetime, answer, 1]
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def configure(self, size: int, ttl: float, negative_ttl: float, rotate: bool) -> None:
        """Adopt new limits; what is cached stays."""
        self.size, self.ttl, self.negative_ttl, self.rotate = size, ttl, negative_ttl, rotate

    def after_fork(self) -> None:
        """In a forked child: the lock may have been held by a parent thread."""
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class ThreadedResolver:
    """Per-family getaddrinfo on the shared pool, optionally cached.

    ``getaddrinfo`` defaults to ``socket.getaddrinfo`` *as it is when the
    lookup is requested*, like the stdlib's create_connection, so a test
    double or another library's patch of it is honoured.  ``lookups``
    defaults to the process's (``state.STATE``).
    """

    def __init__(
        self,
        max_threads: int = 8,
        idle_timeout: float = 2.0,
        getaddrinfo: Optional[Callable[..., List[AddrInfo]]] = None,
        lookups: Optional[Lookups] = None,
        cache: Optional[AnswerCache] = None,
    ) -> None:
        self._max_threads = max_threads
        self._idle_timeout = idle_timeout
        self._getaddrinfo = getaddrinfo
        self._lookups = lookups
        self._cache = cache

    def resolve(
        self,
        host: Host,
        port: Port,
        family: int,
        deliver: Callable[[Answer], None],
    ) -> Callable[[], None]:
        getaddrinfo = self._getaddrinfo or socket.getaddrinfo
        lookups = self._lookups
        if lookups is None:
            from .state import STATE

            lookups = STATE.lookups()
        cache = self._cache
        if cache is None:

            def lookup() -> None:
                deliver(_lookup(getaddrinfo, host, port, family))

            return lookups.pool.submit(lookup, self._max_threads, self._idle_timeout)

        key = (_normalize(host), port, family)
        cached = cache.get(key)
        if cached is not None:
            deliver(cached)
            return _nothing
        if lookups.join(key, deliver):
            # The same name is being looked up for another race: share it.
            return lambda: lookups.leave(key, deliver)

        def cached_lookup() -> None:
            answer = _lookup(getaddrinfo, host, port, family)
            cache.put(key, answer)
            for receiver in lookups.finish(key):
                receiver(answer)

        # Not cancellable: a lookup that outlives its race still fills the
        # cache for the next one (RFC 8305 §5 suggests processing late
        # replies for about a second for exactly this); the race only stops
        # listening.
        lookups.pool.submit(cached_lookup, self._max_threads, self._idle_timeout)
        return lambda: lookups.leave(key, deliver)


def _nothing() -> None:
    pass


def _normalize(host: Host) -> Any:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return host.lower().rstrip(".") if isinstance(host, str) else host


def _lookup(
    getaddrinfo: Callable[..., List[AddrInfo]], host: Host, port: Port, family: int
) -> Answer:
    try:
        infos = getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except Exception as exc:  # handed to the racer as data
        return Answer(family, [], exc)
    return Answer(family, list(infos), None)
