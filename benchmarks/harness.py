"""What every scenario uses: workers, contenders, interleaved rounds, result records.

A scenario measures *contenders* (:class:`Contender`) in *rounds*
(:func:`interleave`): in each round every contender runs once, in an order
rotated from round to round, so drift of the machine (another job starting,
thermal or frequency changes) lands on all of them alike instead of on
whichever ran last.  Its numbers go into *cases* (:class:`Case`), one per
table in the report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from benchmarks.envs import Environments
from benchmarks.stats import paired_ratio, summarize

__all__ = [
    "REPO_ROOT",
    "Case",
    "Contender",
    "Context",
    "ScenarioResult",
    "Skip",
    "Target",
    "Worker",
    "interleave",
    "measure_rounds",
    "ratio_target",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
CURL_HE_TIMEOUT_MS = 250


class Skip(Exception):
    """A scenario cannot run here; the message says why (it goes into the report)."""


# -- workers -----------------------------------------------------------------------------------


class WorkerError(RuntimeError):
    pass


class Worker:
    """A ``benchmarks.worker`` process, optionally inside a network namespace."""

    def __init__(
        self,
        python: str,
        prefix: Sequence[str] = (),
        log_dir: Optional[Path] = None,
        module: str = "benchmarks.worker",
        env: Optional[dict[str, str]] = None,
    ) -> None:
        env = dict(os.environ, **(env or {}))
        # The checkout first: eyeshim and benchmarks are measured from the work tree.
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        self.log_path = Path(log_dir or tempfile.gettempdir()) / f"worker-{id(self)}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the worker
        self.proc = subprocess.Popen(
            [*prefix, python, "-m", module],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        hello = self.request({"op": "hello"})
        self.python_version: str = hello["python"]
        self.unavailable: dict[str, str] = hello["unavailable"]

    def request(self, message: dict[str, Any]) -> Any:
        self.send(message)
        return self.receive()

    def send(self, message: dict[str, Any]) -> None:
        """Half of :meth:`request`, to keep several workers busy at once."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # receive() reports the dead worker with its log

    def receive(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            tail = self.log_path.read_text(errors="replace")[-1500:]
            raise WorkerError(f"worker exited ({self.proc.poll()}): {tail}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise WorkerError(reply["error"] + "\n" + reply.get("trace", ""))
        return reply["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# -- contenders --------------------------------------------------------------------------------


@dataclass
class Contender:
    """One way to connect, as the orchestrator drives it.

    ``measure(host, port, n, timeout, **options)`` returns a batch result as
    :func:`benchmarks.contenders.run_batch` makes it (times in seconds).
    """

    name: str
    measure: Callable[..., dict[str, Any]]


def python_contender(worker: Worker, name: str) -> Contender:
    def measure(host: str, port: int, n: int, timeout: float, **options: Any) -> dict[str, Any]:
        request = {"op": "batch", "contender": name, "host": host, "port": port, "n": n,
                   "timeout": timeout, **options}
        result: dict[str, Any] = worker.request(request)
        return result

    return Contender(name, measure)


def curl_contender(prefix: Sequence[str] = ()) -> Contender:
    """curl's own Happy Eyeballs; ``time_connect`` (name lookup + TCP connect,
    measured by curl itself) leaves its process start-up out."""

    def measure(host: str, port: int, n: int, timeout: float, **ignored: Any) -> dict[str, Any]:
        netloc = f"[{host}]" if ":" in host else host
        argv = [*prefix, "curl", "-g", "-s", "-o", "/dev/null",
                "--happy-eyeballs-timeout-ms", str(CURL_HE_TIMEOUT_MS),
                "--connect-timeout", f"{timeout:g}", "-w", "%{time_connect} %{remote_ip}",
                f"http://{netloc}:{port}/"]
        times: list[float] = []
        peers: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        start = time.perf_counter()
        for _ in range(n):
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10,
                                  check=False)
            fields = proc.stdout.split()
            connect = float(fields[0]) if fields else 0.0
            # 52/56: the accept-and-close server sends no reply; the connect happened.
            if proc.returncode in (0, 52, 56) and connect > 0:
                times.append(connect)
                peers[fields[1] if len(fields) > 1 else "?"] += 1
            else:
                errors[f"curl exit {proc.returncode}"] += 1
        return {"times": times, "cpu": [], "peers": dict(peers), "errors": dict(errors),
                "wall": time.perf_counter() - start, "cpu_total": 0.0}

    return Contender("curl", measure)


def interleave(rounds: int, steps: dict[str, Callable[[int], None]]) -> None:
    """Run ``steps[name](round)`` for every name, ``rounds`` times, rotating the order."""
    names = list(steps)
    for r in range(rounds):
        k = r % len(names) if names else 0
        for name in names[k:] + names[:k]:
            steps[name](r)


# -- results -----------------------------------------------------------------------------------


@dataclass
class Case:
    """One table: each contender's samples of one metric, kept per round for pairing."""

    name: str
    metric: str
    unit: str  # "ms", "connects/s", "requests/s", "ms CPU", "MB" ...
    scale: float = 1000.0  # samples arrive in seconds; ms by default
    subject: str = "eyeshim"  # the contender the ratio column is about
    higher_is_better: bool = False
    in_doc: bool = True  # False: in the JSON only (the scenario shows it another way)
    samples: dict[str, list[float]] = field(default_factory=dict)
    per_round: list[dict[str, float]] = field(default_factory=list)
    errors: dict[str, Counter[str]] = field(default_factory=dict)
    peers: dict[str, Counter[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def add(
        self,
        round_index: int,
        contender: str,
        values: Sequence[float],
        errors: Optional[dict[str, int]] = None,
        peers: Optional[dict[str, int]] = None,
    ) -> None:
        scaled = [v * self.scale for v in values]
        self.samples.setdefault(contender, []).extend(scaled)
        self.errors.setdefault(contender, Counter()).update(errors or {})
        self.peers.setdefault(contender, Counter()).update(peers or {})
        while len(self.per_round) <= round_index:
            self.per_round.append({})
        if scaled:
            self.per_round[round_index][contender] = summarize(scaled)["median"]

    def add_batch(self, round_index: int, contender: str, batch: dict[str, Any],
                  key: str = "times") -> None:
        self.add(round_index, contender, batch[key], batch.get("errors"), batch.get("peers"))

    def summary(self, contender: str) -> Optional[dict[str, float]]:
        values = self.samples.get(contender)
        return summarize(values) if values else None

    def ratio(self, contender: str, subject: Optional[str] = None) -> Optional[float]:
        return paired_ratio(self.per_round, subject or self.subject, contender)

    def to_json(self) -> dict[str, Any]:
        contenders = list(self.samples) + [c for c in self.skipped if c not in self.samples]
        return {
            "name": self.name,
            "metric": self.metric,
            "unit": self.unit,
            "subject": self.subject,
            "higher_is_better": self.higher_is_better,
            "in_doc": self.in_doc,
            "contenders": {
                c: {
                    "summary": self.summary(c),
                    "ratio": self.ratio(c) if c != self.subject else None,
                    "errors": dict(self.errors.get(c, {})),
                    "peers": dict(self.peers.get(c, {})),
                    "skipped": self.skipped.get(c),
                }
                for c in contenders
            },
            "rounds": len(self.per_round),
        }


@dataclass
class Target:
    text: str  # what is promised, e.g. "eyeshim <= 1.10x stock (literal)"
    measured: str  # what was measured, formatted
    met: Optional[bool]  # None: could not be judged (a side is missing)
    why: str = ""  # for a miss: why, and what would fix it

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "measured": self.measured, "met": self.met, "why": self.why}


@dataclass
class ScenarioResult:
    id: str
    title: str
    status: str = "ok"  # ok | skipped | error
    reason: str = ""
    setup: list[str] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    skipped_contenders: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)  # free-form extra tables
    seconds: float = 0.0

    def case(self, *args: Any, **kwargs: Any) -> Case:
        new = Case(*args, **kwargs)
        self.cases.append(new)
        return new

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "reason": self.reason,
            "setup": self.setup,
            "cases": [c.to_json() for c in self.cases],
            "targets": [t.to_json() for t in self.targets],
            "skipped_contenders": self.skipped_contenders,
            "notes": self.notes,
            "tables": self.tables,
            "seconds": self.seconds,
        }


# -- context -----------------------------------------------------------------------------------


class Context:
    """Run-wide settings and resources (workers are shared between scenarios)."""

    def __init__(self, mode: str, envs: Environments, log: Callable[[str], None]) -> None:
        self.mode = mode  # full | quick | smoke
        self.envs = envs
        self.log = log
        self.no_lab = False
        self.tmp = Path(tempfile.mkdtemp(prefix="eyeshim-bench-"))
        self._workers: dict[tuple[str, tuple[str, ...]], Worker] = {}
        # Shared by scenarios (the lab is started once for P2 and P3); closed
        # after the workers, which may live inside the lab's namespaces.
        self.resources: dict[str, Any] = {}
        self._closers: list[Callable[[], None]] = []

    def pick(self, full: Any, quick: Any, smoke: Any) -> Any:
        return {"full": full, "quick": quick, "smoke": smoke}[self.mode]

    def worker(self, python: str, prefix: Sequence[str] = ()) -> Worker:
        key = (python, tuple(prefix))
        if key not in self._workers:
            self._workers[key] = Worker(python, prefix, self.tmp)
        return self._workers[key]

    def broadcast(self, message: dict[str, Any], prefix: Sequence[str] = ()) -> None:
        """Send ``message`` to every worker started so far in namespace ``prefix``."""
        for key, worker in self._workers.items():
            if key[1] == tuple(prefix):
                worker.request(message)

    def drop_workers(self, prefix: Sequence[str]) -> None:
        """Stop the workers inside a namespace (before the namespace goes away)."""
        for key in [k for k in self._workers if k[1] == tuple(prefix)]:
            self._workers.pop(key).close()

    def contenders(
        self, names: Sequence[str], result: ScenarioResult, prefix: Sequence[str] = ()
    ) -> list[Contender]:
        """The runnable ones of ``names``; the others go to ``result.skipped_contenders``."""
        out: list[Contender] = []
        for name in names:
            if name == "curl":
                if shutil.which("curl") is None:
                    result.skipped_contenders[name] = "curl is not installed (Debian: curl)"
                else:
                    out.append(curl_contender(prefix))
                continue
            python = self.envs.urllib3_future if name == "urllib3.future" else self.envs.main
            if python is None:
                problem = self.envs.problems.get("urllib3-future", "environment missing")
                result.skipped_contenders[name] = problem
                continue
            worker = self.worker(python, prefix)
            reason = worker.unavailable.get(name)
            if reason is not None:
                if self.mode == "smoke":
                    reason += " (smoke mode installs nothing)"
                result.skipped_contenders[name] = reason
                continue
            out.append(python_contender(worker, name))
        return out

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()
        while self._closers:
            self._closers.pop()()
        shutil.rmtree(self.tmp, ignore_errors=True)


def measure_rounds(
    contenders: Sequence[Contender],
    rounds: int,
    host: str,
    port: int,
    timeout: float,
    latency: Case,
    throughput: Optional[Case] = None,
    cpu: Optional[Case] = None,
    n: Callable[[str], int] = lambda name: 1,
    options: Callable[[str], dict[str, Any]] = lambda name: {},
) -> None:
    """Interleaved rounds of one batch per contender: each connect's time goes to
    ``latency``, its CPU time to ``cpu``, each batch's connects per second to
    ``throughput``.  ``options(name)`` are extra worker options per contender."""

    def step_for(contender: Contender) -> Callable[[int], None]:
        extra = dict(options(contender.name))
        if cpu is not None:
            extra["cpu"] = True

        def step(r: int) -> None:
            batch = contender.measure(host, port, n(contender.name), timeout, **extra)
            latency.add_batch(r, contender.name, batch)
            if cpu is not None:
                cpu.add_batch(r, contender.name, batch, key="cpu")
            if throughput is not None and contender.name != "curl" and batch["times"]:
                throughput.add(r, contender.name, [len(batch["times"]) / batch["wall"]])

        return step

    interleave(rounds, {c.name: step_for(c) for c in contenders})


def ratio_target(
    case: Case, contender: str, limit: float, text: str, why: str = "",
    subject: Optional[str] = None,
) -> Target:
    """"subject / contender <= limit" (or >= for higher-is-better metrics) as a Target."""
    ratio = case.ratio(contender, subject)
    if ratio is None:
        return Target(text, "not measured", None)
    met = ratio >= limit if case.higher_is_better else ratio <= limit
    return Target(text, f"{ratio:.2f}x", met, "" if met else why)


def profile_rows(
    found: dict[str, Any], connects: int, per: float, calls_digits: int
) -> list[list[str]]:
    """The worker's cProfile (its ``profile`` op) as table rows: function,
    calls per connect (``calls_digits`` decimals), own and cumulative
    microseconds per ``per`` (the number of connects, or of refused
    addresses), and a last row with the total."""
    rows = [
        [
            row["function"],
            f"{row['calls'] / connects:.{calls_digits}f}",
            f"{row['own'] * 1e6 / per:.1f}",
            f"{row['cumulative'] * 1e6 / per:.1f}",
        ]
        for row in found["top"]
    ]
    rows.append(["all functions (profiled)", "", f"{found['total'] * 1e6 / per:.1f}", ""])
    return rows
