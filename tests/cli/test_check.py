"""``eyeshim check`` (eyeshim/cli/check.py): proof that the installed shim works."""

from __future__ import annotations

import json

import pytest
from interpreters import POSIX_ONLY, clean_env, eyeshim_run, python

pytestmark = POSIX_ONLY


def test_not_installed_fails_and_says_why() -> None:
    result = python(["-m", "eyeshim", "check"])
    assert result.returncode == 1
    assert "  installed: no" in result.stdout
    assert result.stderr.startswith(
        "eyeshim check: FAILED: eyeshim is not installed: nothing installed it in this "
        "interpreter (no switch: neither 'eyeshim run' nor 'eyeshim enable')"
    )


def test_under_run_every_integration_is_proven() -> None:
    result = eyeshim_run(["-m", "eyeshim", "check"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "installed: yes, by the start-up hook of 'eyeshim run'" in out
    for name in ("socket", "urllib3", "pip"):
        line = next(line for line in out.splitlines() if line.startswith(f"  {name} "))
        assert " ok " in line and "connected to 127.0.0.1 in " in line, line
    assert "getaddrinfo  -       not installed in this interpreter" in out
    assert out.rstrip().endswith(
        "eyeshim check: OK: eyeshim changed the outcome of 3 connection(s) here"
    )


def test_json_report_shows_each_race() -> None:
    result = eyeshim_run(["--disable", "pip", "-m", "eyeshim", "check", "--json"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["failures"] == []
    by_name = {item["name"]: item for item in report["integrations"]}
    assert by_name["pip"]["verdict"] == "skipped"
    for name in ("socket", "urllib3"):
        item = by_name[name]
        assert item["verdict"] == "proven"
        assert item["connected_to"] == "127.0.0.1"
        # The broken address first, then the working one after the attempt delay;
        # stock would have waited the whole 3 s timeout.
        assert len(item["attempts"]) == 2 and item["attempts"][1] == "127.0.0.1"
        assert 0.2 <= item["elapsed"] < 3.0


GEVENT = """\
import sys, types
monkey = types.ModuleType("gevent.monkey")
monkey.is_module_patched = lambda name: name == "socket"
sys.modules["gevent.monkey"] = monkey
from eyeshim.cli import check
sys.exit(check.main(sys.argv[1:]))
"""


def test_stepping_aside_is_a_failure_with_the_reason() -> None:
    result = eyeshim_run(["-c", GEVENT])
    assert result.returncode == 1
    assert "eyeshim check: FAILED: socket: stepped aside: gevent monkey-patched socket" in (
        result.stderr
    )
    assert "  socket       FAILED  stepped aside: gevent monkey-patched socket" in result.stdout


def test_quiet_prints_only_failures() -> None:
    ok = eyeshim_run(["--integrations", "socket", "-m", "eyeshim", "check", "-q"])
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    bad = python(["-m", "eyeshim", "check", "--quiet"], clean_env(EYESHIM_ENABLED="0"))
    assert bad.returncode == 1 and bad.stdout == ""
    assert "FAILED: eyeshim is not installed" in bad.stderr


def test_a_timeout_shorter_than_the_attempt_delay_is_refused() -> None:
    result = eyeshim_run(["-m", "eyeshim", "check", "--timeout", "100ms"])
    assert result.returncode == 2
    assert "must be longer than the attempt delay (250 ms)" in result.stderr


def test_a_call_that_bypasses_eyeshim_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # An integration that says it is active while its calls do not reach the
    # engine (a stale reference to the stock function, say) must not pass.
    import socket

    import eyeshim
    from eyeshim.cli import check

    stock = socket.create_connection
    monkeypatch.setattr(
        check, "_connector", lambda name: lambda host, port, t: stock((host, port), t)
    )
    with eyeshim.installed(integrations=["socket"]):
        report = check.check(timeout=1.0)
    assert not report.ok
    (result,) = [r for r in report.results if r.name == "socket"]
    assert result.verdict == "failed"
    assert "did not go through eyeshim: no race was seen" in result.detail
    assert result.facts["elapsed"] >= 0.9  # stock waited the timeout on the broken address


def test_installed_by_the_program_itself() -> None:
    code = (
        "import sys, eyeshim; eyeshim.install(integrations=['socket'])\n"
        "from eyeshim.cli import check; sys.exit(check.main([]))"
    )
    result = python(["-c", code])
    assert result.returncode == 0, result.stderr
    assert "installed: yes, by eyeshim.install() in this program" in result.stdout


WITHOUT_URLLIB3 = """\
import sys
sys.modules["urllib3"] = None  # as in a venv that has only pip (pip vendors its own)
from eyeshim.cli import check
sys.exit(check.main(sys.argv[1:]))
"""


def test_an_integration_for_a_library_not_installed_is_skipped_not_failed() -> None:
    result = eyeshim_run(["-c", WITHOUT_URLLIB3, "--json"])
    assert result.returncode == 0, result.stdout + result.stderr
    by_name = {item["name"]: item for item in json.loads(result.stdout)["integrations"]}
    for name in ("urllib3", "urllib3-https"):
        assert by_name[name]["verdict"] == "skipped", by_name[name]
        assert by_name[name]["detail"] == "urllib3 is not installed here"
    # The TLS integrations are named for what they do, not raced: the
    # check's target speaks no TLS.
    assert by_name["https"]["verdict"] == by_name["pip-https"]["verdict"] == "skipped"
    assert by_name["https"]["detail"] == (
        "active; HTTPSConnection races through the TLS handshake (not raced here)"
    )
    assert by_name["socket"]["verdict"] == by_name["pip"]["verdict"] == "proven"


def test_every_integration_is_either_raced_or_described() -> None:
    from eyeshim.cli import check
    from eyeshim.config import INTEGRATIONS

    raced, described = set(check._ENTRY_POINTS), set(check._NOT_RACED)
    assert not raced & described
    assert raced | described == set(INTEGRATIONS)
