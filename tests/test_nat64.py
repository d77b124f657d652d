"""NAT64 (RFC 8305 §7, RFC 6052, RFC 7050): synthesis, discovery, and
connecting through it."""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from typing import Any, Iterator, List

import pytest
from fakenet import (
    V4,
    V6,
    FakeNet,
    fake_source,
    nodata,
    ok,
    refuse,
)

import eyeshim
from eyeshim import nat64
from eyeshim.config import Config
from eyeshim.connection import connect

# -- RFC 6052 / RFC 7050 -------------------------------------------------------


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


# -- NAT64 in create_connection ------------------------------------------------


@pytest.fixture
def ipv6_only_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """Pretend this host has no IPv4 route (every IPv4 connect fails with
    ENETUNREACH, as on an IPv6-only network), and yield a listener on ::1:
    under the NAT64 prefix ::/96 (``PREFIXES``), 0.0.0.1 becomes ::1."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    listener = socket.socket(socket.AF_INET6)
    try:
        listener.bind(("::1", 0))
    except OSError:
        listener.close()
        pytest.skip("no IPv6 loopback")
    listener.listen(8)

    class NoIPv4Route(socket.socket):
        def connect(self, address: Any) -> None:
            if self.family == socket.AF_INET:
                raise OSError(errno.ENETUNREACH, "Network is unreachable")
            super().connect(address)

        def connect_ex(self, address: Any) -> int:
            if self.family == socket.AF_INET:
                return errno.ENETUNREACH
            return super().connect_ex(address)

    # socket.socket is looked up at call time, by the stdlib and by eyeshim.
    monkeypatch.setattr(socket, "socket", NoIPv4Route)
    with listener:
        yield listener


def PREFIXES() -> nat64.Prefixes:
    """Discovery that finds the prefix ::/96 (0.0.0.1 -> ::1)."""
    return nat64.Prefixes(lambda: ["::c000:aa"], source_of=lambda _: None)


def test_r26_ipv4_literal_reached_through_synthesized_address(
    ipv6_only_host: socket.socket,
) -> None:
    port = ipv6_only_host.getsockname()[1]
    with connect(("0.0.0.1", port), 5, nat64_prefixes=PREFIXES()) as sock:
        assert sock.family == socket.AF_INET6
        assert sock.getpeername()[0] == "::1"
    with eyeshim.events.recording() as recorded:
        connect(("0.0.0.1", port), 5, nat64_prefixes=PREFIXES()).close()
    (event,) = [e for e in recorded if isinstance(e, eyeshim.events.Nat64)]
    assert (event.ipv4, event.synthesized) == (["0.0.0.1"], ["::1"])
    assert event.discovery is not None and 0 <= event.discovery < 5


def ipv6_only_source(address: str, port: int) -> Any:
    """Source discovery on an IPv6-only host: no route to any IPv4 address."""
    return fake_source(address, port) if ":" in address else None


def test_r28_ipv4_only_answer_reached_through_nat64() -> None:
    # An IPv6-only host whose resolver does no DNS64 (a VPN's, say): the name
    # has only A records, and every IPv4 attempt fails at once.
    net = FakeNet()
    net.behave("192.0.2.1", refuse(0, errno.ENETUNREACH))
    net.behave("192.0.2.2", refuse(0, errno.ENETUNREACH))
    net.behave("2001:db8:64::c000:202", ok(3))
    prefixes = nat64.Prefixes(lambda: ["2001:db8:64::c000:aa"], source_of=lambda _: None)
    with eyeshim.events.recording() as recorded:
        sock = connect(
            ("vpn.example.test", 80),
            5,
            config=Config(policy="rfc6724"),
            resolver=net.resolver({V6: (0, nodata()), V4: (0, ["192.0.2.1", "192.0.2.2"])}),
            connector=net,
            history=None,
            # IPv6-only: no route to any IPv4 address.
            find_source=lambda address, port: (
                None if ":" not in address else fake_source(address, port)
            ),
            nat64_prefixes=prefixes,
        )
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
        connect(("0.0.0.1", port), 5, config=Config(nat64=False), nat64_prefixes=PREFIXES())
    assert caught.value.errno == errno.ENETUNREACH
    with pytest.raises(OSError):  # the caller asked for IPv4 only
        connect(("0.0.0.1", port), 5, family=socket.AF_INET, nat64_prefixes=PREFIXES())


def test_r26_no_prefix_keeps_the_error(ipv6_only_host: socket.socket) -> None:
    none_found = nat64.Prefixes(lambda: [], source_of=lambda _: None)
    with pytest.raises(OSError) as caught:
        connect(("0.0.0.1", ipv6_only_host.getsockname()[1]), 5, nat64_prefixes=none_found)
    assert caught.value.errno == errno.ENETUNREACH


def test_r26_refused_is_not_unreachable() -> None:
    # A refusal says IPv4 works: no NAT64 discovery at all.
    looked_up: List[int] = []
    counting = nat64.Prefixes(lambda: looked_up.append(1) or [], source_of=str)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        connect(("127.0.0.1", port), 5, nat64_prefixes=counting)
    assert looked_up == []


def test_r26_prefix_discovery_never_holds_the_caller_past_its_timeout(
    ipv6_only_host: socket.socket,
) -> None:
    # DNS unwell: discovering the prefix takes 2 s.  The caller's timeout
    # (0.3 s) bounds how long it waits; the discovery finishes on its own
    # thread and serves the next caller.
    release = threading.Event()

    def slow() -> List[str]:
        release.wait(2)
        return ["::c000:aa"]

    prefixes = nat64.Prefixes(slow, source_of=lambda _: None)
    port = ipv6_only_host.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(OSError) as caught:
        connect(("0.0.0.1", port), 0.3, nat64_prefixes=prefixes)
    assert caught.value.errno == errno.ENETUNREACH
    assert time.monotonic() - started < 1.5
    release.set()
    with connect(("0.0.0.1", port), 5, nat64_prefixes=prefixes) as sock:
        assert sock.getpeername()[0] == "::1"


def test_r26_concurrent_callers_share_one_discovery() -> None:
    calls: List[int] = []
    release = threading.Event()

    def lookup() -> List[str]:
        calls.append(1)
        release.wait(2)
        return ["64:ff9b::c000:aa"]

    prefixes = nat64.Prefixes(lookup, source_of=lambda _: None)
    found: List[Any] = []
    callers = [threading.Thread(target=lambda: found.append(prefixes.get(5))) for _ in range(5)]
    for caller in callers:
        caller.start()
    time.sleep(0.1)
    release.set()
    for caller in callers:
        caller.join(5)
    assert calls == [1]
    assert found == [(ipaddress.IPv6Network("64:ff9b::/96"),)] * 5
