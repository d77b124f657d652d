"""Racing through the TLS handshake (eyeshim/tls.py).

Exact pacing on the fake network (fake clock); real handshakes on loopback
with trustme certificates: a server on ::1 and 127.0.0.1 (same port) whose
behaviour is chosen per family.
"""

from __future__ import annotations

import errno
import socket
import ssl
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest
from fakenet import (
    A1,
    S1,
    S2,
    V4,
    V6,
    FakeNet,
    drop,
    make_history,
    ok,
    refuse,
    run,
    spec,
    tls_fail,
    tls_ok,
    tls_stall,
)
from tlsservers import DualServer, StaticResolver, has_ipv6_loopback, needs_v6

from eyeshim import events
from eyeshim.config import Config
from eyeshim.connection import connect
from eyeshim.tls import Later, TlsSpec, handshake_delay, usable_context

trustme = pytest.importorskip("trustme")

CONFIG = Config(policy="rfc6724")


# -- pacing and outcomes, on the fake network ----------------------------------------


def test_a_stalled_handshake_starts_the_next_attempt_after_the_handshake_time() -> None:
    net = FakeNet()
    net.behave(S1, ok(1, tls_stall()))
    net.behave(A1, ok(1, tls_ok(2)))
    sock = run(net, {V6: (0, [S1]), V4: (0, [A1])}, timeout=5, tls=spec())
    assert sock.address == A1
    # TCP to S1 took 1 ms: its handshake should need well under the 100 ms
    # floor, so IPv4 starts at 1 + 100 ms (not at the 250 ms attempt delay),
    # and wins after its own TCP (1 ms) and handshake (2 ms).
    assert net.starts() == [(0.0, S1), (101.0, A1)]
    assert net.now_value == pytest.approx(0.104)
    assert net.open_sockets() == []  # the stalled handshake was closed


def test_the_handshake_time_follows_the_tcp_rtt() -> None:
    net = FakeNet()
    net.behave(S1, ok(50, tls_stall()))
    net.behave(A1, ok(1))
    run(net, {V6: (0, [S1]), V4: (0, [A1])}, timeout=5, tls=spec())
    # TCP 50 ms -> two round trips with RFC 6298's first-sample margin: 300 ms
    # after TCP completed (the 250 ms attempt delay was replaced, not kept).
    assert net.starts() == [(0.0, S1), (350.0, A1)]
    assert handshake_delay(0.05, 0.1, 2.0) == pytest.approx(0.3)
    assert handshake_delay(10.0, 0.1, 2.0) == 2.0


def test_a_handshake_in_progress_is_never_aborted_by_the_next_attempt() -> None:
    net = FakeNet()
    net.behave(S1, ok(1, tls_ok(300)))  # slow TLS, but it works
    net.behave(A1, drop())
    sock = run(net, {V6: (0, [S1]), V4: (0, [A1])}, timeout=5, tls=spec())
    assert sock.address == S1
    assert net.starts() == [(0.0, S1), (101.0, A1)]
    assert net.now_value == pytest.approx(0.301)
    assert ("closed", S1) not in [(e.what, e.address) for e in net.log]


def test_the_timeout_bounds_the_handshake_from_tcp_completion() -> None:
    net = FakeNet()
    net.behave(S1, ok(400, tls_stall()))
    with pytest.raises(socket.timeout, match="handshake"):
        run(net, {V6: (0, [S1]), V4: (0, socket.gaierror(-5, "x"))}, timeout=1, tls=spec())
    assert net.now_value == pytest.approx(1.4)  # 400 ms TCP + 1 s of handshake


def test_certificate_errors_everywhere_raise_the_preferred_address_error() -> None:
    net = FakeNet()
    net.behave(S1, ok(1, tls_fail(1)))
    net.behave(A1, ok(1, tls_fail(1)))
    with pytest.raises(ssl.SSLCertVerificationError):
        run(net, {V6: (0, [S1]), V4: (0, [A1])}, timeout=5, tls=spec())
    # The stdlib raises the first address's handshake error after 2 ms; so
    # does the race, without starting or waiting for anything else.
    assert net.now_value == pytest.approx(0.002)
    assert net.starts() == [(0.0, S1)]


def test_the_error_is_that_of_the_first_address_whose_tcp_worked() -> None:
    net = FakeNet()
    net.behave(S1, refuse(1))
    net.behave(S2, ok(1, tls_stall()))
    net.behave(A1, ok(1, tls_stall()))
    with pytest.raises(socket.timeout, match="handshake"):
        run(net, {V6: (0, [S1, S2]), V4: (0, [A1])}, timeout=0.5, tls=spec())
    # Stock: S1 refused at 1 ms, S2 connects at 2 ms, its handshake times
    # out at 502 ms.  The race tried A1 at 1 ms (interleaving) and S2, which
    # the stdlib's walk reached then, 10 ms later (RFC 8305's floor between
    # two starts): S2's handshake times out at 512 ms, and the race ends
    # there with that error, not A1's.
    assert net.starts() == [(0.0, S1), (1.0, A1), (11.0, S2)]
    assert net.now_value == pytest.approx(0.512)


def test_a_refusal_is_still_a_connect_error_with_tls() -> None:
    net = FakeNet()
    net.behave(S1, refuse(1))
    net.behave(A1, refuse(2))
    with pytest.raises(ConnectionRefusedError):
        run(net, {V6: (0, [S1]), V4: (0, [A1])}, timeout=5, tls=spec())


def test_history_remembers_tcp_works_tls_does_not() -> None:
    net = FakeNet()
    history = make_history(net)
    net.behave(S1, ok(1, tls_stall()))
    net.behave(A1, ok(1))
    with events.recording() as recorded:
        run(net, {V6: (0, [S1]), V4: (0, [A1])}, timeout=5, tls=spec(), history=history)
    assert history.tls_failed_recently(S1, 80)
    assert not history.tls_failed_recently(S1, 443)
    assert history.failed_recently(S1, 80)
    assert ("recorded", S1, "tls failure") in [
        (e.kind, getattr(e, "address", None), getattr(e, "outcome", None)) for e in recorded
    ]
    tls = [e for e in recorded if isinstance(e, events.TlsStarted)]
    assert [(e.address, round(e.tcp, 3), round(e.next_in, 3)) for e in tls] == [
        (S1, 0.001, 0.1),
        (A1, 0.001, 0.1),
    ]
    # The next race goes to IPv4 first, at once.
    net2 = FakeNet()
    net2.behave(S1, ok(1, tls_stall()))
    net2.behave(A1, ok(1))
    net2.now_value = net.now_value
    history._clock = lambda: net2.now_value  # type: ignore[method-assign]
    sock = run(net2, {V6: (0, [S1]), V4: (0, [A1])}, timeout=5, tls=spec(), history=history)
    assert sock.address == A1
    assert net2.starts()[0][1] == A1


def test_a_tls_failure_is_an_event() -> None:
    net = FakeNet()
    net.behave(S1, ok(1, tls_fail(1)))
    net.behave(A1, ok(1))
    with events.recording() as recorded, pytest.raises(ssl.SSLError):
        run(net, {V6: (0, [S1]), V4: (0, [A1])}, timeout=5, tls=spec())
    failed = [e for e in recorded if isinstance(e, events.AttemptFailed)]
    assert [(e.address, e.tls) for e in failed] == [(S1, True)]
    assert "tls=True" in failed[0].describe()


def test_without_tls_the_race_is_unchanged() -> None:
    net = FakeNet()
    net.behave(S1, ok(1, tls_stall()))  # ignored: no handshake
    sock = run(net, {V6: (0, [S1]), V4: (0, [A1])}, timeout=5)
    assert sock.address == S1 and net.now_value == pytest.approx(0.001)


# -- real handshakes on loopback ------------------------------------------------------


@pytest.fixture
def ca() -> Any:
    return trustme.CA()


@pytest.fixture
def client_context(ca: Any) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def serve(ca: Any) -> Iterator[Callable[..., DualServer]]:
    servers: List[DualServer] = []

    def start(six: str = "ok", four: str = "ok", **kw: Any) -> DualServer:
        server = DualServer(ca, {socket.AF_INET6: six, socket.AF_INET: four}, **kw)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def dial(server: DualServer, context: ssl.SSLContext, timeout: Any = 5, **kw: Any) -> Any:
    return connect(
        ("dual.test", server.port),
        timeout,
        config=kw.pop("config", CONFIG),
        resolver=StaticResolver(["::1", "127.0.0.1"]),
        history=kw.pop("history", None),
        tls=kw.pop("tls", TlsSpec(context, "dual.test")),
        **kw,
    )


def _echo(sock: ssl.SSLSocket) -> bytes:
    sock.sendall(b"hi")
    return sock.recv(100)


@needs_v6
def test_the_winner_is_the_sslsocket_the_caller_would_have_made(
    serve: Any, client_context: ssl.SSLContext
) -> None:
    server = serve()
    with dial(server, client_context, timeout=3) as sock:
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.getpeername()[0] == "::1"
        assert sock.gettimeout() == 3 and sock.getblocking()
        assert sock.server_hostname == "dual.test"
        assert sock.getpeercert()["subjectAltName"][0] == ("DNS", "dual.test")
        assert _echo(sock) == b"echo:hi"


@needs_v6
def test_silent_ipv6_handshake_falls_back_to_ipv4(
    serve: Any, client_context: ssl.SSLContext
) -> None:
    server = serve(six="silent")
    begin = time.monotonic()
    with dial(server, client_context, timeout=5) as sock:
        took = time.monotonic() - begin
        assert sock.getpeername()[0] == "127.0.0.1"
        assert _echo(sock) == b"echo:hi"
    # After the handshake delay's floor (100 ms), far from the 5 s timeout.
    assert 0.09 < took < 2.0
    # And stock? TCP to ::1 works, the handshake waits out the timeout.
    raw = socket.create_connection(("::1", server.port), 0.5)
    with pytest.raises(socket.timeout):
        client_context.wrap_socket(raw, server_hostname="dual.test")
    raw.close()


@needs_v6
def test_slow_ipv6_handshake_is_not_aborted_when_ipv4_cannot_help(
    serve: Any, client_context: ssl.SSLContext
) -> None:
    server = serve(six="slow", four="silent", slow_s=0.4)
    with dial(server, client_context, timeout=5) as sock:
        assert sock.getpeername()[0] == "::1"
        assert _echo(sock) == b"echo:hi"
    assert server.accepted[socket.AF_INET] == 1  # IPv4 was tried meanwhile


@needs_v6
def test_bad_certificate_on_both_families_is_stocks_error(
    serve: Any, client_context: ssl.SSLContext
) -> None:
    server = serve(six="badcert", four="badcert")
    with pytest.raises(ssl.SSLCertVerificationError) as raised:
        dial(server, client_context, timeout=5)
    stock_raw = socket.create_connection(("::1", server.port), 5)
    with pytest.raises(ssl.SSLCertVerificationError) as stock:
        client_context.wrap_socket(stock_raw, server_hostname="dual.test")
    stock_raw.close()
    assert type(raised.value) is type(stock.value)
    assert raised.value.verify_code == stock.value.verify_code
    assert raised.value.reason == stock.value.reason


@needs_v6
def test_hostname_mismatch_is_the_stdlibs_error(serve: Any, ca: Any) -> None:
    server = serve()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        dial(server, context, tls=TlsSpec(context, "other.test"))


@needs_v6
def test_silent_everywhere_times_out_like_the_stdlib(
    serve: Any, client_context: ssl.SSLContext
) -> None:
    server = serve(six="silent", four="silent")
    begin = time.monotonic()
    with pytest.raises(socket.timeout, match="handshake"):
        dial(server, client_context, timeout=0.5)
    # The stdlib: TCP to ::1 at once, then 0.5 s of handshake.
    assert 0.45 < time.monotonic() - begin < 2.0


@needs_v6
def test_later_hands_over_tcp_then_finishes_with_the_callers_context(
    serve: Any, client_context: ssl.SSLContext
) -> None:
    server = serve(six="silent")
    later = Later()
    sock = dial(server, client_context, tls=later)
    assert type(sock) is socket.socket and later.waiting and later.sock is sock
    assert sock.getpeername()[0] == "::1" and sock.gettimeout() == 5
    tls = later.finish(TlsSpec(client_context, "dual.test"))
    assert not later.waiting
    assert tls.getpeername()[0] == "127.0.0.1" and tls.gettimeout() == 5
    assert sock.fileno() == -1  # the IPv6 socket lost and was closed
    assert _echo(tls) == b"echo:hi"
    tls.close()


@needs_v6
def test_later_abandoned_keeps_the_tcp_socket(serve: Any, client_context: ssl.SSLContext) -> None:
    server = serve()
    later = Later()
    sock = dial(server, client_context, tls=later)
    later.abandon()
    assert not later.waiting and sock.fileno() != -1
    with client_context.wrap_socket(sock, server_hostname="dual.test") as tls:
        assert _echo(tls) == b"echo:hi"


def test_a_single_literal_is_wrapped_as_the_caller_would(
    ca: Any, client_context: ssl.SSLContext
) -> None:
    leaf = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer() -> None:
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"x")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    with connect(("127.0.0.1", port), 5, tls=TlsSpec(client_context, "127.0.0.1")) as sock:
        assert isinstance(sock, ssl.SSLSocket) and sock.recv(1) == b"x"
    thread.join(5)
    listener.close()


def test_usable_context() -> None:
    class Wrapping(ssl.SSLContext):
        def wrap_socket(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            return super().wrap_socket(*args, **kwargs)

    class Plain(ssl.SSLContext):
        pass

    assert usable_context(ssl.create_default_context())
    assert usable_context(Plain(ssl.PROTOCOL_TLS_CLIENT))
    assert not usable_context(Wrapping(ssl.PROTOCOL_TLS_CLIENT))
    assert not usable_context(object())


def test_no_socket_is_left_open(serve: Any, client_context: ssl.SSLContext) -> None:
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1)")
    import os

    server = serve(six="silent", four="badcert")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        # Stock's error: ::1's handshake (TCP worked there first) times out.
        with pytest.raises(socket.timeout):
            dial(server, client_context, timeout=0.3)
    time.sleep(0.1)  # the server's threads close their side
    # The server keeps its side of the silent connections open; the client none.
    assert len(os.listdir("/proc/self/fd")) <= before + len(server.held)


def test_refused_everywhere_is_a_connect_error(client_context: ssl.SSLContext) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(OSError) as raised:
        connect(
            ("dual.test", port),
            2,
            config=CONFIG,
            resolver=StaticResolver(["127.0.0.1", "127.0.0.2"]),
            history=None,
            tls=TlsSpec(client_context, "dual.test"),
        )
    assert raised.value.errno == errno.ECONNREFUSED


@needs_v6
def test_an_abandoned_race_teaches_no_tls_failure(
    serve: Any, client_context: ssl.SSLContext
) -> None:
    from eyeshim.history import History

    server = serve()
    history = History()
    later = Later()
    sock = dial(server, client_context, tls=later, history=history)
    later.abandon()
    sock.close()
    assert not history.tls_failed_recently("::1", server.port)
    assert not history.tls_failed_recently("127.0.0.1", server.port)
    record = history.get((sock.family == socket.AF_INET6 and "::1") or "127.0.0.1")
    assert record is not None and record.last_success is not None
