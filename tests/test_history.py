"""History (RFC 8305 §4, R10-R12): the store on its own, then its effect on races."""

from __future__ import annotations

import socket
import threading
from typing import List, Optional

import pytest
from fakenet import (
    A1,
    A2,
    S1,
    S2,
    V4,
    V6,
    Clock,
    FakeNet,
    drop,
    make_history,
    ok,
    refuse,
    run,
)

from eyeshim.config import Config
from eyeshim.history import History, rtt_bucket

# -- the store -----------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_history_rtt_is_smoothed_like_rfc6298() -> None:
    history = History()
    history.record_success("2001:db8::1", 0.100)
    record = history.get("2001:db8::1")
    assert record is not None
    assert (record.srtt, record.rttvar) == (pytest.approx(0.100), pytest.approx(0.050))
    history.record_success("2001:db8::1", 0.200)
    record = history.get("2001:db8::1")
    assert record is not None
    assert record.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.2)
    assert record.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.1)


def test_history_success_clears_failures() -> None:
    history = History()
    history.record_failure("192.0.2.1")
    history.record_failure("192.0.2.1")
    assert history.get("192.0.2.1").failures == 2  # type: ignore[union-attr]
    history.record_success("192.0.2.1", 0.01)
    assert not history.failed_recently("192.0.2.1")


def test_history_is_a_bounded_lru() -> None:
    history = History(max_entries=3)
    for i in range(3):
        history.record_success(f"192.0.2.{i}", 0.01)
    history.record_failure("192.0.2.0")  # touch: now most recent
    history.record_success("192.0.2.9", 0.01)
    assert len(history) == 3
    assert history.get("192.0.2.1") is None  # least recently used, dropped
    assert history.get("192.0.2.0") is not None


def test_history_entries_expire() -> None:
    clock = FakeClock()
    history = History(failure_ttl=5, rtt_ttl=10, clock=clock)
    history.record_success("192.0.2.1", 0.01)
    history.record_failure("192.0.2.2")
    clock.now = 6
    assert not history.failed_recently("192.0.2.2")
    assert history.get("192.0.2.1").srtt is not None  # type: ignore[union-attr]
    clock.now = 11
    assert history.get("192.0.2.1").srtt is None  # type: ignore[union-attr]


def test_r12_history_flushes_when_a_source_changes() -> None:
    history = History()
    history.record_success("2001:db8::1", 0.01, source="2001:db8:1::5")
    assert not history.observe_sources({"2001:db8::1": "2001:db8:1::5"})
    assert not history.observe_sources({"2001:db8::1": None})  # unknown: keep
    assert history.observe_sources({"2001:db8::1": "2001:db8:2::5"})
    assert len(history) == 0


def test_history_is_thread_safe() -> None:
    history = History(max_entries=50)
    errors: List[BaseException] = []

    def hammer(n: int) -> None:
        try:
            for i in range(2000):
                address = f"192.0.2.{(i * 7 + n) % 100}"
                if i % 3:
                    history.record_success(address, 0.001 * (i % 10 + 1))
                else:
                    history.record_failure(address)
                history.attempt_delay(address, 0.25, 0.1, 2.0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(history) == 50


def test_rtt_buckets_double() -> None:
    assert rtt_bucket(0.0005) == 0
    assert rtt_bucket(0.003) == rtt_bucket(0.0035)
    assert rtt_bucket(0.003) < rtt_bucket(0.009)


# -- history in races (R10-R12, R18, R20, R21) ---------------------------------


def test_history_second_race_skips_the_broken_address() -> None:
    net = FakeNet()
    clock = Clock(net)
    history = History(clock=clock)
    net.behave(S1, drop())
    net.behave(A1, ok(2))
    first = run(net, {V6: (0, [S1]), V4: (0, [A1])}, history=history)
    assert first.address == A1
    assert net.starts() == [(0.0, S1), (250.0, A1)]

    clock.net = again = FakeNet(now_value=net.now_value)  # same history, new network script
    again.behave(S1, drop())
    again.behave(A1, ok(2))
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


# -- what a failure says (refused: one port; dead family: one name, then all) --------


def test_a_refusal_demotes_only_that_port() -> None:
    history = History()
    history.record_failure("::1", port=8080, refused=True)
    assert history.failed_recently("::1", 8080)
    assert not history.failed_recently("::1", 443)
    assert not history.failed_recently("::1")
    history.record_success("::1", 0.001, port=8080)
    assert not history.failed_recently("::1", 8080)


def test_refused_port_in_a_race_does_not_demote_the_address_for_another_port() -> None:
    net = FakeNet()
    history = make_history(net)
    net.behave(S1, refuse(1))
    net.behave(A1, ok(1))
    run(net, {V6: (0, [S1]), V4: (0, [A1])}, history=history)
    assert history.failed_recently(S1, 80) and not history.failed_recently(S1, 443)


def test_dead_family_for_a_name_costs_nothing_after_the_first_failure() -> None:
    # Eight dead IPv6 addresses: the first race loses one attempt delay; the
    # next ones go straight to IPv4 although seven IPv6 addresses were never
    # tried, because every IPv6 address that was tried failed.
    dead = [f"2001:db8::{n}" for n in range(1, 9)]
    net = FakeNet()
    clock = Clock(net)
    history = History(clock=clock)
    net.behave(A1, ok(3))
    run(net, {V6: (0, dead), V4: (0, [A1])}, history=history, timeout=5)
    assert net.starts() == [(0.0, dead[0]), (250.0, A1)]
    for _ in range(3):
        clock.net = again = FakeNet(now_value=net.now_value)
        again.behave(A1, ok(3))
        sock = run(again, {V6: (0, dead), V4: (0, [A1])}, history=history, timeout=5)
        assert sock.address == A1
        assert [a for _, a in again.starts()] == [A1]
        net = again


def test_dead_family_for_two_names_is_dead_for_every_name() -> None:
    history = History()
    history.record_dead_family("one.example", socket.AF_INET6)
    assert history.dead_family("one.example", socket.AF_INET6)
    assert not history.dead_family("other.example", socket.AF_INET6)
    history.record_dead_family("two.example", socket.AF_INET6)
    assert history.dead_family("other.example", socket.AF_INET6)
    assert not history.dead_family("other.example", socket.AF_INET)
    history.record_success("2001:db8::9", 0.01, family=socket.AF_INET6)  # IPv6 works again
    assert not history.dead_family("one.example", socket.AF_INET6)
    assert not history.dead_family("other.example", socket.AF_INET6)


def test_refusals_do_not_make_a_family_dead() -> None:
    net = FakeNet()
    history = make_history(net)
    net.behave(S1, refuse(1))
    net.behave(A1, ok(1))
    run(net, {V6: (0, [S1]), V4: (0, [A1])}, history=history)
    assert not history.dead_family("example.test", socket.AF_INET6)


# -- "TCP works, TLS does not" (races through TLS) -------------------------------------


def test_a_tls_failure_demotes_that_port_until_it_expires_or_succeeds() -> None:
    now = [0.0]
    history = History(failure_ttl=10.0, clock=lambda: now[0])
    history.record_tls_failure("2001:db8::1", port=443)
    assert history.tls_failed_recently("2001:db8::1", 443)
    assert history.failed_recently("2001:db8::1", 443)
    assert not history.failed_recently("2001:db8::1", 80)
    assert not history.failed_recently("2001:db8::1")  # TCP to it works: no path failure
    now[0] = 11.0
    assert not history.tls_failed_recently("2001:db8::1", 443)
    history.record_tls_failure("2001:db8::1", port=443)
    history.record_success("2001:db8::1", 0.001, port=443)
    assert not history.tls_failed_recently("2001:db8::1", 443)
    history.record_tls_failure("2001:db8::1", port=443)
    history.clear()
    assert not history.tls_failed_recently("2001:db8::1", 443)


def test_the_rtt_learnt_through_tls_is_the_tcp_connects() -> None:
    from fakenet import nodata, spec, tls_ok

    net = FakeNet()
    history = make_history(net)
    net.behave(S1, ok(20, tls_ok(200)))
    run(net, {V6: (0, [S1]), V4: (0, nodata())}, history=history, tls=spec(), timeout=5)
    record = history.get(S1)
    assert record is not None and record.srtt == pytest.approx(0.020)
