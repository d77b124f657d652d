"""``eyeshim status`` (eyeshim/cli/status.py): whether, why and how."""

from __future__ import annotations

import json
from pathlib import Path

from interpreters import POSIX_ONLY, RACING_APP, clean_env, eyeshim_run, python

pytestmark = POSIX_ONLY


# -- status --------------------------------------------------------------------


def test_status_reports_the_environment() -> None:
    result = python(["-m", "eyeshim", "status"], clean_env(EYESHIM_ENABLED="1"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "EYESHIM_ENABLED" in out and "bootstrap on PYTHONPATH  no" in out
    assert "integrations: socket, urllib3, pip" in out
    assert "policy table:" in out and "libraries: urllib3" in out
    assert "not on PYTHONPATH" in out  # the switch alone is not enough, and it says so


def test_status_json_under_run_and_with_errors() -> None:
    ran = eyeshim_run(["--getaddrinfo", "-m", "eyeshim", "status", "--json"])
    report = json.loads(ran.stdout)
    assert report["new_interpreters"]["eyeshim"] is True
    assert report["environment"]["bootstrap_on_pythonpath"] is True
    assert "getaddrinfo" in report["integrations"]["effective"]
    assert report["problems"] == []

    bad = python(
        ["-m", "eyeshim", "status", "--json"],
        clean_env(EYESHIM_ENABLED="1", EYESHIM_RESOLUTION_DELAY="soon", EYESHIM_DISABLE="nothing"),
    )
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert "EYESHIM_RESOLUTION_DELAY" in report["config"]["error"]
    assert "EYESHIM_DISABLE" in report["integrations"]["error"]
    assert len(report["problems"]) == 2


def test_run_stats_are_collected_per_process_and_summed_by_status(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(RACING_APP)
    stats = tmp_path / "stats.jsonl"
    for _ in range(2):
        ran = eyeshim_run(["--stats", str(stats), str(app)])
        assert ran.returncode == 0, ran.stderr
    lines = [json.loads(line) for line in stats.read_text().splitlines()]
    assert len(lines) == 2
    assert all(line["counters"]["races"] == 3 for line in lines)
    # The first race of each process falls back from the broken ::1.
    assert all(line["counters"]["fallbacks"] == 1 for line in lines)
    status = python(["-m", "eyeshim", "status", "--json", "--stats", str(stats)])
    report = json.loads(status.stdout)
    assert report["stats"]["processes"] == 2
    assert report["stats"]["counters"]["races"] == 6
    assert report["stats"]["counters"]["time_saved"] > 2 * 2.0  # ~2.75 s per process
    text = python(["-m", "eyeshim", "status", "--stats", str(stats)]).stdout
    assert "by 2 process(es): 6 race(s)" in text
