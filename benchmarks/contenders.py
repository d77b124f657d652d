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

__all__ = ["ALL", "available", "run_batch"]

# RFC 8305's recommended Connection Attempt Delay and interleaving, given to
# the asyncio contenders so they race like eyeshim does by default.
ATTEMPT_DELAY = 0.25
INTERLEAVE = 1

ALL = (
    "stock",
    "eyeshim",
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
    if name.startswith("eyeshim"):
        import eyeshim

        return lambda host, port, timeout: eyeshim.create_connection((host, port), timeout)
    if name == "urllib3.future":
        return _urllib3_future_connect
    raise ValueError(name)


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
    transport, _ = await _within(timeout, loop.create_connection(
        asyncio.Protocol,
        host,
        port,
        happy_eyeballs_delay=ATTEMPT_DELAY,
        interleave=INTERLEAVE,
    ))
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
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
        )
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
