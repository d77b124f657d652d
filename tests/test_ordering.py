"""Ordering (RFC 8305 §4): RFC 6724 sort, history, family interleaving.

Test names carry the requirement IDs of shared/rfc-checklist.md.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import subprocess
import sys
from typing import Any, List, Tuple

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

from eyeshim import ordering, sorting
from eyeshim.config import Config
from eyeshim.ordering import interleave

# Orderer tests go in their own section(s) below this one.


# ---------------------------------------------------------------------------
# R13: interleaving (ordering.interleave, formerly sorting.interleave)
# ---------------------------------------------------------------------------

SIX = ["2001:db8::a", "2001:db8::b", "2001:db8::c"]
FOUR = ["192.0.2.1", "192.0.2.2"]


def test_r13_interleave_fafc1() -> None:
    a6, b6, c6 = SIX
    a4, b4 = FOUR
    assert interleave([a6, b6, c6, a4, b4]) == [a6, a4, b6, b4, c6]
    assert interleave([a6, b6, c6, a4, b4], 1) == [a6, a4, b6, b4, c6]


def test_r13_interleave_fafc2() -> None:
    a6, b6, c6 = SIX
    a4, b4 = FOUR
    assert interleave([a6, b6, c6, a4, b4], 2) == [a6, b6, a4, c6, b4]


def test_r13_interleave_large_fafc_and_ipv4_first() -> None:
    a6, b6, c6 = SIX
    a4, b4 = FOUR
    assert interleave([a6, b6, c6, a4, b4], 5) == [a6, b6, c6, a4, b4]
    # The first family is whichever sorted first, not IPv6 by fiat.
    assert interleave([a4, b4, a6, b6, c6]) == [a4, a6, b4, b6, c6]
    assert interleave([a4, a6, b4, b6, c6], 2) == [a4, b4, a6, b6, c6]


def test_r13_interleave_single_family_and_empty() -> None:
    assert interleave(SIX) == SIX
    assert interleave(FOUR, 3) == FOUR
    assert interleave([]) == []
    assert interleave(iter([])) == []


def test_r13_interleave_returns_same_objects_and_accepts_ipaddress() -> None:
    items = [ipaddress.ip_address(x) for x in SIX + FOUR]
    result = interleave(items)
    assert [id(x) for x in result] == [id(items[i]) for i in (0, 3, 1, 4, 2)]
    mixed: List[Any] = [SIX[0], ipaddress.IPv4Address(FOUR[0]), "fe80::1%eth0"]
    assert interleave(mixed) == [SIX[0], mixed[1], "fe80::1%eth0"]


def test_r13_interleave_getaddrinfo_tuples_with_family_callable() -> None:
    def info(family: int, host: str) -> Tuple[Any, ...]:
        return (family, socket.SOCK_STREAM, 6, "", (host, 443))

    infos = [info(socket.AF_INET6, h) for h in SIX] + [info(socket.AF_INET, h) for h in FOUR]
    result = interleave(infos, 2, family=lambda i: i[0])
    assert [i[4][0] for i in result] == [SIX[0], SIX[1], FOUR[0], SIX[2], FOUR[1]]
    assert all(any(r is i for i in infos) for r in result)
    with pytest.raises(TypeError, match="family="):
        interleave(infos)


def test_r13_interleave_more_than_two_families_round_robin() -> None:
    items = ["a1", "a2", "a3", "b1", "c1", "c2"]
    assert interleave(items, family=lambda s: s[0]) == ["a1", "b1", "c1", "a2", "c2", "a3"]


def test_r13_interleave_rejects_bad_count_and_bad_addresses() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        interleave(SIX, 0)
    with pytest.raises(ValueError):
        interleave(SIX, -2)
    with pytest.raises(TypeError):
        interleave(SIX, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape("'localhost'")):
        interleave(["localhost"])


def test_interleave_still_imports_from_sorting() -> None:
    assert sorting.interleave is ordering.interleave is interleave
    # In a fresh interpreter, before anything imported eyeshim.ordering: the
    # package loads it on first use (importing it eagerly would be circular).
    code = (
        "import sys\n"
        "from eyeshim.sorting import *\n"
        "import eyeshim.sorting as s\n"
        "from eyeshim.sorting import interleave\n"
        "assert interleave is sys.modules['eyeshim.ordering'].interleave\n"
        "assert all(hasattr(s, name) for name in s.__all__)\n"
        "print(interleave(['192.0.2.1', '2001:db8::1', '192.0.2.2']))\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "['192.0.2.1', '2001:db8::1', '192.0.2.2']"
    with pytest.raises(AttributeError, match="no_such_name"):
        sorting.no_such_name  # noqa: B018


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


def test_r13_a_late_answer_continues_the_interleaving() -> None:
    # AAAA with two dead addresses at 0 ms, A 20 ms later: the A address goes
    # next (250 ms), not behind the second IPv6 address (500 ms).
    net = FakeNet()
    net.behave(A1, ok(3))
    sock = run(net, {V6: (0, [S1, S2]), V4: (20, [A1])}, timeout=5)
    assert sock.address == A1
    assert net.starts() == [(0.0, S1), (250.0, A1)]


def test_r13_a_late_answer_respects_the_first_address_family_count() -> None:
    net = FakeNet()
    config = Config(policy="rfc6724", first_address_family_count=2)
    with pytest.raises(socket.timeout):
        run(net, {V6: (0, [S1, S2, S3]), V4: (20, [A1])}, timeout=2, config=config)
    assert [a for _, a in net.starts()] == [S1, S2, A1, S3]
