"""Config, History and the resolver pool, each on its own."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import Any, List

import pytest

from eyeshim.config import Config, parse_duration
from eyeshim.history import History, rtt_bucket
from eyeshim.resolving import Answer, HostsFile, ResolverPool, ThreadedResolver, numeric_addresses

# -- Config --------------------------------------------------------------------


def test_r29_defaults_are_the_rfc_recommendations() -> None:
    config = Config()
    assert config.resolution_delay == 0.050
    assert config.connection_attempt_delay == 0.250
    assert config.min_connection_attempt_delay == 0.100
    assert config.max_connection_attempt_delay == 2.0
    assert config.first_address_family_count == 1


def test_config_is_immutable_and_replace_validates() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.resolution_delay = 1  # type: ignore[misc]
    assert config.replace(resolution_delay=0.1).resolution_delay == 0.1
    with pytest.raises(ValueError, match="resolution_delay"):
        config.replace(resolution_delay=-1)


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"resolution_delay": "fast"}, TypeError, "resolution_delay must be a number"),
        ({"resolution_delay": float("nan")}, ValueError, "finite"),
        ({"first_address_family_count": 0}, ValueError, ">= 1"),
        ({"history": "yes"}, TypeError, "history must be a bool"),
        ({"min_connection_attempt_delay": 0.001}, ValueError, "10 ms"),
        ({"max_connection_attempt_delay": 0.05}, ValueError, "max_connection_attempt_delay"),
        ({"connection_attempt_delay": 3.0}, ValueError, "must lie between"),
        ({"policy": 42}, TypeError, "policy must be"),
        ({"resolver_threads": 0}, ValueError, "resolver_threads"),
    ],
)
def test_config_rejects_bad_values(changes: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Config(**changes)


def test_config_from_env() -> None:
    config = Config.from_env(
        {
            "EYESHIM_CONNECTION_ATTEMPT_DELAY": "300ms",
            "EYESHIM_RESOLUTION_DELAY": "0.02",
            "EYESHIM_HISTORY": "off",
            "EYESHIM_FIRST_ADDRESS_FAMILY_COUNT": "2",
            "EYESHIM_POLICY": "rfc6724",
            "UNRELATED": "x",
        }
    )
    assert config.connection_attempt_delay == pytest.approx(0.3)
    assert config.resolution_delay == pytest.approx(0.02)
    assert config.history is False
    assert config.first_address_family_count == 2
    assert config.policy == "rfc6724"


def test_config_from_env_names_the_bad_variable() -> None:
    with pytest.raises(ValueError, match=r"EYESHIM_RESOLUTION_DELAY='soon'.*250ms"):
        Config.from_env({"EYESHIM_RESOLUTION_DELAY": "soon"})
    with pytest.raises(ValueError, match="EYESHIM_HISTORY"):
        Config.from_env({"EYESHIM_HISTORY": "maybe"})
    with pytest.raises(ValueError, match="EYESHIM_MIN_CONNECTION_ATTEMPT_DELAY"):
        Config.from_env({"EYESHIM_MIN_CONNECTION_ATTEMPT_DELAY": "5ms"})


def test_keyword_overrides_beat_environment() -> None:
    config = Config.from_env({"EYESHIM_RESOLUTION_DELAY": "20ms"}, resolution_delay=0.07)
    assert config.resolution_delay == pytest.approx(0.07)


@pytest.mark.parametrize(
    ("text", "seconds"), [("250ms", 0.25), ("0.25s", 0.25), ("2", 2.0), (" 10MS ", 0.01)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


# -- History ---------------------------------------------------------------------


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


# -- resolver pool -------------------------------------------------------------


def test_pool_is_bounded_and_threads_exit_when_idle() -> None:
    pool = ResolverPool()
    release = threading.Event()
    running = []
    lock = threading.Lock()

    def job() -> None:
        with lock:
            running.append(threading.current_thread().name)
        release.wait(5)

    for _ in range(6):
        pool.submit(job, max_threads=2, idle_timeout=0.05)
    deadline = time.monotonic() + 5
    while len(running) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert pool.thread_count == 2
    assert len(running) == 2  # the other four wait for a free thread
    release.set()
    while pool.thread_count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(running) == 6
    assert pool.thread_count == 0


def test_pool_cancel_skips_queued_job() -> None:
    pool = ResolverPool()
    release = threading.Event()
    ran: List[str] = []
    pool.submit(lambda: release.wait(5), max_threads=1, idle_timeout=0.05)
    cancel = pool.submit(lambda: ran.append("cancelled one"), max_threads=1, idle_timeout=0.05)
    pool.submit(lambda: ran.append("kept"), max_threads=1, idle_timeout=0.05)
    cancel()
    release.set()
    deadline = time.monotonic() + 5
    while pool.thread_count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ran == ["kept"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_pool_is_fork_safe() -> None:
    pool = ResolverPool()
    release = threading.Event()
    pool.submit(lambda: release.wait(5), max_threads=1, idle_timeout=1)  # busy in parent
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the parent's busy thread does not exist here
        try:
            done = threading.Event()
            pool.submit(done.set, max_threads=1, idle_timeout=0.05)
            os.write(write_end, b"1" if done.wait(5) else b"0")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        assert os.read(read_end, 1) == b"1"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
        release.set()


def test_threaded_resolver_delivers_answers_and_errors() -> None:
    got: List[Answer] = []
    done = threading.Event()

    def fake_getaddrinfo(host: Any, port: Any, family: int, type: int) -> Any:
        if family == socket.AF_INET6:
            raise socket.gaierror(socket.EAI_NONAME, "no")
        return [(family, type, 6, "", ("192.0.2.1", port))]

    def deliver(answer: Answer) -> None:
        got.append(answer)
        if len(got) == 2:
            done.set()

    resolver = ThreadedResolver(idle_timeout=0.05, getaddrinfo=fake_getaddrinfo)
    resolver.resolve("example.test", 80, socket.AF_INET6, deliver)
    resolver.resolve("example.test", 80, socket.AF_INET, deliver)
    assert done.wait(5)
    by_family = {answer.family: answer for answer in got}
    assert isinstance(by_family[socket.AF_INET6].error, socket.gaierror)
    assert by_family[socket.AF_INET].infos[0][4] == ("192.0.2.1", 80)


@pytest.mark.parametrize(
    "literal", ["127.0.0.1", "::1", "0x7f.1", "127.1", "fe80::1%lo", "::ffff:127.0.0.1"]
)
def test_numeric_addresses_accepts_every_literal_form(literal: str) -> None:
    assert numeric_addresses(literal, 80) is not None


def test_hosts_file_is_rechecked_at_most_once_per_recheck_interval(tmp_path: Any) -> None:
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 first.example\n")
    hosts = HostsFile(str(path), recheck=3600)
    assert "first.example" in hosts
    path.write_text("127.0.0.1 second.example\n")
    assert "second.example" not in hosts  # not looked at again yet
    hosts.recheck = 0
    assert "second.example" in hosts


def test_numeric_addresses() -> None:
    assert numeric_addresses("127.0.0.1", 80)[0][4] == ("127.0.0.1", 80)  # type: ignore[index]
    assert numeric_addresses("example.test", 80) is None
    with pytest.raises(socket.gaierror):
        numeric_addresses("127.0.0.1", "no-such-service-name")


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


@pytest.mark.skipif(sys.platform != "linux", reason="Linux /proc")
def test_importing_eyeshim_starts_nothing() -> None:
    import subprocess

    code = (
        "import sys, threading, eyeshim; "
        "print(threading.active_count(), 'eyeshim.connection' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False"]


def test_every_config_field_is_documented() -> None:
    import dataclasses
    import pathlib

    doc = (pathlib.Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    for field in dataclasses.fields(Config):
        assert f"`{field.name}`" in doc, field.name
        assert f"`EYESHIM_{field.name.upper()}`" in doc, field.name
