"""eyeshim.dns.stub: the stub resolver against a real DNS server on loopback (the lab's server,
integrations/servers.py, on a free port).  What glibc does in each case is checked against
glibc itself in the lab (integrations/tests/test_dns_differential.py); these tests check the
mechanics: no thread, failover, TCP, timers in the race, TTLs in the cache, late replies, fork.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest

from eyeshim import events
from eyeshim.connection import connect
from eyeshim.dns.resolvconf import parse
from eyeshim.dns.stub import LATE_REPLIES, StubResolver, StubState, lookup
from eyeshim.resolving import Answer, AnswerCache
from integrations.dnszone import Impairment, Zone
from integrations.servers import DNSServer

BOTH = (socket.AF_INET6, socket.AF_INET)
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


class Loopback:
    """A DNS server on 127.0.0.1 and a TCP listener on both loopback addresses."""

    def __init__(self, zone: Zone) -> None:
        self.directory = tempfile.TemporaryDirectory()
        self.path = Path(self.directory.name) / "zone.json"
        self.zone = zone
        zone.write(self.path)
        self.dns = DNSServer(self.path, ["127.0.0.1"], port=0)
        self.thread = threading.Thread(target=self.dns.serve_forever, daemon=True)
        self.thread.start()
        self.listener = socket.socket(socket.AF_INET6)
        self.listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.listener.bind(("::", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]

    def conf(self, text: str = "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n") -> Any:
        return parse(text, environ={}, hostname="host")

    def resolver(self, conf: Any = None, **kwargs: Any) -> StubResolver:
        kwargs.setdefault("state", StubState())
        return StubResolver(
            conf if conf is not None else self.conf(), BOTH, server_port=self.dns.port, **kwargs
        )

    def close(self) -> None:
        self.dns.stop()
        self.thread.join(2)
        self.listener.close()
        self.directory.cleanup()


def _zone() -> Zone:
    zone = Zone(domains=["lab.test"], ttl=60, negative_ttl=30)
    zone.set("both", a=["127.0.0.1"], aaaa=["::1"])
    zone.set("four", a=["127.0.0.1"])
    zone.set("alias", cname="both")
    zone.set("big", a=["127.0.0.1"], aaaa=["::1"], impair={"A": Impairment(truncate=True)})
    zone.set("slow6", a=["127.0.0.1"], aaaa=["::1"], impair={"AAAA": Impairment(delay_ms=300)})
    zone.set("lost6", a=["127.0.0.1"], aaaa=["::1"], impair={"AAAA": Impairment(drop=True)})
    zone.set("mix.lab.test.", a=["127.0.0.1"])
    zone.set("mix", aaaa=["::1"])
    zone.set("nodata")
    return zone


@pytest.fixture(scope="module")
def loop() -> Iterator[Loopback]:
    server = Loopback(_zone())
    try:
        yield server
    finally:
        server.close()


def _peer(loop: Loopback, host: str, resolver: StubResolver, **kwargs: Any) -> str:
    with connect((host, loop.port), 5, resolver=resolver, **kwargs) as sock:
        return str(sock.getpeername()[0])


def test_a_connect_through_the_stub_starts_no_thread(loop: Loopback) -> None:
    before = {t.ident for t in threading.enumerate()}
    seen: List[Tuple[str, Any]] = []

    def watch(event: events.RaceEvent) -> None:
        seen.append((event.kind, event.data))
        if event.kind == "connected":
            seen.append(("threads", {t.ident for t in threading.enumerate()} - before))

    unsubscribe = events.subscribe(watch)
    try:
        peer = _peer(loop, "both.example.org", loop.resolver())
    finally:
        unsubscribe()
    assert peer in ("::1", "::ffff:127.0.0.1", "127.0.0.1")
    assert ("threads", set()) in seen
    assert ("query", {"family": "ipv6", "resolver": "stub"}) in seen


def test_answers_per_family_with_af_unspec_semantics(loop: Loopback) -> None:
    answers = lookup(
        "mix",
        80,
        conf=loop.conf("nameserver 127.0.0.1\nsearch lab.test example.org\n"),
        server_port=loop.dns.port,
    )
    # mix.lab.test has only A; mix.example.org only AAAA: the first name with any record wins.
    assert [i[4][0] for i in answers[socket.AF_INET].infos] == ["127.0.0.1"]
    assert answers[socket.AF_INET6].error is not None
    assert answers[socket.AF_INET6].error.errno == getattr(socket, "EAI_NODATA", -5)  # type: ignore[attr-defined]
    # The tuples are what getaddrinfo returns (enums, proto, sockaddr shapes).
    assert (
        answers[socket.AF_INET].infos[0]
        == socket.getaddrinfo("127.0.0.1", 80, socket.AF_INET, socket.SOCK_STREAM)[0]
    )
    alias = lookup("alias.example.org", 443, conf=loop.conf(), server_port=loop.dns.port)
    assert alias[socket.AF_INET6].infos == socket.getaddrinfo(
        "::1", 443, socket.AF_INET6, socket.SOCK_STREAM
    )
    assert alias[socket.AF_INET6].ttl == 60


def test_errors_are_getaddrinfos(loop: Loopback) -> None:
    missing = lookup("missing.example.org", 80, conf=loop.conf(), server_port=loop.dns.port)
    assert missing[socket.AF_INET].error.errno == socket.EAI_NONAME  # type: ignore[union-attr]
    assert str(missing[socket.AF_INET].error) == "[Errno -2] Name or service not known"
    assert missing[socket.AF_INET].ttl == 30  # RFC 2308: the SOA's minimum
    nodata = lookup("nodata.example.org", 80, conf=loop.conf(), server_port=loop.dns.port)
    assert str(nodata[socket.AF_INET6].error) == "[Errno -5] No address associated with hostname"
    with pytest.raises(socket.gaierror) as caught:
        connect(("missing.example.org", loop.port), 5, resolver=loop.resolver())
    assert caught.value.errno == socket.EAI_NONAME


def test_a_truncated_answer_is_asked_again_over_tcp(loop: Loopback) -> None:
    answers = lookup("big.example.org", 80, conf=loop.conf(), server_port=loop.dns.port)
    assert [i[4][0] for i in answers[socket.AF_INET].infos] == ["127.0.0.1"]
    assert [i[4][0] for i in answers[socket.AF_INET6].infos] == ["::1"]


def test_a_refusing_server_is_passed_at_once_and_a_silent_one_after_its_timeout(
    loop: Loopback,
) -> None:
    # Nothing listens on 127.0.0.2 at the server's port: ICMP port unreachable.
    refused = loop.conf("nameserver 127.0.0.2\nnameserver 127.0.0.1\noptions timeout:1\n")
    started = time.monotonic()
    answers = lookup("four.example.org", 80, conf=refused, server_port=loop.dns.port)
    assert answers[socket.AF_INET].infos and time.monotonic() - started < 0.9
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.3", loop.dns.port))
        conf = loop.conf("nameserver 127.0.0.3\nnameserver 127.0.0.1\noptions timeout:1\n")
        started = time.monotonic()
        answers = lookup("four.example.org", 80, conf=conf, server_port=loop.dns.port)
        elapsed = time.monotonic() - started
    assert answers[socket.AF_INET].infos
    assert 0.9 < elapsed < 3.0


def test_no_server_at_all_fails_at_once_with_try_again(loop: Loopback) -> None:
    conf = loop.conf("nameserver 127.0.0.2\noptions timeout:1 attempts:2\n")
    started = time.monotonic()
    answers = lookup("four.example.org", 80, conf=conf, server_port=loop.dns.port)
    assert answers[socket.AF_INET].error.errno == socket.EAI_AGAIN  # type: ignore[union-attr]
    assert time.monotonic() - started < 0.9


def test_timers_run_in_the_race_a_lost_aaaa_does_not_hold_the_connect(loop: Loopback) -> None:
    started = time.monotonic()
    assert _peer(loop, "lost6.example.org", loop.resolver()) in ("127.0.0.1", "::ffff:127.0.0.1")
    assert time.monotonic() - started < 0.9  # the Resolution Delay, not the DNS timeout
    # Outside a race the lost AAAA is asked once more, then given up: A only.
    started = time.monotonic()
    answers = lookup("lost6.example.org", 80, conf=loop.conf(), server_port=loop.dns.port)
    assert answers[socket.AF_INET].infos and answers[socket.AF_INET6].error is not None
    assert 1.5 < time.monotonic() - started < 3.5


@pytest.mark.parametrize(
    "options", ["single-request", "single-request-reopen", "use-vc", "rotate edns0 trust-ad"]
)
def test_options_keep_the_answers(loop: Loopback, options: str) -> None:
    conf = loop.conf(f"nameserver 127.0.0.1\noptions {options} timeout:1\n")
    answers = lookup("both.example.org", 80, conf=conf, server_port=loop.dns.port)
    assert [i[4][0] for i in answers[socket.AF_INET6].infos] == ["::1"]
    assert [i[4][0] for i in answers[socket.AF_INET].infos] == ["127.0.0.1"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_cache_keeps_answers_for_their_ttl_within_bounds(loop: Loopback) -> None:
    clock = Clock()
    cache = AnswerCache(clock=clock, min_ttl=0, max_ttl=300)
    resolver = loop.resolver(cache=cache)
    _peer(loop, "both.example.org", resolver)
    # The race was won on the AAAA answer; that one is in the cache by now.
    key = ("stub", "both.example.org", loop.port, BOTH, socket.AF_INET6)
    assert cache.get(key) is not None
    clock.now += 59
    assert cache.get(key) is not None
    clock.now += 2  # the zone's TTL is 60 s
    assert cache.get(key) is None
    cache.configure(1024, 30, 10, True, min_ttl=0, max_ttl=5)
    assert cache.lifetime(Answer(socket.AF_INET, [("x",)], ttl=60)) == 5  # type: ignore[list-item]
    cache.configure(1024, 30, 10, True, min_ttl=120, max_ttl=300)
    assert cache.lifetime(Answer(socket.AF_INET, [("x",)], ttl=60)) == 120  # type: ignore[list-item]
    assert cache.lifetime(Answer(socket.AF_INET, [("x",)])) == 30  # type: ignore[list-item]
    assert cache.lifetime(Answer(socket.AF_INET, [], OSError(), ttl=7)) == 120
    cache.configure(1024, 30, 0, True, min_ttl=0, max_ttl=300)
    assert cache.lifetime(Answer(socket.AF_INET, [], OSError(), ttl=7)) == 0  # negatives off


def test_a_cached_answer_costs_no_query_and_keeps_rotating(loop: Loopback) -> None:
    cache = AnswerCache()
    state = StubState()
    two = Zone(ttl=60)
    two.set("rr", a=["127.0.0.1", "127.0.0.2"])
    server = Loopback(two)
    try:
        for _ in range(2):
            lookup_answers = _cached_lookup(server, cache, state, "rr.example.org")
        server.dns.stop()  # from here on, only the cache can answer
        orders = [
            [
                i[4][0]
                for i in _cached_lookup(server, cache, state, "rr.example.org")[
                    socket.AF_INET
                ].infos
            ]
            for _ in range(2)
        ]
    finally:
        server.close()
    assert lookup_answers[socket.AF_INET].infos
    assert orders[0] != orders[1] and sorted(orders[0]) == sorted(orders[1])


def _cached_lookup(
    server: Loopback, cache: AnswerCache, state: StubState, name: str, stale: float = 0.0
) -> Any:
    from eyeshim.candidates import Inbox

    inbox = Inbox()
    resolver = StubResolver(server.conf(), BOTH, state, cache, stale, server_port=server.dns.port)
    resolver.attach(inbox)
    got: dict[int, Answer] = {}
    for family in BOTH:
        resolver.resolve(name, 80, family, inbox.deliver)
    deadline = time.monotonic() + 3
    while len(got) < 2 and time.monotonic() < deadline:
        inbox.run_timer(time.monotonic())
        for answer in inbox.take():
            got[answer.family] = answer
        if len(got) < 2:
            inbox.wait(0.05)
    resolver.close()
    inbox.close()
    return got


def test_late_replies_fill_the_cache_without_a_thread(loop: Loopback) -> None:
    cache = AnswerCache()
    state = StubState()
    resolver = loop.resolver(cache=cache, state=state)
    started = time.monotonic()
    _peer(loop, "slow6.example.org", resolver)
    assert time.monotonic() - started < 0.25  # won over IPv4 without waiting for AAAA
    key6 = ("stub", "slow6.example.org", loop.port, BOTH, socket.AF_INET6)
    assert cache.get(key6) is None
    time.sleep(0.45)  # the AAAA reply (300 ms) is now in the socket's buffer
    _peer(loop, "four.example.org", loop.resolver(cache=cache, state=state))
    cached = cache.get(key6)
    assert cached is not None and [i[4][0] for i in cached.infos] == ["::1"]
    assert not state.sockets  # the late lookup is done and closed
    assert LATE_REPLIES <= 1.0


def test_an_expired_answer_is_served_briefly_while_one_lookup_refreshes_it(loop: Loopback) -> None:
    clock = Clock()
    cache = AnswerCache(clock=clock, stale=2.0)
    state = StubState()
    first = _cached_lookup(loop, cache, state, "both.example.org", stale=2.0)
    assert first[socket.AF_INET].infos
    clock.now += 61  # expired a second ago: within the grace of 2 s
    key = ("stub", "both.example.org", 80, BOTH, socket.AF_INET)
    assert cache.get(key) is None and cache.get_or_stale(key, 2.0)[1]
    stale = _cached_lookup(loop, cache, state, "both.example.org", stale=2.0)
    assert stale[socket.AF_INET].infos  # served at once, from the cache
    time.sleep(0.2)
    state.pump(time.monotonic())  # what the next lookup of the process does first
    answer, is_stale = cache.get_or_stale(key, 0.0)
    assert answer is not None and not is_stale  # refreshed
    clock.now += 64  # expired beyond the grace: not served any more
    assert cache.get_or_stale(key, 2.0) == (None, False)


@needs_fork
def test_fork_while_a_lookup_is_in_flight(loop: Loopback) -> None:
    from eyeshim.state import STATE
    from tests.test_state import in_child

    slow = Zone(ttl=60)
    hold = Impairment(delay_ms=800)
    slow.set("hang", a=["127.0.0.1"], impair={"A": hold, "AAAA": hold})
    server = Loopback(slow)
    racing = threading.Thread(
        target=lambda: _peer(server, "hang.example.org", server.resolver(state=STATE.stub()))
    )
    racing.start()
    time.sleep(0.2)
    open_in_parent = len(STATE.stub().sockets)

    def child() -> bool:
        if STATE.stub().sockets:
            return False  # the child closed its copies of the parent's sockets
        return bool(_peer(loop, "both.example.org", loop.resolver(state=STATE.stub())))

    try:
        assert open_in_parent > 0  # the fork happened inside the lookup
        assert in_child(child, bound=10)
    finally:
        racing.join(5)
        server.close()
    assert not STATE.stub().sockets  # and the parent's race finished normally


def test_a_bug_in_the_stub_falls_back_to_getaddrinfo(
    loop: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Never worse than stock: an unexpected error inside the resolver sends
    # the lookup to getaddrinfo instead of failing the connection.
    from eyeshim.dns import stub

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    infos = {
        socket.AF_INET6: socket.getaddrinfo("::1", loop.port, socket.AF_INET6, socket.SOCK_STREAM),
        socket.AF_INET: socket.getaddrinfo("127.0.0.1", loop.port, socket.AF_INET, 1),
    }

    def fake_getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any) -> Any:
        return infos[family]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(stub.wire, "parse", broken)  # every reply now raises
    assert _peer(loop, "both.example.org", loop.resolver())
    monkeypatch.setattr(stub.StubResolver, "_begin", broken)  # and now the start
    assert _peer(loop, "both.example.org", loop.resolver())
