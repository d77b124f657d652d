"""Diagnostics: sorting.deciding_rule, Orderer.explain, and ``eyeshim probe``.

The rule tests are pure.  The probe tests run real races on loopback: the
demo's name (``BrokenAndWorking``: a SYN-dropping ::1 and a working
127.0.0.1, answered by a getaddrinfo wrapper inside this process), a closed
port, and a listener whose accept queue is full.  No test resolves a real
name: the unknown-host case injects a getaddrinfo that fails.
"""

from __future__ import annotations

import errno
import io
import ipaddress
import json
import random
import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from fakenet import V4, V6, FakeNet, drop, fake_source, info, ok

from eyeshim import events, sorting
from eyeshim.config import Config
from eyeshim.connection import connect
from eyeshim.demo import DEMO_NAME, BrokenAndWorking, demo_name_resolves_to
from eyeshim.history import History
from eyeshim.ordering import Orderer
from eyeshim.probe import EXIT_FAILED, EXIT_OK, EXIT_RESOLVE, EXIT_TIMEOUT, EXIT_USAGE, main
from eyeshim.sorting import PolicyTable, deciding_rule, sort_destinations

RFC = PolicyTable.rfc6724()
REPO = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------
# deciding_rule: each rule on a pair it decides (RFC 6724 §10.2 examples)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first, second, rule",
    [
        # A destination with no source loses to one with a source.
        (("198.51.100.1", "198.51.100.2"), ("2001:db8:1::1", None), "rule 1: avoid unusable"),
        # §10.2 example 2: only IPv4 has a source of matching scope.
        (
            ("198.51.100.121", "198.51.100.117"),
            ("2001:db8:1::1", "fe80::1"),
            "rule 2: matching scope",
        ),
        # §10.2 example 8: the 6to4 destination matches the 6to4 source's label.
        (
            ("2002:c633:6401::1", "2002:c633:6401::2"),
            ("2001:db8:1::1", "2002:c633:6401::2"),
            "rule 5: matching label",
        ),
        # §10.2 example 3: native IPv6 (40) over IPv4 (35).
        (("2001:db8:1::1", "2001:db8:1::2"), ("10.1.2.3", "10.1.2.4"), "rule 6: higher precedence"),
        # §10.2 example 4: link-local before global.
        (("fe80::1", "fe80::2"), ("2001:db8:1::1", "2001:db8:1::2"), "rule 8: smaller scope"),
        # §10.2 example 7: the longer common prefix.
        (
            ("2001:db8:1::1", "2001:db8:1::2"),
            ("2001:db8:3ffe::1", "2001:db8:3f44::2"),
            "rule 9: longest matching prefix",
        ),
        # Two IPv4 servers of one network: nothing tells them apart (no rule 9).
        (("10.1.0.5", "10.2.0.9"), ("10.2.0.5", "10.2.0.9"), "rule 10: DNS order"),
    ],
)
def test_deciding_rule_names_the_rule_of_each_rfc_example(
    first: Tuple[str, Optional[str]], second: Tuple[str, Optional[str]], rule: str
) -> None:
    # Given in the "wrong" order, the rule puts them right; rule 10 keeps
    # the input order by definition, in both directions.
    if rule == "rule 10: DNS order":
        assert sort_destinations([second, first]) == [second[0], first[0]]
        assert deciding_rule(second, first) == rule
    else:
        assert sort_destinations([second, first]) == [first[0], second[0]]
    assert deciding_rule(first, second) == rule
    # The other way round no rule applies: the sort cannot produce it.
    if rule != "rule 10: DNS order":
        with pytest.raises(ValueError, match=re.escape(rule)):
            deciding_rule(second, first)


def test_deciding_rule_hooks_unusable_and_history() -> None:
    fast, slow = ("192.0.2.1", "192.0.2.9"), ("192.0.2.2", "192.0.2.9")
    rtt = {fast[0]: 1, slow[0]: 2}
    assert deciding_rule(fast, slow, history_key=rtt.__getitem__) == "history"
    broken = ("2001:db8:1::1", "2001:db8:1::2")
    failed = {broken[0]}
    assert deciding_rule(fast, broken, unusable=failed.__contains__) == "rule 1: avoid unusable"
    # History sits below rule 8 and above rule 9.
    near, far = ("2001:db8:1:2::1", "2001:db8:1:2::9"), ("2001:db8:ff::1", "2001:db8:1:2::9")
    rank = {near[0]: 2, far[0]: 1}
    assert deciding_rule(far, near, history_key=rank.__getitem__) == "history"
    assert deciding_rule(near, far) == "rule 9: longest matching prefix"
    # A custom table is honoured: IPv4 above native IPv6.
    table = PolicyTable(precedence=[("::ffff:0:0/96", 50)])
    assert deciding_rule(fast, near, table) == "rule 6: higher precedence"


def _rule_values(
    table: PolicyTable,
    dest: Any,
    src: Optional[str],
    unusable: Callable[[Any], bool],
    history_key: Callable[[Any], Any],
) -> List[Tuple[str, Any]]:
    """Each rule's value for one candidate, smaller is better: written
    independently of the sort's own key, from the RFC's wording."""
    address = ipaddress.ip_address(dest)
    source = None if src is None else ipaddress.ip_address(src)
    return [
        ("rule 1: avoid unusable", source is None or unusable(dest)),
        ("rule 2: matching scope", source is None or table.scope(source) != table.scope(address)),
        ("rule 5: matching label", source is None or table.label(source) != table.label(address)),
        ("rule 6: higher precedence", -table.precedence(address)),
        ("rule 8: smaller scope", table.scope(address)),
        ("history", history_key(dest)),
    ]


@pytest.mark.parametrize("seed", range(60))
def test_deciding_rule_is_consistent_with_the_sort(seed: int) -> None:
    rng = random.Random(seed)
    table = rng.choice([RFC, PolicyTable(precedence=[("::ffff:0:0/96", 40)])])
    pool6 = ["2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:ff::1", "2002:c633:6401::1"]
    pool6 += ["fe80::1", "64:ff9b::1", "fd00::1", "2001:db8:1:2::7"]
    pool4 = ["192.0.2.1", "192.0.2.77", "10.1.0.5", "10.2.0.5", "169.254.1.1"]
    sources6 = ["2001:db8:1:2::9", "2002:c633:6401::2", "fe80::9", None]
    sources4 = ["10.2.0.9", "169.254.9.9", None]
    pairs: List[Tuple[str, Optional[str]]] = []
    size = rng.randint(2, 10)
    while len(pairs) < size:
        if rng.random() < 0.5:
            dest, src = rng.choice(pool6), rng.choice(sources6)
        else:
            dest, src = rng.choice(pool4), rng.choice(sources4)
        if all(dest != d for d, _ in pairs):  # one source per destination
            pairs.append((dest, src))
    source_of = dict(pairs)
    failed = {dest for dest, _ in pairs if rng.random() < 0.2}
    ranks = {dest: rng.choice([0, 0, 1, 2]) for dest, _ in pairs}
    hooks: Dict[str, Any] = rng.choice(
        [{}, {"unusable": failed.__contains__}, {"history_key": ranks.__getitem__}]
    )
    unusable = hooks.get("unusable", lambda d: False)
    history_key = hooks.get("history_key", lambda d: 0)

    ordered = sort_destinations(pairs, table, **hooks)
    for a, b in zip(ordered, ordered[1:]):
        pa, pb = (a, source_of[a]), (b, source_of[b])
        rule = deciding_rule(pa, pb, table, **hooks)  # never raises for sorted neighbours
        va = _rule_values(table, a, source_of[a], unusable, history_key)
        vb = _rule_values(table, b, source_of[b], unusable, history_key)
        names = [name for name, _ in va]
        if rule in names:
            at = names.index(rule)
            assert [v for _, v in va[:at]] == [v for _, v in vb[:at]], (a, b, rule)
            assert va[at][1] < vb[at][1], (a, b, rule)  # it really decides, a's way
            continue
        assert [v for _, v in va] == [v for _, v in vb], (a, b, rule)  # tied on the key
        ia, ib = ipaddress.ip_address(a), ipaddress.ip_address(b)
        sa, sb = source_of[a], source_of[b]
        both_v6 = ia.version == ib.version == 6 and sa is not None and sb is not None
        if rule == "rule 9: longest matching prefix":
            assert both_v6
            ca = sorting.common_prefix_len(ipaddress.IPv6Address(sa), ia)  # type: ignore[arg-type]
            cb = sorting.common_prefix_len(ipaddress.IPv6Address(sb), ib)  # type: ignore[arg-type]
            assert ca > cb
        else:
            assert rule == "rule 10: DNS order", rule


# ---------------------------------------------------------------------------
# Orderer.explain on a fake candidate set (no network)
# ---------------------------------------------------------------------------

S1, S2, S3 = "2001:db8::1", "2001:db8::2", "2001:db8::3"
A1, A2 = "192.0.2.1", "192.0.2.2"


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
        [sys.executable, "-m", "eyeshim.probe", "--demo", "--json", "--timeout", "5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    (race,) = json.loads(proc.stdout)["races"]
    assert race["outcome"] == "connected"
    assert race["events"][0]["host"] == DEMO_NAME


def test_errno_names_in_failures() -> None:
    # A failure before connect() (no attempt event) still shows as an attempt.
    from eyeshim.timeline import format_race, summarize

    recorded: List[events.RaceEvent] = [
        events.RaceStarted(1, 0.0, "h", port=1, timeout=1.0, families=[], known=["::1"]),
        events.AttemptFailed(
            1,
            0.001,
            "h",
            address="::1",
            errno=errno.EAFNOSUPPORT,
            error="x",
            elapsed=0.0,
            before_connect=True,
        ),
        events.Done(1, 0.002, "h", outcome="failed", elapsed=0.002, error="OSError: x"),
    ]
    view = summarize(recorded)
    assert [(a.address, a.outcome, a.errno_name) for a in view.attempts] == [
        ("::1", "failed", "EAFNOSUPPORT")
    ]
    assert "EAFNOSUPPORT" in format_race(view)


def test_all_combinations_of_outcomes_render(tmp_path: Path) -> None:
    from eyeshim.timeline import render_svg, summarize

    views = []
    for outcome in ("connected", "timeout", "failed", "resolve failed"):
        host = "h&<x>"
        recorded: List[events.RaceEvent] = [
            events.RaceStarted(1, 0.0, host, port=1, timeout=None, families=["ipv6"], known=[]),
            events.Query(1, 0.0, host, family="ipv6"),
        ]
        if outcome != "resolve failed":
            recorded.append(events.DnsAnswer(1, 0.001, host, family="ipv6", addresses=["::1"]))
            recorded.append(
                events.AttemptStarted(
                    1, 0.002, host, address="::1", family="ipv6", number=1, next_in=0.25
                )
            )
        else:
            recorded.append(events.DnsAnswer(1, 0.001, host, family="ipv6", error="<no>"))
        if outcome == "connected":
            recorded.append(events.Connected(1, 0.003, host, address="::1", rtt=0.001, local=None))
        recorded.append(events.Done(1, 0.5, host, outcome=outcome, elapsed=0.5))
        views.append(summarize(recorded))
    svg = render_svg(views, "title with <markup> & ampersands")
    root = ET.fromstring(svg)  # escaped: parses
    assert root.find("{http://www.w3.org/2000/svg}title").text == (  # type: ignore[union-attr]
        "title with <markup> & ampersands"
    )
    assert "timeout at" in svg  # the deadline marker
    assert "not tried" not in svg
