"""Race events and counters, on the fake network (exact times)."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from typing import Any, List

import pytest
from fakenet import V4, V6, FakeNet, drop, fake_source, nodata, ok, refuse

import eyeshim
from eyeshim import events
from eyeshim.config import Config
from eyeshim.connection import connect
from eyeshim.history import History

A1, S1, S2 = "192.0.2.1", "2001:db8::1", "2001:db8::2"


def race(net: FakeNet, answers: Any, **kw: Any) -> Any:
    return connect(
        ("example.test", 80),
        kw.pop("timeout", 5),
        config=Config(policy="rfc6724"),
        resolver=net.resolver(answers),
        connector=net,
        find_source=fake_source,
        history=kw.pop("history", None),
        **kw,
    )


def kinds(recorded: List[events.RaceEvent]) -> List[str]:
    return [event.kind for event in recorded]


def test_events_tell_the_story_of_a_fallback_in_order() -> None:
    net = FakeNet()
    net.behave(S1, drop())
    net.behave(A1, ok(3))
    history = History(clock=lambda: net.now_value)
    with events.recording() as recorded:
        race(net, {V6: (2, [S1]), V4: (10, [A1])}, history=history)
    assert kinds(recorded) == [
        "race",
        "query",
        "query",
        "answer",  # AAAA at 2 ms
        "sorted",
        "gate",
        "attempt",  # S1 at 2 ms
        "answer",  # A at 10 ms
        "sorted",
        "attempt",  # A1 at 252 ms
        "connected",
        "recorded",
        "recorded",
        "closed",
        "done",
    ]
    by_kind = {}
    for event in recorded:
        by_kind.setdefault(event.kind, []).append(event)
    assert [e.data["family"] for e in by_kind["query"]] == ["ipv6", "ipv4"]
    assert by_kind["answer"][0].data == {"family": "ipv6", "addresses": [S1]}
    assert by_kind["answer"][0].time == pytest.approx(0.002)
    assert by_kind["gate"][0].data == {"reason": "aaaa"}
    assert [(e.data["address"], round(e.time, 3)) for e in by_kind["attempt"]] == [
        (S1, 0.002),
        (A1, 0.252),
    ]
    assert by_kind["attempt"][0].data["next_in"] == pytest.approx(0.25)
    assert by_kind["connected"][0].data["address"] == A1
    assert by_kind["connected"][0].data["rtt"] == pytest.approx(0.003)
    assert [e.data["outcome"] for e in by_kind["recorded"]] == ["success", "lost"]
    assert by_kind["closed"][0].data == {"addresses": [S1]}
    assert by_kind["done"][0].data["outcome"] == "connected"
    assert len({event.race for event in recorded}) == 1
    assert all(event.host == "example.test" for event in recorded)
    times = [event.time for event in recorded]
    assert times == sorted(times)


def test_events_of_failures_and_resolution_delay() -> None:
    net = FakeNet()
    net.behave(A1, refuse(4))
    with events.recording() as recorded, pytest.raises(ConnectionRefusedError):
        race(net, {V6: (100, nodata()), V4: (0, [A1])})
    gate = [e for e in recorded if e.kind == "gate"]
    assert gate[0].data == {"reason": "resolution delay"}
    assert gate[0].time == pytest.approx(0.05)
    failed = [e for e in recorded if e.kind == "failed"]
    assert failed[0].data["errno"] == errno.ECONNREFUSED
    assert failed[0].data["elapsed"] == pytest.approx(0.004)
    done = recorded[-1]
    assert done.kind == "done" and done.data["outcome"] == "failed"
    assert done.time == pytest.approx(0.1)  # the failure waited for the AAAA answer
    assert "ConnectionRefusedError" in done.data["error"]


def test_dns_error_events() -> None:
    net = FakeNet()
    with events.recording() as recorded, pytest.raises(socket.gaierror):
        race(net, {V6: (1, nodata()), V4: (2, nodata())})
    answers = [e for e in recorded if e.kind == "answer"]
    assert [e.data["family"] for e in answers] == ["ipv6", "ipv4"]
    assert all("error" in e.data for e in answers)
    assert recorded[-1].data["outcome"] == "resolve failed"


def test_no_listener_means_no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    created: List[Any] = []
    real = events.RaceEvent.__init__

    def spy(self: Any, *args: Any, **kw: Any) -> None:
        created.append(args)
        real(self, *args, **kw)

    monkeypatch.setattr(events.RaceEvent, "__init__", spy)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)  # a root logger at DEBUG is not asking for events
    try:
        net = FakeNet()
        net.behave(S1, ok())
        race(net, {V6: (0, [S1]), V4: (0, [A1])})
        assert created == []
        assert events.Trace.start("h", lambda: 0.0, 0.0) is None
    finally:
        root.setLevel(level)


def test_eyeshim_logger_at_debug_traces_one_line_per_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    net = FakeNet()
    net.behave(S1, ok())
    with caplog.at_level(logging.DEBUG, logger="eyeshim"), events.recording() as recorded:
        race(net, {V6: (0, [S1]), V4: (0, [A1])})
    lines = [r.getMessage() for r in caplog.records if r.name == "eyeshim"]
    assert len(lines) == len(recorded)
    assert any("attempt" in line and S1 in line for line in lines)


def test_root_logger_at_debug_gets_one_summary_only_when_happy_eyeballs_acted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):  # the root logger, as many programs have it
        net = FakeNet()
        net.behave(S1, ok())
        race(net, {V6: (0, [S1]), V4: (0, [A1])})
        assert [r for r in caplog.records if r.name == "eyeshim"] == []  # the happy path
        net = FakeNet()
        net.behave(S1, drop())
        net.behave(A1, ok(3))
        race(net, {V6: (0, [S1]), V4: (0, [A1])}, timeout=5)
    summaries = [r.getMessage() for r in caplog.records if r.name == "eyeshim"]
    assert len(summaries) == 1
    assert A1 in summaries[0] and S1 in summaries[0] and "lost" in summaries[0]


def test_a_broken_subscriber_does_not_break_connect(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(event: events.RaceEvent) -> None:
        raise RuntimeError("observer bug")

    unsubscribe = events.subscribe(broken)
    try:
        net = FakeNet()
        net.behave(S1, ok())
        assert race(net, {V6: (0, [S1]), V4: (0, [A1])}).address == S1
    finally:
        unsubscribe()
    assert capsys.readouterr().err.count("observer bug") == 1  # said once, not per event
    with pytest.raises(TypeError):
        events.subscribe("not callable")  # type: ignore[arg-type]


def test_every_kind_is_documented_in_the_schema() -> None:
    assert events.__doc__ is not None
    for kind, cls in events.KINDS.items():
        assert f":class:`{cls.__name__}`" in events.__doc__
        assert f"``{kind}``" in events.__doc__


def test_event_json_form() -> None:
    net = FakeNet()
    net.behave(S1, ok())
    with events.recording() as recorded:
        race(net, {V6: (0, [S1]), V4: (0, [A1])})
    import json

    decoded = [json.loads(json.dumps(e.as_dict())) for e in recorded]
    assert decoded[0]["kind"] == "race" and decoded[0]["port"] == 80
    assert all("time" in d and "race" in d for d in decoded)


def test_counters_count_races_wins_fallbacks_and_time_saved() -> None:
    events.reset_counters()
    net = FakeNet()
    net.behave(S1, drop())
    net.behave(A1, ok(3))
    race(net, {V6: (0, [S1]), V4: (0, [A1])}, timeout=5)  # fallback to IPv4
    net2 = FakeNet()
    net2.behave(S1, ok(1))
    race(net2, {V6: (0, [S1]), V4: (0, [A1])})  # IPv6 at once
    net3 = FakeNet()
    with pytest.raises(socket.timeout):
        race(net3, {V6: (0, [S2]), V4: (0, nodata())}, timeout=0.5)
    counted = events.counters()
    assert counted["races"] == 3
    assert counted["wins_ipv4"] == 1 and counted["wins_ipv6"] == 1
    assert counted["fallbacks"] == 1
    assert counted["timeouts"] == 1
    assert counted["attempts"] == 4
    # Stock would have waited the 5 s timeout on S1, then 3 ms on A1;
    # eyeshim took 253 ms: about 4.75 s saved.
    assert counted["time_saved"] == pytest.approx(5.003 - 0.253, abs=1e-6)
    events.reset_counters()
    assert events.counters()["races"] == 0


# -- logging that connects (SocketHandler, HTTPHandler) --------------------------------


def test_handlers_that_connect_work_with_the_root_logger_at_debug() -> None:
    # A handler that opens a connection comes back into eyeshim from inside
    # emit(); whatever eyeshim logs there would re-enter the handler.  Both
    # servers listen on 127.0.0.1 only, and their name resolves to ::1 first:
    # every connection has a refused first attempt, so Happy Eyeballs has
    # something to say (one summary record) each time.
    import http.server
    import logging.handlers

    name = "two-families.eyeshim.invalid"
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any) -> Any:
        if host != name:
            return real(host, port, family, *args)
        if args[2:3] and args[2] & socket.AI_NUMERICHOST:
            raise socket.gaierror(socket.EAI_NONAME, "not a literal")
        found = []
        for literal in ("::1", "127.0.0.1"):
            try:
                found += real(literal, port, family, socket.SOCK_STREAM)
            except socket.gaierror:
                pass
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "no address of that family")
        return found

    received: List[bytes] = []

    class Collect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.path.encode())
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    web = http.server.HTTPServer(("127.0.0.1", 0), Collect)
    raw = socket.socket()
    raw.bind(("127.0.0.1", 0))
    raw.listen(8)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    root = logging.getLogger()
    level = root.level
    handlers = [
        logging.handlers.HTTPHandler(f"{name}:{web.server_address[1]}", "/log", "GET"),
        logging.handlers.SocketHandler(name, raw.getsockname()[1]),
    ]
    socket.getaddrinfo = getaddrinfo
    try:
        root.setLevel(logging.DEBUG)
        for handler in handlers:
            root.addHandler(handler)
        started = time.monotonic()
        with eyeshim.installed():
            for n in range(3):
                logging.getLogger("app").warning("record %d", n)
        assert time.monotonic() - started < 10
        assert len([path for path in received if b"record" in path]) == 3
    finally:
        socket.getaddrinfo = real
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
        web.shutdown()
        web.server_close()
        raw.close()


def test_an_interrupt_from_a_subscriber_after_the_win_closes_the_winner() -> None:
    net = FakeNet()
    net.behave(S1, ok())

    def interrupt_at_the_end(event: events.RaceEvent) -> None:
        if isinstance(event, events.Done):
            raise KeyboardInterrupt

    unsubscribe = events.subscribe(interrupt_at_the_end)
    try:
        with pytest.raises(KeyboardInterrupt):
            race(net, {V6: (0, [S1]), V4: (0, [A1])})
    finally:
        unsubscribe()
    assert net.open_sockets() == []
    assert [s.closed for s in net.sockets] == [True]
