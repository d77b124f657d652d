"""Ordering (RFC 8305 §4): RFC 6724 sort, history, family interleaving."""

from __future__ import annotations

import socket

import pytest
from fakenet import (
    A1,
    A2,
    S1,
    S2,
    S3,
    V4,
    V6,
    FakeNet,
    ok,
    run,
)

from eyeshim.config import Config

# -- the order a race tries addresses in (R9, R13) -----------------------------


def test_r13_interleave_families_fafc1() -> None:
    net = FakeNet()
    run_all_dropped = {V6: (0, [S1, S2, S3]), V4: (0, [A1, A2])}
    with pytest.raises(socket.timeout):
        run(net, run_all_dropped, timeout=5)
    assert [a for _, a in net.starts()] == [S1, A1, S2, A2, S3]
    assert [t for t, _ in net.starts()] == [0.0, 250.0, 500.0, 750.0, 1000.0]


def test_r13_interleave_families_fafc2() -> None:
    net = FakeNet()
    config = Config(policy="rfc6724", first_address_family_count=2)
    with pytest.raises(socket.timeout):
        run(net, {V6: (0, [S1, S2, S3]), V4: (0, [A1, A2])}, timeout=5, config=config)
    assert [a for _, a in net.starts()] == [S1, S2, A1, S3, A2]


def test_r9_rfc6724_prefers_ipv6_even_when_a_came_first_in_the_list() -> None:
    net = FakeNet()
    net.behave(S1, ok())
    sock = run(net, {V6: (0, [S1]), V4: (0, [A1])})
    assert sock.address == S1
