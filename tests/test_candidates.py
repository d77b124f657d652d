"""Candidates (RFC 8305 §3): literals, the hosts file, per-family lookups,
the Resolution Delay, late answers, and which resolution error is raised.

Times are exact: the network and the clock are fake (``fakenet``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Dict, List, Optional

import pytest
from fakenet import (
    A1,
    A2,
    S1,
    S2,
    V4,
    V6,
    FakeNet,
    drop,
    fake_source,
    nodata,
    ok,
    refuse,
    run,
)

from eyeshim.candidates import HostsFile, numeric_addresses
from eyeshim.cli.demo import BrokenAndWorking
from eyeshim.config import Config
from eyeshim.connection import connect
from eyeshim.dns.resolvconf import parse
from eyeshim.resolving import Answer

# -- known addresses -----------------------------------------------------------


@pytest.mark.parametrize(
    "literal", ["127.0.0.1", "::1", "0x7f.1", "127.1", "fe80::1%lo", "::ffff:127.0.0.1"]
)
def test_numeric_addresses_accepts_every_literal_form(literal: str) -> None:
    assert numeric_addresses(literal, 80) is not None


def test_numeric_addresses() -> None:
    assert numeric_addresses("127.0.0.1", 80)[0][4] == ("127.0.0.1", 80)  # type: ignore[index]
    assert numeric_addresses("example.test", 80) is None
    with pytest.raises(socket.gaierror):
        numeric_addresses("127.0.0.1", "no-such-service-name")


def test_hosts_file_is_rechecked_at_most_once_per_recheck_interval(tmp_path: Any) -> None:
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 first.example\n")
    hosts = HostsFile(str(path), recheck=3600)
    assert "first.example" in hosts
    path.write_text("127.0.0.1 second.example\n")
    assert "second.example" not in hosts  # not looked at again yet
    hosts.recheck = 0
    assert "second.example" in hosts


def test_hosts_file_is_reread_when_it_changes(tmp_path: Any) -> None:
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 localhost Box.example  # comment\n# 10.0.0.1 hidden\n")
    hosts = HostsFile(str(path), recheck=0)
    assert "box.example" in hosts and "LOCALHOST" in hosts and b"localhost" in hosts
    assert "hidden" not in hosts
    path.write_text("10.0.0.2 other.example other.example\n")
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert "other.example" in hosts and "box.example" not in hosts
    assert "x" not in HostsFile(str(tmp_path / "missing"))


# -- resolution (R1-R7) --------------------------------------------------------


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
    # untried A2 (R24).  It starts at once rather than at 300 ms: at 120 ms the
    # stdlib's own lookup would have returned, and it would be trying S1 now.
    assert net.starts() == [(50.0, A1), (120.0, S1)]


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
    assert net.starts() == [(50.0, A1), (120.0, S1)]  # A1 keeps running (R22)
    assert net.events("connected") == [(450.0, A1)]
    assert net.events("closed") == [(450.0, S1)]


# -- resolution errors ---------------------------------------------------------


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


# -- one name for both families (resolv.conf search lists) --------------------------

SEARCH = parse("search lab.test example.org\n", environ={}, hostname="vm")


def search_run(net: FakeNet, answers: Dict[int, Any], host: str = "mix") -> Any:
    return connect(
        (host, 80),
        5,
        config=Config(policy="rfc6724"),
        resolver=net.resolver(answers),
        connector=net,
        history=None,
        find_source=fake_source,
        resolv_conf=SEARCH,
    )


def test_search_list_answers_for_different_names_use_the_first_candidate() -> None:
    # "mix" has only an A record as mix.lab.test and only an AAAA record as
    # mix.example.org.  Stock's one AF_UNSPEC lookup stops at mix.lab.test;
    # the per-family AAAA walk went on to another host, which must not win.
    net = FakeNet()
    net.behave(S1, ok(1))
    net.behave(A1, ok(5))
    sock = search_run(net, {V6: (0, [S1], "mix.example.org"), V4: (20, [A1], "mix.lab.test")})
    assert sock.address == A1
    assert net.starts() == [(20.0, A1)]  # the AAAA answer waited for A, then was dropped


def test_search_list_answer_from_the_first_candidate_goes_at_once() -> None:
    net = FakeNet()
    net.behave(S1, ok(1))
    sock = search_run(net, {V6: (0, [S1], "mix.lab.test"), V4: None})
    assert sock.address == S1
    assert net.starts() == [(0.0, S1)]  # no earlier name could answer for A


def test_search_list_same_name_for_both_families_races_both() -> None:
    net = FakeNet()
    net.behave(S1, drop())
    net.behave(A1, ok(1))
    sock = search_run(net, {V6: (0, [S1], "mix.example.org"), V4: (30, [A1], "mix.example.org")})
    assert sock.address == A1
    assert net.starts() == [(30.0, S1), (280.0, A1)]


def test_search_list_cname_targets_that_differ_ask_once_for_both_families() -> None:
    # Canonical names that are CNAME targets say nothing about which search
    # candidate answered: ask the way the stdlib does, once for both families.
    net = FakeNet()
    net.behave(A2, ok(1))
    answers = {
        V6: (0, [S1], "cdn-a.example.net"),
        V4: (0, [A1], "cdn-b.example.net"),
        socket.AF_UNSPEC: (5, [A2]),
    }
    sock = search_run(net, answers)
    assert sock.address == A2
    assert net.last_resolver is not None
    assert [f for _, f in net.last_resolver.queries] == [V6, V4, socket.AF_UNSPEC]


def test_names_with_enough_dots_are_tried_as_they_are_first() -> None:
    assert SEARCH.candidates("mix") == ["mix.lab.test", "mix.example.org", "mix"]
    assert SEARCH.candidates("www.example.com") == [
        "www.example.com",
        "www.example.com.lab.test",
        "www.example.com.example.org",
    ]
    assert SEARCH.candidates("absolute.") == ["absolute"]


# -- resolvers that work on the race's own thread ------------------------------------


class SocketResolver:
    """Answers when a byte arrives on a socket the race watches: the shape of
    a resolver that reads DNS replies from its own non-blocking sockets."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.read_end, self.write_end = socket.socketpair()
        self.read_end.setblocking(False)
        self.answered_in: Optional[threading.Thread] = None
        self.threads_at_answer: List[str] = []
        self.inbox: Any = None

    def attach(self, inbox: Any) -> None:
        self.inbox = inbox  # the race's Inbox, given before the first resolve()

    def resolve(self, host: Any, port: Any, family: int, deliver: Any) -> Any:
        inbox = self.inbox
        fd = self.read_end.fileno()

        def readable() -> None:
            self.read_end.recv(16)
            self.answered_in = threading.current_thread()
            self.threads_at_answer = [t.name for t in threading.enumerate()]
            inbox.unwatch(fd)
            infos = socket.getaddrinfo(self.address, port, family, socket.SOCK_STREAM)
            deliver(Answer(family, infos))

        inbox.watch(fd, readable)
        return lambda: None


def test_a_resolver_on_the_race_thread_is_served_by_the_race() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        resolver = SocketResolver("127.0.0.1")
        timer = threading.Timer(0.05, resolver.write_end.send, (b"x",))
        timer.start()
        address = ("watched.invalid", port)
        with connect(address, 5, family=socket.AF_INET, resolver=resolver) as sock:
            assert sock.getpeername() == ("127.0.0.1", port)
        timer.join()
        assert resolver.answered_in is threading.current_thread()
        assert not [name for name in resolver.threads_at_answer if name.startswith("eyeshim")]
        resolver.read_end.close()
        resolver.write_end.close()


def test_a_watched_socket_answer_joins_a_race_with_attempts_running() -> None:
    # The broken address is already being tried (its socket on the race's
    # selector) when the other family's answer arrives on a watched socket.
    with BrokenAndWorking() as lab:
        resolver = SocketResolver(lab.working_host)
        broken = socket.getaddrinfo(lab.broken_host, lab.port, lab.broken_family, 1)

        class Both:
            def attach(self, inbox: Any) -> None:
                resolver.attach(inbox)

            def resolve(self, host: Any, port: Any, family: int, deliver: Any) -> Any:
                if family == lab.broken_family:
                    deliver(Answer(family, broken))
                    return lambda: None
                return resolver.resolve(host, port, family, deliver)

        timer = threading.Timer(0.1, resolver.write_end.send, (b"x",))
        timer.start()
        started = time.monotonic()
        with connect(("watched.invalid", lab.port), 5, resolver=Both(), history=None) as sock:
            assert sock.getpeername()[0] == lab.working_host
        assert time.monotonic() - started < 2
        timer.join()
        assert resolver.answered_in is threading.current_thread()
        resolver.read_end.close()
        resolver.write_end.close()


def test_a_resolver_timer_runs_in_the_race() -> None:
    # Inbox.wake_at: a resolver on the race's thread is called back at its
    # deadline even while nothing is readable (a lost DNS reply).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]

        class Timed:
            inbox: Any = None
            fired_in: Optional[threading.Thread] = None

            def attach(self, inbox: Any) -> None:
                self.inbox = inbox

            def resolve(self, host: Any, port: Any, family: int, deliver: Any) -> Any:
                def due() -> None:
                    self.fired_in = threading.current_thread()
                    deliver(Answer(family, socket.getaddrinfo("127.0.0.1", port, family, 1)))

                self.inbox.wake_at(time.monotonic() + 0.05, due)
                return lambda: None

        resolver = Timed()
        started = time.monotonic()
        with connect(("timed.invalid", port), 5, family=socket.AF_INET, resolver=resolver):
            pass
        assert 0.04 < time.monotonic() - started < 2
        assert resolver.fired_in is threading.current_thread()
