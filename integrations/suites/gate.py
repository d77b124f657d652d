"""Running the suites: jobs (one suite, one mode, one process) in loopback-only namespaces.

Each job is one pytest run of a suite (or one regrtest run of one CPython test module) in one
mode; jobs run ``jobs`` at a time, each slot in its own namespace (so concurrent servers never
share a loopback), longest suites first, a suite's stock and eyeshim runs side by side so that
both see the same load. Processes are started from this (the main) thread, die with it
(PR_SET_PDEATHSIG), and are killed as a process group when they overrun their wall time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Optional

from integrations.procutil import die_with_parent
from integrations.suites.envs import PLUGIN_MODULE
from integrations.suites.netns import LoopbackNamespace
from integrations.suites.plugin import MODE_VARIABLE, REPORT_VARIABLE, SELECT_VARIABLE
from integrations.suites.results import (
    MODULE_SUFFIX,
    Run,
    TestResult,
    module_outcome,
    parse_junit,
    parse_report,
)
from integrations.suites.versions import CPythonTests, PytestSuite

__all__ = ["MODES", "Job", "cpython_jobs", "pytest_job", "run_jobs"]

MODES = ("stock", "eyeshim")
# Per test (pytest-timeout; regrtest's --timeout is per test file): generous for a loaded
# 2-core machine, short enough that a hang costs minutes, not the CI run.
TEST_TIMEOUT = 120
FILE_TIMEOUT = 300
# Per job, wall clock: a run past this is killed and its missing tests count as "missing".
JOB_TIMEOUT = 1200

_DROP_VARIABLES = {
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "VIRTUAL_ENV",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
}


def suite_environment(mode: str, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The environment of a suite process: this one's, less what would change the suites'
    behaviour (EYESHIM_*, proxies, PYTHONPATH, pytest options, CA bundles), plus CI=1 (urllib3's
    tests then allow 0.5 s instead of 0.1 s for the operations that must not time out, as on
    its own CI) and the plugin's mode."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EYESHIM_")
        and not k.lower().endswith("_proxy")
        and k not in _DROP_VARIABLES
    }
    env["CI"] = "1"
    env[MODE_VARIABLE] = mode
    if extra:
        env.update(extra)
    return env


@dataclass
class Job:
    suite: str
    mode: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    report: Path  # plugin JSON lines, or regrtest junit XML
    kind: str  # "pytest" | "regrtest"
    module: str = ""  # regrtest: the test module
    stats: Optional[Path] = None  # regrtest in eyeshim mode: EYESHIM_STATS file
    timeout: float = JOB_TIMEOUT
    # Filled in by run_jobs:
    exit_code: Optional[int] = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.suite}{' ' + self.module if self.module else ''} {self.mode}"


def _job(
    suite: str,
    mode: str,
    name: str,
    run_dir: Path,
    argv: list[str],
    cwd: Path,
    report: Path,
    kind: str,
    extra: dict[str, str],
) -> Job:
    env = suite_environment(mode, extra)
    return Job(suite, mode, argv, cwd, env, run_dir / f"{name}.log", report, kind)


def pytest_job(
    suite: PytestSuite,
    mode: str,
    python: Path,
    source: Path,
    run_dir: Path,
    *,
    select: Optional[Sequence[str]] = None,
    tag: str = "",
) -> Job:
    name = f"{suite.name}-{mode}{tag}"
    report = run_dir / f"{name}.jsonl"
    report.unlink(missing_ok=True)
    extra = {REPORT_VARIABLE: str(report)}
    if select is not None:
        selection = run_dir / f"{name}.select"
        selection.write_text("".join(f"{test}\n" for test in select))
        extra[SELECT_VARIABLE] = str(selection)
    argv = [
        str(python),
        "-m",
        "pytest",
        "-p",
        PLUGIN_MODULE,
        "-p",
        "no:cacheprovider",
        # Tracebacks as Python prints them: pytest's own formatting re-parses source files,
        # which trips CPython 3.11.7's "AST constructor recursion depth mismatch" after a
        # deep recursion and ends the whole session with INTERNALERROR.
        "--tb=native",
        "-q",
        "-rN",
        f"--timeout={TEST_TIMEOUT}",
        *(f"--deselect={test}" for test, _ in suite.deselect),
        *suite.paths,
    ]
    return _job(suite.name, mode, name, run_dir, argv, source, report, "pytest", extra)


def cpython_jobs(
    tests: CPythonTests,
    mode: str,
    python: Path,
    run_dir: Path,
    *,
    modules: Optional[Sequence[str]] = None,
    select: Optional[dict[str, list[str]]] = None,
    tag: str = "",
) -> list[Job]:
    """One job per test module: ``python -m test MODULE --fail-env-changed --junit-xml ...``,
    under ``eyeshim run`` in eyeshim mode (which installs eyeshim in the interpreter, and in
    any it starts, before the first socket import). ``select`` maps a module to the test ids
    to rerun (empty list: the whole module)."""
    jobs = []
    for module in modules if modules is not None else tests.modules:
        name = f"{tests.name}-{module}-{mode}{tag}"
        report = run_dir / f"{name}.xml"
        report.unlink(missing_ok=True)
        stats = run_dir / f"{name}.stats" if mode == "eyeshim" else None
        argv = [
            "-m",
            "test",
            module,
            "--fail-env-changed",
            "--timeout",
            str(FILE_TIMEOUT),
            "--junit-xml",
            str(report),
        ]
        ids = (select or {}).get(module)
        if ids:
            match = run_dir / f"{name}.match"
            match.write_text("".join(f"{test}\n" for test in ids))
            argv += ["--matchfile", str(match)]
        extra: dict[str, str] = {}
        if stats is not None:
            stats.unlink(missing_ok=True)
            argv = [str(python.parent / "eyeshim"), "run", *argv]
            extra["EYESHIM_STATS"] = str(stats)
        else:
            argv = [str(python), *argv]
        job = _job(tests.name, mode, name, run_dir, argv, run_dir, report, "regrtest", extra)
        job.module, job.stats = module, stats
        jobs.append(job)
    return jobs


def _read_stats(path: Optional[Path]) -> dict[str, float]:
    """Sum of the counters lines ``EYESHIM_STATS`` collected (one per interpreter)."""
    totals: dict[str, float] = {}
    if path is None or not path.exists():
        return totals
    for line in path.read_text().splitlines():
        try:
            values = json.loads(line)["counters"]
        except (ValueError, KeyError, TypeError):
            continue
        for key, value in values.items():
            totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def _log_tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def collect(job: Job) -> Run:
    """The job's results, from its report file, exit status and log."""
    run = Run(job.suite, job.mode, seconds=job.seconds, problems=list(job.problems))
    if job.kind == "pytest":
        text = job.report.read_text(errors="replace") if job.report.exists() else ""
        results, session = parse_report(text)
        run.results = results
        if job.mode == "eyeshim":
            run.counters = {k: float(v) for k, v in session.get("counters", {}).items()}
        if not session and not run.problems:
            run.problems.append(f"pytest ended without a session record (exit {job.exit_code})")
        elif job.exit_code not in (0, 1) and not run.problems:
            run.problems.append(f"pytest exit {job.exit_code}")
        return run
    # regrtest
    if job.report.exists():
        try:
            run.results = parse_junit(job.report.read_text(errors="replace"))
        except Exception as exc:  # a half-written file from a killed run
            run.problems.append(f"unreadable junit file: {exc}")
    outcome = module_outcome(job.exit_code)
    detail = "" if outcome == "passed" else _log_tail(job.log)
    run.results[job.module + MODULE_SUFFIX] = TestResult(outcome, job.seconds, detail)
    run.counters = _read_stats(job.stats)
    return run


_Running = tuple[Job, "subprocess.Popen[bytes]", float, IO[bytes]]


def run_jobs(
    jobs: Sequence[Job],
    slots: Sequence[LoopbackNamespace],
    *,
    progress: Optional[IO[str]] = None,
) -> list[Run]:
    """Run ``jobs`` at most ``len(slots)`` at a time, each in a free slot's namespace; returns
    their Runs in the order of ``jobs``."""
    pending = deque(enumerate(jobs))
    free = list(slots)
    running: dict[str, tuple[int, LoopbackNamespace, _Running]] = {}
    runs: dict[int, Run] = {}
    parent = os.getpid()
    done = 0
    try:
        while pending or running:
            while pending and free:
                index, job = pending.popleft()
                slot = free.pop(0)
                log_file = open(job.log, "ab")  # noqa: SIM115 - closed when the job ends
                proc = subprocess.Popen(
                    slot.wrap(job.argv),
                    cwd=job.cwd,
                    env=job.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=lambda: die_with_parent(parent),
                )
                running[job.title + str(index)] = (
                    index,
                    slot,
                    (job, proc, time.monotonic(), log_file),
                )
            time.sleep(0.05)
            for key, (index, slot, (job, proc, start, log)) in list(running.items()):
                elapsed = time.monotonic() - start
                if proc.poll() is None:
                    if elapsed < job.timeout:
                        continue
                    _kill_group(proc)
                    job.problems.append(f"killed after {job.timeout:.0f} s")
                job.exit_code = proc.returncode
                job.seconds = elapsed
                log.close()
                del running[key]
                free.append(slot)
                run = collect(job)
                runs[index] = run
                done += 1
                if progress is not None:
                    progress.write(f"  [{done:2}/{len(jobs)}] {job.title}: {_brief(run)}\n")
                    progress.flush()
    finally:
        for _, _, (_job, proc, _, log) in running.values():
            _kill_group(proc)
            log.close()
    return [runs[i] for i in range(len(jobs))]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=3)
            return
        except subprocess.TimeoutExpired:
            continue


def _brief(run: Run) -> str:
    counts = run.counts()
    parts = [f"{n} {k}" for k, n in counts.items() if n]
    text = ", ".join(parts) or "no tests"
    text += f" in {run.seconds:.1f} s"
    if run.problems:
        text += " [" + "; ".join(run.problems) + "]"
    return text
