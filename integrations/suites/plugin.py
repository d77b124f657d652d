"""The suite gate's pytest plugin: records every test's outcome, and installs eyeshim first.

The harness copies this file into each suite's environment as ``eyeshim_suite_plugin.py`` and
runs ``python -m pytest -p eyeshim_suite_plugin ...`` in both modes; it depends on nothing but
pytest (and eyeshim, in eyeshim mode), so any other pytest suite can be run the same way::

    EYESHIM_SUITE_MODE=eyeshim EYESHIM_SUITE_REPORT=out.jsonl \\
        python -m pytest -p eyeshim_suite_plugin tests/

Environment:

``EYESHIM_SUITE_MODE``
    ``eyeshim``: ``eyeshim.install()`` runs when pytest imports the plugin, which ``-p`` does
    before any conftest.py or test module is imported, so the suite never sees a stock
    ``create_connection``. Anything else (``stock``): eyeshim is not imported at all.
``EYESHIM_SUITE_REPORT``
    A file that gets one JSON line per finished test (``{"id", "outcome", "duration",
    "detail"}``), appended as the test ends so that a run killed half-way still tells what it
    ran, and a last line ``{"session": {...}}`` with pytest's exit status and, in eyeshim mode,
    the integrations' states and eyeshim's race counters (proof that eyeshim was exercised).
``EYESHIM_SUITE_SELECT``
    A file of node ids, one a line: only those tests run (the harness's reruns).

Outcomes: ``passed``, ``failed`` (the test body), ``error`` (set-up or tear-down, or a
collection error), ``skipped``, ``xfailed``, ``xpassed``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import pytest

MODE_VARIABLE = "EYESHIM_SUITE_MODE"
REPORT_VARIABLE = "EYESHIM_SUITE_REPORT"
SELECT_VARIABLE = "EYESHIM_SUITE_SELECT"
# Failure text kept per test: the end of pytest's report (where the exception is), and the end
# of each captured section (stdout, stderr, log).
DETAIL_LIMIT = 4000
SECTION_LIMIT = 1500

_MODE = os.environ.get(MODE_VARIABLE, "stock")

if _MODE == "eyeshim":
    import eyeshim

    eyeshim.install()


def _outcome(report: pytest.TestReport) -> str:
    """The outcome one phase's report stands for."""
    if hasattr(report, "wasxfail"):
        if report.skipped:
            return "xfailed"
        if report.passed:
            return "xpassed"
    if report.passed:
        return "passed"
    if report.skipped:
        return "skipped"
    return "failed" if report.when == "call" else "error"


def merge(previous: Optional[str], phase: str, outcome: str) -> str:
    """Fold one phase's outcome into the test's: a failure in any phase wins over a pass, a
    set-up skip stands for the test, and a tear-down error spoils a pass."""
    if previous is None:
        return outcome
    if phase == "teardown":
        if outcome == "error" and previous in ("passed", "xpassed", "xfailed", "skipped"):
            return "error"
        return previous
    if previous in ("failed", "error"):
        return previous
    return outcome


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _detail(report: Any) -> str:
    """The failure, then each captured section's end, after its lines about eyeshim (its log
    records say what each attempt did), wherever they were."""
    parts = [_tail(str(getattr(report, "longreprtext", "") or ""), DETAIL_LIMIT)]
    for name, content in report.sections:
        ours = [line for line in content.splitlines() if "eyeshim" in line][-20:]
        if ours:
            parts.append(f"---- {name}: eyeshim's lines ----\n" + "\n".join(ours))
        parts.append(f"---- {name} ----\n{_tail(content, SECTION_LIMIT)}")
    return "\n".join(parts)


class Recorder:
    """Collects per-test outcomes from the reports and appends them to the report file."""

    def __init__(self, path: Optional[str], selected: Optional[set[str]]) -> None:
        self.path = path
        self.selected = selected
        self.outcomes: dict[str, str] = {}
        self.details: dict[str, str] = {}
        self.durations: dict[str, float] = {}

    def _write(self, record: dict[str, Any]) -> None:
        if not self.path:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if self.selected is None:
            return
        keep = [item for item in items if item.nodeid in self.selected]
        dropped = [item for item in items if item.nodeid not in self.selected]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._write(
                {
                    "id": report.nodeid or "<collection>",
                    "outcome": "error",
                    "duration": 0.0,
                    "detail": _detail(report),
                }
            )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        nodeid = report.nodeid
        outcome = _outcome(report)
        self.outcomes[nodeid] = merge(self.outcomes.get(nodeid), report.when, outcome)
        self.durations[nodeid] = self.durations.get(nodeid, 0.0) + report.duration
        if report.failed:
            self.details[nodeid] = self.details.get(nodeid, "") + _detail(report)
        if report.when == "teardown":
            self._write(
                {
                    "id": nodeid,
                    "outcome": self.outcomes[nodeid],
                    "duration": round(self.durations[nodeid], 4),
                    "detail": self.details.pop(nodeid, ""),
                }
            )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        info: dict[str, Any] = {"mode": _MODE, "exitstatus": int(exitstatus)}
        if _MODE == "eyeshim":
            from eyeshim import events

            info["integrations"] = eyeshim.installed_integrations()
            info["counters"] = events.counters()
        self._write({"session": info})

    def pytest_report_header(self) -> str:
        if _MODE == "eyeshim":
            return f"eyeshim: installed {eyeshim.installed_integrations()}"
        return "eyeshim: not installed (stock)"


def _read_selection(path: Optional[str]) -> Optional[set[str]]:
    if not path:
        return None
    with open(path, encoding="utf-8") as fh:
        return {line.rstrip("\n") for line in fh if line.strip()}


def pytest_configure(config: pytest.Config) -> None:
    recorder = Recorder(
        os.environ.get(REPORT_VARIABLE), _read_selection(os.environ.get(SELECT_VARIABLE))
    )
    config.pluginmanager.register(recorder, "eyeshim-suite-recorder")
