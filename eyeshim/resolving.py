"""Resolving: AAAA and A looked up separately and concurrently (RFC 8305 §3).

``getaddrinfo`` blocks and cannot be cancelled, and a single ``AF_UNSPEC``
call returns only when *both* families have answered: one slow or lost AAAA
reply holds up a perfectly good A answer for seconds (see docs/design.md).
RFC 8305 §3 explicitly allows a synchronous platform to issue "two separate
synchronous queries on different threads", so that is what this module
provides: one ``getaddrinfo`` per family, each on a thread, each answer
handed to the race the moment it arrives.  *Which* lookups a race starts,
and what it does with the answers, is ``candidates.py``'s business; this
module is only the mechanism.

How the threads behave, and why:

* **Shared, not queued.**  Races asking for the same name, port and family
  while a lookup is in flight join it instead of starting another: 64
  threads connecting to one host make two lookups, not 128.
* **No thread outlives its work.**  A thread runs one lookup (or, when
  lookups are waiting for a free thread, the next one) and exits.  It is a
  bare ``_thread`` thread, started without a handshake and never joined:
  ``threading.Thread.start()`` waits until the new thread has run, and a
  join waits for the kernel to reap it: two context switches per lookup,
  about a quarter of what a connect to a resolved name cost (1003 -> 763
  us with a microsecond resolver on loopback).  What joining
  protected is kept where it matters: ``fork()`` waits (``before_fork``,
  bounded) until the threads that finished have exited, so a child is
  forked from a process with no lookup thread that could be avoided (a
  thread inside ``getaddrinfo`` at ``fork()`` can leave glibc's locks held
  in the child; one still inside a lookup is a risk stock Python shares).
  The threads are not in ``threading.enumerate()``.
  ``resolver_idle_timeout`` lets threads wait for more work instead, for
  programs that prefer warm threads.
* **Bounded, for lookups somebody waits for.**  At most
  ``resolver_threads`` threads run lookups that a race still wants; more
  wait in a queue.  A lookup every race has given up on (the race was won,
  the caller interrupted) stops counting against the bound: ``getaddrinfo``
  cannot be cancelled, so its thread runs on, but it must not make other
  callers wait.  A hard cap (four times the bound) still limits threads
  when DNS hangs for everyone.
* Like daemon threads, a hung lookup never keeps the interpreter from
  exiting.  The lookups in flight are owned by ``state.STATE``, which gives
  a forked child none (their answers would never arrive there).
"""

from __future__ import annotations

import _thread
import collections
import os
import socket
import time

from .addrinfo import AddrInfo, Host, Port

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Deque, Dict, List, Optional, Protocol, Tuple

    Deliver = Callable[["Answer"], None]
else:
    Protocol = object

__all__ = [
    "Answer",
    "AnswerCache",
    "Lookup",
    "Lookups",
    "Resolver",
    "ThreadedResolver",
    "fresh",
]


class Answer:
    """One family's answer: the addresses, or the error; the name that
    answered (``AI_CANONNAME``), when the resolver knows it; and how long it
    may be kept (seconds, from DNS), when the resolver knows that."""

    __slots__ = ("error", "family", "infos", "name", "ttl")

    def __init__(
        self,
        family: int,
        infos: List[AddrInfo],
        error: Optional[BaseException] = None,
        name: Optional[str] = None,
        ttl: Optional[float] = None,
    ) -> None:
        self.family = family
        self.infos = infos
        self.error = error
        self.name = name
        self.ttl = ttl

    def __repr__(self) -> str:
        what = f"error={self.error!r}" if self.error is not None else f"{len(self.infos)} infos"
        return f"Answer({self.family}, {what}, name={self.name!r})"


def fresh(error: Optional[BaseException]) -> Optional[BaseException]:
    """A new exception equal to ``error`` (same type, args, errno), without
    its traceback: one shared exception object raised again and again keeps
    growing its traceback."""
    if error is None:
        return None
    import copy  # only cached failures come here: not worth loading at start

    try:
        return copy.copy(error).with_traceback(None)
    except Exception:  # an exception class that cannot be copied: rare, keep it
        return error


class Resolver(Protocol):
    """What a race needs from a resolver (tests substitute a fake one).

    A resolver that works on the race's own thread also has
    ``attach(inbox)``: the race calls it before the first ``resolve()``,
    with the :class:`~eyeshim.candidates.Inbox` whose ``watch()`` and
    ``wake_at()`` serve its sockets and timers.  Such a resolver delivers
    only from the racing thread (in ``resolve()``, a watch callback or its
    timer), so the inbox needs no wake-up socket pair.
    """

    def resolve(self, host: Host, port: Port, family: int, deliver: Deliver) -> Callable[[], None]:
        """Start looking up ``host`` for ``family``; call ``deliver`` exactly
        once with the answer, from any thread.  Return a function the race
        calls when it no longer wants the answer."""
        ...


#: Starts a lookup thread; a module attribute so that a test can make a
#: start fail the way a real one can (out of threads, an interrupt).
start_thread = _thread.start_new_thread


class Lookup:
    """One ``getaddrinfo`` call, shared by every race waiting for it."""

    __slots__ = ("abandoned", "done", "key", "receivers", "run")

    def __init__(self, key: Any, run: Callable[[], Answer]) -> None:
        self.key = key
        self.run = run
        self.receivers: List[Deliver] = []
        self.done = False
        #: every race waiting for it has gone
        self.abandoned = False


class Lookups:
    """The process's lookups in flight and the threads running them."""

    def __init__(self) -> None:
        import threading  # here: a first connect to an address needs none of it

        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._inflight: Dict[Any, Lookup] = {}
        self._queue: Deque[Lookup] = collections.deque()
        self._threads = 0  # alive
        self._wanted = 0  # running a lookup some race still waits for
        self._idle = 0  # waiting for work (only with an idle timeout)
        # Kernel ids of threads that finished their work and are exiting,
        # for before_fork().  An exit takes microseconds: the last few are
        # all that can still be alive.
        self._exiting: Deque[int] = collections.deque(maxlen=64)

    @property
    def thread_count(self) -> int:
        """Resolver threads alive right now (or in their last microseconds)."""
        with self._lock:
            return self._threads

    def start(
        self,
        key: Any,
        run: Callable[[], Answer],
        deliver: Deliver,
        max_threads: int,
        idle_timeout: float = 0.0,
    ) -> Lookup:
        """Deliver ``run()``'s answer to ``deliver``: join the lookup of
        ``key`` in flight, or start one."""
        with self._lock:
            lookup = self._inflight.get(key)
            if lookup is not None:
                lookup.receivers.append(deliver)
                return lookup
            lookup = self._inflight[key] = Lookup(key, run)
            lookup.receivers.append(deliver)
            self._queue.append(lookup)
            self._dispatch(max_threads, idle_timeout)
        return lookup

    def _dispatch(self, max_threads: int, idle_timeout: float) -> None:
        """Hand queued lookups to idle or new threads, within the bounds
        (called with the lock held)."""
        while self._queue and self._queue[0].abandoned:
            self._inflight.pop(self._queue.popleft().key, None)
        if not self._queue:
            return
        if self._idle:
            self._work.notify()
            return
        if self._wanted >= max_threads or self._threads >= 4 * max_threads:
            return  # the first thread to finish takes it
        lookup = self._queue.popleft()
        self._wanted += 1
        self._threads += 1
        try:
            start_thread(self._worker, (lookup, max_threads, idle_timeout))
        except BaseException:
            # Not started (out of threads, or an interrupt): nothing runs it.
            self._wanted -= 1
            self._threads -= 1
            self._queue.appendleft(lookup)
            raise

    def _worker(self, lookup: Optional[Lookup], max_threads: int, idle_timeout: float) -> None:
        while lookup is not None:
            answer = lookup.run()
            with self._lock:
                self._inflight.pop(lookup.key, None)
                receivers, lookup.receivers = lookup.receivers, []
                lookup.done = True
                if not lookup.abandoned:
                    self._wanted -= 1
            try:
                for deliver in receivers:
                    deliver(answer)
            finally:
                lookup = self._next(max_threads, idle_timeout)

    def _next(self, max_threads: int, idle_timeout: float) -> Optional[Lookup]:
        """The next queued lookup for this thread, or None: it exits."""
        with self._lock:
            deadline = None
            while True:
                while self._queue and self._queue[0].abandoned:
                    self._inflight.pop(self._queue.popleft().key, None)
                if self._queue and self._wanted < max_threads:
                    lookup = self._queue.popleft()
                    self._wanted += 1
                    return lookup
                now = time.monotonic()
                if deadline is None:
                    deadline = now + idle_timeout
                if now >= deadline:
                    self._threads -= 1
                    self._exiting.append(_thread.get_native_id())
                    return None
                self._idle += 1
                try:
                    self._work.wait(deadline - now)
                finally:
                    self._idle -= 1

    def leave(self, lookup: Lookup, deliver: Deliver, max_threads: int) -> None:
        """``deliver``'s race no longer wants ``lookup``'s answer."""
        with self._lock:
            if deliver in lookup.receivers:
                lookup.receivers.remove(deliver)
            if lookup.receivers or lookup.done or lookup.abandoned:
                return
            lookup.abandoned = True
            self._inflight.pop(lookup.key, None)
            try:
                self._queue.remove(lookup)
                return  # still queued: it never runs
            except ValueError:
                pass
            # Running: its thread goes on (getaddrinfo cannot be stopped) but
            # no longer holds a place that waiting lookups need.
            self._wanted -= 1
            self._dispatch(max_threads, 0.0)

    def before_fork(self, bound: float = 0.05) -> None:
        """Wait, at most ``bound`` seconds, until the threads that finished
        their lookups have exited: ``fork()`` (and Python 3.12's warning about
        forking a multi-threaded process) counts kernel threads.  Linux only
        (``/proc``); a thread still inside a lookup is not waited for."""
        with self._lock:
            exiting = list(self._exiting)
            self._exiting.clear()
        if not exiting or not _TASKS:
            return
        deadline = time.monotonic() + bound
        pause = 0.00002
        for native_id in exiting:
            path = f"{_TASKS}/{native_id}"
            while os.path.exists(path) and time.monotonic() < deadline:
                time.sleep(pause)  # lets the exiting thread take the GIL
                pause = min(pause * 2, 0.001)


_TASKS = "/proc/self/task" if os.path.isdir("/proc/self/task") else ""


class AnswerCache:
    """Per-family answers remembered for a while (off by default).

    An answer that carries its DNS TTL (the stub resolver's: the smallest
    TTL of the records it used; for a negative answer the SOA minimum, RFC
    2308) is kept that long, bounded by ``min_ttl`` and ``max_ttl``.
    getaddrinfo reports no TTL, so its answers are kept for configured
    lifetimes, like the JDK's ``networkaddress.cache.ttl`` (30 s) and
    ``...negative.ttl`` (10 s).  A burst of connections to one host then
    resolves once per family per lifetime; concurrent misses for the same
    name share one lookup.  :meth:`get_or_stale` also hands out an answer
    that expired less than a grace period ago, for the stub resolver to use
    while one lookup refreshes it.

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
        min_ttl: float = 0.0,
        max_ttl: float = 300.0,
        stale: float = 0.0,
    ) -> None:
        self.size = size
        #: how long past expiry an entry is kept for :meth:`get_or_stale`
        self.stale = stale
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.rotate = rotate
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self._clock = clock
        self._lock = _thread.allocate_lock()
        # key -> (expires, answer, hits)
        self._entries: collections.OrderedDict[Any, List[Any]] = collections.OrderedDict()

    def get(self, key: Any) -> Optional[Answer]:
        """The answer for ``key`` if it has not expired."""
        return self.get_or_stale(key, 0.0)[0]

    def get_or_stale(self, key: Any, grace: float) -> Tuple[Optional[Answer], bool]:
        """``(answer, stale)``: the answer for ``key``, also when it expired
        less than ``grace`` seconds ago (then ``stale`` is True)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None, False
            expires, answer, hits = entry
            now = self._clock()
            if now >= expires + grace:
                if now >= expires + self.stale:
                    del self._entries[key]  # not even a stale use is left
                return None, False
            entry[2] = hits + 1
            self._entries.move_to_end(key)
        infos = answer.infos
        if self.rotate and len(infos) > 1:
            shift = hits % len(infos)
            infos = infos[shift:] + infos[:shift]
        # A fresh exception per hit: raising the cached object itself would
        # grow its traceback by a few frames on every call.
        fresh_answer = Answer(answer.family, list(infos), fresh(answer.error), answer.name)
        return fresh_answer, now >= expires

    def lifetime(self, answer: Answer) -> float:
        """How long ``answer`` is kept."""
        positive = answer.error is None and bool(answer.infos)
        if not positive and self.negative_ttl <= 0:
            return 0.0
        if answer.ttl is None:
            return self.ttl if positive else self.negative_ttl
        return max(self.min_ttl, min(float(answer.ttl), self.max_ttl))

    def put(self, key: Any, answer: Answer) -> None:
        lifetime = self.lifetime(answer)
        if lifetime <= 0:
            return
        with self._lock:
            # The lookup that filled the entry handed out the DNS order; the
            # first hit continues with the next rotation.
            self._entries[key] = [self._clock() + lifetime, answer, 1]
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def configure(
        self,
        size: int,
        ttl: float,
        negative_ttl: float,
        rotate: bool,
        min_ttl: float = 0.0,
        max_ttl: float = 300.0,
        stale: float = 0.0,
    ) -> None:
        """Adopt new limits; what is cached stays."""
        self.size, self.ttl, self.negative_ttl, self.rotate = size, ttl, negative_ttl, rotate
        self.min_ttl, self.max_ttl, self.stale = min_ttl, max_ttl, stale

    def after_fork(self) -> None:
        """In a forked child: the lock may have been held by a parent thread."""
        self._lock = _thread.allocate_lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class ThreadedResolver:
    """Per-family ``getaddrinfo`` on threads, optionally cached.

    ``getaddrinfo`` defaults to ``socket.getaddrinfo`` *as it is when the
    lookup is requested*, like the stdlib's create_connection, so a test
    double or another library's patch of it is honoured.  ``lookups``
    defaults to the process's (``state.STATE``).  Each lookup asks for the
    canonical name (``AI_CANONNAME``): which name answered tells whether two
    per-family answers belong together (see ``candidates.py``).
    ``description`` says, in events, why this resolver was chosen.
    """

    description: Optional[str] = None

    def __init__(
        self,
        max_threads: int = 8,
        idle_timeout: float = 0.0,
        getaddrinfo: Optional[Callable[..., List[AddrInfo]]] = None,
        lookups: Optional[Lookups] = None,
        cache: Optional[AnswerCache] = None,
    ) -> None:
        self._max_threads = max_threads
        self._idle_timeout = idle_timeout
        self._getaddrinfo = getaddrinfo
        self._lookups = lookups
        self._cache = cache

    def resolve(self, host: Host, port: Port, family: int, deliver: Deliver) -> Callable[[], None]:
        getaddrinfo = self._getaddrinfo or socket.getaddrinfo
        key = (_normalize(host), port, family, getaddrinfo)
        cache = self._cache
        if cache is not None:
            cached = cache.get(key)
            if cached is not None:
                deliver(cached)
                return _nothing
        lookups = self._lookups
        if lookups is None:
            from .state import STATE

            lookups = STATE.lookups()

        def run() -> Answer:
            answer = _lookup(getaddrinfo, host, port, family)
            if cache is not None:
                cache.put(key, answer)
            return answer

        lookup = lookups.start(key, run, deliver, self._max_threads, self._idle_timeout)
        max_threads = self._max_threads

        def done_with() -> None:
            lookups.leave(lookup, deliver, max_threads)

        return done_with


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
        try:
            infos = list(
                getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)
            )
        except TypeError:
            # A replacement getaddrinfo (a test double, another library's
            # patch) that takes fewer arguments: ask it the plain way.
            return Answer(family, list(getaddrinfo(host, port, family, socket.SOCK_STREAM)))
    except Exception as exc:  # handed to the race as data
        # Raised in the caller's thread, it should show the caller's frames,
        # not this thread's, as the stdlib's error would.
        return Answer(family, [], exc.with_traceback(None))
    name = infos[0][3] if infos and isinstance(infos[0][3], str) and infos[0][3] else None
    # Only the first entry carries the canonical name (that is how
    # getaddrinfo reports it); without the flag every entry has "".  The
    # race gets entries as a plain lookup would have returned them.
    if name is not None:
        first = infos[0]
        infos[0] = (first[0], first[1], first[2], "", first[4])
    return Answer(family, infos, None, name)
