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

from eyeshim.cli.demo import DEMO_NAME, BrokenAndWorking, demo_name_resolves_to
from eyeshim.cli.probe import EXIT_FAILED, EXIT_OK, EXIT_RESOLVE, EXIT_TIMEOUT, EXIT_USAGE, main

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
    assert "eyeshim probe: timed out after 0.5 s: no answer from 127.0.0.1" in err
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
        (["127.0.0.1"], "HOST and PORT are required"),
        (["127.0.0.1", "80", "--repeat", "0"], "expected a number >= 1"),
        (["127.0.0.1", "80", "--timeout", "soon"], "expected a duration"),
        (["127.0.0.1", "80", "--attempt-delay", "1ms"], "at least 10 ms"),
        (["--demo", "127.0.0.1", "80"], "give no HOST or PORT"),
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
