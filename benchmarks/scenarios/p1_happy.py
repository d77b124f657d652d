"""P1: the happy path on loopback, where eyeshim can only cost.

Four kinds of destination, because eyeshim takes a different path for each:

* an IP literal: eyeshim's fast path (one address, a plain blocking connect);
* ``localhost`` when /etc/hosts lists it: one AF_UNSPEC lookup in the
  caller's thread, then the same fast path when it yields one address;
* a resolved name with a microsecond resolver: per-family lookups and the
  full race.  :mod:`benchmarks.fakedns` answers the name with ``::1`` and
  ``127.0.0.1`` in every contender alike (stock included); since it replaces
  ``socket.getaddrinfo``, eyeshim resolves on its threads (``getaddrinfo``);
* a resolved name through a real DNS server, by the system's resolver: the
  clients run in :mod:`benchmarks.labsupport`'s DNS namespace, whose
  resolv.conf names :mod:`benchmarks.dnsserver` on the namespace's own
  loopback (root only; otherwise the rung is left out, with the reason).

For the resolved names, rows that take eyeshim apart: ``eyeshim (dns
cache)`` (answers from the cache: the race without lookups or threads),
``eyeshim (threads kept warm)`` (``getaddrinfo`` on threads that wait 2 s
for more work: the hand-off without a thread start) and, where eyeshim has a
resolver of its own, ``eyeshim (system resolver)`` (``getaddrinfo`` on
threads that exit after each lookup, the default before it).  The worker
also times a thread start on this machine in the same run.

The far end is :mod:`benchmarks.servers`' accept-and-close server in its own
process, listening on both addresses.
"""

from __future__ import annotations

from typing import Any, Optional

from benchmarks import labsupport
from benchmarks.harness import (
    Case,
    Contender,
    Context,
    ScenarioResult,
    Skip,
    Target,
    measure_rounds,
    profile_rows,
    ratio_target,
)
from benchmarks.servers import ServerProcess

FAKE_NAME = "dual.bench.eyeshim.invalid"
PYTHON_CONTENDERS = [
    "stock",
    "eyeshim",
    "eyeshim (system resolver)",
    "eyeshim (threads kept warm)",
    "eyeshim+events",
    "eyeshim (dns cache)",
    "asyncio",
    "aiohappyeyeballs",
    "urllib3.future",
]
# Rows that only mean something where there is a lookup on threads.
RESOLVER_ROWS = {"eyeshim (system resolver)", "eyeshim (threads kept warm)"}
TIMEOUT = 5.0
LIMIT_LITERAL = 1.10
LIMIT_HOSTS = 1.3
LIMIT_FAKE = 2.0  # issue 12: the floor with two threaded lookups is about 2x
LIMIT_DNS = 1.2  # issue 12: through real DNS
LIMIT_DNS_OWN = 1.3  # issue 13: with eyeshim's own resolver on the race's selector

# Why eyeshim can cost more than the limit, per destination kind; {extra} and
# {stock} (microseconds) are filled in from the run.
_WHY = {
    "literal": (
        "eyeshim adds {extra:.0f} us to a {stock:.0f} us loopback connect: argument checks "
        "and the look-ups that choose the fast path (is it a literal, does anyone listen "
        "for events), then the same blocking connect() as stock (stock parses the literal "
        "in its own getaddrinfo call just the same). On a 1 ms RTT the whole difference is "
        "{share:.1f}%."
    ),
    "hosts": (
        "eyeshim adds {extra:.0f} us to a {stock:.0f} us loopback connect: the literal "
        "pre-check and the hosts-file membership test (the file is looked at at most once "
        "a second), then the same AF_UNSPEC getaddrinfo and blocking connect as stock. On "
        "a 1 ms RTT that is {share:.1f}%."
    ),
}


def _in_hosts_file(name: str) -> bool:
    try:
        with open("/etc/hosts") as hosts:
            return any(name in line.split()[1:] for line in hosts if not line.startswith("#"))
    except OSError:
        return False


def _us(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.0f} us"


def _median_us(case: Case, name: str) -> Optional[float]:
    summary = case.summary(name)
    return None if summary is None else summary["median"] * 1000


class _Destination:
    def __init__(self, label: str, host: str, kind: str, limit: float, short: str = "") -> None:
        self.label, self.host, self.kind, self.limit = label, host, kind, limit
        self.short = short or label  # for the target table
        self.resolvers: dict[str, list[str]] = {}  # eyeshim row -> resolver it used


def _measure(
    ctx: Context,
    result: ScenarioResult,
    contenders: list[Contender],
    dest: _Destination,
    port: int,
    rounds: int,
    batch: int,
    curl_batch: int,
) -> Case:
    ctx.log(f"P1 {dest.label}")
    latency = result.case(f"{dest.label}: connect latency", "latency", "ms")
    throughput = result.case(
        f"{dest.label}: connects per second",
        "throughput",
        "connects/s",
        scale=1.0,
        higher_is_better=True,
    )
    here = [
        c
        for c in contenders
        if not (c.name == "curl" and dest.host == FAKE_NAME)
        and (dest.kind in ("fake", "dns") or c.name not in RESOLVER_ROWS)
    ]
    if any(c.name == "curl" for c in contenders) and dest.host == FAKE_NAME:
        latency.skipped["curl"] = "cannot use the in-process fake resolver"
    measure_rounds(
        here,
        rounds,
        dest.host,
        port,
        TIMEOUT,
        latency,
        throughput,
        n=lambda name: curl_batch if name == "curl" else batch,
    )
    return latency


def _resolvers(
    ctx: Context, python: str, prefix: list[str], dest: _Destination, port: int, names: list[str]
) -> None:
    """Ask each eyeshim row which resolver it used for the destination (its events)."""
    worker = ctx.worker(python, prefix)
    for name in names:
        if name.startswith("eyeshim") and name not in {*worker.unavailable, "eyeshim+events"}:
            dest.resolvers[name] = worker.request(
                {"op": "resolver_used", "contender": name, "host": dest.host, "port": port}
            )


def _profile(
    ctx: Context, result: ScenarioResult, prefix: list[str], dest: _Destination, port: int
) -> str:
    """cProfile (CPU time of the caller's thread) of eyeshim's default connects to
    the destination, as a table (where the race's own time goes) and a sentence."""
    worker = ctx.worker(ctx.envs.main, prefix)
    if "eyeshim" in worker.unavailable:
        return ""
    n = ctx.pick(50, 20, 3)
    found = worker.request(
        {"op": "profile", "contender": "eyeshim", "host": dest.host, "port": port, "n": n}
    )
    rows = profile_rows(found, n, n, calls_digits=1)
    result.tables.append(
        {
            "title": f"{dest.label}: cProfile of {n} eyeshim connects (CPU time of the caller's "
            "thread, which runs the race; resolver threads are not in it; us per "
            "connect, inflated by the profiler)",
            "header": ["function", "calls per connect", "own us", "cumulative us"],
            "rows": rows,
        }
    )
    total = found["total"]
    if not total:
        return ""
    files = ", ".join(f"{where} {own / total:.0%}" for where, own in found["files"])
    return f"cProfile of the race's thread, its own CPU time by module: {files}"


def _threaded_row(dest: _Destination, latency: Case) -> Optional[str]:
    """The row that is getaddrinfo on threads that exit after each lookup."""
    for name in ("eyeshim (system resolver)", "eyeshim"):
        used = dest.resolvers.get(name, [])
        if (
            latency.summary(name) is not None
            and used
            and all(u.startswith("getaddrinfo") for u in used)
        ):
            return name
    return None


# What the worker's ``thread_cost`` times (benchmarks.contenders.thread_cost).
MACHINE_ROWS = (
    ("start_join", "thread start + join", "start a thread that does nothing, join it"),
    (
        "start_bare",
        "bare thread start",
        "start a bare _thread thread and wait until it has run (what eyeshim does per "
        "lookup: no start handshake, no join; fork() waits for finished threads instead)",
    ),
    (
        "handoff",
        "hand-off",
        "hand work to a running thread and get the answer back (two lock hand-offs)",
    ),
    (
        "lookup_running_thread",
        "lookup, running thread",
        "getaddrinfo(name, AF_INET) handed to a running thread that has looked up before, and back",
    ),
    (
        "lookup_new_thread",
        "lookup, new thread",
        "the same lookup in a new thread, started and joined",
    ),
)


def _breakdown(
    result: ScenarioResult, dest: _Destination, latency: Case, threads: dict[str, Any]
) -> str:
    """The table of where eyeshim's time goes on a resolved name, and the text of it."""
    stock = _median_us(latency, "stock")
    threaded = _threaded_row(dest, latency)
    rows: list[list[str]] = []
    steps: list[str] = []
    previous = stock
    chain = [
        ("stock", "one AF_UNSPEC getaddrinfo in the caller's thread, one connect"),
        (
            "eyeshim (dns cache)",
            "both answers from eyeshim's DNS cache: the race alone, no lookup, no thread",
        ),
        (
            "eyeshim (threads kept warm)",
            "two lookups handed to resolver threads that are "
            "already running (resolver_idle_timeout=2 s)",
        ),
    ]
    if threaded is not None:
        chain.append(
            (
                threaded,
                "a thread started for each lookup, exiting once it has answered "
                "(resolver_idle_timeout=0, the default)",
            )
        )
    if "eyeshim" in dest.resolvers and threaded != "eyeshim":
        chain.append(("eyeshim", "the default: " + "; ".join(dest.resolvers["eyeshim"])))
    for name, what in chain:
        value = _median_us(latency, name)
        if value is None:
            continue
        # The default on its own resolver is not a step on from the threaded rows.
        step = name != "stock" and (name != "eyeshim" or threaded == "eyeshim")
        added = f"{value - previous:+.0f} us" if step and previous is not None else ""
        over = "" if stock is None or name == "stock" else f"{value - stock:+.0f} us"
        rows.append([name, what, f"{value:.0f} us", added, over])
        previous = value
    for key, label, what in MACHINE_ROWS:
        if key in threads:
            cost = threads[key]
            rows.append(
                [
                    f"machine: {label}",
                    what,
                    f"{cost['wall'] * 1e6:.0f} us",
                    f"CPU {cost['cpu'] * 1e6:.0f} us",
                    "",
                ]
            )
    result.tables.append(
        {
            "title": f"{dest.label}: where eyeshim's time goes (medians of the rows above, each "
            "row adding one thing to the one before; the machine rows timed in the "
            "same worker, in this run)",
            "header": [
                "row",
                "what it does",
                "median",
                "vs the row before (machine rows: CPU)",
                "vs stock",
            ],
            "rows": rows,
        }
    )
    cache, warm = (
        _median_us(latency, "eyeshim (dns cache)"),
        _median_us(latency, "eyeshim (threads kept warm)"),
    )
    exits = _median_us(latency, threaded) if threaded is not None else None
    if stock is not None and cache is not None:
        steps.append(
            f"the race itself (answers from the DNS cache: no lookup, no thread) "
            f"adds {cache - stock:.0f} us"
        )
    if cache is not None and warm is not None:
        steps.append(
            f"handing the two lookups to threads already running adds {warm - cache:.0f} us"
        )
    if warm is not None and exits is not None:
        bare = threads.get("start_bare")
        steps.append(
            f"starting a thread per lookup instead (no thread outlives its "
            f"work) adds {exits - warm:.0f} us, {(exits - warm) / 2:.0f} us per lookup"
            + (
                ""
                if bare is None
                else f"; a bare thread start costs {bare['wall'] * 1e6:.0f} us on "
                f"this machine in this run"
            )
        )
    new, running = threads.get("lookup_new_thread"), threads.get("lookup_running_thread")
    if new is not None and running is not None:
        steps.append(
            f"one getaddrinfo through this DNS server takes {running['wall'] * 1e6:.0f} us in a "
            f"thread that has looked up before and {new['wall'] * 1e6:.0f} us in a new thread "
            f"(started and joined): a new thread's lookup costs "
            f"{(new['wall'] - running['wall']) * 1e6:.0f} us more"
        )
    own = [u for u in dest.resolvers.get("eyeshim", []) if not u.startswith("getaddrinfo")]
    eye = _median_us(latency, "eyeshim")
    if own and eye is not None and stock is not None and cache is not None:
        # The default resolves on the race's own selector: not a step on from the threads.
        steps.insert(
            0,
            (
                f"eyeshim's default ({'; '.join(own)}) adds {eye - stock:.0f} us over stock, of "
                f"which the race itself is {cache - stock:.0f} us (the dns cache row) and its own "
                f"two queries on the race's selector, against stock's one getaddrinfo, the other "
                f"{eye - cache:.0f} us. getaddrinfo on threads, for comparison"
            ),
        )
    return "; ".join(steps)


def run(ctx: Context, result: ScenarioResult) -> None:
    rounds = ctx.pick(15, 6, 2)
    batch = ctx.pick(200, 80, 5)
    curl_batch = ctx.pick(3, 2, 1)
    names = [*PYTHON_CONTENDERS, "curl"]
    contenders = ctx.contenders(names, result)
    ctx.broadcast({"op": "fake_names", "table": {FAKE_NAME: ["::1", "127.0.0.1"]}})

    destinations = [_Destination("IP literal 127.0.0.1", "127.0.0.1", "literal", LIMIT_LITERAL)]
    if _in_hosts_file("localhost"):
        destinations.append(
            _Destination("hosts-file name localhost", "localhost", "hosts", LIMIT_HOSTS)
        )
    else:
        result.notes.append("localhost is not in /etc/hosts here: its case was left out.")
    destinations.append(
        _Destination(
            f"resolved name, microsecond resolver ({FAKE_NAME} -> ::1, 127.0.0.1)",
            FAKE_NAME,
            "fake",
            LIMIT_FAKE,
            "resolved name, microsecond resolver",
        )
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
        "eyeshim (threads kept warm): getaddrinfo on resolver threads that wait 2 s for more "
        "work (resolver_idle_timeout=2, a pool of its own); eyeshim (system resolver): "
        "EYESHIM_RESOLVER=system, where eyeshim has a resolver of its own; eyeshim (dns "
        "cache): dns_cache=True.",
    ]

    main_worker = ctx.worker(ctx.envs.main)
    threads: dict[str, Any] = main_worker.request(
        {"op": "thread_cost", "n": ctx.pick(400, 200, 20)}
    )
    with ServerProcess(ctx.envs.main, "accept") as server:
        for dest in destinations:
            if dest.kind == "fake":
                _resolvers(ctx, ctx.envs.main, [], dest, server.port, names)
            latency = _measure(
                ctx, result, contenders, dest, server.port, rounds, batch, curl_batch
            )
            profiled = _profile(ctx, result, [], dest, server.port) if dest.kind == "fake" else ""
            _judge(result, dest, latency, threads, profiled)

    _dns_rung(ctx, result, names, rounds, batch, curl_batch)


def _judge(
    result: ScenarioResult,
    dest: _Destination,
    latency: Case,
    threads: dict[str, Any],
    profiled: str = "",
) -> None:
    stock, eye = latency.summary("stock"), latency.summary("eyeshim")
    why = ""
    if dest.kind in ("fake", "dns"):
        used = "; ".join(dest.resolvers.get("eyeshim", [])) or "not reported"
        result.setup.append(f"{dest.label}: eyeshim's resolver, as its events say: {used}.")
        why = _breakdown(result, dest, latency, threads)
        if why:
            why = "measured in this run: " + why + " (table under this scenario)"
            why += f"; {profiled}." if profiled else "."
    elif stock is not None and eye is not None:
        extra_us = (eye["median"] - stock["median"]) * 1000
        why = _WHY[dest.kind].format(
            extra=extra_us, stock=stock["median"] * 1000, share=extra_us / 10
        )
    if dest.kind == "dns":
        result.targets.append(
            ratio_target(
                latency,
                "stock",
                LIMIT_DNS,
                f"{dest.short}: eyeshim median connect latency <= {LIMIT_DNS:.2f}x stock "
                "(issue 12)",
                why,
            )
        )
        own = [u for u in dest.resolvers.get("eyeshim", []) if not u.startswith("getaddrinfo")]
        text = (
            f"{dest.short}: eyeshim with its own resolver <= {LIMIT_DNS_OWN:.2f}x stock (issue 13)"
        )
        if own:
            result.targets.append(ratio_target(latency, "stock", LIMIT_DNS_OWN, text, why))
        else:
            result.targets.append(
                Target(
                    text,
                    "n/a: eyeshim used " + "; ".join(dest.resolvers.get("eyeshim", ["?"])),
                    None,
                )
            )
    else:
        result.targets.append(
            ratio_target(
                latency,
                "stock",
                dest.limit,
                f"{dest.short}: eyeshim median connect latency <= {dest.limit:.2f}x stock",
                why,
            )
        )
    threaded = _threaded_row(dest, latency) if dest.kind in ("fake", "dns") else None
    warm = latency.summary("eyeshim (threads kept warm)")
    if threaded is not None and warm is not None:
        cost = (latency.summary(threaded)["median"] - warm["median"]) * 1000 / 2  # type: ignore[index]
        bare = threads.get("start_bare")
        result.targets.append(
            Target(
                f"(no target; issue 11 item 8) {dest.short}: what no thread outliving its work "
                f"costs per lookup (({threaded} - eyeshim (threads kept warm)) / 2)",
                f"{cost:+.0f} us per lookup"
                + (
                    ""
                    if bare is None
                    else f" (a bare thread start here: {bare['wall'] * 1e6:.0f} us)"
                ),
                None,
            )
        )
    events = latency.ratio("eyeshim", "eyeshim+events")
    if events is not None:
        single = dest.kind in ("literal", "hosts")
        result.notes.append(
            f"{dest.label}: with a subscriber attached eyeshim takes {events:.2f}x its "
            "time without one"
            + (
                " (mostly because a subscriber sends even a single address through "
                "the race, to have something to report)"
                if single
                else ""
            )
            + ". With nobody listening, each emit point costs one `is None` test and "
            "no event is created: that cost is inside the eyeshim rows above, too "
            "small to separate from the noise."
        )


def _dns_rung(
    ctx: Context, result: ScenarioResult, names: list[str], rounds: int, batch: int, curl_batch: int
) -> None:
    """The resolved name through a DNS server on loopback, in the DNS namespace."""
    label = f"resolved name through a DNS server on loopback ({labsupport.DNS_NAME})"
    try:
        namespace = labsupport.get_dns_namespace(ctx)
    except Skip as exc:
        result.notes.append(f"{label}: left out: {exc}")
        result.targets.append(
            Target(
                f"resolved name, DNS server on loopback: eyeshim <= {LIMIT_DNS:.2f}x stock "
                "(issue 12)",
                f"not measured: {exc}",
                None,
            )
        )
        return
    prefix = namespace.prefix
    dest = _Destination(
        label, labsupport.DNS_NAME, "dns", LIMIT_DNS, "resolved name, DNS server on loopback"
    )
    dns_names = [n for n in names if n not in ("eyeshim+events",)]
    contenders = ctx.contenders(dns_names, result, prefix)
    worker = ctx.worker(ctx.envs.main, prefix)
    with ServerProcess(ctx.envs.main, "accept", prefix) as server:
        threads: dict[str, Any] = worker.request(
            {
                "op": "thread_cost",
                "n": ctx.pick(400, 200, 20),
                "host": dest.host,
                "port": server.port,
            }
        )
        _resolvers(ctx, ctx.envs.main, prefix, dest, server.port, dns_names)
        per_connect = []
        check = ctx.pick(20, 10, 2)
        for contender in contenders:
            before = namespace.queries()
            batch_result = contender.measure(
                dest.host, server.port, check if contender.name != "curl" else 1, TIMEOUT
            )
            after = namespace.queries()
            made = len(batch_result["times"]) or 1
            asked = {t: (after.get(t, 0) - before.get(t, 0)) / made for t in after}
            per_connect.append(
                [
                    contender.name,
                    ", ".join(f"{t} {n:.1f}" for t, n in sorted(asked.items()) if n) or "none",
                ]
            )
        result.tables.append(
            {
                "title": f"{label}: DNS queries per connect, counted by the server ({check} "
                "connects each; none means answers came from a cache)",
                "header": ["contender", "queries per connect"],
                "rows": per_connect,
            }
        )
        latency = _measure(ctx, result, contenders, dest, server.port, rounds, batch, curl_batch)
        profiled = _profile(ctx, result, prefix, dest, server.port)
        _judge(result, dest, latency, threads, profiled)
    result.setup.append(
        f"{label}: every client runs in a network namespace of its own "
        f"({namespace.ns}: loopback only, resolv.conf `nameserver 127.0.0.1`, `nameserver ::1`, "
        "nsswitch `hosts: files dns`), and the system resolver asks benchmarks/dnsserver.py "
        "there (A 127.0.0.1, AAAA ::1, TTL 60; each distinct question built once with dnslib, "
        "then answered from its bytes, as a local caching server answers). curl too resolves "
        "through it."
    )
