"""Outcomes of suite runs, stock against eyeshim: parsing, comparison, the summary tables.

Pure functions of text and data (no processes, no namespaces), so that the gate's rules are
unit-tested (integrations/tests/test_suites.py):

* a **regression** is a test whose stock outcome is good (passed, or an expected failure) and
  whose eyeshim outcome is anything else (failed, error, skipped, missing...), in the first run
  and again when both modes rerun it;
* a candidate that passes when eyeshim reruns it, or fails when stock reruns it, is **flaky**;
* a test that fails stock and passes with eyeshim, again in the reruns, is **fixed** (reported,
  never an error).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = [
    "GOOD",
    "OUTCOMES",
    "Comparison",
    "Run",
    "TestResult",
    "Verdict",
    "compare",
    "confirm",
    "counts_table",
    "module_outcome",
    "parse_junit",
    "parse_report",
    "verdict_table",
]

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "missing")
# Outcomes that mean "works": a stock test in one of these is held to it with eyeshim.
GOOD = frozenset({"passed", "xfailed"})
MODULE_SUFFIX = " (module)"


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a test class, whatever pytest guesses from the name

    outcome: str
    duration: float = 0.0
    detail: str = ""


@dataclass
class Run:
    """One run of one suite in one mode."""

    suite: str
    mode: str
    results: dict[str, TestResult] = field(default_factory=dict)
    seconds: float = 0.0
    # Problems that make the run unusable as evidence (crash, timeout, nothing ran).
    problems: list[str] = field(default_factory=list)
    # eyeshim mode: eyeshim's race counters summed over the run's processes.
    counters: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(OUTCOMES, 0)
        for result in self.results.values():
            out[result.outcome] = out.get(result.outcome, 0) + 1
        return out

    def merge(self, other: Run) -> None:
        """Fold a run of more of the same suite and mode into this one (CPython's modules run
        one process each)."""
        self.results.update(other.results)
        self.seconds += other.seconds
        self.problems.extend(other.problems)
        for key, value in other.counters.items():
            self.counters[key] = self.counters.get(key, 0.0) + value


def parse_report(text: str) -> tuple[dict[str, TestResult], dict[str, Any]]:
    """The plugin's JSON lines: per-test results (the last line for an id wins: flaky-style
    plugins report a test once per attempt) and the session line ({} if the run died first).
    Lines that do not parse (the last one of a killed run) are skipped."""
    results: dict[str, TestResult] = {}
    session: dict[str, Any] = {}
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if "session" in record:
            session = dict(record["session"])
            continue
        try:
            results[str(record["id"])] = TestResult(
                str(record["outcome"]),
                float(record.get("duration", 0.0)),
                str(record.get("detail", "")),
            )
        except (KeyError, TypeError, ValueError):
            continue
    return results, session


def parse_junit(text: str) -> dict[str, TestResult]:
    """CPython's regrtest ``--junit-xml`` file: one ``testcase`` per test, named by its id,
    with a ``failure``, ``error``, ``skipped``, ``output`` (expected failure) child or an
    ``outcome`` of UNEXPECTED_SUCCESS."""
    results: dict[str, TestResult] = {}
    root = ET.fromstring(text)
    for case in root.iter("testcase"):
        name = case.get("name")
        if not name:
            continue
        outcome, detail = "passed", ""
        for tag, kind in (
            ("error", "error"),
            ("failure", "failed"),
            ("skipped", "skipped"),
            ("output", "xfailed"),
        ):
            element = case.find(tag)
            if element is not None:
                outcome = kind
                if kind in ("error", "failed"):
                    detail = (element.text or element.get("message") or "").strip()
                break
        else:
            marker = case.find("outcome")
            if marker is not None and (marker.text or "") == "UNEXPECTED_SUCCESS":
                outcome = "xpassed"
        err = case.find("system-err")
        if detail and err is not None and err.text:
            detail += "\n---- stderr ----\n" + err.text[-1500:]
        try:
            duration = float(case.get("time", "0"))
        except ValueError:
            duration = 0.0
        results[name] = TestResult(outcome, duration, detail)
    return results


def module_outcome(exit_code: Optional[int]) -> str:
    """regrtest's verdict on one test file (run with --fail-env-changed): 0 passed; 3 (it
    changed the environment: dangling threads, files, altered warnings filters...) and 2
    (a test failed) failed; anything else (a crash, a timeout, a kill) an error."""
    if exit_code == 0:
        return "passed"
    if exit_code in (2, 3):
        return "failed"
    return "error"


@dataclass(frozen=True)
class Comparison:
    suite: str
    candidates: tuple[str, ...]  # good stock, something else with eyeshim
    fixed: tuple[str, ...]  # failed or error stock, passed with eyeshim
    other: tuple[str, ...]  # any other difference (a skip that ran, ...): informational


def _outcome(results: Mapping[str, TestResult], test: str) -> str:
    result = results.get(test)
    return "missing" if result is None else result.outcome


def compare(
    suite: str, stock: Mapping[str, TestResult], eyeshim: Mapping[str, TestResult]
) -> Comparison:
    candidates, fixed, other = [], [], []
    for test in sorted(set(stock) | set(eyeshim)):
        before, after = _outcome(stock, test), _outcome(eyeshim, test)
        if before == after:
            continue
        if before in GOOD:
            candidates.append(test)
        elif before in ("failed", "error") and after == "passed":
            fixed.append(test)
        else:
            other.append(test)
    return Comparison(suite, tuple(candidates), tuple(fixed), tuple(other))


@dataclass(frozen=True)
class Verdict:
    suite: str
    test: str
    kind: str  # "regression" | "fixed" | "flaky (eyeshim)" | "flaky (stock)"
    outcomes: tuple[str, ...]  # stock, eyeshim, stock rerun, eyeshim rerun ("-": not rerun)
    detail: str  # the failure output: eyeshim's (regression), stock's (fixed)


def confirm(
    comparison: Comparison,
    stock: Mapping[str, TestResult],
    eyeshim: Mapping[str, TestResult],
    stock_rerun: Optional[Mapping[str, TestResult]],
    eyeshim_rerun: Optional[Mapping[str, TestResult]],
) -> list[Verdict]:
    """Sort the candidates and the fixed tests after one rerun of each in both modes (None:
    no rerun was made, and every first verdict stands). A regression must fail again with
    eyeshim and pass again stock; a fix must pass again with eyeshim and fail again stock;
    anything else is flaky, named after the mode that changed its mind."""
    verdicts = []
    rerun = stock_rerun is not None and eyeshim_rerun is not None
    for test in (*comparison.candidates, *comparison.fixed):
        regression = test in comparison.candidates
        first = (_outcome(stock, test), _outcome(eyeshim, test))
        failing = eyeshim if regression else stock
        detail = failing[test].detail if test in failing else ""
        if not rerun:
            kind = "regression" if regression else "fixed"
            verdicts.append(Verdict(comparison.suite, test, kind, (*first, "-", "-"), detail))
            continue
        assert stock_rerun is not None and eyeshim_rerun is not None
        again = (_outcome(stock_rerun, test), _outcome(eyeshim_rerun, test))
        if regression:
            if again[1] == first[0] or again[1] in GOOD:
                kind = "flaky (eyeshim)"
            elif again[0] not in GOOD:
                kind = "flaky (stock)"
            else:
                kind = "regression"
        elif again[0] in GOOD:
            kind = "flaky (stock)"
        elif again[1] not in GOOD:
            kind = "flaky (eyeshim)"
        else:
            kind = "fixed"
        verdicts.append(Verdict(comparison.suite, test, kind, (*first, *again), detail))
    return verdicts


def _seconds(value: float) -> str:
    return f"{value:.0f} s"


COUNT_COLUMNS = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "missing")


def counts_table(rows: Sequence[tuple[str, Run]]) -> str:
    """Markdown: one row per (suite label, run), counts per outcome, time, problems."""
    header = ["suite", "mode", *COUNT_COLUMNS, "time", "eyeshim races"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(COUNT_COLUMNS) + 2)) + "|",
    ]
    previous = None
    for label, run in rows:
        counts = run.counts()
        races = (
            f"{int(run.counters.get('races', 0))}" if run.mode == "eyeshim" and run.counters else ""
        )
        if run.mode == "eyeshim" and not run.counters:
            races = "?"
        cells = [
            label if label != previous else "",
            run.mode + (" (" + "; ".join(run.problems) + ")" if run.problems else ""),
            *(str(counts[c]) for c in COUNT_COLUMNS),
            _seconds(run.seconds),
            races,
        ]
        previous = label
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict_table(
    rows: Iterable[tuple[str, Comparison, Sequence[Verdict]]],
) -> str:
    """Markdown: per suite, the regressions, flaky tests and tests fixed by eyeshim."""
    lines = [
        "| suite | regressions | flaky | fixed by eyeshim | other differences |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, comparison, verdicts in rows:
        kinds = [v.kind for v in verdicts]
        flaky = sum(1 for kind in kinds if kind.startswith("flaky"))
        lines.append(
            f"| {label} | {kinds.count('regression')} | {flaky} | {kinds.count('fixed')} "
            f"| {len(comparison.other)} |"
        )
    return "\n".join(lines)
