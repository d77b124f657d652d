"""``eyeshim probe`` (eyeshim/cli/probe.py), on loopback.

The probe runs real races: the demo's name (``BrokenAndWorking``: a
SYN-dropping ::1 and a working 127.0.0.1, answered by a getaddrinfo wrapper
inside this process), a closed port, and a listener whose accept queue is
full.  No test resolves a real name: the unknown-host case injects a
getaddrinfo that fails.
"""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
from interpreters import CTRL_C, clean_env, python

from eyeshim.cli import EXIT_INTERRUPTED
from eyeshim.cli.demo import DEMO_NAME, BrokenAndWorking, demo_name_resolves_to
from eyeshim.cli.probe import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_RESOLVE,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    main,
    parse_resolve,
    parse_target,
)

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------
# The probe, on loopback
# ---------------------------------------------------------------------------


@pytest.fixture
def demo() -> Iterator[BrokenAndWorking]:
    with BrokenAndWorking() as lab, demo_name_resolves_to(lab):
        yield lab


def run_probe(*argv: str, **kwargs: Any) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


def _started_ms(text: str, address: str) -> List[float]:
    pattern = rf"#\d+\s+{re.escape(address)}\s+IPv[46]\s+started\s+([\d.]+) ms"
    return [float(m) for m in re.findall(pattern, text)]


def test_probe_text_shows_the_fallback(demo: BrokenAndWorking) -> None:
    code, out, err = run_probe(DEMO_NAME, str(demo.port), "--timeout", "5")
    assert code == EXIT_OK, out + err
    assert err == ""
    broken, working = demo.broken_host, demo.working_host
    assert f"eyeshim probe {DEMO_NAME} port {demo.port}" in out
    # DNS per family, the order with the rule, each attempt, winner and total.
    assert re.search(r"answer\s+AAAA: ", out) or broken.startswith("127.")
    assert re.search(r"answer\s+A: .*127\.0\.0\.1", out)
    # Whether both families are sorted together depends on whether A answers
    # before the first attempt starts; the order is shown either way.
    assert re.search(r"sorted\s+attempt order", out)
    (first,) = _started_ms(out, broken)
    (second,) = _started_ms(out, working)
    assert 200 <= second - first <= 1000  # the 250 ms attempt delay
    assert re.search(rf"#1\s+{re.escape(broken)}\s+.*cancelled after", out)
    assert re.search(rf"#2\s+{re.escape(working)}\s+.*connected in", out)
    assert f"winner:   {working} at " in out
    total = float(re.search(r"total:\s+([\d.]+) ms", out).group(1))  # type: ignore[union-attr]
    assert 200 <= total <= 2000
    assert "history now knows:" in out
    assert re.search(rf"{re.escape(broken)}\s+failed 1x: sorted last", out)


def test_probe_json_lists_the_events_in_order(demo: BrokenAndWorking) -> None:
    code, out, _ = run_probe(DEMO_NAME, str(demo.port), "--json")
    assert code == EXIT_OK
    document = json.loads(out)
    assert set(document) >= {"races", "counters"}
    (race,) = document["races"]
    kinds = [event["kind"] for event in race["events"]]
    assert kinds[:3] == ["race", "query", "query"]
    assert kinds[-1] == "done"
    assert kinds.index("answer") < kinds.index("sorted") < kinds.index("attempt")
    assert kinds.index("attempt") < kinds.index("connected") < kinds.index("done")
    times = [event["time"] for event in race["events"]]
    assert times == sorted(times)
    assert race["outcome"] == "connected" and race["winner"] == demo.working_host
    assert 0.2 <= race["elapsed"] <= 2.0
    assert document["counters"]["races"] == 1 and document["counters"]["fallbacks"] == 1


def test_probe_svg_has_one_lane_per_address(demo: BrokenAndWorking, tmp_path: Path) -> None:
    picture = tmp_path / "race.svg"
    code, out, _ = run_probe(DEMO_NAME, str(demo.port), "--svg", str(picture))
    assert code == EXIT_OK
    assert str(picture) in out
    root = ET.parse(picture).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    lanes = [el.get("data-address") for el in root.iter(f"{ns}text") if el.get("class") == "lane"]
    assert set(lanes) == {demo.broken_host, demo.working_host} and len(lanes) == 2
    text = picture.read_text()
    assert "<script" not in text and "href" not in text and "@import" not in text
    assert "#2f9e44" in text and "won at" in text  # a green bar and the win marker


def test_probe_repeat_goes_straight_to_ipv4_the_second_time(
    demo: BrokenAndWorking, tmp_path: Path
) -> None:
    code, out, _ = run_probe(DEMO_NAME, str(demo.port), "--repeat", "2", "--json")
    assert code == EXIT_OK
    first, second = json.loads(out)["races"]
    attempts = [
        [e["address"] for e in race["events"] if e["kind"] == "attempt"] for race in (first, second)
    ]
    assert attempts == [[demo.broken_host, demo.working_host], [demo.working_host]]
    assert second["elapsed"] < 0.2

    code, out, _ = run_probe(DEMO_NAME, str(demo.port), "--repeat", "2")
    assert code == EXIT_OK
    assert "race 1 of 2" in out and "race 2 of 2" in out
    second_text = out.split("race 2 of 2", 1)[1]
    assert "ahead of the next by history: failed recently" in second_text
    assert _started_ms(second_text, demo.broken_host) == []
    assert "counters (" in out
    assert re.search(r"races\s+2\b", out) and re.search(r"won by a later address.*\s1\b", out)


def test_probe_no_history_falls_back_every_time(demo: BrokenAndWorking) -> None:
    code, out, _ = run_probe(DEMO_NAME, str(demo.port), "--repeat", "2", "--no-history", "--json")
    assert code == EXIT_OK
    for race in json.loads(out)["races"]:
        assert [e["address"] for e in race["events"] if e["kind"] == "attempt"] == [
            demo.broken_host,
            demo.working_host,
        ]
        assert race["history"] is None


def test_probe_attempt_delay_option(demo: BrokenAndWorking) -> None:
    code, out, _ = run_probe(DEMO_NAME, str(demo.port), "--attempt-delay", "50ms")
    assert code == EXIT_OK
    (first,) = _started_ms(out, demo.broken_host)
    (second,) = _started_ms(out, demo.working_host)
    assert 40 <= second - first <= 200
    assert "attempt delay 50 ms" in out


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_probe_refused_exits_with_the_failure_code() -> None:
    port = _closed_port()
    code, out, err = run_probe("127.0.0.1", str(port))
    assert code == EXIT_FAILED == 4
    assert "eyeshim probe: connection refused by every address (127.0.0.1)" in err
    assert "ECONNREFUSED" in out


def test_probe_timeout_exits_with_the_timeout_code() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):  # fills the queue
            code, out, err = run_probe("127.0.0.1", str(port), "--timeout", "0.5")
    assert code == EXIT_TIMEOUT == 5
    assert "eyeshim probe: no answer within the timeout of 0.5 s per attempt from 127.0.0.1" in err
    assert re.search(r"#1\s+127\.0\.0\.1\s+IPv4\s+started.*timed out after", out)


def test_probe_unknown_host_exits_with_the_resolve_code() -> None:
    asked: List[Any] = []

    def getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any) -> Any:
        asked.append((host, family))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    code, out, err = run_probe("no-such-host.invalid", "80", getaddrinfo=getaddrinfo)
    assert code == EXIT_RESOLVE == 3
    assert "eyeshim probe: cannot resolve no-such-host.invalid: " in err
    assert "Name or service not known" in err
    assert {family for _, family in asked} == {socket.AF_INET, socket.AF_INET6}
    assert "attempts: none" in out


def test_a_name_idna_cannot_encode_is_a_resolve_failure() -> None:
    code, _, err = run_probe("a" * 64 + ".invalid", "80")
    assert code == EXIT_RESOLVE
    assert err.startswith(
        f"eyeshim probe: cannot resolve {'a' * 64}.invalid: not a valid host name"
    )


def test_probe_empty_answer_is_a_resolve_failure() -> None:
    code, _, err = run_probe("empty.invalid", "80", getaddrinfo=lambda *a: [])
    assert code == EXIT_RESOLVE
    assert "cannot resolve empty.invalid" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["127.0.0.1", "0"], "port must be 1-65535"),
        (["127.0.0.1", "65536"], "port must be 1-65535"),
        (["127.0.0.1", "no-such-service"], "unknown service"),
        (["127.0.0.1"], "PORT is required"),
        ([], "TARGET is required"),
        (["127.0.0.1", "80", "--repeat", "0"], "expected a number >= 1"),
        (["127.0.0.1", "80", "--timeout", "soon"], "expected a duration"),
        (["127.0.0.1", "80", "--attempt-delay", "1ms"], "at least 10 ms"),
        (["--demo", "127.0.0.1", "80"], "give no TARGET or PORT"),
    ],
)
def test_probe_bad_arguments_exit_2(
    argv: List[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_probe_port_can_be_a_service_name() -> None:
    # "http" is 80 in every services database; nothing listens there on
    # loopback in the test environment, so the race is refused or connects.
    code, out, _ = run_probe("127.0.0.1", "http", "--timeout", "2")
    assert "port 80" in out
    assert code in (EXIT_OK, EXIT_FAILED)


def test_probe_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--help"])
    assert raised.value.code == 0
    text = capsys.readouterr().out
    for code in (EXIT_OK, EXIT_USAGE, EXIT_RESOLVE, EXIT_FAILED, EXIT_TIMEOUT):
        assert re.search(rf"^\s+{code}\s+\w", text, re.M), code


def test_python_dash_m_eyeshim_probe_runs_the_demo() -> None:
    # In a child process the demo's name resolves only through --demo,
    # which installs the wrapper in that process.
    proc = subprocess.run(
        [sys.executable, "-m", "eyeshim.cli.probe", "--demo", "--json", "--timeout", "5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    (race,) = json.loads(proc.stdout)["races"]
    assert race["outcome"] == "connected"
    assert race["events"][0]["host"] == DEMO_NAME


# ---------------------------------------------------------------------------
# Targets as people type them: URLs, HOST:PORT, bracketed IPv6
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "port", "expected"),
    [
        ("example.org", "443", ("example.org", 443)),
        ("example.org:8443", None, ("example.org", 8443)),
        ("example.org", "https", ("example.org", 443)),
        ("192.0.2.1:80", None, ("192.0.2.1", 80)),
        ("[::1]", "80", ("::1", 80)),
        ("[2001:db8::1]:8080", None, ("2001:db8::1", 8080)),
        ("2001:db8::1", "80", ("2001:db8::1", 80)),  # unbracketed: every colon is the address's
        ("[fe80::1%eth0]:22", None, ("fe80::1%eth0", 22)),
        ("https://example.org/a/b?c", None, ("example.org", 443)),
        ("http://Example.ORG:8080/", None, ("example.org", 8080)),
        ("http://[2001:db8::1]/x", None, ("2001:db8::1", 80)),
        ("https://user:secret@example.org:444/", None, ("example.org", 444)),
        ("wss://example.org", None, ("example.org", 443)),
        ("ftp://example.org", None, ("example.org", 21)),
    ],
)
def test_targets_people_type(target: str, port: Any, expected: Tuple[str, int]) -> None:
    assert parse_target(target, port) == expected


@pytest.mark.parametrize(
    ("target", "port", "message"),
    [
        ("example.org", None, "PORT is required"),
        ("example.org:443", "80", "two ports"),
        ("https://example.org:99999/", None, "bad port in URL"),
        ("http:///path", None, "no host in URL"),
        ("nosuchscheme://example.org", None, "no default port for 'nosuchscheme'"),
        ("[example.org]:80", None, "expected [IPv6 address]"),
        ("[::1]x", None, "expected [IPv6 address]"),
        ("example.org:0", None, "port must be 1-65535"),
    ],
)
def test_targets_that_make_no_sense(target: str, port: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_target(target, port)


def test_resolve_entries_are_curls() -> None:
    assert parse_resolve("example.org:443:192.0.2.1") == ("example.org", 443, ["192.0.2.1"])
    assert parse_resolve("example.org:443:192.0.2.1,[2001:db8::1], 2001:db8::2") == (
        "example.org",
        443,
        ["192.0.2.1", "2001:db8::1", "2001:db8::2"],
    )
    assert parse_resolve("[2001:db8::9]:80:192.0.2.1") == ("2001:db8::9", 80, ["192.0.2.1"])
    for bad in ("example.org:443", "example.org:443:", "example.org:443:not-an-ip", ":443:1.2.3.4"):
        with pytest.raises(ValueError):
            parse_resolve(bad)


def probe_cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eyeshim", "probe", *argv],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def listener() -> Iterator[int]:
    """A port that accepts on 127.0.0.1 and, where loopback has IPv6, on ::1."""
    with socket.socket() as four:
        four.bind(("127.0.0.1", 0))
        four.listen(16)
        port = four.getsockname()[1]
        six = socket.socket(socket.AF_INET6)
        try:
            six.bind(("::1", port))
            six.listen(16)
        except OSError:
            six.close()
            six = None  # type: ignore[assignment]
        try:
            yield port
        finally:
            if six is not None:
                six.close()


def _ipv6_loopback() -> bool:
    from eyeshim.cli.demo import _ipv6_loopback_works

    return _ipv6_loopback_works()


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 on loopback")


@needs_ipv6
def test_a_bracketed_ipv6_literal_is_not_looked_up(listener: int) -> None:
    result = probe_cli(f"[::1]:{listener}")
    assert result.returncode == 0, result.stderr
    assert "known without DNS: ::1" in result.stdout
    assert "lookup started" not in result.stdout
    assert "winner:   ::1 at" in result.stdout


def test_a_url_is_probed_at_its_host_and_port(listener: int) -> None:
    result = probe_cli(f"http://127.0.0.1:{listener}/some/path?q=1")
    assert result.returncode == 0, result.stderr
    assert f"eyeshim probe 127.0.0.1 port {listener}:" in result.stdout
    assert "known without DNS: 127.0.0.1" in result.stdout


def test_resolve_gives_addresses_without_dns_and_4_6_pick_a_family(listener: int) -> None:
    # The name cannot resolve (.invalid): anything that connects came from --resolve.
    name = "nowhere.eyeshim.invalid"
    entry = f"{name}:{listener}:127.0.0.1,[::1]"
    both = probe_cli(name, str(listener), "--resolve", entry, "--json")
    assert both.returncode == 0, both.stderr
    (race,) = json.loads(both.stdout)["races"]
    answers = {e["family"]: e.get("addresses") for e in race["events"] if e["kind"] == "answer"}
    assert answers == {"ipv6": ["::1"], "ipv4": ["127.0.0.1"]}
    queries = [e for e in race["events"] if e["kind"] == "query"]
    assert {e["resolver"] for e in queries} == {"--resolve (no DNS)"}

    four = probe_cli(name, str(listener), "--resolve", entry, "-4")
    assert four.returncode == 0, four.stderr
    assert "addresses from --resolve, no DNS: 127.0.0.1, ::1" in four.stdout
    assert re.search(r"; querying A$", four.stdout, re.M) and "AAAA" not in four.stdout
    assert "winner:   127.0.0.1" in four.stdout

    only_v4 = f"{name}:{listener}:127.0.0.1"
    six = probe_cli(name, str(listener), "--resolve", only_v4, "-6")
    assert six.returncode == EXIT_RESOLVE
    assert f"eyeshim probe: cannot resolve {name}: " in six.stderr
    assert six.stderr.rstrip().endswith("--resolve gives it no IPv6 address")

    other = probe_cli("127.0.0.1", str(listener), "--resolve", entry)
    assert other.returncode == 0
    assert f"--resolve has no entry for 127.0.0.1:{listener}: resolving it as usual" in (
        other.stdout
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["[::1]:80", "-4"], "-4 asks for IPv4, but ::1 is an address of the other family"),
        (["127.0.0.1:80", "-6"], "-6 asks for IPv6, but 127.0.0.1"),
        (["127.0.0.1:80", "-4", "-6"], "not allowed with argument"),
        (["x:80", "--resolve", "x:80"], "--resolve: expected HOST:PORT:ADDRESS"),
        (["https://h:99999/"], "bad port in URL"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv: List[str], message: str) -> None:
    result = probe_cli(*argv)
    assert result.returncode == EXIT_USAGE
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(("eyeshim probe: error: ", "python"))


def test_a_bad_svg_path_is_refused_before_the_race(tmp_path: Path) -> None:
    result = probe_cli("--demo", "--svg", str(tmp_path / "no-such-dir" / "race.svg"))
    assert result.returncode == EXIT_USAGE
    assert result.stdout == ""  # no race was run
    assert "--svg" in result.stderr and "cannot write it: No such file or directory" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_timeout_zero_says_what_it_does_not_blame_dns(listener: int) -> None:
    # localhost is a hosts-file name: no DNS at all.
    result = probe_cli("localhost", str(listener), "--timeout", "0")
    assert result.returncode == EXIT_FAILED
    assert "--timeout 0 makes each attempt a non-blocking connect()" in result.stderr
    assert "DNS" not in result.stderr
    assert "timeout 0 s per attempt" in result.stdout


HANGING = CTRL_C + """
import socket, subprocess, sys, time
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(0)
port = listener.getsockname()[1]
filler = socket.create_connection(("127.0.0.1", port), timeout=2)  # the queue is now full
probe = subprocess.Popen(
    [sys.executable, "-m", "eyeshim", "probe", f"127.0.0.1:{port}", "--timeout", "60"],
    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    preexec_fn=default_sigint,
)
seen = []
for line in probe.stdout:  # each event as it happens, before the race is over
    seen.append(line)
    if "#1 127.0.0.1" in line:
        break
started = time.monotonic()
ctrl_c(probe)
rest, err = probe.communicate(timeout=30)
print(repr(("".join(seen), rest, err, probe.returncode, time.monotonic() - started)))
"""


def test_events_are_printed_as_they_happen_and_ctrl_c_keeps_the_timeline() -> None:
    result = python(["-c", HANGING])
    assert result.returncode == 0, result.stderr
    seen, rest, err, code, took = eval(result.stdout)
    # The attempt line arrived while the attempt was still running (60 s timeout).
    assert re.search(r"attempt\s+#1 127\.0\.0\.1 \(IPv4\)", seen)
    assert took < 10
    assert code == EXIT_INTERRUPTED == 130
    assert "still connecting after" in rest and "(interrupted)" in rest
    assert re.search(r"outcome:\s+interrupted after \d+ ms", rest)
    assert err.startswith("eyeshim probe: interrupted after ") and "Traceback" not in err


def _dual_getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any) -> Any:
    return [
        info
        for address in ("::1", "127.0.0.1")
        if family in (0, socket.AF_INET6 if ":" in address else socket.AF_INET)
        for info in socket.getaddrinfo(address, port, family, *args)
    ]


def test_probe_tls_shows_tcp_and_tls_per_attempt(monkeypatch: Any, tmp_path: Path) -> None:
    pytest.importorskip("trustme")
    import trustme
    from tlsservers import NAME, DualServer, has_ipv6_loopback

    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1)")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # the probe's system CAs
    server = DualServer(ca, {socket.AF_INET6: "silent", socket.AF_INET: "ok"})
    try:
        code, out, _ = run_probe(NAME, str(server.port), "--tls", getaddrinfo=_dual_getaddrinfo)
        assert code == EXIT_OK, out
        assert "::1: TCP connected in" in out and "TLS handshake under way" in out
        assert "127.0.0.1: TCP connected in" in out
        assert "(TCP " in out and "then TLS)" in out  # the winner's line in the summary
        bad = DualServer(ca, {socket.AF_INET6: "badcert", socket.AF_INET: "badcert"})
        try:
            code, out, err = run_probe(NAME, str(bad.port), "--tls", getaddrinfo=_dual_getaddrinfo)
        finally:
            bad.close()
        assert code == EXIT_FAILED
        assert "TLS handshake failed" in out + err
    finally:
        server.close()
