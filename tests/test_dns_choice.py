"""eyeshim.dns.choice: the one place that says stub resolver or getaddrinfo, per name, and why."""

from __future__ import annotations

import socket
from typing import Any

import pytest

import eyeshim.dns as dns
from eyeshim.config import Config
from eyeshim.dns import nsswitch, resolvconf
from eyeshim.state import STATE

AUTO = Config()


@pytest.fixture
def system(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A glibc system whose files the test writes."""
    files = {
        "nsswitch": "hosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\n",
        "resolv": "nameserver 192.0.2.53\nsearch example.org\n",
    }
    monkeypatch.setattr(STATE, "nsswitch", lambda: nsswitch.parse(files["nsswitch"]))
    monkeypatch.setattr(
        STATE, "resolv_conf", lambda: resolvconf.parse(files["resolv"], environ={}, hostname="h")
    )
    from eyeshim.candidates import HostsFile

    monkeypatch.setattr(STATE, "hosts", lambda: HostsFile("/nonexistent/hosts"))
    monkeypatch.setattr(dns, "_IS_GLIBC", True)
    monkeypatch.delenv("HOSTALIASES", raising=False)
    return files


def test_plain_names_get_the_stub(system: Any) -> None:
    for host in ("www.example.org", "short", b"bytes.example.org", "bücher.example", "a_b.c"):
        chosen = dns.choice(host, AUTO)
        assert chosen.stub, (host, chosen)
    assert "192.0.2.53" in dns.choice("x.org", AUTO).reason


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("printer.local", ".local"),
        ("printer.local.", ".local"),
        ("localhost", "own name"),
        ("foo.localhost", "own name"),
        ("_gateway", "own name"),
        (socket.gethostname(), "own name"),
        ("127.0.0.1", "an IP address"),
        ("a..b", "IDNA"),
        ("x" * 64 + ".org", "IDNA"),
        ("has space.org", "not a plain host name"),
        (b"\xff.org", "non-ASCII"),
        (1234, "type int"),
    ],
)
def test_names_that_go_to_getaddrinfo(system: Any, host: Any, why: str) -> None:
    chosen = dns.choice(host, AUTO)
    assert not chosen.stub
    assert why in chosen.reason, chosen


def test_what_sends_every_name_to_getaddrinfo(system: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "EYESHIM_RESOLVER=system" in dns.choice("x.org", Config(resolver="system")).reason
    system["resolv"] = "nameserver 192.0.2.53\noptions inet6\n"
    assert "options inet6" in dns.choice("x.org", AUTO).reason
    system["resolv"] = "nameserver 192.0.2.53\n"
    system["nsswitch"] = "hosts: files resolve dns\n"
    assert "resolve" in dns.choice("x.org", AUTO).reason
    system["nsswitch"] = "hosts: files dns\n"
    monkeypatch.setenv("HOSTALIASES", "/tmp/aliases")
    assert "HOSTALIASES" in dns.choice("x.org", AUTO).reason
    monkeypatch.delenv("HOSTALIASES")
    monkeypatch.setattr(dns, "_IS_GLIBC", False)
    assert "not glibc" in dns.choice("x.org", AUTO).reason


def test_a_replaced_getaddrinfo_is_honoured(system: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert dns.choice("x.org", AUTO).stub

    def double(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError

    monkeypatch.setattr(socket, "getaddrinfo", double)
    chosen = dns.choice("x.org", AUTO)
    assert not chosen.stub and "replaced" in chosen.reason and __name__ in chosen.reason


def test_resolver_for_refuses_what_getaddrinfo_must_parse(system: Any) -> None:
    both = (socket.AF_INET6, socket.AF_INET)
    resolver, chosen = dns.resolver_for("x.org", "http", both, AUTO)
    assert resolver is None and "port" in chosen.reason
    resolver, chosen = dns.resolver_for("x.org", 80, both, AUTO)
    assert resolver is not None and chosen.stub
    system["resolv"] = "nameserver 192.0.2.53\noptions no-aaaa\n"
    resolver, chosen = dns.resolver_for("x.org", 80, (socket.AF_INET6,), AUTO)
    assert resolver is None and "no-aaaa" in chosen.reason


def test_connect_uses_the_choice(system: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # connection._default_resolver: the stub when choice says so, else
    # getaddrinfo on threads, with the reason in its description.
    from types import SimpleNamespace

    from eyeshim import connection

    both = (socket.AF_INET6, socket.AF_INET)
    dial: Any = SimpleNamespace(host="printer.local", port=80, families=both)
    threaded = connection._default_resolver(AUTO, dial)
    assert type(threaded).__name__ == "ThreadedResolver"
    assert threaded.description == "getaddrinfo: a .local name, answered by mdns in nsswitch.conf"  # type: ignore[attr-defined]
    dial = SimpleNamespace(host="www.example.org", port=80, families=both)
    assert connection._default_resolver(AUTO, dial).description == "stub"  # type: ignore[attr-defined]
    system_cfg = Config(resolver="system")
    assert connection._default_resolver(system_cfg, dial).description == (  # type: ignore[attr-defined]
        "getaddrinfo: EYESHIM_RESOLVER=system"
    )


def test_status_and_probe_say_which_resolver(system: Any) -> None:
    from eyeshim.cli import status

    assert status.collect({"EYESHIM_RESOLVER": "system"})["resolver"] == (
        "getaddrinfo (EYESHIM_RESOLVER=system)"
    )
    assert dns.describe({}).startswith("stub (")
    assert dns.describe({"EYESHIM_RESOLVER": "bogus"}).startswith("unknown (bad configuration")
    assert dns.choice("127.0.0.1", AUTO).resolver == "none"
    assert dns.choice("dead.beef", AUTO).resolver != "none"


def test_a_wrapper_of_getaddrinfo_is_a_replacement_but_eyeshims_own_is_not(
    system: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapt = pytest.importorskip("wrapt")

    from eyeshim.patches import getaddrinfo as ours

    def tracer(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    original = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", wrapt.FunctionWrapper(original, tracer))
    assert not dns.choice("x.org", AUTO).stub
    monkeypatch.setattr(socket, "getaddrinfo", original)
    patch = ours.make("getaddrinfo")
    patch.patch()
    try:
        assert socket.getaddrinfo is not original
        assert dns.choice("x.org", AUTO).stub
    finally:
        patch.unpatch()
    assert socket.getaddrinfo is original


@pytest.mark.parametrize(
    "host", ["example.org", "Example.ORG.", "a" * 63 + ".org", "a" * 64 + ".org", "a..b", "x.", ""]
)
def test_idna_is_the_socket_modules_encoding(host: str) -> None:
    try:
        expected: Any = host.encode("idna").decode("ascii")
    except UnicodeError:
        expected = None
    assert dns.idna(host) == expected
    assert dns.idna("bücher.example") == "xn--bcher-kva.example"


def test_what_choice_remembers_per_name_follows_the_hosts_file_and_hostname(
    system: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from eyeshim.candidates import HostsFile

    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 localhost\n")
    hosts = HostsFile(str(path), recheck=0.0)
    monkeypatch.setattr(STATE, "hosts", lambda: hosts)
    conf = resolvconf.parse(system["resolv"], environ={}, hostname="h")
    line = nsswitch.parse(system["nsswitch"])
    monkeypatch.setattr(STATE, "resolv_conf", lambda: conf)  # the same objects each time
    monkeypatch.setattr(STATE, "nsswitch", lambda: line)
    assert dns.choice("box.example.org", AUTO).stub
    assert dns.choice("box.example.org", AUTO).stub  # remembered
    path.write_text("127.0.0.1 localhost\n192.0.2.7 box.example.org\n")
    assert "hosts file" in dns.choice("box.example.org", AUTO).reason
    monkeypatch.setattr(socket, "gethostname", lambda: "box.example.org")
    path.write_text("127.0.0.1 localhost\n")
    assert "own name" in dns.choice("box.example.org", AUTO).reason
