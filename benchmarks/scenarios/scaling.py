"""S: how connect time and CPU grow with the number of addresses a name has.

A name answers N addresses (:mod:`benchmarks.fakedns`): N-1 loopback
addresses where nothing listens (127.0.0.2, 127.0.0.3, ...: all of 127/8 is
loopback on Linux, and each refuses at once with a RST), then the working
127.0.0.1 last.  Every contender has to get through the N-1 failures, so this
shows the per-address cost of each machinery, in wall time and in process
CPU time (all threads: eyeshim's resolver pool and asyncio's executor
included).

"Refused" is the case where that cost can be seen at all: with addresses that
drop SYNs instead, every Happy Eyeballs implementation spends (N-1) x its
attempt delay waiting, and stock N-1 timeouts, whatever the machinery costs.
"""

from __future__ import annotations

from typing import Any, Optional

from benchmarks.harness import Case, Context, ScenarioResult, Target, measure_rounds
from benchmarks.servers import ServerProcess

CONTENDERS = [
    "stock", "eyeshim", "eyeshim (history)", "asyncio", "aiohappyeyeballs", "urllib3.future",
]
TIMEOUT = 10.0
FLOOR_MS = 10.0  # RFC 8305's minimum gap between two attempt starts, which eyeshim keeps


def _name(count: int) -> str:
    return f"n{count}.bench.eyeshim.invalid"


def _addresses(count: int) -> list[str]:
    broken = [f"127.0.{k // 256}.{k % 256}" for k in range(2, count + 1)]
    return [*broken, "127.0.0.1"]


def _cell(summary: Optional[dict[str, float]], errors: dict[str, int]) -> str:
    failures = ", ".join(f"{k} x{v}" for k, v in errors.items())
    if summary is None:
        return f"failed ({failures})" if failures else "-"
    text = f"{summary['median']:.2f} ({summary['p10']:.2f}-{summary['p90']:.2f})"
    return f"{text}; failed: {failures}" if failures else text


def _matrix(cases: dict[int, Case], names: list[str], title: str) -> dict[str, Any]:
    counts = sorted(cases)
    rows = []
    for name in names:
        row = [name]
        for count in counts:
            case = cases[count]
            row.append(_cell(case.summary(name), dict(case.errors.get(name, {}))))
        rows.append(row)
    ratio_row = ["eyeshim / stock"]
    for count in counts:
        ratio = cases[count].ratio("stock")
        ratio_row.append("-" if ratio is None else f"{ratio:.2f}x")
    rows.append(ratio_row)
    return {"title": title, "header": ["contender", *(f"N={c}" for c in counts)], "rows": rows}


def run(ctx: Context, result: ScenarioResult) -> None:
    counts: list[int] = ctx.pick([1, 2, 8, 32, 128], [1, 2, 8, 32, 128], [1, 2, 8])
    rounds = ctx.pick(5, 2, 1)
    per_batch = ctx.pick({1: 40, 2: 40, 8: 15, 32: 4, 128: 2},
                         {1: 20, 2: 20, 8: 8, 32: 2, 128: 1},
                         {1: 3, 2: 3, 8: 1})
    contenders = ctx.contenders(CONTENDERS, result)
    ctx.broadcast({"op": "fake_names", "table": {_name(n): _addresses(n) for n in counts}})
    wall: dict[int, Case] = {}
    cpu: dict[int, Case] = {}
    with ServerProcess(ctx.envs.main, "accept") as server:
        for count in counts:
            ctx.log(f"S: {count} addresses")
            wall[count] = result.case(f"{count} addresses: time to connect", "wall", "ms",
                                      in_doc=False)
            cpu[count] = result.case(f"{count} addresses: CPU per connect", "cpu", "ms CPU",
                                     in_doc=False)
            measure_rounds(
                contenders, rounds, _name(count), server.port, TIMEOUT, wall[count],
                cpu=cpu[count],
                n=lambda name, c=count: per_batch[c],  # type: ignore[misc]
                # Cold eyeshim forgets before each connect; the history variant
                # learns from one untimed connect first, then keeps what it knows.
                options=lambda name: {"warmup": True} if name == "eyeshim (history)"
                else {"clear_history": True},
            )
    names = [c.name for c in contenders]
    result.tables.append(_matrix(wall, names, "Time to connect, ms: median (p10-p90)"))
    result.tables.append(_matrix(cpu, names, "Process CPU per connect, ms: median (p10-p90)"))
    result.setup = [
        f"N = {', '.join(map(str, counts))} addresses: N-1 refusing loopback addresses "
        "(127.0.0.2 ...) then 127.0.0.1, which accepts; all answered at once by the fake "
        f"resolver. {rounds} rounds; per round and contender "
        + ", ".join(f"{per_batch[c]} connects at N={c}" for c in counts) + ".",
        "eyeshim: history cleared before each connect (a first connect). eyeshim (history): "
        "one untimed connect first, then the timed ones with what it learnt.",
        "urllib3.future only ever tries the first 4 addresses of a name (its "
        "happy_eyeballs default), so it fails when the working one comes later.",
    ]
    largest = max(counts)
    eye = wall[largest].summary("eyeshim")
    if eye is not None:
        floor = (largest - 1) * FLOOR_MS
        result.notes.append(
            f"At N={largest} eyeshim needs {eye['median']:.0f} ms for a first connect: after a "
            f"refusal it starts the next attempt at once, but never within {FLOOR_MS:g} ms of "
            f"the previous start (RFC 8305 section 5's floor, which eyeshim applies to "
            f"hand-overs after a failure too), so {largest - 1} refusals cost at least "
            f"{floor:.0f} ms. Stock, asyncio and aiohappyeyeballs move on to the next "
            "address as soon as one fails. With history the refusing addresses are sorted "
            "last and the next connect is immediate. Fix, if it matters: apply the floor to "
            "timer-driven starts only (RFC 8305 asks for it between attempts started by the "
            "delay; a failed attempt frees its slot at once)."
        )
    eye_cpu = cpu[largest].summary("eyeshim")
    if eye_cpu is not None and largest > 1:
        result.notes.append(
            f"eyeshim's CPU for a first connect at N={largest} is {eye_cpu['median']:.0f} ms, "
            f"about {eye_cpu['median'] / (largest - 1):.2f} ms per refused address, where stock "
            "needs a few microseconds per address. Where it goes has not been profiled in "
            "depth yet (a first cProfile look shows the racing thread mostly blocked in its "
            "10 ms waits, so the Python code of the loop is not where it goes)."
        )
    cpu_ratio = cpu[largest].ratio("stock")
    result.targets.append(Target(
        f"(no target) eyeshim CPU per first connect at N={largest}, relative to stock",
        "not measured" if cpu_ratio is None else f"{cpu_ratio:.2f}x", None,
    ))
