"""P5: what the sitecustomize drop-in costs every interpreter start, and the first connect.

``eyeshim run`` starts programs with ``eyeshim/bootstrap`` first on PYTHONPATH
and ``EYESHIM_ENABLED=1``; the bootstrap validates the ``EYESHIM_*`` variables
and installs plain stand-ins at once, with post-import hooks for the modules
not imported yet (``socket`` itself included); neither wrapt nor the engine is
imported before the first connection.  So these costs, each in a fresh
interpreter, drop-in on against drop-in off (the same PYTHONPATH, not
enabled) and plain (no drop-in):

* ``python -c pass``: what every interpreter pays, networking or not;
* ``python -c "import socket"``: what a program that touches the network pays
  before it connects (the stand-in is put in place);
* the first connect, ``python -c "import socket;
  socket.create_connection(...)"``: to ``127.0.0.1`` (a loopback listener: the
  engine loads at the first call) and, where the DNS namespace of
  :mod:`benchmarks.labsupport` can be made, to a name its DNS server answers
  (the resolver's code loads too).  Stock's first connect is the same command
  with the drop-in off.

Each start is timed by the parent from spawn to exit (fork and exec cost the
same in every variant); its CPU time (user + system) comes from the kernel's
accounting of the child (``wait4``), its peak RSS from the child itself
(``VmHWM`` at the end of the command; wait4's ``ru_maxrss`` would report the
benchmark's own RSS, which the child inherits at exec).  ``-c pass`` can
report nothing, so its memory is not measured; the memory target is judged on
``import socket``, where the drop-in puts its stand-in in place.  eyeshim no longer imports
wrapt, so which wrapt the environment has should change nothing; the
scenario runs in an environment with wrapt 2.x and, where it exists, one with
wrapt 1.x, and each interpreter reports whether wrapt was imported.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Sequence
from typing import Any, Callable, Optional

from benchmarks import labsupport
from benchmarks.harness import (
    REPO_ROOT,
    Case,
    Context,
    ScenarioResult,
    Skip,
    Target,
    interleave,
)
from benchmarks.servers import ServerProcess
from benchmarks.stats import paired_difference

BOOTSTRAP = REPO_ROOT / "eyeshim" / "bootstrap"
REPORT = (
    "\nimport json, sys\n"
    "hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "p = sys.modules.get('eyeshim.patches')\n"
    "print(json.dumps({'installed': bool(p and p.is_installed()), 'rss_kb': hwm,\n"
    "                  'wrapt': 'wrapt' in sys.modules,\n"
    "                  'engine': 'eyeshim.connection' in sys.modules}))\n"
)
START_LIMIT_MS = 10.0
MEMORY_LIMIT_MB = 3.0
FIRST_CONNECT_LIMIT_MS = 15.0
VARIANTS = ("plain", "drop-in off", "drop-in on")


class _Command:
    def __init__(self, label: str, code: str, kind: str, prefix: Sequence[str] = ()) -> None:
        self.label, self.code, self.kind, self.prefix = label, code, kind, list(prefix)


def _connect_code(host: str, port: int) -> str:
    return f"import socket\nsocket.create_connection(({host!r}, {port}), 5).close()" + REPORT


def _environments() -> dict[str, dict[str, str]]:
    """plain (no drop-in), drop-in off (on PYTHONPATH, not enabled), drop-in on."""
    base = {
        k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("EYESHIM_")
    }
    # eyeshim from the checkout, as if installed, in every variant alike.
    base["PYTHONPATH"] = str(REPO_ROOT)
    try:
        from eyeshim.cli.run import environment

        on = environment(base, {})
    except ImportError:  # the launcher is younger than the drop-in: do what it does
        on = dict(base, PYTHONPATH=f"{BOOTSTRAP}{os.pathsep}{REPO_ROOT}", EYESHIM_ENABLED="1")
    off = dict(on, EYESHIM_ENABLED="0")
    return {"plain": base, "drop-in off": off, "drop-in on": on}


def _import_breakdown(
    python: str, envs: dict[str, dict[str, str]], command: _Command
) -> tuple[list[list[str]], str]:
    """Modules only the enabled interpreter imports (-X importtime), biggest first,
    and a one-line summary of the outermost ones."""
    seen: dict[str, dict[str, tuple[int, int, int]]] = {}
    for variant in ("drop-in off", "drop-in on"):
        proc = subprocess.run(
            [*command.prefix, python, "-X", "importtime", "-c", command.code],
            env=envs[variant],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        modules: dict[str, tuple[int, int, int]] = {}
        for line in proc.stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if match:
                depth = (len(match.group(3)) - 1) // 2  # two spaces per nesting level
                modules[match.group(4)] = (int(match.group(1)), int(match.group(2)), depth)
        seen[variant] = modules
    extra = {m: t for m, t in seen["drop-in on"].items() if m not in seen["drop-in off"]}
    if not extra:
        return [], "no extra modules"
    total = sum(self_us for self_us, _, _ in extra.values())
    biggest = sorted(extra.items(), key=lambda kv: -kv[1][1])[:15]
    rows = [
        [("· " * depth) + m, str(depth), f"{self_us / 1000:.1f}", f"{cum_us / 1000:.1f}"]
        for m, (self_us, cum_us, depth) in biggest
    ]
    rows.append(
        [f"all {len(extra)} extra modules (sum of self times)", "", f"{total / 1000:.1f}", ""]
    )
    top = min(depth for _, _, depth in extra.values())
    outermost = sorted(((m, t[1]) for m, t in extra.items() if t[2] == top), key=lambda mt: -mt[1])
    summary = f"{len(extra)} extra modules, {total / 1000:.0f} ms of import time; " + ", ".join(
        f"{m} {cum / 1000:.0f} ms" for m, cum in outermost[:4]
    )
    return rows, summary


def _spawn(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``argv``; its wall time (spawn to exit, seconds), CPU time (user +
    system, seconds, from wait4) and its standard output."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT
    )
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[-1][:60]!r} failed: {err.decode(errors='replace')[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, out.decode()


def run(ctx: Context, result: ScenarioResult) -> None:
    if not (BOOTSTRAP / "sitecustomize.py").exists():
        raise Skip("eyeshim/bootstrap/sitecustomize.py does not exist yet")
    pythons = {"wrapt 2": ctx.envs.main}
    if ctx.envs.wrapt1 is not None:
        pythons["wrapt 1"] = ctx.envs.wrapt1
    with ServerProcess(ctx.envs.main, "accept") as local:
        commands = [
            _Command("-c pass", "pass", "start"),
            _Command("-c 'import socket'", "import socket" + REPORT, "start"),
            _Command(
                "first connect to 127.0.0.1", _connect_code("127.0.0.1", local.port), "connect"
            ),
        ]
        try:
            namespace = labsupport.get_dns_namespace(ctx)
        except Skip as exc:
            namespace = None
            result.notes.append(f"The first connect to a resolved name was left out: {exc}")
        if namespace is None:
            _all(ctx, result, pythons, commands)
            return
        with ServerProcess(ctx.envs.main, "accept", namespace.prefix) as far:
            commands.append(
                _Command(
                    f"first connect to {labsupport.DNS_NAME} (DNS namespace)",
                    _connect_code(labsupport.DNS_NAME, far.port),
                    "connect",
                    namespace.prefix,
                )
            )
            _all(ctx, result, pythons, commands)


def _all(
    ctx: Context, result: ScenarioResult, pythons: dict[str, str], commands: list[_Command]
) -> None:
    result.setup = [
        "plain: PYTHONPATH=<checkout>; drop-in off: as `eyeshim run` sets it (bootstrap "
        "directory first on PYTHONPATH) with EYESHIM_ENABLED=0; drop-in on: the same with "
        "EYESHIM_ENABLED=1 (eyeshim.cli.run.environment). eyeshim's bytecode is compiled "
        "first, as an installed package's is. The resolved name's first connect runs inside "
        "the DNS namespace (`ip netns exec`, in every variant alike).",
    ]
    for flavour, python in pythons.items():
        env_name = "main" if flavour == "wrapt 2" else "wrapt1"
        version = ctx.envs.packages.get(env_name, {}).get("wrapt", "(version unknown)")
        _measure(
            ctx,
            result,
            python,
            f"wrapt {version} installed",
            commands,
            primary=flavour == "wrapt 2",
        )


def _measure(
    ctx: Context,
    result: ScenarioResult,
    python: str,
    flavour: str,
    commands: list[_Command],
    primary: bool,
) -> None:
    rounds = ctx.pick(20, 8, 2)
    envs = _environments()
    wall: dict[str, Case] = {}
    cpu: dict[str, Case] = {}
    rss: dict[str, Case] = {}
    for command in commands:
        wall[command.label] = result.case(
            f"python {command.label}: wall ({flavour})",
            "wall",
            "ms",
            subject="drop-in on",
            in_doc=False,
        )
        cpu[command.label] = result.case(
            f"python {command.label}: CPU ({flavour})",
            "cpu",
            "ms CPU",
            subject="drop-in on",
            in_doc=False,
        )
        if command.code == "pass":
            continue
        rss[command.label] = result.case(
            f"python {command.label}: peak RSS ({flavour})",
            "memory",
            "MB",
            scale=1.0,
            subject="drop-in on",
            in_doc=False,
        )
    reports: dict[tuple[str, str], dict[str, Any]] = {}

    def step_for(variant: str, command: _Command) -> Callable[[int], None]:
        def step(r: int) -> None:
            seconds, cpu_s, out = _spawn(
                [*command.prefix, python, "-c", command.code], envs[variant]
            )
            wall[command.label].add(r, variant, [seconds])
            cpu[command.label].add(r, variant, [cpu_s])
            if out.strip():
                report = json.loads(out.strip().splitlines()[-1])
                reports[(variant, command.label)] = report
                rss[command.label].add(r, variant, [report["rss_kb"] / 1024])

        return step

    steps = {f"{v} {c.label}": step_for(v, c) for v in VARIANTS for c in commands}
    ctx.log(f"P5 ({flavour}): {rounds} rounds of {len(steps)} interpreter starts")
    interleave(rounds, steps)

    rows = []
    for command in commands:
        for variant in VARIANTS:
            w, c = wall[command.label].summary(variant), cpu[command.label].summary(variant)
            m = rss[command.label].summary(variant) if command.label in rss else None
            report = reports.get((variant, command.label))
            seen = (
                "-"
                if report is None
                else ", ".join(
                    [
                        ("installed" if report["installed"] else "not installed"),
                        ("engine loaded" if report["engine"] else "no engine"),
                        ("wrapt IMPORTED" if report["wrapt"] else "no wrapt"),
                    ]
                )
            )
            diff = ""
            if variant == "drop-in on":
                parts = [
                    paired_difference(case.per_round, "drop-in on", "drop-in off")
                    if case is not None
                    else None
                    for case in (wall[command.label], cpu[command.label], rss.get(command.label))
                ]
                diff = " / ".join("-" if p is None else f"{p:+.1f}" for p in parts)
            rows.append(
                [
                    command.label,
                    variant,
                    "-" if w is None else f"{w['median']:.1f} ({w['p10']:.1f}-{w['p90']:.1f})",
                    "-" if c is None else f"{c['median']:.1f}",
                    "-" if m is None else f"{m['median']:.1f}",
                    diff,
                    seen,
                ]
            )
    result.tables.append(
        {
            "title": f"Interpreter starts ({flavour}): medians of {rounds} rounds",
            "header": [
                "command",
                "variant",
                "wall ms (p10-p90)",
                "CPU ms",
                "peak RSS MB",
                "on - off, paired: wall ms / CPU ms / MB",
                "the interpreter reported",
            ],
            "rows": rows,
        }
    )
    wrapt_seen = [k for k, v in reports.items() if v["wrapt"]]
    result.setup.append(
        f"{flavour}: interpreter {python}; {rounds} rounds, each starting every variant and "
        "command once (order rotated). wrapt imported by "
        + (
            "no interpreter that reported"
            if not wrapt_seen
            else ", ".join(f"{v} {c}" for v, c in wrapt_seen)
        )
        + "."
    )
    # What the drop-in imports, per command (in every environment: the
    # breakdown is the measured reason when a target is missed there).
    imports: dict[str, str] = {}
    for command in commands:
        table, summary = _import_breakdown(python, envs, command)
        imports[command.label] = summary
        if primary and command.code != "pass":  # -c pass: the same as import socket's
            result.tables.append(
                {
                    "title": f"Modules imported only with the drop-in on ({flavour}), `python -X "
                    f"importtime` of {command.label} (one run; ms)",
                    "header": ["module (· = nesting)", "depth", "self ms", "cumulative ms"],
                    "rows": table,
                }
            )
    _targets(result, flavour, commands, wall, cpu, rss, imports)


def _targets(
    result: ScenarioResult,
    flavour: str,
    commands: list[_Command],
    wall: dict[str, Case],
    cpu: dict[str, Case],
    rss: dict[str, Case],
    imports: dict[str, str],
) -> None:
    def worst(cases: dict[str, Case], kind: str) -> tuple[Optional[float], str, str]:
        parts, values, why = [], [], []
        for command in commands:
            if command.kind != kind or command.label not in cases:
                continue
            diff = paired_difference(cases[command.label].per_round, "drop-in on", "drop-in off")
            parts.append(f"{command.label}: " + ("-" if diff is None else f"{diff:+.1f}"))
            if diff is not None:
                values.append(diff)
            spent = paired_difference(cpu[command.label].per_round, "drop-in on", "drop-in off")
            why.append(
                f"{command.label}: "
                + ("" if spent is None else f"CPU on - off {spent:+.1f} ms; ")
                + f"imports {imports.get(command.label, 'not measured')}"
            )
        return (max(values) if values else None), "; ".join(parts), ". ".join(why)

    for text, cases, kind, limit, unit in (
        (
            f"start-up ({flavour}): drop-in on <= off + {START_LIMIT_MS:g} ms wall",
            wall,
            "start",
            START_LIMIT_MS,
            "ms",
        ),
        (
            f"start-up memory ({flavour}): peak RSS drop-in on <= off + {MEMORY_LIMIT_MB:g} MB",
            rss,
            "start",
            MEMORY_LIMIT_MB,
            "MB",
        ),
        (
            f"first connect ({flavour}): drop-in on <= stock's first connect (drop-in off) + "
            f"{FIRST_CONNECT_LIMIT_MS:g} ms wall",
            wall,
            "connect",
            FIRST_CONNECT_LIMIT_MS,
            "ms",
        ),
    ):
        value, detail, why = worst(cases, kind)
        met = None if value is None else value <= limit
        result.targets.append(
            Target(
                text,
                f"{detail} ({unit})",
                met,
                "" if met is None or met else "measured: " + why + ".",
            )
        )
