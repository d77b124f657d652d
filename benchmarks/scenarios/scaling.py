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

from benchmarks.harness import (
    Case,
    Context,
    ScenarioResult,
    Target,
    measure_rounds,
    profile_rows,
)
from benchmarks.servers import ServerProcess

CONTENDERS = [
    "stock",
    "eyeshim",
    "eyeshim (threads kept warm)",
    "eyeshim (history)",
    "asyncio",
    "aiohappyeyeballs",
    "urllib3.future",
]
TIMEOUT = 10.0
CPU_PER_REFUSAL_LIMIT = 2.0  # issue 12: CPU per refused address within 2x stock's


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
    per_batch = ctx.pick(
        {1: 40, 2: 40, 8: 15, 32: 4, 128: 2},
        {1: 20, 2: 20, 8: 8, 32: 2, 128: 1},
        {1: 3, 2: 3, 8: 1},
    )
    contenders = ctx.contenders(CONTENDERS, result)
    ctx.broadcast({"op": "fake_names", "table": {_name(n): _addresses(n) for n in counts}})
    wall: dict[int, Case] = {}
    cpu: dict[int, Case] = {}
    with ServerProcess(ctx.envs.main, "accept") as server:
        for count in counts:
            ctx.log(f"S: {count} addresses")
            wall[count] = result.case(
                f"{count} addresses: time to connect", "wall", "ms", in_doc=False
            )
            cpu[count] = result.case(
                f"{count} addresses: CPU per connect", "cpu", "ms CPU", in_doc=False
            )
            measure_rounds(
                contenders,
                rounds,
                _name(count),
                server.port,
                TIMEOUT,
                wall[count],
                cpu=cpu[count],
                n=lambda name, c=count: per_batch[c],  # type: ignore[misc]
                # Cold eyeshim forgets before each connect; the history variant
                # learns from one untimed connect first, then keeps what it knows.
                options=lambda name: (
                    {"warmup": True} if name == "eyeshim (history)" else {"clear_history": True}
                ),
            )
        profile_text = _profile(ctx, result, server.port, max(counts)) if max(counts) > 1 else ""
    names = [c.name for c in contenders]
    result.tables.append(_matrix(wall, names, "Time to connect, ms: median (p10-p90)"))
    result.tables.append(_matrix(cpu, names, "Process CPU per connect, ms: median (p10-p90)"))
    result.setup = [
        f"N = {', '.join(map(str, counts))} addresses: N-1 refusing loopback addresses "
        "(127.0.0.2 ...) then 127.0.0.1, which accepts; all answered at once by the fake "
        f"resolver. {rounds} rounds; per round and contender "
        + ", ".join(f"{per_batch[c]} connects at N={c}" for c in counts)
        + ".",
        "eyeshim: history cleared before each connect (a first connect). eyeshim (history): "
        "one untimed connect first, then the timed ones with what it learnt.",
        "urllib3.future only ever tries the first 4 addresses of a name (its "
        "happy_eyeballs default), so it fails when the working one comes later.",
    ]
    result.setup.append(
        "eyeshim (threads kept warm): the same first connect with getaddrinfo on resolver "
        "threads that wait 2 s for more work instead of exiting after each lookup."
    )
    _targets(result, counts, wall, cpu, profile_text)


def _per_refusal(cpu: dict[int, Case], name: str, largest: int) -> Optional[float]:
    """CPU (ms) per refused address: the slope between N=1 and the largest N."""
    low, high = cpu[1].summary(name), cpu[largest].summary(name)
    if low is None or high is None or largest <= 1:
        return None
    return (high["median"] - low["median"]) / (largest - 1)


def _profile(ctx: Context, result: ScenarioResult, port: int, count: int) -> str:
    """cProfile of eyeshim's first connects to ``count`` addresses: a table, and
    a sentence naming where most of the race's own time goes."""
    worker = ctx.worker(ctx.envs.main)
    if "eyeshim" in worker.unavailable:
        return ""
    n = ctx.pick(3, 1, 1)
    found = worker.request(
        {
            "op": "profile",
            "contender": "eyeshim",
            "host": _name(count),
            "port": port,
            "n": n,
            "clear_history": True,
        }
    )
    refused = (count - 1) * n
    rows = profile_rows(found, n, refused, calls_digits=0)
    result.tables.append(
        {
            "title": f"Where eyeshim's race spends its time at N={count} (cProfile of {n} first "
            "connect(s) in the worker, CPU time of the caller's thread; us per refused "
            "address, inflated by the profiler)",
            "header": [
                "function",
                "calls per connect",
                "own us / refused address",
                "cumulative us / refused address",
            ],
            "rows": rows,
        }
    )
    files = ", ".join(
        f"{where} {own * 1e6 / refused:.0f} us ({own / found['total']:.0%})"
        for where, own in found["files"]
        if found["total"]
    )
    return (
        f"cProfile of the race's thread (table under S), own CPU time per refused address "
        f"by module: {files}."
    )


def _targets(
    result: ScenarioResult,
    counts: list[int],
    wall: dict[int, Case],
    cpu: dict[int, Case],
    profile_text: str = "",
) -> None:
    ratios = {n: wall[n].ratio("aiohappyeyeballs") for n in counts}
    known = {n: r for n, r in ratios.items() if r is not None}
    measured = ", ".join(f"N={n}: {r:.2f}x" for n, r in known.items()) or "not measured"
    above = [n for n, r in known.items() if r > 1.0]
    why = ""
    if above:
        parts = []
        for n in above:
            eye, warm = wall[n].summary("eyeshim"), wall[n].summary("eyeshim (threads kept warm)")
            aio = wall[n].summary("aiohappyeyeballs")
            if eye is None or warm is None or aio is None:
                continue
            parts.append(
                f"N={n}: eyeshim {eye['median'] * 1000:.0f} us, with threads kept warm "
                f"{warm['median'] * 1000:.0f} us, aiohappyeyeballs {aio['median'] * 1000:.0f} us"
            )
        why = (
            (
                "measured: " + "; ".join(parts) + ". Where the warm-thread row is at or below "
                "aiohappyeyeballs, the difference is the resolver threads started per "
                "call (no thread outlives its work; P1's table times one on this machine); "
                "aiohappyeyeballs reuses the event loop's executor threads."
            )
            if parts
            else ""
        )
    result.targets.append(
        Target(
            "S: eyeshim time to connect at or below aiohappyeyeballs at every N (eyeshim / "
            "aiohappyeyeballs <= 1.00x)",
            measured,
            None if not known else not above,
            why,
        )
    )
    largest = max(counts)
    if largest <= 1:
        return
    per_eye = _per_refusal(cpu, "eyeshim", largest)
    per_stock = _per_refusal(cpu, "stock", largest)
    if per_eye is None or per_stock is None or per_stock <= 0:
        result.targets.append(
            Target(
                f"S: eyeshim CPU per refused address <= {CPU_PER_REFUSAL_LIMIT:g}x stock's",
                "not measured",
                None,
            )
        )
        return
    ratio = per_eye / per_stock
    met = ratio <= CPU_PER_REFUSAL_LIMIT
    result.targets.append(
        Target(
            f"S: eyeshim CPU per refused address <= {CPU_PER_REFUSAL_LIMIT:g}x stock's (slope of "
            f"median CPU per connect from N=1 to N={largest})",
            f"{ratio:.2f}x ({per_eye * 1000:.0f} us against {per_stock * 1000:.0f} us per address)",
            met,
            ""
            if met
            else (
                f"measured: each refused address costs eyeshim {per_eye * 1000:.0f} us of CPU and "
                f"stock {per_stock * 1000:.0f} us. " + profile_text
            ),
        )
    )
