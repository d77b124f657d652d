"""``eyeshim status`` (eyeshim/cli/status.py): whether, why and how."""

from __future__ import annotations

import json
from pathlib import Path

from interpreters import POSIX_ONLY, RACING_APP, SOURCE_ROOT, clean_env, eyeshim_run, python

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


# -- every problem, and installed vs active ---------------------------------------------


def test_status_lists_every_problem_and_fails() -> None:
    env = clean_env(
        EYESHIM_ENABLED="1",
        EYESHIM_HISTORY="maybe",
        EYESHIM_RESOLUTION_DELAY="soon",
        EYESHIM_POLICY="/nonexistent/gai.conf",
        EYESHIM_VERBSE="1",
    )
    result = python(["-m", "eyeshim", "status"], env)
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 3, result.stdout
    assert "problem: EYESHIM_POLICY='/nonexistent/gai.conf': no file at" in result.stdout
    assert (
        "warning: EYESHIM_VERBSE is not a variable of eyeshim (ignored); "
        "did you mean EYESHIM_VERBOSE?"
    ) in result.stdout
    report = json.loads(python(["-m", "eyeshim", "status", "--json"], env).stdout)
    assert len(report["problems"]) == 3 and len(report["warnings"]) == 1


def test_status_unknown_name_fails_only_when_strict() -> None:
    relaxed = python(["-m", "eyeshim", "status"], clean_env(EYESHIM_VERBSE="1"))
    assert relaxed.returncode == 0, relaxed.stdout
    strict = python(["-m", "eyeshim", "status"], clean_env(EYESHIM_VERBSE="1", EYESHIM_STRICT="1"))
    assert strict.returncode == 1
    assert "(EYESHIM_STRICT=1 makes it fatal)" in strict.stdout


def test_status_fails_when_the_engine_cannot_be_loaded(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(Path(SOURCE_ROOT) / "eyeshim", copy / "eyeshim")
    (copy / "eyeshim" / "racing.py").write_text("raise ImportError('racing is missing')\n")
    # -S and another directory: the copy is the only eyeshim (not an editable
    # install's, not the checkout's that -m finds in the current directory).
    env = clean_env(PYTHONPATH=str(copy))
    result = python(["-S", "-m", "eyeshim", "status"], env, cwd=tmp_path)
    assert result.returncode == 1
    assert "problem: the engine cannot be loaded (ImportError: racing is missing)" in (
        result.stdout
    )


GREEN = """\
import socket, sys, types, json
monkey = types.ModuleType("gevent.monkey")
monkey.is_module_patched = lambda name: name == "socket"
sys.modules["gevent.monkey"] = monkey
import eyeshim
print(json.dumps({"installed": eyeshim.is_installed(), "status": eyeshim.integration_status()}))
from eyeshim.cli import status
status.main(sys.argv[1:])
"""


def test_status_tells_installed_from_active_under_gevent() -> None:
    ran = eyeshim_run(["-c", GREEN])
    first, text = ran.stdout.split("\n", 1)
    seen = json.loads(first)
    assert seen["installed"] is True
    assert seen["status"]["socket"]["active"] is False
    assert seen["status"]["socket"]["why"] == "gevent monkey-patched socket"
    assert "in this interpreter: socket: stepped aside: gevent monkey-patched socket" in text
    as_json = eyeshim_run(["-c", GREEN, "--json"])
    report = json.loads(as_json.stdout.split("\n", 1)[1])
    socket_status = report["this_interpreter"]["status"]["socket"]
    assert (socket_status["active"], socket_status["state"]) == (False, "patched")
    assert report["this_interpreter"]["status"]["urllib3"]["state"] == "waiting for import"
