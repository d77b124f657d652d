"""Tests for eyeshim.sorting.sources: Source(D) by UDP connect (R14)."""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any, ClassVar, List, Optional, Tuple

import pytest

from eyeshim.sorting import find_source


def _ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_r14_find_source_ipv4_loopback() -> None:
    assert find_source("127.0.0.1") == ipaddress.IPv4Address("127.0.0.1")
    assert find_source(ipaddress.IPv4Address("127.0.0.1"), port=443) == ipaddress.IPv4Address(
        "127.0.0.1"
    )


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="IPv6 loopback unavailable")
def test_r14_find_source_ipv6_loopback() -> None:
    assert find_source("::1") == ipaddress.IPv6Address("::1")


def test_r14_find_source_sends_no_packet() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.setblocking(False)
        port = server.getsockname()[1]
        assert find_source("127.0.0.1", port) == ipaddress.IPv4Address("127.0.0.1")
        with pytest.raises(BlockingIOError):
            server.recv(1)


def test_r14_find_source_unroutable_is_none() -> None:
    # A link-local destination without a zone cannot be routed (and without
    # IPv6 there is no socket at all): None either way.
    assert find_source("fe80::1") is None
    # An interface name that does not exist.
    assert find_source("fe80::1%no-such-if0") is None


def test_r14_find_source_bad_input() -> None:
    with pytest.raises(ValueError, match=re.escape("'example.com'")):
        find_source("example.com")
    with pytest.raises(ValueError, match="port"):
        find_source("127.0.0.1", port=70000)


class FakeSocket:
    """Stands in for socket.socket to observe what find_source does."""

    instances: ClassVar[List[FakeSocket]] = []
    next_error: ClassVar[Optional[OSError]] = None
    next_local: ClassVar[Tuple[Any, ...]] = ("fe80::2%eth0", 40000, 0, 2)

    def __init__(self, family: int, kind: int) -> None:
        self.family = family
        self.kind = kind
        self.connected: Optional[Tuple[Any, ...]] = None
        self.closed = False
        FakeSocket.instances.append(self)

    def __enter__(self) -> FakeSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True

    def connect(self, address: Tuple[Any, ...]) -> None:
        self.connected = address
        if FakeSocket.next_error is not None:
            raise FakeSocket.next_error

    def getsockname(self) -> Tuple[Any, ...]:
        return FakeSocket.next_local


@pytest.fixture
def fake_socket(monkeypatch: pytest.MonkeyPatch) -> type:
    FakeSocket.instances = []
    FakeSocket.next_error = None
    FakeSocket.next_local = ("fe80::2%eth0", 40000, 0, 2)
    monkeypatch.setattr(socket, "socket", FakeSocket)
    return FakeSocket


def test_r14_find_source_passes_the_zone_as_scope_id(fake_socket: type) -> None:
    assert find_source("fe80::1%2", port=80) == ipaddress.IPv6Address("fe80::2")
    sock = FakeSocket.instances[-1]
    assert sock.family == socket.AF_INET6 and sock.kind == socket.SOCK_DGRAM
    assert sock.connected == ("fe80::1", 80, 0, 2)
    assert sock.closed


def test_r14_find_source_resolves_interface_names(fake_socket: type) -> None:
    index = socket.if_nametoindex("lo")
    result = find_source("fe80::1%lo")
    assert FakeSocket.instances[-1].connected == ("fe80::1", 9, 0, index)
    # The zone is stripped from the result (ipaddress counts it in equality).
    assert result == ipaddress.IPv6Address("fe80::2") and result.scope_id is None  # type: ignore[union-attr]


def test_r14_find_source_closes_the_socket_on_error(fake_socket: type) -> None:
    FakeSocket.next_error = OSError(101, "Network is unreachable")
    assert find_source("192.0.2.1") is None
    sock = FakeSocket.instances[-1]
    assert sock.family == socket.AF_INET and sock.connected == ("192.0.2.1", 9)
    assert sock.closed


def test_r14_find_source_unspecified_result_is_none(fake_socket: type) -> None:
    FakeSocket.next_local = ("0.0.0.0", 0)
    assert find_source("192.0.2.1") is None


def test_r14_find_source_family_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ipv6(family: int, kind: int) -> Any:
        raise OSError(97, "Address family not supported by protocol")

    monkeypatch.setattr(socket, "socket", no_ipv6)
    assert find_source("2001:db8::1") is None
