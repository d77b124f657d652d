"""P3: the AAAA answer comes 300 ms late, the A answer at once.

In the lab's ``ds`` client, ``p3.example.org`` has A ``10.64.78.34`` and AAAA
``2001:db8:c::1``, both reachable with a 20 ms RTT (SYNs held by NFQUEUE); the lab's
DNS server holds every AAAA reply for that name 300 ms.  A resolver that asks
for both in one AF_UNSPEC call (glibc, and so stock, asyncio, aiohttp's
resolver, curl) waits for the slow answer; eyeshim's per-family lookups let it
connect over IPv4 after the Resolution Delay (50 ms).
"""

from __future__ import annotations

from benchmarks import labsupport
from benchmarks.harness import (
    Context,
    ScenarioResult,
    Target,
    measure_rounds,
    ratio_target,
)

RTT_MS = 20.0
AAAA_DELAY_MS = 300.0
RESOLUTION_DELAY_MS = 50.0
CONTENDERS = ["stock", "eyeshim", "asyncio", "aiohappyeyeballs", "urllib3.future", "curl"]


def run(ctx: Context, result: ScenarioResult) -> None:
    from integrations.dnszone import Impairment

    lab = labsupport.get_lab(ctx)
    prefix = labsupport.client_prefix(lab)
    rounds = ctx.pick(10, 4, 1)
    timeout = 2.0
    name = lab.set_name(
        "p3", a=[labsupport.SERVER_V4], aaaa=[labsupport.SERVER_V6],
        impair={"AAAA": Impairment(delay_ms=AAAA_DELAY_MS)},
    )
    for address in (labsupport.SERVER_V4, labsupport.SERVER_V6):
        lab.set_latency(address, RTT_MS)
    try:
        contenders = ctx.contenders(CONTENDERS, result, prefix)
        case = result.case(f"connect to {name}", "time to connect", "ms")
        result.setup = [
            f"Lab client `{labsupport.CLIENT}` (dual-stack, prefers native IPv6). {name}: A "
            f"{labsupport.SERVER_V4} answered at once, AAAA {labsupport.SERVER_V6} answered "
            f"{AAAA_DELAY_MS:g} ms late by the lab DNS; both addresses work, SYNs held "
            f"{RTT_MS:g} ms (RTT).",
            f"{rounds} rounds, one connect per contender per round (eyeshim's history "
            f"cleared before each), timeout {timeout:g} s.",
        ]
        ctx.log(f"P3: {rounds} rounds")
        measure_rounds(contenders, rounds, name, labsupport.HTTP_PORT, timeout, case,
                       options=lambda _: {"clear_history": True})
    finally:
        for address in (labsupport.SERVER_V4, labsupport.SERVER_V6):
            lab.clear_latency(address)

    limit = RESOLUTION_DELAY_MS + RTT_MS + 10
    summary = case.summary("eyeshim")
    if summary is not None:
        met = summary["median"] <= limit
        result.targets.append(Target(
            f"eyeshim <= Resolution Delay + RTT + 10 ms = {limit:g} ms",
            f"{summary['median']:.0f} ms", met,
            "" if met else "see the per-round numbers",
        ))
    result.targets.append(ratio_target(case, "stock", 0.3, "eyeshim <= 0.3x stock"))
