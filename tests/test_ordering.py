"""Ordering (RFC 8305 §4): RFC 6724 sort, history, family interleaving.

Test names carry the requirement IDs of shared/rfc-checklist.md.
"""

from __future__ import annotations

import ipaddress
import random
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
    drop,
    fake_source,
    info,
    ok,
    run,
)

from eyeshim import events, ordering, sorting
from eyeshim.config import Config
from eyeshim.connection import connect
from eyeshim.history import History
from eyeshim.ordering import Orderer, interleave

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


# ---------------------------------------------------------------------------
# Orderer.explain on a fake candidate set (no network)
# ---------------------------------------------------------------------------

RFC = sorting.PolicyTable.rfc6724()


def _addresses(infos: List[Any]) -> List[str]:
    return [str(i[4][0]) for i in infos]


def test_explain_names_the_sort_rule_and_the_interleaving() -> None:
    orderer = Orderer(RFC, None, 1, find_source=fake_source)
    ordered = orderer([info(a) for a in (A1, S1, A2, S2)])
    assert _addresses(ordered) == [S1, A1, S2, A2]
    # The sort put both IPv6 first (rule 6); interleaving moved A1 ahead of S2.
    assert orderer.explain(ordered) == [
        "rule 6: higher precedence",
        "interleave",
        "rule 6: higher precedence",
    ]
    assert orderer.explain(ordered[:1]) == [] and orderer.explain([]) == []


def test_explain_with_fafc_2_and_dns_order_within_a_family() -> None:
    orderer = Orderer(RFC, None, 2, find_source=fake_source)
    ordered = orderer([info(a) for a in (S1, S2, S3, A1, A2)])
    assert _addresses(ordered) == [S1, S2, A1, S3, A2]
    assert orderer.explain(ordered) == [
        # Same /64 as each other, same prefix with the source: DNS order decides.
        "rule 10: DNS order",
        "rule 6: higher precedence",
        "interleave",
        "rule 6: higher precedence",
    ]


def test_explain_marks_the_recently_failed_boundary_and_history_rank() -> None:
    now = [0.0]
    history = History(clock=lambda: now[0])
    history.record_failure(S1)
    history.record_success(A2, 0.010)  # IPv4 worked, S1 failed
    orderer = Orderer(RFC, history, 1, find_source=fake_source)
    ordered = orderer([info(a) for a in (S1, S2, A1, A2)])
    # Usable first, interleaved; the failed S1 last.
    assert _addresses(ordered) == [S2, A1, A2, S1]
    assert orderer.explain(ordered) == [
        "rule 6: higher precedence",
        # Both IPv4: equal RTT class (A1 unknown ranks with its family's best).
        "rule 10: DNS order",
        "history: failed recently",
    ]
    # Explaining is read-only: asking again gives the same answer, and a list
    # the orderer did not produce is explained by sorting it afresh.
    assert orderer.explain(ordered) == orderer.explain(list(ordered))
    assert orderer.explain([info(A2), info(S2)]) == ["interleave"]


def test_explain_names_the_history_key() -> None:
    history = History()
    history.record_success(A2, 0.002)
    history.record_success(A1, 0.200)  # a much slower RTT class
    orderer = Orderer(RFC, history, 1, find_source=fake_source)
    ordered = orderer([info(a) for a in (A1, A2)])
    assert _addresses(ordered) == [A2, A1]
    assert orderer.explain(ordered) == ["history"]


@pytest.mark.parametrize("seed", range(30))
def test_explain_agrees_with_deciding_rule_on_random_sets(seed: int) -> None:
    rng = random.Random(seed)
    addresses = rng.sample([S1, S2, S3, "2001:db8:1::1", "fe80::1%1", A1, A2, "10.0.0.1"], 5)
    history = History()
    for address in addresses:
        roll = rng.random()
        if roll < 0.25:
            history.record_failure(address)
        elif roll < 0.5:
            history.record_success(address, rng.choice([0.001, 0.01, 0.1]))
    orderer = Orderer(RFC, history, rng.choice([1, 2]), find_source=fake_source)
    ordered = orderer([info(a) for a in addresses])
    reasons = orderer.explain(ordered)
    assert len(reasons) == len(ordered) - 1
    assert "unknown" not in reasons
    names = set(sorting.RULES)
    assert set(reasons) <= names | {"interleave", "history: failed recently"}
    # The failed boundary appears exactly where usable meets failed.
    failed = [history.failed_recently(a) for a in _addresses(ordered)]
    for index, reason in enumerate(reasons):
        boundary = not failed[index] and failed[index + 1]
        assert (reason == "history: failed recently") == boundary


def test_the_sorted_event_carries_the_explanation() -> None:
    net = FakeNet()
    net.behave(S1, drop())
    net.behave(A1, ok(3))
    with events.recording() as recorded:
        connect(
            ("example.test", 80),
            5,
            config=Config(policy="rfc6724"),
            # A first: the race waits the Resolution Delay, AAAA joins it.
            resolver=net.resolver({V6: (2, [S1, S2]), V4: (1, [A1])}),
            connector=net,
            find_source=fake_source,
            history=None,
        )
    sorted_events = [e for e in recorded if e.kind == "sorted"]
    assert [e.data["order"] for e in sorted_events] == [[A1], [S1, A1, S2]]
    assert sorted_events[0].data["rules"] == []
    assert sorted_events[1].data["rules"] == ["rule 6: higher precedence", "interleave"]
