"""P4: a threaded service making many short requests, stock against eyeshim.install().

32 threads, each with its own ``requests.Session``, each request with
``Connection: close`` so that every request opens a new TCP connection (the
server's connection counter checks that).  The server
(:mod:`benchmarks.servers` ``http``) is a single-threaded selector loop in its
own process.  Three destinations, because eyeshim takes a different path for
each (see P1):

* ``localhost`` (a hosts-file name: no resolver threads);
* a resolved name with the microsecond resolver (:mod:`benchmarks.fakedns`,
  installed in every client alike): per-family lookups on eyeshim's threads;
* a resolved name through a DNS server on loopback, in the DNS namespace of
  :mod:`benchmarks.labsupport` (root only; otherwise left out, with why).

For the resolved names a third client, ``eyeshim (threads kept warm)``
(``resolver_idle_timeout=2``), shows what threads that exit after each
lookup cost under load.  Blocks of the modes alternate; each block reports
its throughput, its process CPU and every request's latency (p50 and p99 are
over all requests of a mode).  Afterwards each client counts its file
descriptors and threads against the count before the first block.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Sequence
from typing import Callable, Optional

from benchmarks import labsupport
from benchmarks.harness import (
    Case,
    Context,
    ScenarioResult,
    Skip,
    Target,
    Worker,
    interleave,
    ratio_target,
)
from benchmarks.scenarios.p1_happy import FAKE_NAME, _in_hosts_file
from benchmarks.servers import ServerProcess

MODES = {"stock": "stock", "eyeshim": "eyeshim", "eyeshim (threads kept warm)": "eyeshim-warm"}
LEAK_WAIT = 0.2  # no resolver thread outlives its call: nothing to wait out
LIMIT_LOCAL = 0.9
LIMIT_RESOLVED = 0.95  # issue 12


def _accepted(port: int, prefix: Sequence[str]) -> int:
    if prefix:  # the server lives in the DNS namespace: ask from there
        import subprocess
        import sys

        code = (
            "import http.client, json, sys\n"
            "c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10)\n"
            "c.request('GET', '/stats'); print(json.loads(c.getresponse().read())['accepted'])\n"
        )
        out = subprocess.run(
            [*prefix, sys.executable, "-c", code, str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return int(out.stdout.strip())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/stats")
        count: int = json.loads(conn.getresponse().read())["accepted"]
    finally:
        conn.close()
    return count


class _Rung:
    def __init__(
        self, label: str, host: str, kind: str, prefix: Sequence[str] = (), short: str = ""
    ) -> None:
        self.label, self.host, self.kind, self.prefix = label, host, kind, list(prefix)
        self.short = short or label
        self.modes = ["stock", "eyeshim"] + (
            ["eyeshim (threads kept warm)"] if kind != "local" else []
        )
        self.throughput: Optional[Case] = None
        self.latency: Optional[Case] = None
        self.cpu: Optional[Case] = None
        self.resolvers: dict[str, str] = {}  # mode -> the resolver it used


def run(ctx: Context, result: ScenarioResult) -> None:
    threads = ctx.pick(32, 32, 4)
    per_block = ctx.pick(50, 40, 5)
    blocks = ctx.pick(4, 2, 1)
    local = "localhost" if _in_hosts_file("localhost") else "127.0.0.1"
    rungs = [
        _Rung(
            f"{local} ({'a hosts-file name' if local == 'localhost' else 'a literal'})",
            local,
            "local",
        ),
        _Rung(
            f"resolved name, microsecond resolver ({FAKE_NAME})",
            FAKE_NAME,
            "fake",
            short="resolved name, microsecond resolver",
        ),
    ]
    try:
        namespace = labsupport.get_dns_namespace(ctx)
        rungs.append(
            _Rung(
                f"resolved name through a DNS server on loopback ({labsupport.DNS_NAME})",
                labsupport.DNS_NAME,
                "dns",
                namespace.prefix,
                "resolved name, DNS server on loopback",
            )
        )
    except Skip as exc:
        result.notes.append(f"The resolved name through a DNS server was left out: {exc}")
    result.setup = [
        f"{threads} threads x {per_block} requests per block, {blocks} blocks per mode, modes "
        "alternating; each mode in its own process (eyeshim: `eyeshim.install()` before the "
        "first request; eyeshim (threads kept warm): `eyeshim.install(resolver_idle_timeout=2)`"
        ", getaddrinfo on threads).",
        "Server: one selector loop in its own process, backlog 4096, answering each request "
        "with a 2-byte body and closing. Latency: each request from before `session.get` to "
        "its body read; p50/p99 over every request of the mode.",
    ]
    leak_rows: list[list[str]] = []
    for rung in rungs:
        try:
            _run_rung(ctx, result, rung, threads, per_block, blocks, leak_rows)
        except Skip as exc:
            result.notes.append(f"{rung.label}: left out: {exc}")
    result.tables.append(
        {
            "title": "Connections and leaks (descriptors and threads counted before the first "
            f"block and {LEAK_WAIT:g} s after the last; threads kept warm wait 2 s for more "
            "work by design, so only the default is held to no leak)",
            "header": [
                "destination",
                "mode",
                "connections accepted",
                "requests",
                "failed requests",
                "fds before -> after",
                "threads before -> after",
            ],
            "rows": leak_rows,
        }
    )
    leaked = [row for row in leak_rows if row[-1].startswith("!")]
    result.targets.append(
        Target(
            "eyeshim (default settings) leaks no file descriptors and no threads",
            "none" if not leaked else "; ".join(f"{r[0]} {r[1]}: {r[-2]}, {r[-1]}" for r in leaked),
            not leaked,
            "" if not leaked else "descriptors or threads outlived the run",
        )
    )


def _run_rung(
    ctx: Context,
    result: ScenarioResult,
    rung: _Rung,
    threads: int,
    per_block: int,
    blocks: int,
    leak_rows: list[list[str]],
) -> None:
    clients: dict[str, Worker] = {}
    with ServerProcess(ctx.envs.main, "http", rung.prefix) as server:
        url = f"http://{rung.host}:{server.port}/"
        try:
            for mode in rung.modes:
                clients[mode] = Worker(
                    ctx.envs.main,
                    rung.prefix,
                    ctx.tmp,
                    module="benchmarks.p4_client",
                    env={"EYESHIM_BENCH_P4_MODE": MODES[mode]},
                )
        except Exception as exc:
            for client in clients.values():
                client.close()
            raise Skip(f"the requests client cannot start: {exc}") from exc
        try:
            for client in clients.values():
                if rung.kind == "fake":
                    client.request({"op": "fake_names", "table": {FAKE_NAME: ["::1", "127.0.0.1"]}})
                client.request({"op": "warmup", "url": url})
            rung.resolvers = {
                mode: "; ".join(
                    clients[mode].request(
                        {"op": "resolver_used", "host": rung.host, "port": server.port}
                    )
                )
                for mode in rung.modes
            }
            rung.throughput = result.case(
                f"{rung.label}: {threads} threads x requests.get, Connection: close",
                "throughput",
                "requests/s",
                scale=1.0,
                higher_is_better=True,
            )
            rung.latency = result.case(
                f"{rung.label}: request latency", "latency", "ms", in_doc=False
            )
            rung.cpu = result.case(
                f"{rung.label}: process CPU per request", "cpu", "us CPU", scale=1e6, in_doc=False
            )
            connections: dict[str, list[int]] = {mode: [] for mode in rung.modes}
            failures: dict[str, dict[str, int]] = {mode: {} for mode in rung.modes}

            def step_for(mode: str) -> Callable[[int], None]:
                def step(r: int) -> None:
                    before = _accepted(server.port, rung.prefix)
                    block = clients[mode].request(
                        {"op": "block", "url": url, "threads": threads, "requests": per_block}
                    )
                    # -1: the /stats request that reads the counter is a connection too.
                    connections[mode].append(_accepted(server.port, rung.prefix) - before - 1)
                    ok = block["outcome"].get("ok", 0)
                    for kind, count in block["outcome"].items():
                        if kind != "ok":
                            failures[mode][kind] = failures[mode].get(kind, 0) + count
                    assert rung.throughput and rung.latency and rung.cpu
                    rung.throughput.add(r, mode, [ok / block["wall"]])
                    rung.latency.add(r, mode, block["times"])
                    if ok:
                        rung.cpu.add(r, mode, [block["cpu"] / ok])

                return step

            ctx.log(f"P4 {rung.label}: {blocks} blocks per mode of {threads} x {per_block}")
            interleave(blocks, {mode: step_for(mode) for mode in rung.modes})
            for client in clients.values():
                client.send({"op": "leaks", "wait": LEAK_WAIT})
            leaks = {mode: clients[mode].receive() for mode in rung.modes}
        finally:
            for client in clients.values():
                client.close()

    for mode in rung.modes:
        before, after = leaks[mode]["before"], leaks[mode]["after"]
        # Threads kept warm outlive their lookups by design (for 2 s): only the
        # default is held to "no thread outlives its work".
        bad = mode == "eyeshim" and (
            after["fds"] > before["fds"] or after["os_threads"] > before["os_threads"]
        )
        leak_rows.append(
            [
                rung.label,
                mode,
                str(sum(connections[mode])),
                str(threads * per_block * len(connections[mode])),
                ", ".join(f"{k}: {v}" for k, v in failures[mode].items()) or "none",
                f"{before['fds']} -> {after['fds']}",
                ("! " if bad else "") + f"{before['threads']} -> {after['threads']} "
                f"({before['os_threads']} -> {after['os_threads']} OS threads)",
            ]
        )
    every = all(c == threads * per_block for mode in rung.modes for c in connections[mode])
    result.notes.append(
        f"{rung.label}: every request opened its own TCP connection (server-side count)."
        if every
        else f"{rung.label}: the server accepted a different number of connections than requests "
        "were made: " + "; ".join(f"{m}: {connections[m]}" for m in rung.modes)
    )
    _summarize(result, rung)


def _summarize(result: ScenarioResult, rung: _Rung) -> None:
    assert rung.throughput and rung.latency and rung.cpu
    rows = []
    for mode in rung.modes:
        rate, lat, cpu = (case.summary(mode) for case in (rung.throughput, rung.latency, rung.cpu))
        ratio = rung.throughput.ratio("stock", mode) if mode != "stock" else None
        rows.append(
            [
                mode,
                "-" if rate is None else f"{rate['median']:,.0f}",
                "(reference)" if mode == "stock" else "-" if ratio is None else f"{ratio:.2f}x",
                "-" if lat is None else f"{lat['median']:.1f}",
                "-" if lat is None else f"{lat['p99']:.1f}",
                "-" if cpu is None else f"{cpu['median']:.0f}",
                rung.resolvers.get(mode, "-"),
            ]
        )
    result.tables.append(
        {
            "title": f"{rung.label}: throughput and latency",
            "header": [
                "mode",
                "requests/s (median of blocks)",
                "throughput / stock",
                "latency p50 (ms)",
                "latency p99 (ms)",
                "process CPU per request (us)",
                "resolver (as its events say)",
            ],
            "rows": rows,
        }
    )
    limit = LIMIT_LOCAL if rung.kind == "local" else LIMIT_RESOLVED
    why = ""
    stock_cpu = rung.cpu.summary("stock")
    parts = []
    for mode in rung.modes[1:]:
        cpu, ratio = rung.cpu.summary(mode), rung.throughput.ratio("stock", mode)
        if cpu is None or stock_cpu is None or ratio is None:
            continue
        parts.append(
            f"{mode} ({rung.resolvers.get(mode, 'resolver not reported')}): "
            f"{ratio:.2f}x stock's throughput at "
            f"{cpu['median'] - stock_cpu['median']:+.0f} us process CPU per request"
        )
    if parts and stock_cpu is not None:
        why = (
            "measured: " + "; ".join(parts) + f" (stock: {stock_cpu['median']:.0f} us "
            "per request). The clients and the server share the machine's cores, so CPU per "
            "request bounds the throughput"
            + (
                "; on this path eyeshim runs the same getaddrinfo and blocking connect as stock "
                "(P1's localhost row)."
                if rung.kind == "local"
                else "; P1's table under the same name takes eyeshim's part apart (the race "
                "itself, the hand-off of the lookups, thread starts)."
            )
        )
    result.targets.append(
        ratio_target(
            rung.throughput,
            "stock",
            limit,
            f"{rung.short}: eyeshim throughput >= {limit:g}x stock",
            why,
        )
    )
