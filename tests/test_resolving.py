"""Resolving: the threaded getaddrinfo pool and the optional DNS answer cache."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest

from eyeshim import connection, resolving
from eyeshim.config import Config
from eyeshim.connection import connect
from eyeshim.resolving import Answer, AnswerCache, Lookups, ThreadedResolver

# -- the threads ---------------------------------------------------------------


def wait_until(condition: Any, bound: float = 5.0) -> bool:
    deadline = time.monotonic() + bound
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    return bool(condition())


def blocked(release: threading.Event, ran: List[str], name: str) -> Any:
    def run() -> Answer:
        ran.append(name)
        release.wait(5)
        return Answer(socket.AF_INET, [])

    return run


def test_lookups_are_bounded_and_threads_exit_when_done() -> None:
    lookups = Lookups()
    release = threading.Event()
    ran: List[str] = []
    got: List[Answer] = []
    for n in range(6):
        lookups.start(n, blocked(release, ran, str(n)), got.append, max_threads=2)
    assert wait_until(lambda: len(ran) == 2)
    time.sleep(0.05)
    assert len(ran) == 2 and lookups.thread_count == 2  # four wait for a free thread
    release.set()
    assert wait_until(lambda: len(got) == 6)
    assert wait_until(lambda: lookups.thread_count == 0)


def test_concurrent_callers_share_one_lookup() -> None:
    lookups = Lookups()
    release = threading.Event()
    ran: List[str] = []
    got: List[Answer] = []
    for _ in range(3):
        lookups.start("same", blocked(release, ran, "same"), got.append, max_threads=8)
    release.set()
    assert wait_until(lambda: len(got) == 3)
    assert ran == ["same"]


def test_a_queued_lookup_nobody_wants_never_runs() -> None:
    lookups = Lookups()
    release = threading.Event()
    ran: List[str] = []
    lookups.start("first", blocked(release, ran, "first"), lambda a: None, max_threads=1)
    deliver: Any = lambda a: None  # noqa: E731
    queued = lookups.start("second", blocked(release, ran, "second"), deliver, max_threads=1)
    lookups.leave(queued, deliver, max_threads=1)
    release.set()
    assert wait_until(lambda: lookups.thread_count == 0)
    assert ran == ["first"]


def test_a_running_lookup_nobody_wants_frees_its_place() -> None:
    # getaddrinfo cannot be stopped, but a lookup every race gave up on must
    # not make the next caller wait behind it.
    lookups = Lookups()
    stuck, release = threading.Event(), threading.Event()
    ran: List[str] = []
    deliver: Any = lambda a: None  # noqa: E731
    hung = lookups.start("hung", blocked(stuck, ran, "hung"), deliver, max_threads=1)
    assert wait_until(lambda: ran == ["hung"])
    lookups.start("next", blocked(release, ran, "next"), lambda a: None, max_threads=1)
    time.sleep(0.05)
    assert ran == ["hung"]  # bounded: one wanted lookup at a time
    lookups.leave(hung, deliver, max_threads=1)
    assert wait_until(lambda: ran == ["hung", "next"])
    stuck.set()
    release.set()
    assert wait_until(lambda: lookups.thread_count == 0)


def test_threaded_resolver_delivers_answers_and_errors() -> None:
    got: List[Answer] = []
    done = threading.Event()

    def fake_getaddrinfo(host: Any, port: Any, family: int, type: int) -> Any:
        if family == socket.AF_INET6:
            raise socket.gaierror(socket.EAI_NONAME, "no")
        return [(family, type, 6, "", ("192.0.2.1", port))]

    def deliver(answer: Answer) -> None:
        got.append(answer)
        if len(got) == 2:
            done.set()

    resolver = ThreadedResolver(getaddrinfo=fake_getaddrinfo)
    resolver.resolve("example.test", 80, socket.AF_INET6, deliver)
    resolver.resolve("example.test", 80, socket.AF_INET, deliver)
    assert done.wait(5)
    by_family = {answer.family: answer for answer in got}
    assert isinstance(by_family[socket.AF_INET6].error, socket.gaierror)
    assert by_family[socket.AF_INET].infos[0][4] == ("192.0.2.1", 80)


# -- the DNS answer cache ------------------------------------------------------


class CountingDNS:
    """A getaddrinfo that counts lookups per family and answers from a table."""

    def __init__(self, table: Dict[int, Any]) -> None:
        self.table = table
        self.calls: Dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 0}
        self.lock = threading.Lock()

    def __call__(self, host: Any, port: Any, family: int = 0, *args: Any) -> Any:
        with self.lock:
            self.calls[family] += 1
        answer = self.table[family]
        if isinstance(answer, BaseException):
            raise answer
        return [
            (
                family,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port) if family == socket.AF_INET else (a, port, 0, 0),
            )
            for a in answer
        ]


def lookup_once(resolver: ThreadedResolver, family: int) -> Any:
    done = threading.Event()
    got: List[Any] = []

    def deliver(answer: Any) -> None:
        got.append(answer)
        done.set()

    resolver.resolve("Cached.Example", 80, family, deliver)
    assert done.wait(5)
    return got[0]


def test_cache_positive_and_negative_lifetimes() -> None:
    now = [0.0]
    dns = CountingDNS(
        {socket.AF_INET: ["192.0.2.1"], socket.AF_INET6: socket.gaierror(socket.EAI_NONAME, "no")}
    )
    cache = AnswerCache(ttl=30, negative_ttl=10, clock=lambda: now[0])
    resolver = ThreadedResolver(idle_timeout=0.05, getaddrinfo=dns, cache=cache)
    for _ in range(5):
        assert lookup_once(resolver, socket.AF_INET).infos[0][4][0] == "192.0.2.1"
        assert isinstance(lookup_once(resolver, socket.AF_INET6).error, socket.gaierror)
    assert dns.calls == {socket.AF_INET: 1, socket.AF_INET6: 1}
    now[0] = 11  # the negative answer expired, the positive one did not
    lookup_once(resolver, socket.AF_INET)
    lookup_once(resolver, socket.AF_INET6)
    assert dns.calls == {socket.AF_INET: 1, socket.AF_INET6: 2}
    now[0] = 31
    lookup_once(resolver, socket.AF_INET)
    assert dns.calls[socket.AF_INET] == 2


def test_cache_rotates_equal_answers() -> None:
    dns = CountingDNS({socket.AF_INET: ["192.0.2.1", "192.0.2.2", "192.0.2.3"]})
    rotating = ThreadedResolver(getaddrinfo=dns, cache=AnswerCache(rotate=True), idle_timeout=0.05)
    firsts = [lookup_once(rotating, socket.AF_INET).infos[0][4][0] for _ in range(6)]
    assert firsts == ["192.0.2.1", "192.0.2.2", "192.0.2.3"] * 2
    fixed = ThreadedResolver(getaddrinfo=dns, cache=AnswerCache(rotate=False), idle_timeout=0.05)
    assert {lookup_once(fixed, socket.AF_INET).infos[0][4][0] for _ in range(4)} == {"192.0.2.1"}


def test_cache_is_bounded() -> None:
    cache = AnswerCache(size=2)
    from eyeshim.resolving import Answer

    for name in ("a", "b", "c"):
        cache.put((name, 80, socket.AF_INET), Answer(socket.AF_INET, [], None))
    assert len(cache) == 2


@pytest.fixture
def three_ipv4_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Three loopback servers on 127.0.0.2-4, one port, behind one name whose
    A answer always lists them in the same order."""
    listeners = []
    port = 0
    try:
        for last in (2, 3, 4):
            sock = socket.socket()
            sock.bind((f"127.0.0.{last}", port))
            port = sock.getsockname()[1]
            sock.listen(1024)
            listeners.append(sock)
    except OSError:
        for sock in listeners:
            sock.close()
        pytest.skip("127.0.0.2-4 not usable here")
    dns = CountingDNS(
        {
            socket.AF_INET: ["127.0.0.2", "127.0.0.3", "127.0.0.4"],
            socket.AF_INET6: socket.gaierror(socket.EAI_NONAME, "no"),
        }
    )
    real = socket.getaddrinfo

    def getaddrinfo(
        host: Any, port_: Any, family: int = 0, type_: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        if host == "pool.example.invalid":
            if flags & socket.AI_NUMERICHOST:
                raise socket.gaierror(socket.EAI_NONAME, "not a literal")
            return dns(host, port_, family)
        return real(host, port_, family, type_, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield port, listeners, dns
    for sock in listeners:
        sock.close()


def test_cache_one_lookup_per_family_for_1000_connections_and_load_spreads(
    three_ipv4_servers: Any,
) -> None:
    port, listeners, dns = three_ipv4_servers
    cache = AnswerCache(ttl=300, negative_ttl=300)
    config = Config(dns_cache=True)
    counts = {"127.0.0.2": 0, "127.0.0.3": 0, "127.0.0.4": 0}
    for _ in range(1000):
        sock = connect(
            ("pool.example.invalid", port),
            5.0,
            config=config,
            history=None,
            resolver=ThreadedResolver(getaddrinfo=None, cache=cache),
        )
        counts[sock.getpeername()[0]] += 1
        sock.close()
        for listener in listeners:  # keep the accept queues empty
            listener.setblocking(False)
            try:
                while True:
                    listener.accept()[0].close()
            except BlockingIOError:
                pass
    assert dns.calls == {socket.AF_INET: 1, socket.AF_INET6: 1}
    # Rotation spreads evenly; without it all 1000 would hit 127.0.0.2.
    assert all(300 <= n <= 367 for n in counts.values()), counts


def test_cache_config_switch(three_ipv4_servers: Any) -> None:
    port, _listeners, dns = three_ipv4_servers
    connection.get_dns_cache(Config(dns_cache=True)).clear()  # type: ignore[union-attr]
    try:
        for _ in range(5):
            connection.connect(
                ("pool.example.invalid", port), 5, config=Config(dns_cache=True)
            ).close()
        assert dns.calls[socket.AF_INET] == 1
        for _ in range(3):
            connection.connect(("pool.example.invalid", port), 5).close()
        assert dns.calls[socket.AF_INET] == 4  # the default config does not cache
    finally:
        connection.get_dns_cache(Config(dns_cache=True)).clear()  # type: ignore[union-attr]


def test_an_interrupt_while_a_thread_starts_leaves_the_counts_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups = Lookups()
    real_start = resolving.start_thread
    calls = {"n": 0}

    def start_once_interrupted(function: Any, args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real_start(function, args)

    monkeypatch.setattr(resolving, "start_thread", start_once_interrupted)
    got: List[Answer] = []
    with pytest.raises(KeyboardInterrupt):
        lookups.start("a", lambda: Answer(socket.AF_INET, []), got.append, max_threads=1)
    assert lookups.thread_count == 0
    # The bound is not used up by the thread that never started.
    lookups.start("b", lambda: Answer(socket.AF_INET, []), got.append, max_threads=1)
    assert wait_until(lambda: len(got) == 2)  # "a", still queued, runs too
    assert wait_until(lambda: lookups.thread_count == 0)
