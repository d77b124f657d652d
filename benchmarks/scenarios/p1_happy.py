"""P1: the happy path on loopback, where eyeshim can only cost.

Three kinds of destination, because eyeshim takes a different path for each:

* an IP literal: eyeshim's fast path (one address, a plain blocking connect);
* ``localhost`` when /etc/hosts lists it: one AF_UNSPEC lookup in the
  caller's thread, then the same fast path when it yields one address;
* a name that goes through the resolver: per-family lookups on eyeshim's
  thread pool and the full race.  With no DNS server on loopback, the name
  is answered by :mod:`benchmarks.fakedns` with ``::1`` and ``127.0.0.1``,
  in every contender alike (stock included).

The far end is :mod:`benchmarks.servers`' accept-and-close server in its own
process, listening on both addresses.
"""

from __future__ import annotations

from benchmarks.harness import Context, ScenarioResult, measure_rounds, ratio_target
from benchmarks.servers import ServerProcess

FAKE_NAME = "dual.bench.eyeshim.invalid"
PYTHON_CONTENDERS = [
    "stock", "eyeshim", "eyeshim+events", "eyeshim (dns cache)", "asyncio", "aiohappyeyeballs",
    "urllib3.future",
]
TIMEOUT = 5.0

# Why eyeshim can cost more than the limit, per destination kind; {extra} and
# {stock} (microseconds) are filled in from the run.
_WHY = {
    "literal": (
        "eyeshim adds {extra:.0f} us to a {stock:.0f} us loopback connect: argument checks "
        "and the look-ups that choose the fast path (is it a literal, does anyone listen "
        "for events), then the same blocking connect() as stock (stock parses the literal "
        "in its own getaddrinfo call just the same). About 2 us of it is Python work that "
        "a loopback connect makes visible; on a 1 ms RTT the whole difference is "
        "{share:.1f}%."
    ),
    "hosts": (
        "eyeshim adds {extra:.0f} us to a {stock:.0f} us loopback connect: the literal "
        "pre-check and the hosts-file membership test (the file is looked at at most once "
        "a second), then the same AF_UNSPEC getaddrinfo and blocking connect as stock. On "
        "a 1 ms RTT that is {share:.1f}%."
    ),
    "resolver": (
        "eyeshim adds {extra:.0f} us to a {stock:.0f} us loopback connect: a name that is "
        "not a literal or in the hosts file goes through two lookups handed to eyeshim's "
        "resolver thread pool and back (thread wake-ups and a condition variable on each "
        "side), then the race (selector, sorting, history), where stock makes one "
        "getaddrinfo call and one blocking connect. The fake resolver answers in "
        "microseconds, so nothing hides this fixed cost; against a 1 ms RTT it would be "
        "{share:.0f}%, against real DNS and a 20 ms RTT a few percent. Resolving one family "
        "in the caller's thread would shorten the hand-off but let a slow or lost answer "
        "hold the caller, the very delay RFC 8305 §3 exists to avoid (the lab's d1-d4 "
        "rows). For names used again and again, eyeshim's DNS cache (dns_cache=True, the "
        "'eyeshim (dns cache)' row) skips the hand-off."
    ),
}


def _in_hosts_file(name: str) -> bool:
    try:
        with open("/etc/hosts") as hosts:
            return any(name in line.split()[1:] for line in hosts if not line.startswith("#"))
    except OSError:
        return False


def run(ctx: Context, result: ScenarioResult) -> None:
    rounds = ctx.pick(15, 6, 2)
    batch = ctx.pick(200, 80, 5)
    curl_batch = ctx.pick(3, 2, 1)
    names = [*PYTHON_CONTENDERS, "curl"]
    contenders = ctx.contenders(names, result)
    ctx.broadcast({"op": "fake_names", "table": {FAKE_NAME: ["::1", "127.0.0.1"]}})

    destinations = [("IP literal 127.0.0.1", "127.0.0.1", "literal", 1.10)]
    if _in_hosts_file("localhost"):
        destinations.append(("hosts-file name localhost", "localhost", "hosts", 1.3))
    else:
        result.notes.append("localhost is not in /etc/hosts here: its case was left out.")
    destinations.append(
        (f"resolved name ({FAKE_NAME} -> ::1, 127.0.0.1)", FAKE_NAME, "resolver", 1.3)
    )

    result.setup = [
        f"{rounds} rounds; per round and contender {batch} connects back to back "
        f"(curl: {curl_batch}, one process each); connect timeout {TIMEOUT:g} s.",
        "Server: accept-and-close on 127.0.0.1 and [::1], one port, in its own process.",
        f"{FAKE_NAME} is answered by a wrapper around socket.getaddrinfo (benchmarks/"
        "fakedns.py) with ::1 then 127.0.0.1, installed in every worker, so stock and "
        "every Python contender resolve it through the same function; AI_NUMERICHOST "
        "probes get EAI_NONAME as from glibc. curl cannot see that wrapper and is measured "
        "on the literal and localhost only.",
        "eyeshim+events: eyeshim with one events subscriber (a counter) attached. "
        "Note that a subscriber makes even a single-address literal go through the race "
        "(the fast path is only taken when nobody listens).",
    ]

    with ServerProcess(ctx.envs.main, "accept") as server:
        for label, host, kind, limit in destinations:
            ctx.log(f"P1 {label}")
            latency = result.case(f"{label}: connect latency", "latency", "ms")
            throughput = result.case(
                f"{label}: connects per second", "throughput", "connects/s",
                scale=1.0, higher_is_better=True,
            )
            here = [c for c in contenders if not (c.name == "curl" and host == FAKE_NAME)]
            if len(here) < len(contenders):
                latency.skipped["curl"] = "cannot use the in-process fake resolver"
            measure_rounds(
                here, rounds, host, server.port, TIMEOUT, latency, throughput,
                n=lambda name: curl_batch if name == "curl" else batch,
            )
            stock, eye = latency.summary("stock"), latency.summary("eyeshim")
            why = ""
            if stock is not None and eye is not None:
                extra_us = (eye["median"] - stock["median"]) * 1000
                why = _WHY[kind].format(extra=extra_us, stock=stock["median"] * 1000,
                                        share=extra_us / 10)
            result.targets.append(ratio_target(
                latency, "stock", limit,
                f"{label}: eyeshim median connect latency <= {limit:.2f}x stock", why,
            ))
            events = latency.ratio("eyeshim", "eyeshim+events")
            if events is not None:
                single = host != FAKE_NAME
                result.notes.append(
                    f"{label}: with a subscriber attached eyeshim takes {events:.2f}x its "
                    "time without one"
                    + (" (mostly because a subscriber sends even a single address through "
                       "the race, to have something to report)" if single else "")
                    + ". With nobody listening, each emit point costs one `is None` test and "
                    "no event is created: that cost is inside the eyeshim rows above, too "
                    "small to separate from the noise."
                )
