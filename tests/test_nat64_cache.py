"""NAT64 prefix discovery and synthesis (RFC 7050, RFC 6052), and the DNS cache."""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from typing import Any, Dict, Iterator, List

import pytest
from fakenet import V4, V6, FakeNet, fake_source, nodata, ok, refuse

import eyeshim
from eyeshim import connection, nat64
from eyeshim.config import Config
from eyeshim.resolving import AnswerCache, ThreadedResolver

# -- RFC 6052 ------------------------------------------------------------------

# RFC 6052 §2.4: 192.0.2.33 embedded under each prefix length (checklist N7).
N7_VECTORS = [
    ("2001:db8::/32", "2001:db8:c000:221::"),
    ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
    ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
    ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
    ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
    ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
]


@pytest.mark.parametrize(("prefix", "expected"), N7_VECTORS)
def test_n7_rfc6052_vectors(prefix: str, expected: str) -> None:
    network = ipaddress.IPv6Network(prefix)
    assert nat64.synthesize("192.0.2.33", network) == ipaddress.IPv6Address(expected)
    assert nat64.extract(expected, network.prefixlen) == ipaddress.IPv4Address("192.0.2.33")


def test_n4_well_known_prefix_vector() -> None:
    # RFC 6052's WKP vector uses 192.0.2.33, which is not global (N8 forbids
    # it under the WKP), so the same layout is checked with a global address.
    assert nat64.synthesize("8.8.4.4", nat64.WELL_KNOWN_PREFIX) == ipaddress.IPv6Address(
        "64:ff9b::808:404"
    )


def test_n8_well_known_prefix_refuses_non_global_ipv4() -> None:
    for private in ("10.0.0.5", "192.168.1.1", "172.16.0.1", "192.0.2.33"):
        with pytest.raises(ValueError, match="RFC 6052"):
            nat64.synthesize(private, nat64.WELL_KNOWN_PREFIX)
    # A network-specific prefix may carry them.
    assert nat64.synthesize("10.0.0.5", ipaddress.IPv6Network("2001:db8:64::/96")) == (
        ipaddress.IPv6Address("2001:db8:64::a00:5")
    )


def test_n5_only_rfc6052_lengths() -> None:
    with pytest.raises(ValueError, match="prefix length"):
        nat64.synthesize("8.8.8.8", ipaddress.IPv6Network("2001:db8::/33"))


@pytest.mark.parametrize("length", nat64.PREFIX_LENGTHS)
def test_n1_prefix_discovery_at_every_length(length: int) -> None:
    prefix = ipaddress.IPv6Network(f"2001:db8:122:344::/{length}", strict=False)
    answers = [
        nat64.synthesize("192.0.0.170", prefix),
        nat64.synthesize("192.0.0.171", prefix),
    ]
    assert nat64.prefixes_from_answers(answers) == [prefix]


def test_n1_discovery_finds_several_prefixes_and_ignores_others() -> None:
    answers = [
        "64:ff9b::c000:aa",
        "2001:db8:64::c000:ab",
        "2001:db8::1",  # not a synthesized address
    ]
    assert nat64.prefixes_from_answers(answers) == [
        ipaddress.IPv6Network("64:ff9b::/96"),
        ipaddress.IPv6Network("2001:db8:64::/96"),
    ]


def test_prefixes_are_cached_and_rediscovered() -> None:
    now = [0.0]
    calls: List[int] = []
    source = ["2001:db8:1::5"]

    def lookup() -> List[str]:
        calls.append(1)
        return ["64:ff9b::c000:aa"]

    prefixes = nat64.Prefixes(
        lookup, lifetime=60, clock=lambda: now[0], source_of=lambda _: source[0]
    )
    assert prefixes.get() == (nat64.WELL_KNOWN_PREFIX,)
    assert prefixes.get() == (nat64.WELL_KNOWN_PREFIX,)
    assert len(calls) == 1
    now[0] = 61
    prefixes.get()
    assert len(calls) == 2  # lifetime passed
    source[0] = "2001:db8:2::5"
    prefixes.get()
    assert len(calls) == 3  # another network


# -- NAT64 in create_connection ---------------------------------------------------


@pytest.fixture
def ipv6_only_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """Pretend IPv4 literals are unroutable, and that the network's NAT64
    prefix is ::/96, under which 0.0.0.1 becomes ::1 (a real listener)."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    listener = socket.socket(socket.AF_INET6)
    try:
        listener.bind(("::1", 0))
    except OSError:
        listener.close()
        pytest.skip("no IPv6 loopback")
    listener.listen(8)
    real_connect_one = connection._connect_one

    def unroutable(info: Any, *args: Any) -> Any:
        if info[0] == socket.AF_INET:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        return real_connect_one(info, *args)

    monkeypatch.setattr(connection, "_connect_one", unroutable)

    class UnroutableIPv4(connection.SocketConnector):
        def connect(self, attempt: Any) -> bool:
            if attempt.info[0] == socket.AF_INET:
                raise OSError(errno.ENETUNREACH, "Network is unreachable")
            return super().connect(attempt)

    monkeypatch.setattr(connection, "SocketConnector", UnroutableIPv4)
    monkeypatch.setattr(
        nat64, "PREFIXES", nat64.Prefixes(lambda: ["::c000:aa"], source_of=lambda _: None)
    )
    with listener:
        yield listener


def test_r26_ipv4_literal_reached_through_synthesized_address(
    ipv6_only_host: socket.socket,
) -> None:
    port = ipv6_only_host.getsockname()[1]
    with eyeshim.create_connection(("0.0.0.1", port), timeout=5) as sock:
        assert sock.family == socket.AF_INET6
        assert sock.getpeername()[0] == "::1"
    with eyeshim.events.recording() as recorded:
        connection.connect(("0.0.0.1", port), 5).close()
    nat64_events = [e for e in recorded if e.kind == "nat64"]
    assert nat64_events[0].data == {"ipv4": ["0.0.0.1"], "synthesized": ["::1"]}


def test_r28_ipv4_only_answer_reached_through_nat64() -> None:
    # An IPv6-only host whose resolver does no DNS64 (a VPN's, say): the name
    # has only A records, and every IPv4 attempt fails at once.
    net = FakeNet()
    net.behave("192.0.2.1", refuse(0, errno.ENETUNREACH))
    net.behave("192.0.2.2", refuse(0, errno.ENETUNREACH))
    net.behave("2001:db8:64::c000:202", ok(3))
    prefixes = nat64.Prefixes(lambda: ["2001:db8:64::c000:aa"], source_of=lambda _: None)
    saved, nat64.PREFIXES = nat64.PREFIXES, prefixes
    try:
        with eyeshim.events.recording() as recorded:
            sock = connection.connect(
                ("vpn.example.test", 80),
                5,
                config=Config(policy="rfc6724"),
                resolver=net.resolver({V6: (0, nodata()), V4: (0, ["192.0.2.1", "192.0.2.2"])}),
                connector=net,
                history=None,
                find_source=fake_source,
            )
    finally:
        nat64.PREFIXES = saved
    assert sock.address == "2001:db8:64::c000:202"
    assert [a for _, a in net.starts()] == [
        "192.0.2.1",
        "192.0.2.2",
        "2001:db8:64::c000:201",
        "2001:db8:64::c000:202",
    ]
    event = next(e for e in recorded if e.kind == "nat64")
    assert event.data["ipv4"] == ["192.0.2.1", "192.0.2.2"]


def test_r26_nat64_off_keeps_the_error(ipv6_only_host: socket.socket) -> None:
    port = ipv6_only_host.getsockname()[1]
    with pytest.raises(OSError) as caught:
        connection.connect(("0.0.0.1", port), 5, config=Config(nat64=False))
    assert caught.value.errno == errno.ENETUNREACH
    with pytest.raises(OSError):  # the caller asked for IPv4 only
        connection.connect(("0.0.0.1", port), 5, family=socket.AF_INET)


def test_r26_no_prefix_keeps_the_error(
    ipv6_only_host: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nat64, "PREFIXES", nat64.Prefixes(lambda: [], source_of=lambda _: None))
    with pytest.raises(OSError) as caught:
        eyeshim.create_connection(("0.0.0.1", ipv6_only_host.getsockname()[1]), timeout=5)
    assert caught.value.errno == errno.ENETUNREACH


def test_r26_refused_is_not_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    # A refusal says IPv4 works: no NAT64 discovery at all.
    looked_up: List[int] = []
    monkeypatch.setattr(
        nat64, "PREFIXES", nat64.Prefixes(lambda: looked_up.append(1) or [], source_of=str)
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        eyeshim.create_connection(("127.0.0.1", port), timeout=5)
    assert looked_up == []


# -- the DNS answer cache -----------------------------------------------------------


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
    config = Config(dns_cache=True, resolver_idle_timeout=0.05)
    counts = {"127.0.0.2": 0, "127.0.0.3": 0, "127.0.0.4": 0}
    for _ in range(1000):
        sock = connection._race(
            "pool.example.invalid",
            port,
            None,
            (socket.AF_INET6, socket.AF_INET),
            config,
            None,
            None,
            5.0,
            False,
            None,
            ThreadedResolver(getaddrinfo=None, cache=cache, idle_timeout=0.05),
            connection.SocketConnector(),
            None,
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
