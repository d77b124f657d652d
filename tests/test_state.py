"""The process-wide state: one owner, and what a forked child gets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator

import pytest

from eyeshim.config import Config
from eyeshim.connection import connect
from eyeshim.resolving import Answer
from eyeshim.state import STATE

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def in_child(work: Callable[[], bool], bound: float = 10.0) -> bool:
    """Run ``work`` in a forked child; its verdict, or False if it hangs."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        verdict = b"0"
        try:
            verdict = b"1" if work() else b"0"
        finally:
            os.write(write_end, verdict)
            os._exit(0)
    os.close(write_end)
    try:
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.read(read_end, 1) == b"1"
            time.sleep(0.01)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return False
    finally:
        os.close(read_end)


@pytest.fixture
def server() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@needs_fork
def test_fork_during_a_shared_lookup_with_the_dns_cache_on(
    server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reproduced hang: with the cache on, concurrent races share one lookup
    # in flight.  A child forked while the parent's lookup runs must not join
    # it: the thread that would deliver its answer does not exist there.
    parent = os.getpid()
    inside = threading.Event()
    release = threading.Event()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any) -> Any:
        if host == "slow.example.invalid":
            if os.getpid() == parent:
                inside.set()
                release.wait(10)
            if family == socket.AF_INET6:
                raise socket.gaierror(socket.EAI_NONAME, "no AAAA")
            return real("127.0.0.1", port, family, *args)
        return real(host, port, family, *args)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    config = Config(dns_cache=True)
    STATE.dns_cache(config).clear()  # type: ignore[union-attr]
    results: list[Any] = []
    racer = threading.Thread(
        target=lambda: results.append(connect(("slow.example.invalid", server), 10, config=config))
    )
    racer.start()
    try:
        assert inside.wait(5)

        def child_connects() -> bool:
            started = time.monotonic()
            with connect(("slow.example.invalid", server), None, config=config) as sock:
                return sock.getpeername()[0] == "127.0.0.1" and time.monotonic() - started < 2

        assert in_child(child_connects)
    finally:
        release.set()
        racer.join(10)
        for sock in results:
            sock.close()
        STATE.dns_cache(config).clear()  # type: ignore[union-attr]


@needs_fork
def test_child_gets_a_fresh_resolver_pool() -> None:
    release = threading.Event()
    parent_lookups = STATE.lookups()
    parent_lookups.start("busy", lambda: release.wait(5) or Answer(0, []), lambda a: None, 1)

    def child_pool_works() -> bool:
        lookups = STATE.lookups()
        done = threading.Event()
        lookups.start("child", lambda: done.set() or Answer(0, []), lambda a: None, 1)
        return lookups is not parent_lookups and done.wait(5)

    try:
        assert in_child(child_pool_works)
    finally:
        release.set()


@needs_fork
def test_child_keeps_history_and_starts_counting_afresh() -> None:
    config = Config()
    history = STATE.history(config)
    assert history is not None
    history.record_failure("192.0.2.77")
    STATE.counters().count("connected", socket.AF_INET, 1, False, 0.0)

    def child_view() -> bool:
        kept = STATE.history(config)
        return (
            kept is not None
            and kept.failed_recently("192.0.2.77")
            and STATE.counters().snapshot()["races"] == 0
        )

    try:
        assert in_child(child_view)
    finally:
        history.forget("192.0.2.77")


@pytest.mark.skipif(sys.platform != "linux", reason="Linux /proc")
def test_importing_eyeshim_starts_nothing() -> None:
    code = (
        "import sys, threading, eyeshim; "
        "print(threading.active_count(), 'eyeshim.connection' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False"]
