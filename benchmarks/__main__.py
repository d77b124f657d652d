"""``python -m benchmarks run [--quick | --smoke] [--only P1,P2] [--json PATH] [--no-doc]``.

Runs every scenario the machine allows, side by side with the contenders,
and rewrites docs/performance.md (plus its chart) from the results.  See
docs/performance.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import compileall
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional

from benchmarks import envs, machine, report
from benchmarks.harness import REPO_ROOT, Context, ScenarioResult, Skip
from benchmarks.scenarios import SCENARIOS


def _log_to_stderr(start: float) -> Any:
    def log(text: str) -> None:
        print(f"[{time.monotonic() - start:7.1f}s] {text}", file=sys.stderr, flush=True)

    return log


def run(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run", description=__doc__)
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="fewer rounds (~3 min)")
    speed.add_argument(
        "--smoke", action="store_true",
        help="tiny counts, no installs, lab skipped unless root: checks that it all runs",
    )
    parser.add_argument("--only", default="", help="comma list of scenario ids (P1,...,S)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/performance.md")
    parser.add_argument("--no-lab", action="store_true", help="skip the lab scenarios")
    parser.add_argument(
        "--doc", type=Path, default=REPO_ROOT / "docs" / "performance.md", help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    wanted = {part.strip().upper() for part in args.only.split(",") if part.strip()}
    unknown = wanted - {s.id for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}")

    start = time.monotonic()
    log = _log_to_stderr(start)
    # Measure eyeshim as an installed package runs: with its bytecode
    # compiled.  Under PYTHONDONTWRITEBYTECODE a module edited since its last
    # .pyc would otherwise be compiled again in every worker and every
    # interpreter P5 starts, and that would be timed as eyeshim's cost.
    compileall.compile_dir(str(REPO_ROOT / "eyeshim"), quiet=1)
    environments = envs.prepare(install=mode != "smoke", log=log)
    ctx = Context(mode, environments, log)
    ctx.no_lab = args.no_lab
    results: list[ScenarioResult] = []
    try:
        for scenario in SCENARIOS:
            if wanted and scenario.id not in wanted:
                continue
            result = ScenarioResult(scenario.id, scenario.title)
            log(f"{scenario.id}: {scenario.title}")
            began = time.monotonic()
            try:
                scenario.runner()(ctx, result)
            except Skip as exc:
                result.status, result.reason = "skipped", str(exc)
                log(f"{scenario.id} skipped: {exc}")
            except Exception as exc:  # one broken scenario must not lose the others' numbers
                result.status, result.reason = "error", f"{type(exc).__name__}: {exc}"
                log(f"{scenario.id} failed:\n{traceback.format_exc()}")
            result.seconds = time.monotonic() - began
            results.append(result)
    finally:
        ctx.close()
    document = {
        "mode": mode,
        "command": " ".join(["python -m benchmarks run", *(argv if argv is not None
                                                              else sys.argv[2:])]),
        "duration_s": time.monotonic() - start,
        "machine": machine.describe(environments),
        "scenarios": [r.to_json() for r in results],
    }
    if args.json is not None:
        args.json.write_text(json.dumps(document, indent=1))
    if not args.no_doc:
        report.write(document, args.doc)
        log(f"wrote {args.doc}")
    log(f"done in {document['duration_s']:.0f} s")
    return 1 if any(r.status == "error" for r in results) else 0


def main(argv: Optional[list[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "run":
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return run(args[1:])


if __name__ == "__main__":
    sys.exit(main())
