"""create_connection on real loopback sockets: the whole call, end to end.

A silently dropping address is a listener whose accept queue is full (see
eyeshim/cli/demo.py); a refusing one is a closed port.  Time bounds are
generous: these tests check behaviour (who won, in which order attempts
started, what was left open), not speed; speed lives in benchmarks/.
"""

from __future__ import annotations

import decimal
import os
import socket
import sys
import threading
import time
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import pytest

import eyeshim
from eyeshim.cli.demo import DEMO_NAME, BrokenAndWorking, demo_name_resolves_to
from eyeshim.config import Config
from eyeshim.connection import connect
from eyeshim.history import History
from eyeshim.racing import Attempt, SocketConnector
from eyeshim.state import STATE

NO_HISTORY: Any = None


FAST_EXIT = Config(resolver_idle_timeout=0.05)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


@pytest.fixture
def lab() -> Iterator[BrokenAndWorking]:
    with BrokenAndWorking() as net, demo_name_resolves_to(net):
        yield net


class SpyConnector(SocketConnector):
    """Records the order and time of every connect() issued."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.started: List[Tuple[float, str]] = []

    def connect(self, attempt: Attempt) -> bool:
        self.started.append((time.monotonic(), attempt.address))
        return super().connect(attempt)


def wait_for_pool_to_drain(bound: float = 5.0) -> int:
    deadline = time.monotonic() + bound
    while STATE.lookups().thread_count and time.monotonic() < deadline:
        time.sleep(0.02)
    return STATE.lookups().thread_count


@needs_proc
def test_broken_preferred_address_falls_back_and_leaks_nothing(lab: BrokenAndWorking) -> None:
    before_fds = open_fds()
    before_threads = threading.active_count()
    spy = SpyConnector()
    started = time.monotonic()
    sock = connect((DEMO_NAME, lab.port), 10, connector=spy, history=NO_HISTORY, config=FAST_EXIT)
    elapsed = time.monotonic() - started
    with sock:
        assert sock.getpeername()[0] == lab.working_host
    assert [address for _, address in spy.started] == [lab.broken_host, lab.working_host]
    # The fallback waited for the attempt delay, not for the 10 s timeout.
    assert 0.2 <= spy.started[1][0] - spy.started[0][0] < 2.0
    assert elapsed < 5.0
    assert open_fds() == before_fds
    assert wait_for_pool_to_drain() == 0
    assert threading.active_count() <= before_threads


def test_history_makes_the_second_connection_skip_the_broken_address(
    lab: BrokenAndWorking,
) -> None:
    history = History()
    connect((DEMO_NAME, lab.port), 10, history=history).close()
    assert history.failed_recently(lab.broken_host)
    assert not history.failed_recently(lab.working_host)
    spy = SpyConnector()
    with connect((DEMO_NAME, lab.port), 10, connector=spy, history=history) as sock:
        assert sock.getpeername()[0] == lab.working_host
    assert [address for _, address in spy.started] == [lab.working_host]


def test_refused_address_hands_over_without_waiting_for_the_delay() -> None:
    # ::1 (or 127.0.0.2) has nothing listening on the port: instant refusal.
    with BrokenAndWorking() as net, demo_name_resolves_to(net):
        for sock in net.sockets[:2]:
            sock.close()  # the dropping listener and its filler: port now closed
        config = Config(connection_attempt_delay=2.0, max_connection_attempt_delay=2.0)
        spy = SpyConnector()
        started = time.monotonic()
        with connect(
            (DEMO_NAME, net.port), 10, connector=spy, config=config, history=NO_HISTORY
        ) as sock:
            assert sock.getpeername()[0] == net.working_host
        assert [a for _, a in spy.started] == [net.broken_host, net.working_host]
        assert time.monotonic() - started < 1.0  # far below the 2 s attempt delay


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_all_refused_raises_connection_refused() -> None:
    port = closed_port()
    with pytest.raises(ConnectionRefusedError):
        eyeshim.create_connection(("127.0.0.1", port), timeout=5)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="all_errors is 3.11+")
def test_all_errors_real(lab: BrokenAndWorking) -> None:
    for sock in lab.sockets:
        sock.close()  # both addresses now refuse
    with pytest.raises(ExceptionGroup) as caught:  # noqa: F821
        eyeshim.create_connection((DEMO_NAME, lab.port), timeout=5, all_errors=True)
    assert len(caught.value.exceptions) == 2
    assert all(isinstance(e, ConnectionRefusedError) for e in caught.value.exceptions)


@needs_proc
def test_timeout_when_every_address_drops(lab: BrokenAndWorking) -> None:
    before = open_fds()
    started = time.monotonic()
    with pytest.raises(socket.timeout):
        connect((lab.broken_host, lab.port), 0.5, history=NO_HISTORY)
    with pytest.raises(socket.timeout):
        # Two dropping addresses behind one name: one overall deadline.
        connect((DEMO_NAME, lab.port), 0.6, family=lab.broken_family, history=NO_HISTORY)
    assert time.monotonic() - started < 5.0
    assert open_fds() == before


def test_returned_socket_is_blocking_with_callers_timeout(lab: BrokenAndWorking) -> None:
    with connect((DEMO_NAME, lab.port), 7.5, history=NO_HISTORY) as sock:
        assert sock.gettimeout() == 7.5
    with connect((DEMO_NAME, lab.port), None, history=NO_HISTORY) as sock:
        assert sock.gettimeout() is None and sock.getblocking()
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(4.0)
    try:
        with eyeshim.create_connection((DEMO_NAME, lab.port)) as sock:
            assert sock.gettimeout() == 4.0
        with eyeshim.create_connection(("127.0.0.1", lab.port)) as sock:
            assert sock.gettimeout() == 4.0
    finally:
        socket.setdefaulttimeout(old)


def test_source_address_is_bound_and_family_mismatch_is_skipped(lab: BrokenAndWorking) -> None:
    spy = SpyConnector(source_address=("127.0.0.1", 0))
    with connect((DEMO_NAME, lab.port), 5, connector=spy, history=NO_HISTORY) as sock:
        assert sock.getsockname()[0] == "127.0.0.1"
        assert sock.getpeername()[0] == lab.working_host
    if lab.broken_family == socket.AF_INET6:
        # The IPv6 attempt failed at bind() and never sent a SYN.
        assert [a for _, a in spy.started] == [lab.working_host]
    with eyeshim.create_connection(
        ("127.0.0.1", lab.port), 5, source_address=("127.0.0.1", 0)
    ) as sock:
        assert sock.getsockname()[0] == "127.0.0.1"


def test_prepare_socket_runs_before_connect(lab: BrokenAndWorking) -> None:
    seen: List[bool] = []

    def prepare(sock: socket.socket) -> None:
        with pytest.raises(OSError):
            sock.getpeername()  # not connected yet
        seen.append(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    with connect((DEMO_NAME, lab.port), 5, prepare_socket=prepare, history=NO_HISTORY) as sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    assert len(seen) == 2  # both attempts were prepared


def test_ip_literal_and_hosts_file_names_use_no_thread(
    lab: BrokenAndWorking, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_threads(*args: Any, **kw: Any) -> Any:
        raise AssertionError("the resolver pool was used")

    monkeypatch.setattr(STATE.lookups(), "start", no_threads)
    with eyeshim.create_connection(("127.0.0.1", lab.port), 5) as sock:
        assert sock.getpeername()[0] == "127.0.0.1"
    if "localhost" in STATE.hosts():
        with eyeshim.create_connection(("localhost", lab.port), 5) as sock:
            assert sock.getpeername()[0] in ("127.0.0.1", "::1")


def test_a_slow_lookup_never_blocks_the_caller(
    lab: BrokenAndWorking, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo
    released = threading.Event()

    def slow_aaaa(host: Any, port: Any, family: int = 0, *a: Any, **kw: Any) -> Any:
        if family == socket.AF_INET6 and host == DEMO_NAME:
            released.wait(10)  # a lost AAAA reply
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, port, family, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", slow_aaaa)
    started = time.monotonic()
    try:
        with connect((DEMO_NAME, lab.port), 10, history=NO_HISTORY, config=FAST_EXIT) as sock:
            assert sock.getpeername()[0] == "127.0.0.1"
        # Resolution Delay (50 ms) then IPv4, while the AAAA thread still hangs.
        assert time.monotonic() - started < 2.0
        assert STATE.lookups().thread_count >= 1
    finally:
        released.set()
    assert wait_for_pool_to_drain() == 0


BAD_INPUTS = [
    (("127.0.0.1", 1), "x"),  # timeout of the wrong type
    (("127.0.0.1", 1), decimal.Decimal("1.5")),  # not a float, no __index__
    (("127.0.0.1", 1), float("nan")),
    (("127.0.0.1", 1), 1e10),  # past what a socket timeout can hold
    (("127.0.0.1", 1), 10**10),
    (("localhost", 1), -1),  # negative timeout, for a name too
    (("127.0.0.1",), 1),  # address missing its port
    ("127.0.0.1", 1),  # address not a tuple
    (("127.0.0.1", "no-such-service-name"), 1),
    ((12345, 80), 1),  # host of the wrong type
    (("127.0.0.1", []), 1),  # port of the wrong type
]


@pytest.mark.parametrize(("address", "timeout"), BAD_INPUTS)
def test_bad_input_raises_what_the_stdlib_raises(address: Any, timeout: Any) -> None:
    with pytest.raises(Exception) as stock:
        socket.create_connection(address, timeout)
    with pytest.raises(Exception) as ours:
        eyeshim.create_connection(address, timeout)
    assert type(ours.value) is type(stock.value)
    if isinstance(stock.value, (TypeError, ValueError, OverflowError)):
        assert str(ours.value) == str(stock.value)


@pytest.mark.parametrize("timeout", [True, 5, np.int64(5), np.float64(2.5), 1e9, 0.5])
def test_timeouts_the_stdlib_accepts_are_accepted(timeout: Any) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout) as stock:
            expected = stock.gettimeout()
        for host in ("127.0.0.1", "localhost"):
            with eyeshim.create_connection((host, port), timeout) as sock:
                assert sock.gettimeout() == expected


def test_source_address_of_the_wrong_shape_raises_like_the_stdlib() -> None:
    with pytest.raises(TypeError) as stock:
        socket.create_connection(("localhost", 9), 1, (None,))  # type: ignore[arg-type]
    with pytest.raises(TypeError) as ours:
        eyeshim.create_connection(("localhost", 9), 1, (None,))  # type: ignore[arg-type]
    assert str(ours.value) == str(stock.value)


def test_timeout_zero_behaves_like_a_non_blocking_connect() -> None:
    with pytest.raises(OSError) as stock:
        socket.create_connection(("192.0.2.1", 9), 0)
    with pytest.raises(OSError) as ours:
        eyeshim.create_connection(("192.0.2.1", 9), 0)
    assert type(ours.value) is type(stock.value)


# -- no thread outlives the call; concurrent callers ----------------------------------


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Dict[str, Any]:
    """socket.getaddrinfo answering *.fake.invalid with 127.0.0.1, with an
    optional delay per family (``delays[family] = seconds``), counting calls."""
    real = socket.getaddrinfo
    state: Dict[str, Any] = {"delays": {}, "calls": 0}
    lock = threading.Lock()

    def getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any) -> Any:
        if isinstance(host, str) and host.endswith(".fake.invalid"):
            with lock:
                state["calls"] += 1
            if family == socket.AF_UNSPEC:  # the stock lookup waits for both
                delay = max(state["delays"].values(), default=0)
            else:
                delay = state["delays"].get(family, 0)
            time.sleep(delay)
            if family == socket.AF_INET6:
                raise socket.gaierror(socket.EAI_NONAME, "no AAAA")
            return real("127.0.0.1", port, socket.AF_INET, *args[:1])
        return real(host, port, family, *args)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return state


@pytest.fixture
def server() -> Iterator[socket.socket]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4096)
        yield listener


FORK_AFTER_CONNECTS = """\
import os, socket, sys, threading
# Registered before eyeshim's hook, so it runs after it (hooks registered
# later run first): it sees the threads fork() is about to copy from.
seen = []
os.register_at_fork(before=lambda: seen.append(len(os.listdir("/proc/self/task"))))
real = socket.getaddrinfo
def fake(host, port, family=0, type=0, proto=0, flags=0):
    if host != "a.fake.invalid":
        return real(host, port, family, type, proto, flags)
    return [i for i in real("127.0.0.1", port, socket.AF_INET, type, proto, socket.AI_NUMERICHOST)
            if family in (0, socket.AF_INET)]
socket.getaddrinfo = fake
import eyeshim
server = socket.create_server(("127.0.0.1", 0), backlog=128)
port = server.getsockname()[1]
before = len(os.listdir("/proc/self/task"))
counts = []
for _ in range(20):
    eyeshim.create_connection(("a.fake.invalid", port), 5).close()
    counts.append(threading.active_count())
    pid = os.fork()  # right after the call: its lookup threads have just answered
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print(repr((before, sorted(set(seen)), sorted(set(counts)))))
"""


@needs_proc
def test_no_thread_outlives_a_call_to_a_resolved_name() -> None:
    # Each call to a name starts a thread per family, which exits once it has
    # answered.  The call does not wait for it to be gone (that costs two
    # context switches per lookup); fork(), where a leftover thread matters,
    # does.  threading never sees the threads.
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", FORK_AFTER_CONNECTS],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    before, at_fork, active = eval(proc.stdout)
    assert at_fork == [before]  # what every fork() saw: no lookup thread
    assert active == [1]


def test_concurrent_callers_share_lookups_instead_of_queueing(
    fake_dns: Dict[str, Any], server: socket.socket
) -> None:
    # 64 threads, AAAA answered 300 ms late: each caller's A lookup must not
    # wait behind the others' AAAA lookups.  Stock waits 300 ms (its one
    # lookup waits for both answers).
    port = server.getsockname()[1]
    fake_dns["delays"] = {socket.AF_INET6: 0.3, socket.AF_INET: 0.0}

    def accept_all() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                pass

    def latencies(connect: Any) -> List[float]:
        took: List[float] = []
        lock = threading.Lock()

        def one() -> None:
            started = time.monotonic()
            connect(("many.fake.invalid", port), 10).close()
            with lock:
                took.append(time.monotonic() - started)

        workers = [threading.Thread(target=one) for _ in range(64)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        return sorted(took)

    stop = threading.Event()
    acceptor = threading.Thread(target=accept_all)
    acceptor.start()
    try:
        stock = latencies(socket.create_connection)
        fake_dns["calls"] = 0
        ours = latencies(eyeshim.create_connection)
    finally:
        stop.set()
        acceptor.join(5)
    assert len(ours) == len(stock) == 64
    assert fake_dns["calls"] < 64  # shared: not two lookups per caller
    p99 = ours[int(0.99 * len(ours)) - 1]
    assert p99 <= 1.5 * stock[int(0.99 * len(stock)) - 1] + 0.1


def test_a_cached_failure_raises_a_fresh_exception_each_time() -> None:
    config = Config(dns_cache=True)
    cache = STATE.dns_cache(config)
    assert cache is not None
    cache.clear()
    seen = []
    for _ in range(5):
        with pytest.raises(socket.gaierror) as caught:
            connect(("no-such-name.invalid", 80), 5, config=config)
        seen.append(caught.value)
    assert len({id(e) for e in seen}) == 5
    depths = []
    for error in seen:
        depth, tb = 0, error.__traceback__
        while tb is not None:
            depth, tb = depth + 1, tb.tb_next
        depths.append(depth)
    assert max(depths) == min(depths)  # the traceback does not grow call by call
    cache.clear()
