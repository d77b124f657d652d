"""docs/performance.md and its charts, from one run's results.

The whole page is generated: hand edits would be lost at the next run, and a
page whose numbers do not come from the run it describes is worse than none.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from benchmarks import svgchart

__all__ = ["write"]

CHART_BARS = "perf-overview.svg"
CHART_SCALING = "perf-scaling.svg"


def _num(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _verdict(met: Optional[bool]) -> str:
    return {True: "**met**", False: "**MISSED**", None: "n/a"}[met]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _case_table(case: dict[str, Any]) -> list[str]:
    subject = case["subject"]
    better = "higher is better" if case["higher_is_better"] else "lower is better"
    rows = []
    for name, info in case["contenders"].items():
        summary = info["summary"]
        if summary is None:
            reason = info["skipped"] or (
                "failed: " + ", ".join(f"{k} x{v}" for k, v in info["errors"].items())
                if info["errors"]
                else "no samples"
            )
            rows.append([name, "-", "-", "0", "-", reason])
            continue
        ratio = (
            "(subject)"
            if name == subject
            else ("-" if info["ratio"] is None else f"{info['ratio']:.2f}x")
        )
        notes = []
        if info["errors"]:
            notes.append("failures: " + ", ".join(f"{k} x{v}" for k, v in info["errors"].items()))
        if info["peers"] and len(info["peers"]) <= 3:
            notes.append("connected to " + ", ".join(f"{p} x{c}" for p, c in info["peers"].items()))
        rows.append(
            [
                name,
                _num(summary["median"]),
                f"{_num(summary['p10'])} - {_num(summary['p90'])}",
                str(int(summary["n"])),
                ratio,
                "; ".join(notes),
            ]
        )
    header = [
        "contender",
        f"median ({case['unit']})",
        "p10 - p90",
        "samples",
        f"{subject} / contender",
        "notes",
    ]
    return [f"**{case['name']}** ({case['unit']}, {better})", "", *_table(header, rows), ""]


def _bars(document: dict[str, Any]) -> list[svgchart.Panel]:
    wanted = {
        ("P1", "latency"),
        ("P2", "time to connect"),
        ("P3", "time to connect"),
        ("P4", "throughput"),
        ("P5", "wall"),
    }
    panels = []
    for scenario in document["scenarios"]:
        for case in scenario["cases"]:
            if (scenario["id"], case["metric"]) not in wanted or not case.get("in_doc", True):
                continue
            bars = [
                svgchart.Bar(
                    name, info["summary"]["median"], info["summary"]["p10"], info["summary"]["p90"]
                )
                for name, info in case["contenders"].items()
                if info["summary"]
            ]
            panels.append(svgchart.Panel(f"{scenario['id']} {case['name']}", case["unit"], bars))
    return panels


def _scaling_chart(document: dict[str, Any]) -> Optional[str]:
    scenario = next((s for s in document["scenarios"] if s["id"] == "S"), None)
    if scenario is None or scenario["status"] != "ok":
        return None
    cases = [c for c in scenario["cases"] if c["metric"] == "wall"]
    categories = [c["name"].split()[0] for c in cases]
    names: list[str] = []
    for case in cases:
        names += [n for n in case["contenders"] if n not in names]
    series: dict[str, Sequence[Optional[float]]] = {
        name: [
            c["contenders"].get(name, {}).get("summary", {})
            and c["contenders"][name]["summary"]["median"]
            for c in cases
        ]
        for name in names
    }
    return (
        svgchart.log_lines(
            "S: time to connect with N-1 refusing addresses first",
            "ms (log scale)",
            categories,
            series,
        )
        or None
    )


def _headline(document: dict[str, Any]) -> list[str]:
    lines = []
    by_id = {s["id"]: s for s in document["scenarios"]}

    def ratio_of(scenario_id: str, case_index: int, contender: str) -> Optional[float]:
        scenario = by_id.get(scenario_id)
        if not scenario or scenario["status"] != "ok" or len(scenario["cases"]) <= case_index:
            return None
        info = scenario["cases"][case_index]["contenders"].get(contender)
        return None if info is None else info["ratio"]

    literal = ratio_of("P1", 0, "stock")
    if literal is not None:
        lines.append(
            f"* When nothing is broken, an eyeshim connect to an IP literal takes "
            f"{literal:.2f}x the stock time on loopback."
        )
    p1 = by_id.get("P1")
    if p1 and p1["status"] == "ok":
        for case in p1["cases"]:
            info = case["contenders"].get("stock")
            if (
                case["metric"] == "latency"
                and case["name"].startswith("resolved name")
                and info
                and info["ratio"] is not None
            ):
                lines.append(
                    f"* A connect to a {case['name'].split(': ')[0]} takes "
                    f"{info['ratio']:.2f}x the stock time."
                )
    for scenario_id, what in (("P2", "a broken preferred family"), ("P3", "a slow AAAA answer")):
        ratio = ratio_of(scenario_id, 0, "stock")
        if ratio is not None and ratio > 0:
            lines.append(
                f"* With {what}, eyeshim's first connect takes {ratio:.2f}x the stock "
                f"time ({1 / ratio:.0f}x faster)."
            )
    return lines


def write(document: dict[str, Any], path: Path) -> None:
    image_dir = path.parent / "img"
    image_dir.mkdir(parents=True, exist_ok=True)
    machine = document["machine"]
    out: list[str] = [
        "# Performance",
        "",
        "<!-- Generated by `python -m benchmarks run`; edits are overwritten. -->",
        "",
        "What eyeshim costs when the network is fine, and what it saves when it is not, "
        "measured side by side with stock `socket.create_connection` and with what a user "
        "could pick instead: asyncio's `loop.create_connection(happy_eyeballs_delay=0.25, "
        "interleave=1)`, aiohappyeyeballs' `start_connection` (after an AF_UNSPEC lookup, "
        "as aiohttp does), urllib3.future (niquests' engine, `happy_eyeballs=True`) and "
        "curl's own Happy Eyeballs (`--happy-eyeballs-timeout-ms 250`, `time_connect`).",
        "",
        f"This page comes from one run: `{document['command']}` (mode **{document['mode']}**), "
        f"which took {document['duration_s'] / 60:.1f} minutes.",
        "",
        *_headline(document),
        "",
        "## How to read the numbers",
        "",
        "* Contenders run in **rounds**: within a round each runs once, in an order rotated "
        "from round to round, so a slow spell of this shared machine hits all of them.",
        "* Each table gives the **median** and the **p10 - p90** spread of all samples.",
        "* The ratio column is the subject (eyeshim unless the table says otherwise) divided "
        "by the contender, **paired by round**: the median over rounds of the two medians' "
        "ratio in the same round. Below 1 means eyeshim is faster for times, slower for "
        "rates (connects/s, requests/s).",
        "* Only the connect is timed (resolution included where a name is given), not "
        "closing the socket.",
        '* Target rows marked "(no target)" record a measurement the issues asked for '
        "without a limit to judge it by.",
        "",
        "## Machine",
        "",
        *_table(
            ["what", "value"],
            [
                ["CPUs", f"{machine['cpus']} x {machine['cpu_model']}"],
                ["kernel", f"{machine['system']} {machine['kernel']}"],
                ["Python", machine["python"]],
                ["curl", machine["curl"]],
                ["load average at start", ", ".join(f"{x:.2f}" for x in machine["load_average"])],
                ["date", machine["date"]],
                *(
                    [
                        [
                            f"packages ({env})",
                            ", ".join(
                                f"{k} {v}"
                                for k, v in sorted(pk.items())
                                if k not in ("pip", "setuptools")
                            ),
                        ]
                        for env, pk in machine["packages"].items()
                    ]
                ),
                *(
                    [
                        [f"not installed: {env}", problem]
                        for env, problem in machine["environment_problems"].items()
                    ]
                ),
            ],
        ),
        "",
        "## Targets",
        "",
    ]
    target_rows = []
    for scenario in document["scenarios"]:
        if scenario["status"] != "ok":
            target_rows.append(
                [scenario["id"], scenario["title"], scenario["status"], scenario["reason"]]
            )
            continue
        for target in scenario["targets"]:
            target_rows.append(
                [scenario["id"], target["text"], target["measured"], _verdict(target["met"])]
            )
    out += _table(["", "target", "measured", "verdict"], target_rows)
    out += ["", "Every miss is explained under its scenario below.", ""]

    panels = _bars(document)
    if panels:
        (image_dir / CHART_BARS).write_text(
            svgchart.bar_panels("eyeshim and the alternatives, one run", panels)
        )
        out += [f"![Medians and p10-p90 of the main cases](img/{CHART_BARS})", ""]

    for scenario in document["scenarios"]:
        out += [f"## {scenario['id']}: {scenario['title']}", ""]
        if scenario["status"] != "ok":
            out += [f"**{scenario['status']}**: {scenario['reason']}", ""]
            continue
        out += [f"_{scenario['seconds']:.0f} s._", ""]
        out += [f"* {line}" for line in scenario["setup"]] + [""]
        for case in scenario["cases"]:
            if case.get("in_doc", True):
                out += _case_table(case)
        for table in scenario["tables"]:
            out += [f"**{table['title']}**", "", *_table(table["header"], table["rows"]), ""]
        if scenario["id"] == "S":
            chart = _scaling_chart(document)
            if chart:
                (image_dir / CHART_SCALING).write_text(chart)
                out += [
                    f"![Time to connect against the number of addresses](img/{CHART_SCALING})",
                    "",
                ]
        if scenario["targets"]:
            out += ["Targets:", ""]
            for target in scenario["targets"]:
                line = f"* {target['text']}: {target['measured']} - {_verdict(target['met'])}."
                if target["why"]:
                    line += f" Why: {target['why']}"
                out.append(line)
            out.append("")
        if scenario["skipped_contenders"]:
            out += ["Contenders left out:", ""]
            out += [
                f"* {name}: {reason}" for name, reason in scenario["skipped_contenders"].items()
            ]
            out.append("")
        if scenario["notes"]:
            out += [f"* {note}" for note in scenario["notes"]] + [""]

    out += [
        "## Reproducing",
        "",
        "```sh",
        "python -m benchmarks run            # everything this machine allows",
        "python -m benchmarks run --quick    # fewer rounds",
        "python -m benchmarks run --only P1,S --no-doc --json /tmp/results.json",
        "python -m benchmarks run --smoke    # tiny counts, no installs: the test suite's check",
        "```",
        "",
        "The first run creates three virtual environments in `~/.cache/eyeshim-bench` (or "
        "`$EYESHIM_BENCH_CACHE`): `main` with aiohappyeyeballs, requests and wrapt 2.x, "
        "`wrapt1` with wrapt 1.x (eyeshim does not use wrapt; P5 shows that having either "
        "installed changes nothing), and `urllib3-future` alone, since urllib3.future replaces "
        "the `urllib3` package. eyeshim itself is always the checkout's. The lab scenarios "
        "(P2, P3) and the rungs through a real DNS server (P1, P4, P5: a network namespace "
        "with its own resolv.conf and a DNS server on its loopback) need root, network "
        "namespaces, nft/iptables and dnslib (see docs/lab.md); without them they are "
        "skipped with the reason. curl comes from the system (Debian package curl). "
        "All traffic stays on loopback or inside the lab's namespaces.",
        "",
    ]
    path.write_text("\n".join(out))
