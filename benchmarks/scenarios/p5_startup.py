"""P5: what the sitecustomize drop-in costs every interpreter start.

``eyeshim run`` starts programs with ``eyeshim/bootstrap`` first on PYTHONPATH
and ``EYESHIM_ENABLED=1``; the bootstrap validates the ``EYESHIM_*`` variables
and installs plain stand-ins at once, with post-import hooks for the modules
not imported yet (``socket`` itself included); neither wrapt nor the engine is
imported before the first connection.  So two costs:

* ``python -c pass``: what every interpreter pays, networking or not (the
  hook runs: eyeshim's config, bootstrap and patches modules);
* ``python -c "import socket"``: what a program that touches the network pays
  before it connects (the hook for socket puts the stand-in in place).

Each variant is a fresh interpreter, timed from spawn to exit by the parent
(fork and exec cost the same in every variant), and its RSS at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from typing import Callable, Optional

from benchmarks.harness import REPO_ROOT, Context, ScenarioResult, Skip, Target, interleave
from benchmarks.stats import paired_difference

BOOTSTRAP = REPO_ROOT / "eyeshim" / "bootstrap"
REPORT = (
    "import json, sys\n"
    "rss = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS'))\n"
    "p = sys.modules.get('eyeshim.patches')\n"
    "print(json.dumps({'rss_kb': rss, 'installed': bool(p and p.is_installed())}))\n"
)
COMMANDS = {"-c pass": "pass", "-c 'import socket'": "import socket\n" + REPORT}
TIME_LIMIT_MS = 10.0
MEMORY_LIMIT_MB = 3.0


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


def _import_breakdown(python: str, envs: dict[str, dict[str, str]]) -> tuple[list[list[str]], str]:
    """Modules only the enabled interpreter imports (-X importtime), biggest first,
    and a one-line summary of the outermost ones."""
    seen: dict[str, dict[str, tuple[int, int, int]]] = {}
    for variant in ("drop-in off", "drop-in on"):
        proc = subprocess.run(
            [python, "-X", "importtime", "-c", "import socket"],
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


def run(ctx: Context, result: ScenarioResult) -> None:
    if not (BOOTSTRAP / "sitecustomize.py").exists():
        raise Skip("eyeshim/bootstrap/sitecustomize.py does not exist yet")
    # eyeshim accepts wrapt 1.x and 2.x, and installing costs mostly what
    # importing wrapt costs: measure with the newest wrapt (what a fresh
    # install gets) and, where the environment exists, with wrapt 1.x.
    pythons = {"wrapt 2": ctx.envs.main}
    if ctx.envs.wrapt1 is not None:
        pythons["wrapt 1"] = ctx.envs.wrapt1
    for flavour, python in pythons.items():
        version = ctx.envs.packages.get("main" if flavour == "wrapt 2" else "wrapt1", {}).get(
            "wrapt", "(version unknown)"
        )
        _measure(ctx, result, python, f"wrapt {version}", primary=flavour == "wrapt 2")


def _measure(
    ctx: Context, result: ScenarioResult, python: str, flavour: str, primary: bool
) -> None:
    rounds = ctx.pick(30, 10, 2)
    envs = _environments()
    times = {
        label: result.case(
            f"python {label}: start to exit ({flavour})", "wall", "ms", subject="drop-in on"
        )
        for label in COMMANDS
    }
    memory = result.case(
        f"python -c 'import socket': RSS at exit ({flavour})",
        "memory",
        "MB",
        scale=1 / 1024,
        subject="drop-in on",
    )
    installed: dict[str, Optional[bool]] = {}

    def step_for(variant: str, label: str) -> Callable[[int], None]:
        def step(r: int) -> None:
            start = time.perf_counter()
            proc = subprocess.run(
                [python, "-c", COMMANDS[label]],
                env=envs[variant],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            elapsed = time.perf_counter() - start
            if proc.returncode != 0:
                raise RuntimeError(f"{variant} {label} failed: {proc.stderr[-500:]}")
            times[label].add(r, variant, [elapsed])
            if proc.stdout.strip():
                report = json.loads(proc.stdout.strip().splitlines()[-1])
                memory.add(r, variant, [report["rss_kb"]])
                installed[variant] = report["installed"]

        return step

    steps = {f"{v} {c}": step_for(v, c) for v in envs for c in COMMANDS}
    ctx.log(f"P5 ({flavour}): {rounds} rounds of {len(steps)} interpreter starts")
    interleave(rounds, steps)

    result.setup += [
        f"{flavour}: interpreter {python}; {rounds} rounds, each starting every variant once "
        "(order rotated); eyeshim installed after `import socket`: "
        + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in installed.items()),
    ]
    if primary:
        result.setup.insert(
            0,
            (
                "plain: PYTHONPATH=<checkout>; drop-in off: as `eyeshim run` sets it (bootstrap "
                "directory first on PYTHONPATH) with EYESHIM_ENABLED=0; drop-in on: the same with "
                "EYESHIM_ENABLED=1 (eyeshim.cli.run.environment). eyeshim's bytecode is compiled "
                "first, as an installed package's is."
            ),
        )
    rows, imports = _import_breakdown(python, envs)
    if primary:
        fix = (
            "installing is importing: " + imports + ". The drop-in should import only "
            "eyeshim.config, eyeshim.bootstrap and eyeshim.patches (no wrapt, no engine); "
            "anything else in the breakdown below is a regression."
        )
    else:
        fix = "installing is importing: " + imports + " (breakdown below)."
    for label, case in times.items():
        diff = paired_difference(case.per_round, "drop-in on", "drop-in off")
        plain = paired_difference(case.per_round, "drop-in on", "plain")
        measured = "not measured" if diff is None else f"{diff:+.1f} ms ({plain:+.1f} ms vs plain)"
        met = None if diff is None else diff <= TIME_LIMIT_MS
        if label == "-c pass":
            name = f"start-up, python {label} ({flavour}): drop-in on <= off + {TIME_LIMIT_MS:g} ms"
            why = "" if met else "see the import breakdown below"
        else:
            name = (
                f"start-up, python {label} ({flavour}; eyeshim installs): drop-in on <= "
                f"off + {TIME_LIMIT_MS:g} ms"
            )
            why = "" if met else fix
        result.targets.append(Target(name, measured, met, why))
    mem = paired_difference(memory.per_round, "drop-in on", "drop-in off")
    met = None if mem is None else mem <= MEMORY_LIMIT_MB
    result.targets.append(
        Target(
            f"memory after install ({flavour}): RSS drop-in on <= off + {MEMORY_LIMIT_MB:g} MB",
            "not measured" if mem is None else f"{mem:+.2f} MB",
            met,
            "" if met is None or met else fix,
        )
    )
    result.tables.append(
        {
            "title": f"Modules imported only with the drop-in on ({flavour}), "
            "`python -X importtime -c 'import socket'` (one run; ms)",
            "header": ["module (· = nesting)", "depth", "self ms", "cumulative ms"],
            "rows": rows,
        }
    )
