"""Resolving: AAAA and A looked up separately and concurrently (RFC 8305 §3).

``getaddrinfo`` blocks and cannot be cancelled, and a single ``AF_UNSPEC``
call returns only when *both* families have answered: one slow or lost AAAA
reply holds up a perfectly good A answer for seconds (see
docs/design.md).  RFC 8305 §3 explicitly allows a synchronous platform to
issue "two separate synchronous queries on different threads", so that is
what this module does: one ``getaddrinfo`` per family, each on a thread of a
small shared pool, each answer handed to the racer the moment it arrives.

The pool is bounded (a burst of connections must not become a burst of
threads), created lazily (importing eyeshim starts nothing), fork-safe (a
child process gets a fresh, empty pool rather than the parent's dead
threads and held locks) and lets idle threads exit after a short linger, so
no thread outlives its work for long.  Threads are daemons: a lookup that
hangs must never keep the interpreter from exiting.

Two kinds of name never reach the pool:

* IP literals (and ``None``): ``AI_NUMERICHOST`` resolves them in the
  caller's thread without any I/O.
* names listed in the hosts file: ``AF_UNSPEC`` answers them from the file
  without touching DNS, whereas a per-family AAAA lookup of a name that the
  file lists only with IPv4 (``localhost`` on many systems) falls through to
  DNS and sends a query the stock call never would.  These are resolved with
  the stock ``AF_UNSPEC`` call in the caller's thread.
"""

from __future__ import annotations

import collections
import math
import os
import re
import socket
import threading
import time
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    List,
    NamedTuple,
    Optional,
    Protocol,
    Tuple,
    Union,
)

__all__ = [
    "AddrInfo",
    "Answer",
    "AnswerCache",
    "HostsFile",
    "ResolverPool",
    "ThreadedResolver",
    "numeric_addresses",
]

# A getaddrinfo() result entry: (family, type, proto, canonname, sockaddr).
AddrInfo = Tuple[Any, Any, int, str, Tuple[Any, ...]]
Host = Union[str, bytes, None]
Port = Union[str, bytes, int, None]


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
    """A bounded, lazily grown, fork-safe pool of daemon threads."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            # Threads do not survive fork(); the child must not wait for them
            # or inherit a lock that one of them held at the moment of fork.
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
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
                if lock is not self._lock:  # pragma: no cover - forked meanwhile
                    return
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


POOL = ResolverPool()


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
    double or another library's patch of it is honoured.
    """

    def __init__(
        self,
        max_threads: int = 8,
        idle_timeout: float = 2.0,
        getaddrinfo: Optional[Callable[..., List[AddrInfo]]] = None,
        pool: ResolverPool = POOL,
        cache: Optional[AnswerCache] = None,
    ) -> None:
        self._max_threads = max_threads
        self._idle_timeout = idle_timeout
        self._getaddrinfo = getaddrinfo
        self._pool = pool
        self._cache = cache

    def resolve(
        self,
        host: Host,
        port: Port,
        family: int,
        deliver: Callable[[Answer], None],
    ) -> Callable[[], None]:
        getaddrinfo = self._getaddrinfo or socket.getaddrinfo
        cache = self._cache
        if cache is None:

            def lookup() -> None:
                deliver(_lookup(getaddrinfo, host, port, family))

            return self._pool.submit(lookup, self._max_threads, self._idle_timeout)

        key = (_normalize(host), port, family)
        cached = cache.get(key)
        if cached is not None:
            deliver(cached)
            return _nothing
        with _inflight_lock:
            waiting = _inflight.get(key)
            if waiting is not None:
                # The same name is being looked up for another race: share it.
                waiting.append(deliver)
                return lambda: _forget(key, deliver)
            _inflight[key] = [deliver]

        def cached_lookup() -> None:
            answer = _lookup(getaddrinfo, host, port, family)
            cache.put(key, answer)
            with _inflight_lock:
                receivers = _inflight.pop(key, [])
            for receiver in receivers:
                receiver(answer)

        # Not cancellable: a lookup that outlives its race still fills the
        # cache for the next one (RFC 8305 §5 suggests processing late
        # replies for about a second for exactly this); the race only stops
        # listening.
        self._pool.submit(cached_lookup, self._max_threads, self._idle_timeout)
        return lambda: _forget(key, deliver)


_inflight_lock = threading.Lock()
_inflight: Dict[Any, List[Callable[[Answer], None]]] = {}


def _forget(key: Any, deliver: Callable[[Answer], None]) -> None:
    with _inflight_lock:
        receivers = _inflight.get(key)
        if receivers is not None and deliver in receivers:
            receivers.remove(deliver)


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


# A literal of a family the caller excluded (urllib3 forcing IPv4 and an
# IPv6 literal): glibc says EAI_ADDRFAMILY or EAI_FAMILY.
_WRONG_FAMILY = frozenset(
    code
    for code in (getattr(socket, "EAI_ADDRFAMILY", None), getattr(socket, "EAI_FAMILY", None))
    if code is not None
)


# Characters an IP literal can hold before any "%scope": digits, hex, dots,
# colons, and the "x" of inet_aton's hex forms ("0x7f.1").  A host with any
# other character is a name, and asking getaddrinfo (which then raises) costs
# more than the whole stdlib fast path we are trying to match.
_NOT_LITERAL = re.compile(r"[^0-9a-fA-FxX.:]")


def numeric_addresses(host: Host, port: Port, family: int = 0) -> Optional[List[AddrInfo]]:
    """Resolve ``host`` without any I/O if it is an IP literal (or None).

    Returns None for a name that needs a lookup.  Other errors (a bad port,
    a wrong argument type) propagate exactly as getaddrinfo raises them, so
    the caller sees the stdlib's own error for bad input.
    """
    if isinstance(host, str) and _NOT_LITERAL.search(host.partition("%")[0]):
        return None
    try:
        return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_NONAME:
            return None
        if exc.errno in _WRONG_FAMILY:
            return []  # a literal of the other family: nothing to connect to
        # EAI_SERVICE (unknown port name) and friends: same answer as the
        # stdlib would give, no point asking DNS.
        raise


class HostsFile:
    """The set of names in the hosts file, re-read when the file changes."""

    def __init__(self, path: str = "/etc/hosts", recheck: float = 1.0) -> None:
        self.path = path
        self.recheck = recheck
        self._checked = -math.inf
        self._lock = threading.Lock()
        self._stamp: Optional[Tuple[int, int]] = None
        self._names: frozenset[str] = frozenset()

    def __contains__(self, host: object) -> bool:
        if isinstance(host, bytes):
            try:
                host = host.decode("ascii")
            except UnicodeDecodeError:
                return False
        if not isinstance(host, str):
            return False
        return host.lower().rstrip(".") in self.names()

    def names(self) -> frozenset[str]:
        # A stat() per connection would cost more than the rest of the fast
        # path; the file is looked at again at most once per ``recheck``.
        now = time.monotonic()
        if now < self._checked + self.recheck:
            return self._names
        try:
            st = os.stat(self.path)
        except OSError:
            stamp = None
        else:
            stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            self._checked = now
            if stamp is None:
                self._names, self._stamp = frozenset(), None
            elif stamp != self._stamp:
                self._names = self._parse()
                self._stamp = stamp
            return self._names

    def _parse(self) -> frozenset[str]:
        names: set[str] = set()
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    fields = line.split("#", 1)[0].split()
                    names.update(name.lower().rstrip(".") for name in fields[1:])
        except OSError:
            return frozenset()
        return frozenset(names)


HOSTS = HostsFile()
