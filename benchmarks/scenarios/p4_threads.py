"""P4: a threaded service making many short requests, stock against eyeshim.install().

32 threads, each with its own ``requests.Session``, each request with
``Connection: close`` so that every request opens a new TCP connection (the
server's connection counter checks that).  The server
(:mod:`benchmarks.servers` ``http``) is a single-threaded selector loop in its
own process.  Blocks of stock and eyeshim alternate; afterwards both client
processes wait out eyeshim's ``resolver_idle_timeout`` and count their file
descriptors and threads against the count before the first block.
"""

from __future__ import annotations

import http.client
import json
from typing import Callable

from benchmarks.harness import Context, ScenarioResult, Skip, Target, Worker, interleave
from benchmarks.scenarios.p1_happy import _in_hosts_file
from benchmarks.servers import ServerProcess

MODES = ("stock", "eyeshim")
RESOLVER_IDLE_TIMEOUT = 2.0  # eyeshim's default; its threads are gone this long after use


def _accepted(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/stats")
        count: int = json.loads(conn.getresponse().read())["accepted"]
    finally:
        conn.close()
    return count


def run(ctx: Context, result: ScenarioResult) -> None:
    threads = ctx.pick(32, 32, 4)
    per_block = ctx.pick(250, 50, 5)
    blocks = ctx.pick(4, 2, 1)
    host = "localhost" if _in_hosts_file("localhost") else "127.0.0.1"
    clients: dict[str, Worker] = {}
    with ServerProcess(ctx.envs.main, "http") as server:
        url = f"http://{host}:{server.port}/"
        try:
            for mode in MODES:
                clients[mode] = Worker(ctx.envs.main, (), ctx.tmp, module="benchmarks.p4_client",
                                       env={"EYESHIM_BENCH_P4_MODE": mode})
        except Exception as exc:
            for client in clients.values():
                client.close()
            raise Skip(f"the requests client cannot start: {exc}") from exc
        try:
            for client in clients.values():
                client.request({"op": "warmup", "url": url})
            throughput = result.case(
                f"{threads} threads x requests.get({url}), Connection: close",
                "throughput", "requests/s", scale=1.0, higher_is_better=True,
            )
            connections: dict[str, list[int]] = {mode: [] for mode in MODES}
            failures: dict[str, dict[str, int]] = {mode: {} for mode in MODES}

            def step_for(mode: str) -> Callable[[int], None]:
                def step(r: int) -> None:
                    before = _accepted(server.port)
                    block = clients[mode].request(
                        {"op": "block", "url": url, "threads": threads, "requests": per_block}
                    )
                    # -1: the /stats request that reads the counter is a connection too.
                    connections[mode].append(_accepted(server.port) - before - 1)
                    ok = block["outcome"].get("ok", 0)
                    for kind, count in block["outcome"].items():
                        if kind != "ok":
                            failures[mode][kind] = failures[mode].get(kind, 0) + count
                    throughput.add(r, mode, [ok / block["wall"]])

                return step

            ctx.log(f"P4: {blocks} blocks per mode of {threads} x {per_block}")
            interleave(blocks, {mode: step_for(mode) for mode in MODES})
            for client in clients.values():
                client.send({"op": "leaks", "wait": RESOLVER_IDLE_TIMEOUT + 0.5})
            leaks = {mode: clients[mode].receive() for mode in MODES}
        finally:
            for client in clients.values():
                client.close()

    total = threads * per_block * blocks
    result.setup = [
        f"{threads} threads x {per_block} requests per block, {blocks} blocks per mode "
        f"({total} requests per mode), stock and eyeshim blocks alternating; each mode in "
        "its own process (eyeshim: `eyeshim.install()` before the first request).",
        f"URL {url} ({host}: {'a hosts-file name' if host == 'localhost' else 'a literal'}, so "
        "eyeshim takes its no-thread path). Server: one selector loop in its own process, "
        "backlog 4096, answering each request with a 2-byte body and closing.",
    ]
    rows = []
    for mode in MODES:
        before, after = leaks[mode]["before"], leaks[mode]["after"]
        rows.append([
            mode,
            str(sum(connections[mode])),
            str(threads * per_block * len(connections[mode])),
            ", ".join(f"{k}: {v}" for k, v in failures[mode].items()) or "none",
            f"{before['fds']} -> {after['fds']}",
            f"{before['threads']} -> {after['threads']} ({before['os_threads']} -> "
            f"{after['os_threads']} OS threads)",
        ])
    result.tables.append({
        "title": "Connections and leaks (descriptors and threads counted before the first "
                 f"block and {RESOLVER_IDLE_TIMEOUT + 0.5:g} s after the last)",
        "header": ["mode", "connections accepted", "requests", "failed requests",
                   "fds before -> after", "threads before -> after"],
        "rows": rows,
    })
    ratio = throughput.ratio("stock")
    result.targets.append(Target(
        "eyeshim throughput >= 0.9x stock",
        "not measured" if ratio is None else f"{ratio:.2f}x",
        None if ratio is None else ratio >= 0.9,
        "" if ratio is None or ratio >= 0.9 else "see the spread: the blocks are noisy",
    ))
    eye_before, eye_after = leaks["eyeshim"]["before"], leaks["eyeshim"]["after"]
    fd_leak = eye_after["fds"] - eye_before["fds"]
    thread_leak = eye_after["os_threads"] - eye_before["os_threads"]
    result.targets.append(Target(
        "eyeshim leaks no file descriptors and no threads",
        f"{fd_leak:+d} fds, {thread_leak:+d} threads",
        fd_leak <= 0 and thread_leak <= 0,
        "" if fd_leak <= 0 and thread_leak <= 0 else "descriptors or threads outlived the run",
    ))
    every = all(c == threads * per_block for mode in MODES for c in connections[mode])
    result.notes.append(
        "Every request opened its own TCP connection (server-side count)."
        if every else
        "The server accepted a different number of connections than requests were made: "
        + "; ".join(f"{m}: {connections[m]}" for m in MODES)
    )
