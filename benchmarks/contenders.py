"""The contenders, as they run inside a worker process.

Each contender is a way a user could open a TCP connection to ``(host,
port)``; :func:`run_batch` times ``n`` of them back to back.  Only the
connect is timed: closing (with SO_LINGER 0, so that tens of thousands of
loopback connections leave no TIME_WAIT behind to exhaust the ephemeral
ports) happens outside the timed part.

The asyncio-based contenders are timed *inside* their coroutine, one event
loop per worker, so the cost of entering and leaving the loop is not charged
to them: an asyncio program would be running its loop anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import socket
import struct
import time
from collections import Counter
from collections.abc import Awaitable
from typing import Any, Callable, Optional

__all__ = ["ALL", "available", "profile", "resolver_used", "run_batch", "thread_cost"]

# RFC 8305's recommended Connection Attempt Delay and interleaving, given to
# the asyncio contenders so they race like eyeshim does by default.
ATTEMPT_DELAY = 0.25
INTERLEAVE = 1

ALL = (
    "stock",
    "eyeshim",
    "eyeshim (system resolver)",
    "eyeshim (threads kept warm)",
    "eyeshim+events",
    "eyeshim (history)",
    "eyeshim (dns cache)",
    "asyncio",
    "aiohappyeyeballs",
    "urllib3.future",
)

_LINGER_ZERO = struct.pack("ii", 1, 0)
_loop: Optional[asyncio.AbstractEventLoop] = None


def _abort(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    sock.close()


def _peer(sock: Any) -> str:
    try:
        return str(sock.getpeername()[0])
    except OSError:
        return "?"


def available(name: str) -> Optional[str]:
    """None when contender ``name`` can run in this interpreter, else why not."""
    try:
        if name == "eyeshim (system resolver)" and _system_config() is None:
            return (
                "this eyeshim has no resolver of its own (EYESHIM_RESOLVER does not exist): "
                "its 'eyeshim' row is getaddrinfo on threads already"
            )
        if name.startswith("eyeshim"):
            import eyeshim  # noqa: F401
        elif name == "aiohappyeyeballs":
            importlib.import_module("aiohappyeyeballs")
        elif name == "urllib3.future":
            urllib3 = _urllib3()

            # urllib3.future installs itself as the "urllib3" package; the
            # stock urllib3 has no happy_eyeballs pool option.
            if "happy_eyeballs" not in urllib3.HTTPConnectionPool.__init__.__code__.co_varnames:
                return f"urllib3 {urllib3.__version__} here is not urllib3.future"
        elif name not in ALL:
            return f"unknown contender {name!r}"
    except ImportError as exc:
        return f"not installed in this interpreter ({exc})"
    return None


def _urllib3() -> Any:
    # Typed as Any: the type checker knows stock urllib3, not urllib3.future,
    # which lives only in its own environment.
    return importlib.import_module("urllib3")


# -- synchronous contenders --------------------------------------------------------------------


def _sync_connector(name: str) -> Callable[[str, int, float], Any]:
    if name == "stock":
        return lambda host, port, timeout: socket.create_connection((host, port), timeout)
    if name == "eyeshim (dns cache)":
        from eyeshim.config import Config
        from eyeshim.connection import connect

        cached = Config(dns_cache=True)
        return lambda host, port, timeout: connect((host, port), timeout, config=cached)
    if name == "eyeshim (system resolver)":
        from eyeshim.connection import connect

        system = _system_config()
        return lambda host, port, timeout: connect((host, port), timeout, config=system)
    if name == "eyeshim (threads kept warm)":
        from eyeshim.connection import connect

        warm = _warm_resolver()
        return lambda host, port, timeout: connect((host, port), timeout, resolver=warm)
    if name.startswith("eyeshim"):
        import eyeshim

        return lambda host, port, timeout: eyeshim.create_connection((host, port), timeout)
    if name == "urllib3.future":
        return _urllib3_future_connect
    raise ValueError(name)


def _system_config() -> Any:
    """eyeshim's configuration with ``resolver=system`` (getaddrinfo on threads,
    whatever else eyeshim could use), or None where eyeshim has no such setting."""
    from eyeshim.config import get_config

    try:
        return get_config().replace(resolver="system")
    except (TypeError, ValueError, AttributeError):
        return None


#: resolver_idle_timeout of "eyeshim (threads kept warm)": the default before
#: "no thread outlives its work" made it 0.
WARM_IDLE_TIMEOUT = 2.0
_warm: Any = None


def _warm_resolver() -> Any:
    """getaddrinfo on threads that wait WARM_IDLE_TIMEOUT for more work instead of
    exiting after each lookup.  They have a pool of their own (``Lookups``), so
    that the default eyeshim in the same worker never borrows a warm thread."""
    global _warm
    if _warm is None:
        from eyeshim.config import get_config
        from eyeshim.resolving import Lookups, ThreadedResolver

        _warm = ThreadedResolver(
            get_config().resolver_threads, WARM_IDLE_TIMEOUT, lookups=Lookups()
        )
    return _warm


def resolver_used(name: str, host: str, port: int, timeout: float) -> list[str]:
    """Which resolver eyeshim contender ``name`` used for one connect to ``host``,
    as its own events say (the ``resolver`` of each ``Query`` event)."""
    from eyeshim import events

    connect = _sync_connector(name)
    with events.recording() as recorded:
        try:
            _abort(connect(host, port, timeout))
        except Exception as exc:  # the rows count failures; here only the resolver matters
            return [f"the connect failed: {type(exc).__name__}: {exc}"]
    queries = [event for event in recorded if getattr(event, "kind", "") == "query"]
    if not queries:
        return ["no lookup (a literal, the hosts file or a cached answer)"]
    if "resolver" not in type(queries[0]).fields:
        # eyeshim before its own resolver (issue 13): getaddrinfo on threads is all it has.
        return ["getaddrinfo on threads (eyeshim's only resolver)"]
    found = {str(getattr(event, "resolver", None)) for event in queries}
    return sorted(
        "getaddrinfo on threads (a resolver passed in by the benchmark)" if text == "None" else text
        for text in found
    )


def thread_cost(n: int, host: Optional[str] = None, port: int = 0) -> dict[str, Any]:
    """What a thread per lookup costs on this machine, now, in this process:
    per operation, median wall and CPU time (seconds) of ``n`` repetitions of

    * ``start_join``: start a thread that does nothing, join it;
    * ``start_bare``: start a bare ``_thread`` thread and wait until it has
      run (what eyeshim pays per lookup: no start handshake, no join);
    * ``handoff``: hand work to a thread that is already running, and get the
      answer back (two lock hand-offs: what a warm pool costs instead);
    * with ``host``: ``lookup_new_thread``, one ``getaddrinfo(host, port,
      AF_INET)`` in a new thread (started and joined), and
      ``lookup_running_thread``, the same lookup handed to a thread that has
      looked up before (glibc keeps resolver state per thread: a new thread's
      first lookup may cost more than the thread itself).
    """
    import _thread
    import statistics
    import threading

    perf, proc = time.perf_counter, time.process_time

    def nothing() -> None:
        pass

    def timed(op: Callable[[], None]) -> dict[str, float]:
        walls, cpus = [], []
        for _ in range(n):
            c0, t0 = proc(), perf()
            op()
            walls.append(perf() - t0)
            cpus.append(proc() - c0)
        return {"wall": statistics.median(walls), "cpu": statistics.median(cpus)}

    def start_join() -> None:
        thread = threading.Thread(target=nothing)
        thread.start()
        thread.join()

    out = {"start_join": timed(start_join)}

    def start_bare() -> None:
        # What eyeshim does per lookup: a bare thread, no start handshake,
        # no join; here only until it has run (a lock it releases).
        ran = _thread.allocate_lock()
        ran.acquire()
        _thread.start_new_thread(ran.release, ())
        ran.acquire()

    out["start_bare"] = timed(start_bare)

    go, back = threading.Lock(), threading.Lock()
    go.acquire()
    back.acquire()
    stop = [False]
    work: list[Callable[[], None]] = [nothing]

    def serve() -> None:
        while True:
            go.acquire()
            if stop[0]:
                return
            work[0]()
            back.release()

    server = threading.Thread(target=serve, daemon=True)
    server.start()

    def handoff() -> None:
        go.release()
        back.acquire()

    out["handoff"] = timed(handoff)
    if host is not None:

        def lookup() -> None:
            socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)

        def lookup_new_thread() -> None:
            thread = threading.Thread(target=lookup)
            thread.start()
            thread.join()

        work[0] = lookup
        handoff()  # the running thread's first lookup sets up its resolver state
        out["lookup_running_thread"] = timed(handoff)
        out["lookup_new_thread"] = timed(lookup_new_thread)
    stop[0] = True
    go.release()
    server.join()
    return out


def profile(
    name: str,
    host: str,
    port: int,
    timeout: float,
    n: int,
    top: int = 12,
    clear_history: bool = False,
) -> dict[str, Any]:
    """cProfile of ``n`` connects of contender ``name``, in CPU time of the
    calling thread (the race's; resolver threads are not in it): the ``top``
    functions by own time, and the total, in seconds over all ``n`` connects."""
    import cProfile
    import os
    import pstats

    connect = _sync_connector(name)
    reset = _history_reset(name, clear_history)
    run_batch(name, host, port, 1, timeout)  # imports and first-use set-up: not profiled
    profiler = cProfile.Profile(time.thread_time)
    for _ in range(n):
        reset()
        profiler.enable()
        try:
            sock = connect(host, port, timeout)
        finally:
            profiler.disable()
        _abort(sock)
    stats: Any = pstats.Stats(profiler)
    rows = []
    for (path, line, function), (_, calls, own, cumulative, _) in stats.stats.items():
        where = path if path == "~" else os.path.basename(path)
        rows.append(
            {
                "function": f"{where}:{line}({function})" if path != "~" else function,
                "calls": calls,
                "own": own,
                "cumulative": cumulative,
            }
        )
    rows.sort(key=lambda row: -row["own"])
    by_file: dict[str, float] = {}
    for (path, _, _), (_, _, own, _, _) in stats.stats.items():
        where = "C functions" if path == "~" else os.path.basename(path)
        by_file[where] = by_file.get(where, 0.0) + own
    files = sorted(by_file.items(), key=lambda item: -item[1])
    return {"total": stats.total_tt, "connects": n, "top": rows[:top], "files": files[:6]}


def _urllib3_future_connect(host: str, port: int, timeout: float) -> Any:
    """urllib3.future's own Happy Eyeballs (``happy_eyeballs=True``, as niquests
    enables it): ``_new_conn`` resolves once (AF_UNSPEC), then starts up to
    four attempts at once, each on a thread of a fresh pool, first one wins."""
    urllib3 = _urllib3()

    # A fresh pool per connect: pools hand out connections through a
    # "traffic police" that would block a second _new_conn of a pool of one.
    # (Closing the pool closes its connections too, so that waits for close().)
    pool = urllib3.HTTPConnectionPool(
        host, port, happy_eyeballs=True, timeout=urllib3.Timeout(connect=timeout), retries=False
    )
    try:
        conn = pool._new_conn()
        if conn.sock is None:  # a single address: no race, connect as usual
            conn.connect()
    except BaseException:
        pool.close()
        raise
    return _Urllib3Socket(pool, conn)


class _Urllib3Socket:
    """Enough of a socket for :func:`run_batch`: peer and abort."""

    def __init__(self, pool: Any, conn: Any) -> None:
        self.pool = pool
        self.conn = conn

    def getpeername(self) -> Any:
        return self.conn.sock.getpeername()

    def setsockopt(self, *args: Any) -> None:
        self.conn.sock.setsockopt(*args)

    def close(self) -> None:
        self.conn.close()
        self.pool.close()


# -- asyncio contenders ------------------------------------------------------------------------


async def _within(timeout: float, awaitable: Awaitable[Any]) -> Any:
    # asyncio.timeout (3.11+) costs one timer handle; wait_for, the fallback
    # for older interpreters, wraps the call in a task.
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(timeout):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout)


async def _asyncio_connect(host: str, port: int, timeout: float) -> Any:
    loop = asyncio.get_running_loop()
    transport, _ = await _within(
        timeout,
        loop.create_connection(
            asyncio.Protocol,
            host,
            port,
            happy_eyeballs_delay=ATTEMPT_DELAY,
            interleave=INTERLEAVE,
        ),
    )
    return transport


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


async def _aiohappyeyeballs_connect(host: str, port: int, timeout: float) -> Any:
    return await _within(timeout, _aiohappyeyeballs_steps(host, port))


async def _aiohappyeyeballs_steps(host: str, port: int) -> Any:
    aiohappyeyeballs: Any = importlib.import_module("aiohappyeyeballs")
    loop = asyncio.get_running_loop()
    if _is_literal(host):
        # aiohttp skips its resolver for IP literals.
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    else:
        # aiohttp's default ThreadedResolver: one AF_UNSPEC getaddrinfo in the
        # loop's executor (its 10 s DNS cache is not modelled: each connect
        # here is a first connect).
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG
        )
    return await aiohappyeyeballs.start_connection(
        infos, happy_eyeballs_delay=ATTEMPT_DELAY, interleave=INTERLEAVE
    )


_ASYNC: dict[str, Callable[[str, int, float], Awaitable[Any]]] = {
    "asyncio": _asyncio_connect,
    "aiohappyeyeballs": _aiohappyeyeballs_connect,
}


def _close_async(result: Any) -> str:
    if isinstance(result, asyncio.Transport):
        peer = result.get_extra_info("peername")
        sock = result.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        result.abort()
        return str(peer[0]) if peer else "?"
    peer_name = _peer(result)
    _abort(result)
    return peer_name


# -- timing ------------------------------------------------------------------------------------


class _Batch:
    def __init__(self, want_cpu: bool) -> None:
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.peers: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.want_cpu = want_cpu

    def result(self, wall: float, cpu_total: float) -> dict[str, Any]:
        return {
            "times": self.times,
            "cpu": self.cpu,
            "peers": dict(self.peers),
            "errors": dict(self.errors),
            "wall": wall,
            "cpu_total": cpu_total,
        }


def _history_reset(name: str, clear_history: bool) -> Callable[[], None]:
    """What to run before each connect: forget eyeshim's history for a cold
    first connect, except for the contender that is about the history."""
    if clear_history and name.startswith("eyeshim") and name != "eyeshim (history)":
        import eyeshim

        history = eyeshim.get_history()
        if history is not None:
            return history.clear
    return lambda: None


def run_batch(
    name: str,
    host: str,
    port: int,
    n: int,
    timeout: float,
    *,
    cpu: bool = False,
    clear_history: bool = False,
    warmup: bool = False,
) -> dict[str, Any]:
    """Connect ``n`` times with contender ``name``; per-connect wall (and CPU) times.

    ``warmup``: one untimed connect first (for "eyeshim (history)": what the
    first connect learns is what the timed ones use).
    """
    if warmup:
        run_batch(name, host, port, 1, timeout)
    batch = _Batch(cpu)
    reset = _history_reset(name, clear_history)
    unsubscribe: Optional[Callable[[], None]] = None
    if name == "eyeshim+events":
        from eyeshim import events

        seen = [0]

        def on_event(event: Any) -> None:  # the cheapest useful subscriber: a counter
            seen[0] += 1

        unsubscribe = events.subscribe(on_event)
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    try:
        if name in _ASYNC:
            global _loop
            if _loop is None:
                _loop = asyncio.new_event_loop()
            _loop.run_until_complete(_async_batch(_ASYNC[name], batch, host, port, n, timeout))
        else:
            _sync_batch(_sync_connector(name), batch, host, port, n, timeout, reset)
    finally:
        if unsubscribe is not None:
            unsubscribe()
    return batch.result(time.perf_counter() - wall0, time.process_time() - cpu0)


def _sync_batch(
    connect: Callable[[str, int, float], Any],
    batch: _Batch,
    host: str,
    port: int,
    n: int,
    timeout: float,
    reset: Callable[[], None],
) -> None:
    perf, proc = time.perf_counter, time.process_time
    for _ in range(n):
        reset()
        c0 = proc() if batch.want_cpu else 0.0
        t0 = perf()
        try:
            sock = connect(host, port, timeout)
        except Exception as exc:  # counted: urllib3's errors are not all OSErrors
            batch.errors[type(exc).__name__] += 1
            continue
        elapsed = perf() - t0
        if batch.want_cpu:
            batch.cpu.append(proc() - c0)
        batch.times.append(elapsed)
        batch.peers[_peer(sock)] += 1
        _abort(sock)


async def _async_batch(
    connect: Callable[[str, int, float], Awaitable[Any]],
    batch: _Batch,
    host: str,
    port: int,
    n: int,
    timeout: float,
) -> None:
    perf, proc = time.perf_counter, time.process_time
    for _ in range(n):
        c0 = proc() if batch.want_cpu else 0.0
        t0 = perf()
        try:
            result = await connect(host, port, timeout)
        except Exception as exc:  # counted, as in _sync_batch
            batch.errors[type(exc).__name__] += 1
            continue
        elapsed = perf() - t0
        if batch.want_cpu:
            batch.cpu.append(proc() - c0)
        batch.times.append(elapsed)
        batch.peers[_close_async(result)] += 1
