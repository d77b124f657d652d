"""The benchmark command still runs: ``python -m benchmarks run --smoke``.

The benchmarks themselves are not part of the test run (they take minutes and
their numbers depend on the machine).  This runs them with tiny counts, no
installs of external contenders and, without root, no lab, and checks that
every scenario produced sane numbers and a report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = {"P1", "P2", "P3", "P4", "P5", "P6", "S"}
LAB_SCENARIOS = {"P2", "P3"}


def _numbers(case: dict[str, Any]) -> list[float]:
    return [
        value
        for info in case["contenders"].values()
        if info["summary"] is not None
        for value in (info["summary"]["median"], info["summary"]["p10"], info["summary"]["p90"])
    ]


def test_smoke_run_produces_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    doc = tmp_path / "performance.md"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "run",
            "--smoke",
            "--json",
            str(out),
            "--doc",
            str(doc),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["mode"] == "smoke"
    assert results["machine"]["cpus"] >= 1
    scenarios = {s["id"]: s for s in results["scenarios"]}
    assert set(scenarios) == SCENARIOS

    for scenario_id, scenario in scenarios.items():
        if scenario["status"] == "skipped":
            # Only the lab may be missing (no root, no namespaces), and the
            # start-up scenario while the drop-in does not exist.
            assert scenario_id in LAB_SCENARIOS | {"P5"}, scenario["reason"]
            assert scenario["reason"]
            continue
        assert scenario["status"] == "ok", scenario["reason"]
        assert scenario["cases"], scenario_id
        for case in scenario["cases"]:
            numbers = _numbers(case)
            assert numbers, (scenario_id, case["name"])
            assert all(value > 0 for value in numbers), (scenario_id, case["name"])
        assert scenario["targets"], scenario_id

    p1 = scenarios["P1"]
    measured = {
        name
        for case in p1["cases"]
        for name, info in case["contenders"].items()
        if info["summary"] is not None
    }
    assert {"stock", "eyeshim", "eyeshim+events", "eyeshim (threads kept warm)", "asyncio"} <= (
        measured
    )
    # The resolved-name breakdown times a thread start and join in the same run.
    assert any("where eyeshim's time goes" in table["title"] for table in p1["tables"])

    p4 = scenarios["P4"]
    latency = [case for case in p4["cases"] if case["metric"] == "latency"]
    assert latency and all(
        info["summary"]["p99"] >= info["summary"]["median"]
        for case in latency
        for info in case["contenders"].values()
        if info["summary"] is not None
    )

    text = doc.read_text()
    assert "## P1" in text and "## Targets" in text
    assert (tmp_path / "img" / "perf-overview.svg").read_text().startswith("<svg")
