"""``python -m integrations.suites``: the stacks' own test suites, stock and with eyeshim.

::

    python -m integrations.suites [--check] [--out docs/suites.md] [--suite NAME ...]
                                  [--jobs N] [--workdir DIR] [--no-rerun]
    python -m integrations.suites --freeze [--suite NAME ...]   # rewrite constraints/*.txt
    python -m integrations.suites --cleanup                     # namespaces of crashed runs

Needs root and ``ip netns`` (every run is in a loopback-only namespace); without them it says
why and exits 0. ``--check`` exits 1 on any regression (a test that passes stock and fails
with eyeshim, in the first run and in a rerun of both modes), on a run that crashed or timed
out, and on an eyeshim run in which eyeshim raced no connection.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import importlib.util
import platform
import re
import shutil
import signal
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

from integrations.suites.envs import (
    SetupError,
    Workdir,
    check_pip,
    fetch_sources,
    freeze,
    make_env,
    sha256,
)
from integrations.suites.gate import MODES, Job, cpython_jobs, pytest_job, run_jobs
from integrations.suites.netns import LoopbackNamespace, cleanup_stale, unavailable_reason
from integrations.suites.results import (
    GOOD,
    MODULE_SUFFIX,
    Comparison,
    Run,
    Verdict,
    compare,
    confirm,
    counts_table,
    verdict_table,
)
from integrations.suites.versions import CPYTHON_TESTS, SUITES, CPythonTests, PytestSuite

__all__ = ["main", "render_doc", "update_doc"]

Suite = Union[PytestSuite, CPythonTests]
DEFAULT_JOBS = 2
DOC_BEGIN = "<!-- suites:begin (written by python -m integrations.suites --out) -->"
DOC_END = "<!-- suites:end -->"
DETAIL_LINES = 60


def _say(text: str = "") -> None:
    print(text, flush=True)


def cpython_unavailable(tests: CPythonTests) -> Optional[str]:
    if importlib.util.find_spec("test.libregrtest") is None:
        return (
            "this Python has no test package (python -m test); Debian ships it as "
            f"libpython{sys.version_info[0]}.{sys.version_info[1]}-testsuite"
        )
    return None


def _available_modules(tests: CPythonTests) -> list[str]:
    return [m for m in tests.modules if importlib.util.find_spec(f"test.{m}") is not None]


def _label(suite: Suite) -> str:
    if isinstance(suite, PytestSuite):
        return f"{suite.label} ({', '.join(suite.paths)})"
    return f"{suite.label} (python -m test)"


def _setup(
    suites: Sequence[Suite], workdir: Workdir
) -> tuple[dict[str, tuple[Path, Path]], dict[str, str]]:
    """Sources and environments, all at once (it is mostly waiting on PyPI). Returns
    {suite: (python, source tree)} and {suite: why it is skipped}."""
    ready: dict[str, tuple[Path, Path]] = {}
    skipped: dict[str, str] = {}
    check_pip()

    def one(suite: Suite) -> tuple[Path, Path]:
        start = time.monotonic()
        if isinstance(suite, PytestSuite):
            tree = fetch_sources(suite, workdir)
            fetched = time.monotonic()
            python = make_env(
                suite.name, [suite.requirement, *suite.requirements], suite.constraints, workdir
            )
            _say(
                f"  {suite.name}: sdist {fetched - start:.0f} s, "
                f"environment {time.monotonic() - fetched:.0f} s"
            )
            return python, tree
        python = make_env(suite.name, [], None, workdir)
        _say(f"  {suite.name}: environment {time.monotonic() - start:.0f} s")
        return python, workdir.runs

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(suites))) as pool:
        futures = {}
        for suite in suites:
            if isinstance(suite, CPythonTests):
                reason = cpython_unavailable(suite)
                if reason:
                    skipped[suite.name] = reason
                    continue
            futures[suite.name] = pool.submit(one, suite)
        for name, future in futures.items():
            ready[name] = future.result()  # SetupError propagates
    return ready, skipped


def _jobs_for(
    suites: Sequence[Suite],
    ready: dict[str, tuple[Path, Path]],
    workdir: Workdir,
    candidates: Optional[dict[str, tuple[str, ...]]] = None,
) -> list[Job]:
    """Stock next to eyeshim for each suite, longest first; with ``candidates``, only those
    tests (the reruns)."""
    jobs: list[Job] = []
    ordered = sorted(
        (s for s in suites if s.name in ready),
        key=lambda s: -s.seconds if isinstance(s, PytestSuite) else 0,
    )
    tag = "" if candidates is None else "-rerun"
    for suite in ordered:
        python, tree = ready[suite.name]
        wanted = None if candidates is None else candidates.get(suite.name)
        if candidates is not None and not wanted:
            continue
        if isinstance(suite, PytestSuite):
            for mode in MODES:
                jobs.append(
                    pytest_job(suite, mode, python, tree, workdir.runs, select=wanted, tag=tag)
                )
            continue
        modules = _available_modules(suite)
        select: Optional[dict[str, list[str]]] = None
        if wanted is not None:
            select = {}
            for test in wanted:
                if test.endswith(MODULE_SUFFIX):
                    select[test[: -len(MODULE_SUFFIX)]] = []  # the whole file
                else:
                    module = test.split(".")[1] if test.startswith("test.") else test
                    if select.get(module) != []:
                        select.setdefault(module, []).append(test)
            modules = [m for m in modules if m in select]
        by_mode = {
            mode: cpython_jobs(
                suite, mode, python, workdir.runs, modules=modules, select=select, tag=tag
            )
            for mode in MODES
        }
        for pair in zip(*by_mode.values()):
            jobs.extend(pair)
    return jobs


def _merge(runs: Sequence[Run]) -> dict[tuple[str, str], Run]:
    merged: dict[tuple[str, str], Run] = {}
    for run in runs:
        key = (run.suite, run.mode)
        if key in merged:
            merged[key].merge(run)
        else:
            merged[key] = Run(run.suite, run.mode)
            merged[key].merge(run)
    return merged


def _indent(text: str, lines: int = DETAIL_LINES) -> str:
    body = text.rstrip().splitlines()
    if len(body) > lines:
        body = [f"... ({len(body) - lines} lines above)", *body[-lines:]]
    return textwrap.indent("\n".join(body), "    ")


def _verdict_lines(verdicts: Sequence[Verdict], *, details: int = 0) -> list[str]:
    """One entry per verdict; with ``details``, that many last lines of eyeshim's failure."""
    out = []
    for v in verdicts:
        stock, eyeshim, stock_again, eyeshim_again = v.outcomes
        out.append(
            f"{v.kind.upper()}: {v.suite} {v.test}\n"
            f"  stock {stock}, rerun {stock_again}; eyeshim {eyeshim}, rerun {eyeshim_again}"
        )
        if details and v.detail:
            whose = "eyeshim's" if v.outcomes[0] in GOOD else "stock's"
            out.append(f"  {whose} failure:\n" + _indent(v.detail, details))
    return out


def render_doc(
    rows: Sequence[tuple[str, Run]],
    comparisons: Sequence[tuple[str, Comparison, Sequence[Verdict]]],
    skipped: dict[str, str],
    seconds: float,
) -> str:
    """The generated part of docs/suites.md."""
    regressions = [v for _, _, vs in comparisons for v in vs if v.kind == "regression"]
    flaky = [v for _, _, vs in comparisons for v in vs if v.kind.startswith("flaky")]
    fixed = [v for _, _, vs in comparisons for v in vs if v.kind == "fixed"]
    parts = [
        f"Last run: {datetime.date.today().isoformat()}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; the gate took {seconds / 60:.1f} min.",
        "",
        counts_table(rows),
        "",
        verdict_table(comparisons),
        "",
    ]
    for title, items in (
        ("Regressions", _verdict_lines(regressions)),
        ("Flaky (not counted)", _verdict_lines(flaky)),
        ("Fixed by eyeshim (fail stock, pass with eyeshim, twice)", _verdict_lines(fixed)),
        ("Skipped suites", [f"{name}: {why}" for name, why in skipped.items()]),
    ):
        if items:
            parts += [
                f"{title}:",
                "",
                *(
                    f"- `{item}`" if "\n" not in item else "- " + item.replace("\n", "  \n  ")
                    for item in items
                ),
                "",
            ]
    return "\n".join(parts).rstrip() + "\n"


def update_doc(path: Path, generated: str) -> None:
    """Replace the marked part of ``path`` (or write the file, with the markers)."""
    block = f"{DOC_BEGIN}\n{generated}{DOC_END}"
    text = path.read_text() if path.exists() else ""
    if DOC_BEGIN in text and DOC_END in text:
        text = re.sub(
            re.escape(DOC_BEGIN) + r".*?" + re.escape(DOC_END),
            lambda _: block,
            text,
            count=1,
            flags=re.S,
        )
    else:
        text = (text.rstrip() + "\n\n" if text else "# The stacks' own test suites\n\n") + block
    path.write_text(text.rstrip() + "\n")


def _select(names: Optional[Sequence[str]]) -> list[Suite]:
    everything: list[Suite] = [*SUITES, CPYTHON_TESTS]
    if not names:
        return everything
    known = {s.name: s for s in everything}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown suite(s) {unknown}; known: {', '.join(known)}")
    return [known[n] for n in names]


def _sigterm(*_: Any) -> None:
    raise SystemExit(143)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m integrations.suites",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="exit 1 on regressions (CI)")
    parser.add_argument("--out", type=Path, help="write the counts into this markdown file")
    parser.add_argument("--suite", action="append", help="run only this suite (repeatable)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="runs at once")
    parser.add_argument("--workdir", type=Path, help="keep downloads and venvs here (reused)")
    parser.add_argument("--no-rerun", action="store_true", help="no rerun of candidates")
    parser.add_argument("--freeze", action="store_true", help="rewrite constraints/*.txt")
    parser.add_argument("--cleanup", action="store_true", help="remove stale namespaces")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)

    if args.cleanup:
        removed = cleanup_stale()
        _say(
            f"removed {len(removed)} stale namespace(s){': ' if removed else ''}"
            + " ".join(removed)
        )
        return 0
    suites = _select(args.suite)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="eyeshim-suites-"))
    workdir = Workdir(root)
    try:
        if args.freeze:
            for suite in suites:
                if isinstance(suite, PytestSuite):
                    target = freeze(suite, workdir)
                    sdist = workdir.downloads / f"{suite.project}-{suite.version}.tar.gz"
                    _say(f"{target}: written; {sdist.name} sha256 {sha256(sdist)}")
            return 0
        reason = unavailable_reason()
        if reason:
            _say(f"suites: skipped: {reason}")
            return 0
        return _gate(args, suites, workdir)
    except SetupError as exc:
        _say(f"suites: setup failed: {exc}")
        return 2
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


def _gate(args: argparse.Namespace, suites: Sequence[Suite], workdir: Workdir) -> int:
    started = time.monotonic()
    stale = cleanup_stale()
    if stale:
        _say(f"removed stale namespaces of crashed runs: {' '.join(stale)}")
    _say("== suites: fetching sources and building environments")
    ready, skipped = _setup(suites, workdir)
    for name, why in skipped.items():
        _say(f"  {name}: skipped: {why}")
    for suite in suites:
        if isinstance(suite, PytestSuite):
            for test, why in suite.deselect:
                _say(f"  {suite.name}: left out {test}: {why}")
    setup_seconds = time.monotonic() - started
    _say(f"  ready in {setup_seconds:.0f} s (work directory {workdir.root})")

    slots = [LoopbackNamespace.for_slot(i) for i in range(max(1, args.jobs))]
    try:
        for slot in slots:
            slot.create()
        _say(f"== suites: running, {len(slots)} at a time, each in a loopback-only namespace")
        first = _merge(run_jobs(_jobs_for(suites, ready, workdir), slots, progress=sys.stdout))
        comparisons = {
            s.name: compare(
                s.name, first[(s.name, "stock")].results, first[(s.name, "eyeshim")].results
            )
            for s in suites
            if (s.name, "stock") in first
        }
        candidates = {
            name: (*c.candidates, *c.fixed)
            for name, c in comparisons.items()
            if c.candidates or c.fixed
        }
        again: dict[tuple[str, str], Run] = {}
        if candidates and not args.no_rerun:
            count = sum(len(c) for c in candidates.values())
            _say(f"== suites: rerunning {count} test(s) whose outcome eyeshim changed, both modes")
            again = _merge(
                run_jobs(_jobs_for(suites, ready, workdir, candidates), slots, progress=sys.stdout)
            )
    finally:
        for slot in slots:
            slot.delete()

    verdicts: dict[str, list[Verdict]] = {}
    for name, comparison in comparisons.items():
        rerun = (name, "stock") in again
        verdicts[name] = confirm(
            comparison,
            first[(name, "stock")].results,
            first[(name, "eyeshim")].results,
            again[(name, "stock")].results if rerun else None,
            again[(name, "eyeshim")].results if rerun else None,
        )
    seconds = time.monotonic() - started
    return _report(args, suites, first, comparisons, verdicts, skipped, seconds)


def _report(
    args: argparse.Namespace,
    suites: Sequence[Suite],
    first: dict[tuple[str, str], Run],
    comparisons: dict[str, Comparison],
    verdicts: dict[str, list[Verdict]],
    skipped: dict[str, str],
    seconds: float,
) -> int:
    labels = {s.name: _label(s) for s in suites}
    rows = [
        (labels[s.name], first[(s.name, mode)])
        for s in suites
        for mode in MODES
        if (s.name, mode) in first
    ]
    problems = []
    for label, run in rows:
        problems += [f"{label} {run.mode}: {p}" for p in run.problems]
        if run.mode == "eyeshim" and not run.counters.get("races"):
            problems.append(f"{label} eyeshim: eyeshim raced no connection (was it installed?)")
        if run.mode == "stock" and not run.results:
            problems.append(f"{label} stock: no test ran")
    table_rows = [(labels[name], c, verdicts[name]) for name, c in comparisons.items()]
    all_verdicts = [v for vs in verdicts.values() for v in vs]
    regressions = [v for v in all_verdicts if v.kind == "regression"]

    _say()
    _say("== suites: results (counts per test; 'missing': ran stock, not with eyeshim)")
    _say(counts_table(rows))
    _say()
    _say(verdict_table(table_rows))
    for line in _verdict_lines([v for v in all_verdicts if v.kind == "fixed"]):
        _say(line)
    for line in _verdict_lines([v for v in all_verdicts if v.kind.startswith("flaky")], details=25):
        _say(line)
    for line in _verdict_lines(regressions, details=DETAIL_LINES):
        _say(line)
    for problem in problems:
        _say(f"PROBLEM: {problem}")
    _say(
        f"suites: {len(regressions)} regression(s), {len(problems)} problem(s); "
        f"{seconds / 60:.1f} min"
    )
    if args.out:
        update_doc(args.out, render_doc(rows, table_rows, skipped, seconds))
        _say(f"wrote {args.out}")
    if args.check and (regressions or problems):
        return 1
    return 0
