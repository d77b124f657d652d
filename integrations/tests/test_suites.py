"""The suite gate's own logic (integrations/suites): report parsing, the regression rules, the
tables, the plugin (in a child pytest), the pins, and the namespace (as root only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from integrations.lab import NETNS_RUN, REPO_ROOT
from integrations.suites import netns
from integrations.suites.cli import DOC_BEGIN, DOC_END, update_doc
from integrations.suites.envs import lock_constraints
from integrations.suites.plugin import MODE_VARIABLE, REPORT_VARIABLE, SELECT_VARIABLE, merge
from integrations.suites.results import (
    MODULE_SUFFIX,
    Run,
    TestResult,
    compare,
    confirm,
    counts_table,
    module_outcome,
    parse_junit,
    parse_report,
    verdict_table,
)
from integrations.suites.versions import CPYTHON_TESTS, SUITES


def _results(**outcomes: str) -> dict[str, TestResult]:
    return {
        test: TestResult(outcome, 0.1, f"{test} said {outcome}")
        for test, outcome in outcomes.items()
    }


def test_parse_report_last_line_wins_and_garbage_is_skipped() -> None:
    text = "\n".join(
        [
            json.dumps({"id": "t::a", "outcome": "failed", "duration": 0.5, "detail": "boom"}),
            json.dumps({"id": "t::a", "outcome": "passed", "duration": 0.2}),  # a flaky retry
            json.dumps({"id": "t::b", "outcome": "skipped"}),
            "not json",
            json.dumps({"session": {"mode": "eyeshim", "exitstatus": 1, "counters": {"races": 3}}}),
            '{"id": "t::c", "outc',  # the last line of a killed run
        ]
    )
    results, session = parse_report(text)
    assert results == {
        "t::a": TestResult("passed", 0.2, ""),
        "t::b": TestResult("skipped", 0.0, ""),
    }
    assert session["counters"] == {"races": 3}
    assert parse_report("")[1] == {}


def test_parse_junit_kinds() -> None:
    xml = textwrap.dedent(
        """\
        <testsuites><testsuite>
          <testcase name="test.test_x.A.test_ok" status="run" result="completed" time="0.01" />
          <testcase name="test.test_x.A.test_fail" time="0.02">
            <failure type="AssertionError" message="m">Traceback: boom</failure>
            <system-err>stderr text</system-err>
          </testcase>
          <testcase name="test.test_x.A.test_err"><error message="e">Traceback</error></testcase>
          <testcase name="test.test_x.A.test_skip"><skipped>no network</skipped></testcase>
          <testcase name="test.test_x.A.test_xfail"><output message="x">expected</output></testcase>
          <testcase name="test.test_x.A.test_xpass"><outcome>UNEXPECTED_SUCCESS</outcome></testcase>
        </testsuite></testsuites>
        """
    )
    results = parse_junit(xml)
    assert {k.rsplit(".", 1)[1]: v.outcome for k, v in results.items()} == {
        "test_ok": "passed",
        "test_fail": "failed",
        "test_err": "error",
        "test_skip": "skipped",
        "test_xfail": "xfailed",
        "test_xpass": "xpassed",
    }
    detail = results["test.test_x.A.test_fail"].detail
    assert "Traceback: boom" in detail and "stderr text" in detail
    assert results["test.test_x.A.test_fail"].duration == pytest.approx(0.02)


def test_module_outcome() -> None:
    assert module_outcome(0) == "passed"
    assert module_outcome(3) == "failed"  # env changed (dangling threads...)
    assert module_outcome(2) == "failed"
    assert module_outcome(None) == "error"
    assert module_outcome(-9) == "error"


def test_compare_sorts_differences() -> None:
    stock = _results(
        a="passed", b="passed", c="failed", d="skipped", e="xfailed", f="passed", g="passed"
    )
    eyeshim = _results(a="passed", b="failed", c="passed", d="passed", e="failed", f="skipped")
    comparison = compare("s", stock, eyeshim)
    # g did not run with eyeshim: "missing" is a regression candidate too.
    assert comparison.candidates == ("b", "e", "f", "g")
    assert comparison.fixed == ("c",)
    assert comparison.other == ("d",)


def test_confirm_after_reruns() -> None:
    stock = _results(real="passed", flaky="passed", shaky="passed", gone="passed")
    eyeshim = _results(real="failed", flaky="error", shaky="failed")
    comparison = compare("s", stock, eyeshim)
    verdicts = confirm(
        comparison,
        stock,
        eyeshim,
        _results(real="passed", flaky="passed", shaky="failed", gone="passed"),
        _results(real="failed", flaky="passed", shaky="failed"),
    )
    kinds = {v.test: v.kind for v in verdicts}
    assert kinds == {
        "real": "regression",
        "flaky": "flaky (eyeshim)",
        "shaky": "flaky (stock)",  # stock fails its rerun too: no evidence against eyeshim
        "gone": "regression",
    }
    real = next(v for v in verdicts if v.test == "real")
    assert real.outcomes == ("passed", "failed", "passed", "failed")
    assert real.detail == "real said failed"
    # Without reruns every candidate stands.
    unconfirmed = confirm(comparison, stock, eyeshim, None, None)
    assert {v.kind for v in unconfirmed} == {"regression"}
    assert unconfirmed[0].outcomes[2:] == ("-", "-")


def test_confirm_fixes_after_reruns() -> None:
    stock = _results(fixed="failed", lucky="failed", unlucky="error")
    eyeshim = _results(fixed="passed", lucky="passed", unlucky="passed")
    comparison = compare("s", stock, eyeshim)
    assert comparison.fixed == ("fixed", "lucky", "unlucky")
    verdicts = confirm(
        comparison,
        stock,
        eyeshim,
        _results(fixed="failed", lucky="passed", unlucky="error"),
        _results(fixed="passed", lucky="passed", unlucky="failed"),
    )
    assert {v.test: v.kind for v in verdicts} == {
        "fixed": "fixed",
        "lucky": "flaky (stock)",  # stock passes its rerun: it was stock's flake
        "unlucky": "flaky (eyeshim)",
    }
    assert verdicts[0].detail == "fixed said failed"  # stock's failure
    assert {v.kind for v in confirm(comparison, stock, eyeshim, None, None)} == {"fixed"}


def test_tables() -> None:
    stock = Run("s", "stock", _results(a="passed", b="failed", c="skipped"), seconds=61.2)
    eyeshim = Run("s", "eyeshim", _results(a="passed", b="failed"), seconds=59.0)
    eyeshim.counters = {"races": 12.0}
    broken = Run("t", "eyeshim", {}, problems=["killed after 1200 s"])
    table = counts_table([("suite 1.0", stock), ("suite 1.0", eyeshim), ("other", broken)])
    lines = table.splitlines()
    assert lines[0].startswith("| suite | mode | passed | failed | error | skipped |")
    assert lines[2] == "| suite 1.0 | stock | 1 | 1 | 0 | 1 | 0 | 0 | 0 | 61 s |  |"
    assert lines[3] == "|  | eyeshim | 1 | 1 | 0 | 0 | 0 | 0 | 0 | 59 s | 12 |"
    assert "eyeshim (killed after 1200 s)" in lines[4] and lines[4].endswith("| ? |")
    comparison = compare("s", stock.results, eyeshim.results)
    verdicts = confirm(comparison, stock.results, eyeshim.results, None, None)
    assert verdict_table([("suite 1.0", comparison, verdicts)]).splitlines()[2] == (
        "| suite 1.0 | 0 | 0 | 0 | 1 |"  # c: skipped stock, missing with eyeshim
    )


def test_run_merge_adds_modules() -> None:
    run = Run("cpython", "eyeshim")
    run.merge(Run("cpython", "eyeshim", _results(a="passed"), seconds=2, counters={"races": 1}))
    run.merge(Run("cpython", "eyeshim", _results(b="passed"), seconds=3, counters={"races": 2}))
    assert run.counts()["passed"] == 2 and run.seconds == 5 and run.counters == {"races": 3}


def test_plugin_merge_of_phases() -> None:
    assert merge(None, "setup", "passed") == "passed"
    assert merge("passed", "call", "failed") == "failed"
    assert merge("failed", "teardown", "passed") == "failed"
    assert merge("passed", "teardown", "error") == "error"  # a tear-down error spoils a pass
    assert merge("error", "call", "passed") == "error"
    assert merge(None, "setup", "skipped") == "skipped"
    assert merge("passed", "call", "xfailed") == "xfailed"


_SAMPLE_SUITE = """
import pytest

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")

def test_pass():
    pass

def test_fail():
    assert 1 == 2, "one is not two"

def test_skip():
    pytest.skip("not here")

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False

def test_teardown_error(broken_teardown):
    pass

def test_setup_error(broken_setup):
    pass

def test_eyeshim_state():
    import socket
    print("patched" if "eyeshim" in repr(socket.create_connection) else "stock")
"""


def _run_plugin(
    tmp_path: Path, mode: str, select: list[str] | None = None
) -> tuple[dict[str, TestResult], dict[str, object]]:
    (tmp_path / "test_sample.py").write_text(_SAMPLE_SUITE)
    report = tmp_path / f"{mode}.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EYESHIM_", "PYTEST_"))}
    env.update({MODE_VARIABLE: mode, REPORT_VARIABLE: str(report), "PYTHONPATH": str(REPO_ROOT)})
    if select is not None:
        selection = tmp_path / "select.txt"
        selection.write_text("\n".join(select) + "\n")
        env[SELECT_VARIABLE] = str(selection)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "integrations.suites.plugin",
            "-p",
            "no:cacheprovider",
            "-q",
            "test_sample.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return parse_report(report.read_text())


def test_plugin_records_every_outcome(tmp_path: Path) -> None:
    results, session = _run_plugin(tmp_path, "stock")
    assert {k.split("::")[1]: v.outcome for k, v in results.items()} == {
        "test_pass": "passed",
        "test_fail": "failed",
        "test_skip": "skipped",
        "test_xfail": "xfailed",
        "test_teardown_error": "error",
        "test_setup_error": "error",
        "test_eyeshim_state": "passed",
    }
    assert "one is not two" in results["test_sample.py::test_fail"].detail
    assert "teardown broke" in results["test_sample.py::test_teardown_error"].detail
    assert session == {"mode": "stock", "exitstatus": 1}


def test_plugin_installs_eyeshim_and_selects(tmp_path: Path) -> None:
    results, session = _run_plugin(
        tmp_path,
        "eyeshim",
        select=["test_sample.py::test_pass", "test_sample.py::test_eyeshim_state"],
    )
    assert set(results) == {"test_sample.py::test_pass", "test_sample.py::test_eyeshim_state"}
    assert session["mode"] == "eyeshim" and session["exitstatus"] == 0
    integrations = session["integrations"]
    assert isinstance(integrations, dict) and integrations.get("socket") == "patched"
    assert "races" in session["counters"]  # type: ignore[operator]


def test_update_doc_replaces_only_the_marked_part(tmp_path: Path) -> None:
    doc = tmp_path / "suites.md"
    update_doc(doc, "first\n")
    assert doc.read_text().count(DOC_BEGIN) == 1 and "first" in doc.read_text()
    doc.write_text(
        "# Title\n\nhand-written\n\n" + doc.read_text().split("\n\n", 1)[1] + "\nafter\n"
    )
    update_doc(doc, "second\n")
    text = doc.read_text()
    assert "hand-written" in text and "after" in text and "second" in text and "first" not in text
    assert text.index(DOC_BEGIN) < text.index("second") < text.index(DOC_END)


def test_pins_live_in_one_place() -> None:
    names = [s.name for s in SUITES] + [CPYTHON_TESTS.name]
    assert len(names) == len(set(names))
    for suite in SUITES:
        lines = [
            line
            for line in suite.constraints.read_text().splitlines()
            if line and not line.startswith("#")
        ]
        assert lines, suite.name
        pinned = {line.split("==")[0].lower() for line in lines}
        assert all("==" in line for line in lines), suite.name
        # The suite's own project (and anything versions.py pins) is not pinned again there.
        assert suite.project.lower() not in pinned, suite.name
        for requirement in suite.requirements:
            if "==" in requirement:
                assert requirement.split("==")[0].lower() not in pinned
        assert len(suite.sdist_sha256) == 64


def test_lock_constraints(tmp_path: Path) -> None:
    (tmp_path / "dev-requirements.txt").write_text(
        'pytest==8.3.2; python_version>="3.8"\n'
        "# a comment\n"
        "trustme @ git+https://example.invalid/trustme@abc\n"
        "tornado==6.4.1  # pinned\n"
        "-r other.txt\n"
    )
    assert lock_constraints(tmp_path, "dev-requirements.txt") == (
        'pytest==8.3.2; python_version>="3.8"\ntornado==6.4.1\n'
    )
    assert lock_constraints(tmp_path, "") is None
    assert lock_constraints(tmp_path, "missing.txt") is None
    if sys.version_info >= (3, 11):
        (tmp_path / "uv.lock").write_text(
            '[[package]]\nname = "idna"\nversion = "2.8"\n\n'
            '[[package]]\nname = "idna"\nversion = "3.13"\n\n'
            '[[package]]\nname = "hypercorn"\nversion = "0.15.0"\n'
        )
        assert lock_constraints(tmp_path, "uv.lock") == "hypercorn==0.15.0\nidna==3.13\n"


def test_cpython_module_ids() -> None:
    assert all(m.startswith("test_") for m in CPYTHON_TESTS.modules)
    assert MODULE_SUFFIX.startswith(" ")  # never a test id of regrtest's


_PROBE = """
import errno, socket, time
out = {}
try:
    socket.create_connection(("240.0.0.1", 80), timeout=0.3)
except OSError as exc:
    out["tarpit"] = type(exc).__name__
try:
    socket.create_connection(("192.0.2.1", 80), timeout=0.3)
except OSError as exc:
    out["elsewhere"] = errno.errorcode.get(exc.errno, str(exc.errno))
try:
    socket.getaddrinfo("example.org", 80)
except socket.gaierror as exc:
    out["dns"] = "gaierror"
infos = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
out["localhost"] = sorted({i[4][0] for i in infos})
print(out)
"""


@pytest.mark.skipif(netns.unavailable_reason() is not None, reason="needs root and ip netns")
def test_namespace_is_loopback_only_with_a_tarpit() -> None:
    ns = netns.LoopbackNamespace(f"{netns.PREFIX}{os.getpid()}-test").create()
    try:
        out = subprocess.run(
            ns.wrap([sys.executable, "-c", _PROBE]), capture_output=True, text=True, timeout=60
        )
    finally:
        ns.delete()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(
        {
            "tarpit": "TimeoutError",
            "elsewhere": "ENETUNREACH",
            "dns": "gaierror",
            "localhost": ["127.0.0.1", "::1"],
        }
    )
    assert not (NETNS_RUN / ns.name).exists()
