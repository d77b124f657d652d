"""The race logic against a fake network and a fake clock.

Each test is named after the checklist requirement it covers
(../shared/rfc-checklist.md).  Times are exact because the clock is fake.
"""

from __future__ import annotations

import errno
import socket
import sys
from typing import Any, Dict, Optional

import pytest
from fakenet import V4, V6, FakeNet, drop, fake_source, nodata, ok, refuse, unbindable

from eyeshim.config import Config
from eyeshim.connection import connect
from eyeshim.history import History

A1, A2, A3 = "192.0.2.1", "192.0.2.2", "192.0.2.3"
S1, S2, S3 = "2001:db8::1", "2001:db8::2", "2001:db8::3"


class Clock:
    """A clock the History can share with the fake network."""

    def __init__(self, net: FakeNet) -> None:
        self.net = net

    def __call__(self) -> float:
        return self.net.now_value


def run(
    net: FakeNet,
    answers: Dict[int, Any],
    *,
    config: Optional[Config] = None,
    history: Any = None,
    timeout: Any = None,
    all_errors: bool = False,
    family: int = socket.AF_UNSPEC,
) -> Any:
    resolver = net.resolver(answers)
    net.last_resolver = resolver  # type: ignore[attr-defined]
    return connect(
        ("example.test", 80),
        timeout,
        config=config or Config(policy="rfc6724"),
        resolver=resolver,
        connector=net,
        history=history,
        find_source=fake_source,
        all_errors=all_errors,
        family=family,
    )


# -- resolution (R1-R7) -------------------------------------------------------


def test_r1_aaaa_queried_first_and_r2_both_at_once() -> None:
    net = FakeNet()
    net.behave(S1, ok())
    run(net, {V6: (5, [S1]), V4: (5, [A1])})
    assert net.last_resolver.queries == [(0.0, V6), (0.0, V4)]  # type: ignore[attr-defined]


def test_r3_aaaa_first_connects_at_once() -> None:
    net = FakeNet()
    net.behave(S1, ok(1))
    sock = run(net, {V6: (5, [S1]), V4: (30, [A1])})
    assert sock.address == S1
    assert net.starts() == [(5.0, S1)]


def test_r3_a_still_pending_is_not_waited_for_and_is_cancelled() -> None:
    net = FakeNet()
    net.behave(S1, ok(1))
    sock = run(net, {V6: (5, [S1]), V4: None})  # the A lookup never answers
    assert sock.address == S1
    assert net.now_value == pytest.approx(0.006)
    assert V4 in net.last_resolver.cancelled  # type: ignore[attr-defined]


def test_r3_aaaa_ranked_below_ipv4_waits_for_a() -> None:
    # 6to4 (2002::/16, precedence 30) ranks below IPv4 (35) in RFC 6724: an
    # AAAA answer of only 6to4 must not start the race before A has had the
    # Resolution Delay to answer, or the broken-6to4 host costs 250 ms.
    net = FakeNet()
    six_to_four = "2002:a40:4c07:1::faf1"
    net.behave(A1, ok(1))
    sock = run(net, {V6: (0, [six_to_four]), V4: (10, [A1])})
    assert sock.address == A1
    assert net.starts() == [(10.0, A1)]


def test_r3_aaaa_ranked_below_ipv4_still_goes_after_resolution_delay() -> None:
    net = FakeNet()
    six_to_four = "2002:a40:4c07:1::faf1"
    net.behave(six_to_four, ok(1))
    sock = run(net, {V6: (0, [six_to_four]), V4: None})
    assert sock.address == six_to_four
    assert net.starts() == [(50.0, six_to_four)]


def test_r4_resolution_delay_waits_for_aaaa() -> None:
    net = FakeNet()
    net.behave(A1, ok(1))
    sock = run(net, {V6: (200, [S1]), V4: (10, [A1])})
    assert sock.address == A1
    assert net.starts() == [(60.0, A1)]  # A at 10 ms + 50 ms Resolution Delay


def test_r4_resolution_delay_is_configurable() -> None:
    net = FakeNet()
    net.behave(A1, ok(1))
    run(net, {V6: None, V4: (10, [A1])}, config=Config(policy="rfc6724", resolution_delay=0.2))
    assert net.starts() == [(210.0, A1)]


def test_r5_aaaa_within_resolution_delay_starts_ipv6_at_once() -> None:
    net = FakeNet()
    net.behave(S1, ok(1))
    sock = run(net, {V6: (30, [S1]), V4: (10, [A1])})
    assert sock.address == S1
    assert net.starts() == [(30.0, S1)]


def test_r6_negative_aaaa_ends_the_wait_early() -> None:
    net = FakeNet()
    net.behave(A1, ok(1))
    run(net, {V6: (10, nodata()), V4: (0, [A1])})
    assert net.starts() == [(10.0, A1)]


def test_r6_failed_a_with_working_aaaa_still_connects() -> None:
    net = FakeNet()
    net.behave(S1, ok(1))
    sock = run(net, {V6: (20, [S1]), V4: (0, socket.gaierror(socket.EAI_AGAIN, "again"))})
    assert sock.address == S1


def test_r7_late_aaaa_joins_the_race_sorted_first() -> None:
    net = FakeNet()
    for address in (A1, A2):
        net.behave(address, drop())
    net.behave(S1, ok(5))
    sock = run(net, {V6: (120, [S1, S2]), V4: (0, [A1, A2])})
    assert sock.address == S1
    # A1 at the end of the Resolution Delay; AAAA at 120 ms goes ahead of the
    # untried A2 (R24) and starts at once, since A1 is still pending.
    assert net.starts() == [(50.0, A1), (300.0, S1)]


def test_r7_all_ipv4_failed_still_waits_for_a_late_aaaa() -> None:
    net = FakeNet()
    net.behave(A1, refuse(5))
    net.behave(S1, ok(2))
    sock = run(net, {V6: (400, [S1]), V4: (0, [A1])}, timeout=5)
    assert sock.address == S1
    assert net.starts() == [(50.0, A1), (400.0, S1)]


def test_r7_late_aaaa_does_not_abort_running_attempt() -> None:
    net = FakeNet()
    net.behave(A1, ok(400))
    net.behave(S1, drop())
    sock = run(net, {V6: (120, [S1]), V4: (0, [A1])})
    assert sock.address == A1
    assert net.starts() == [(50.0, A1), (300.0, S1)]
    assert net.events("connected") == [(450.0, A1)]
    assert net.events("closed") == [(450.0, S1)]


def test_both_lookups_fail_raises_gaierror_of_the_a_lookup() -> None:
    net = FakeNet()
    a_error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    with pytest.raises(socket.gaierror) as caught:
        run(net, {V6: (1, socket.gaierror(socket.EAI_AGAIN, "x")), V4: (2, a_error)})
    assert caught.value is a_error
    assert net.starts() == []


def test_empty_answers_raise_like_the_stdlib() -> None:
    net = FakeNet()
    with pytest.raises(OSError, match="getaddrinfo returns an empty list"):
        run(net, {V6: (1, []), V4: (1, [])})


def test_family_restriction_queries_only_that_family() -> None:
    net = FakeNet()
    net.behave(A1, ok())
    sock = run(net, {V6: (0, [S1]), V4: (3, [A1])}, family=socket.AF_INET)
    assert sock.address == A1
    assert net.last_resolver.queries == [(0.0, V4)]  # type: ignore[attr-defined]
    assert net.starts() == [(3.0, A1)]


# -- ordering (R9, R13) -------------------------------------------------------


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


# -- attempts (R15-R19) -------------------------------------------------------


def test_r15_attempts_are_staggered_and_earlier_ones_keep_running() -> None:
    net = FakeNet()
    net.behave(S1, ok(600))  # slow, but it started first...
    net.behave(A1, ok(400))  # ...and A1 (started 250 ms later) is not faster
    sock = run(net, {V6: (0, [S1]), V4: (0, [A1])})
    assert net.starts() == [(0.0, S1), (250.0, A1)]
    assert sock.address == S1  # the 250 ms stagger did not abort S1
    assert net.events("closed") == [(600.0, A1)]


def test_r16_first_success_wins_and_every_loser_is_closed() -> None:
    net = FakeNet()
    net.behave(S1, drop())
    net.behave(A1, drop())
    net.behave(S2, ok(10))
    sock = run(net, {V6: (0, [S1, S2]), V4: (0, [A1])})
    assert sock.address == S2
    assert net.starts() == [(0.0, S1), (250.0, A1), (500.0, S2)]
    assert sorted(a for _, a in net.events("closed")) == sorted([S1, A1])
    assert net.open_sockets() == []


def test_r16_two_successes_in_one_poll_keep_the_better_ranked_one() -> None:
    net = FakeNet()
    net.behave(S1, ok(300))  # completes at 300
    net.behave(A1, ok(50))  # started at 250, also completes at 300
    sock = run(net, {V6: (0, [S1]), V4: (0, [A1])})
    assert sock.address == S1
    assert net.events("closed") == [(300.0, A1)]
    assert net.open_sockets() == []


def test_r16_untried_addresses_are_ignored_after_success() -> None:
    net = FakeNet()
    net.behave(S1, ok(1))
    run(net, {V6: (0, [S1, S2]), V4: (0, [A1, A2])})
    assert net.starts() == [(0.0, S1)]


def test_r18_default_connection_attempt_delay_is_250ms() -> None:
    net = FakeNet()
    net.behave(A1, ok(1))
    run(net, {V6: (0, [S1]), V4: (0, [A1])})
    assert net.starts() == [(0.0, S1), (250.0, A1)]


def test_r18_connection_attempt_delay_is_configurable() -> None:
    net = FakeNet()
    net.behave(A1, ok(1))
    run(
        net,
        {V6: (0, [S1]), V4: (0, [A1])},
        config=Config(policy="rfc6724", connection_attempt_delay=0.4),
    )
    assert net.starts() == [(0.0, S1), (400.0, A1)]


def test_r19_failure_starts_next_attempt_at_once() -> None:
    net = FakeNet()
    net.behave(S1, refuse(100))
    net.behave(A1, ok(1))
    run(net, {V6: (0, [S1]), V4: (0, [A1])})
    assert net.starts() == [(0.0, S1), (100.0, A1)]


def test_r19_never_two_starts_within_10ms_even_after_instant_refusal() -> None:
    net = FakeNet()
    addresses = [S1, S2, S3]
    for address in [*addresses, A1, A2]:
        net.behave(address, refuse(0))
    with pytest.raises(ConnectionRefusedError):
        run(net, {V6: (0, addresses), V4: (0, [A1, A2])})
    times = [t for t, _ in net.starts()]
    assert times == [0.0, 10.0, 20.0, 30.0, 40.0]


def test_failure_before_connect_does_not_consume_the_floor() -> None:
    # A socket that cannot even be prepared sent nothing, so the next address
    # is tried at once (e.g. a source_address of the other family).
    net = FakeNet()
    net.behave(S1, unbindable())
    net.behave(A1, ok(1))
    sock = run(net, {V6: (0, [S1]), V4: (0, [A1])})
    assert sock.address == A1
    assert net.starts() == [(0.0, A1)]


# -- outcomes ------------------------------------------------------------------


def test_last_error_is_raised() -> None:
    net = FakeNet()
    net.behave(S1, refuse(5, errno.EHOSTUNREACH))
    net.behave(A1, refuse(5, errno.ECONNREFUSED))
    with pytest.raises(ConnectionRefusedError):
        run(net, {V6: (0, [S1]), V4: (0, [A1])})


def test_timeout_bounds_the_whole_race() -> None:
    net = FakeNet()
    with pytest.raises(socket.timeout, match="timed out"):
        run(net, {V6: (0, [S1, S2]), V4: (0, [A1, A2])}, timeout=0.6)
    assert net.now_value == pytest.approx(0.6)
    assert net.starts() == [(0.0, S1), (250.0, A1), (500.0, S2)]
    assert net.open_sockets() == []


def test_no_attempt_starts_at_or_after_the_deadline() -> None:
    net = FakeNet()
    with pytest.raises(socket.timeout):
        run(net, {V6: (0, [S1]), V4: (0, [A1])}, timeout=0.25)  # A1 would be due at 250 ms
    assert net.starts() == [(0.0, S1)]


def test_timeout_while_dns_is_still_pending() -> None:
    net = FakeNet()
    with pytest.raises(socket.timeout):
        run(net, {V6: None, V4: None}, timeout=1.0)
    assert net.now_value == pytest.approx(1.0)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is 3.11+")
def test_all_errors_groups_every_attempt_error() -> None:
    net = FakeNet()
    net.behave(S1, refuse(5, errno.EHOSTUNREACH))
    net.behave(A1, refuse(5, errno.ECONNREFUSED))
    with pytest.raises(ExceptionGroup) as caught:  # noqa: F821
        run(net, {V6: (0, [S1]), V4: (0, [A1])}, all_errors=True)
    kinds = [type(e) for e in caught.value.exceptions]
    assert kinds == [OSError, ConnectionRefusedError]
    assert caught.value.exceptions[0].errno == errno.EHOSTUNREACH


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is 3.11+")
def test_all_errors_on_timeout_includes_pending_attempts() -> None:
    net = FakeNet()
    net.behave(S1, refuse(5))
    with pytest.raises(ExceptionGroup) as caught:  # noqa: F821
        run(net, {V6: (0, [S1]), V4: (0, [A1])}, all_errors=True, timeout=1)
    assert [type(e) for e in caught.value.exceptions] == [
        ConnectionRefusedError,
        socket.timeout,
    ]


def test_keyboard_interrupt_inside_the_race_closes_every_socket() -> None:
    net = FakeNet()
    net.interrupt_at = 0.3
    with pytest.raises(KeyboardInterrupt):
        run(net, {V6: (0, [S1, S2]), V4: (0, [A1])})
    assert len(net.sockets) == 2
    assert net.open_sockets() == []


# -- history (R10-R12, R18, R20, R21) -------------------------------------------


def make_history(net: FakeNet, **kw: Any) -> History:
    return History(clock=Clock(net), **kw)


def test_history_second_race_skips_the_broken_address() -> None:
    net = FakeNet()
    history = make_history(net)
    net.behave(S1, drop())
    net.behave(A1, ok(2))
    first = run(net, {V6: (0, [S1]), V4: (0, [A1])}, history=history)
    assert first.address == A1
    assert net.starts() == [(0.0, S1), (250.0, A1)]

    again = FakeNet(now_value=net.now_value)
    again.behave(S1, drop())
    again.behave(A1, ok(2))
    history._clock = Clock(again)  # same history, new network script
    second = run(again, {V6: (0, [S1]), V4: (0, [A1])}, history=history)
    assert second.address == A1
    start = round(net.now_value * 1000, 3)
    assert again.starts() == [(start, A1)]  # no delay at all this time


def test_history_known_broken_aaaa_waits_for_a_instead_of_connecting() -> None:
    # AAAA answers first, but its only address failed last time: R3's
    # "connect at once" would walk into it; wait for A instead.
    net = FakeNet()
    history = make_history(net)
    history.record_failure(S1)
    net.behave(A1, ok(1))
    sock = run(net, {V6: (0, [S1]), V4: (20, [A1])}, history=history)
    assert sock.address == A1
    assert net.starts() == [(20.0, A1)]


def test_history_known_broken_aaaa_still_tried_after_resolution_delay() -> None:
    net = FakeNet()
    history = make_history(net)
    history.record_failure(S1)
    net.behave(S1, ok(1))  # it works again
    sock = run(net, {V6: (0, [S1]), V4: None}, history=history)
    assert sock.address == S1
    assert net.starts() == [(50.0, S1)]


def test_history_failure_expires() -> None:
    net = FakeNet()
    history = make_history(net, failure_ttl=10.0)
    history.record_failure(S1)
    assert history.failed_recently(S1)
    net.now_value = 11.0
    assert not history.failed_recently(S1)
    net.behave(S1, ok(1))
    assert run(net, {V6: (0, [S1]), V4: (0, [A1])}, history=history).address == S1


def test_r10_lower_rtt_first_within_a_family() -> None:
    net = FakeNet()
    history = make_history(net)
    history.record_success(S1, 0.080)
    history.record_success(S2, 0.004)
    net.behave(S2, ok(4))
    sock = run(net, {V6: (0, [S1, S2]), V4: (0, [A1])}, history=history)
    assert sock.address == S2
    assert net.starts()[0] == (0.0, S2)


def test_r10_similar_rtts_keep_dns_order_for_load_spreading() -> None:
    net = FakeNet()
    history = make_history(net)
    history.record_success(A1, 0.0050)
    history.record_success(A2, 0.0045)  # same RTT class as A1
    net.behave(A1, ok(5))
    sock = run(net, {V4: (0, [A1, A2])}, history=history, family=socket.AF_INET)
    assert sock.address == A1


def test_r11_used_family_first_when_policy_ties() -> None:
    # With a policy that ranks IPv4 and IPv6 alike, the family that worked
    # before leads.
    from eyeshim import sorting

    table = sorting.PolicyTable.from_gai_conf(
        "precedence ::/0 40\nprecedence ::ffff:0:0/96 40\nlabel ::/0 1\nlabel ::ffff:0:0/96 1\n"
    )
    net = FakeNet()
    history = make_history(net)
    history.record_success(A1, 0.002)
    net.behave(A1, ok(1))
    sock = run(net, {V6: (0, [S1]), V4: (0, [A1])}, history=history, config=Config(policy=table))
    assert sock.address == A1
    assert net.starts()[0][1] == A1


def test_r12_network_change_flushes_history() -> None:
    net = FakeNet()
    history = make_history(net)
    history.record_failure(S1, source="2001:db8:aaaa::1")  # learnt on another network
    assert len(history) == 1
    net.behave(S1, ok(1))
    sock = run(net, {V6: (0, [S1]), V4: (0, [A1])}, history=history)
    assert sock.address == S1  # the stale failure did not demote S1
    assert history.get(S1) is not None and history.get(S1).failures == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("srtt", "expected"),
    [(None, 0.250), (0.0005, 0.100), (0.150, 0.150 + 4 * 0.075), (5.0, 2.0)],
    ids=["r18-no-data", "r20-min-100ms", "r18-rto-from-rtt", "r21-max-2s"],
)
def test_r18_r20_r21_attempt_delay_from_rtt(srtt: Optional[float], expected: float) -> None:
    net = FakeNet()
    history = make_history(net)
    if srtt is not None:
        history.record_success(S1, srtt)
    net.behave(S1, drop())
    net.behave(A1, ok(1))
    run(net, {V6: (0, [S1]), V4: (0, [A1])}, history=history, timeout=10)
    assert net.starts() == [(0.0, S1), (round(expected * 1000, 3), A1)]


def test_history_disabled_changes_nothing() -> None:
    net = FakeNet()
    net.behave(S1, drop())
    net.behave(A1, ok(1))
    run(net, {V6: (0, [S1]), V4: (0, [A1])}, history=None)
    again = FakeNet()
    again.behave(S1, drop())
    again.behave(A1, ok(1))
    run(again, {V6: (0, [S1]), V4: (0, [A1])}, history=None)
    assert again.starts() == [(0.0, S1), (250.0, A1)]
