"""P4's client process: many threads of requests, each request on a new connection.

One process per mode (``stock``, ``eyeshim`` through ``eyeshim.install()``,
which patches urllib3 process-wide, so the modes cannot share a process, and
``eyeshim-warm``: the same with ``resolver_idle_timeout=2``, getaddrinfo on
threads that wait for more work instead of exiting after each lookup).
Commands, on the worker protocol of :mod:`benchmarks.worker`:

* ``hello``: imports requests (and installs eyeshim);
* ``fake_names``: as in :mod:`benchmarks.worker`;
* ``resolver_used``: which resolver this mode's eyeshim uses for a host (its events);
* ``warmup``: a small block, then records the process's descriptors and threads;
* ``block``: ``threads`` threads, each with its own ``requests.Session``, make
  ``requests`` GETs with ``Connection: close`` (so urllib3 cannot reuse the
  connection: every request opens a TCP connection); returns wall and process
  CPU time, counts, and each successful request's latency;
* ``leaks``: waits ``wait`` seconds and compares descriptors and threads with
  the baseline.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from typing import Any

from benchmarks import fakedns
from benchmarks.worker import serve

_baseline: dict[str, int] = {}
_mode = os.environ.get("EYESHIM_BENCH_P4_MODE", "stock")


def _counts() -> dict[str, int]:
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
        "os_threads": len(os.listdir("/proc/self/task")),
    }


def _one_thread(
    url: str, count: int, barrier: threading.Barrier, out: Counter[str], times: list[float]
) -> None:
    import requests

    local: Counter[str] = Counter()
    mine: list[float] = []
    perf = time.perf_counter
    with requests.Session() as session:
        barrier.wait()
        for _ in range(count):
            start = perf()
            try:
                response = session.get(url, headers={"Connection": "close"}, timeout=10)
                response.content  # noqa: B018 - read the body, as a client would
                ok = response.status_code == 200
                local["ok" if ok else f"http {response.status_code}"] += 1
                if ok:
                    mine.append(perf() - start)
            except Exception as exc:  # counted, not fatal: the block must finish
                local[type(exc).__name__] += 1
    out.update(local)  # Counter.update of ints under the GIL; one call per thread
    times.extend(mine)


def _block(url: str, threads: int, requests_each: int) -> dict[str, Any]:
    outcome: Counter[str] = Counter()
    times: list[float] = []
    barrier = threading.Barrier(threads + 1)
    workers = [
        threading.Thread(target=_one_thread, args=(url, requests_each, barrier, outcome, times))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    cpu = time.process_time()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    return {
        "wall": wall,
        "cpu": time.process_time() - cpu,
        "outcome": dict(outcome),
        "times": times,
    }


def _handle(request: dict[str, Any]) -> Any:
    op = request["op"]
    if op == "hello":
        import requests  # noqa: F401 - fail here, with the reason, if requests is missing

        if _mode == "eyeshim":
            import eyeshim

            eyeshim.install()
        elif _mode == "eyeshim-warm":
            import eyeshim

            try:  # getaddrinfo on threads, also where eyeshim has a resolver of its own
                eyeshim.install(resolver_idle_timeout=2.0, resolver="system")
            except TypeError:
                eyeshim.install(resolver_idle_timeout=2.0)
        return {"python": sys.version.split()[0], "unavailable": {}, "mode": _mode}
    if op == "fake_names":
        fakedns.install_fake_names(request["table"])
        return {}
    if op == "resolver_used":
        if _mode == "stock":
            return ["getaddrinfo in the caller's thread (urllib3)"]
        from benchmarks.contenders import resolver_used

        # eyeshim.create_connection uses the configuration install() made.
        return resolver_used("eyeshim", request["host"], int(request["port"]), 5.0)
    if op == "warmup":
        # Lazy imports of the first request (encodings, http.client internals)
        # happen here, before the baseline, so they are not counted as leaks.
        _block(request["url"], 2, 2)
        _baseline.update(_counts())
        return dict(_baseline)
    if op == "block":
        return _block(request["url"], int(request["threads"]), int(request["requests"]))
    if op == "leaks":
        time.sleep(float(request["wait"]))
        return {"before": dict(_baseline), "after": _counts()}
    raise ValueError(f"unknown op {op!r}")


if __name__ == "__main__":
    sys.exit(serve(_handle))
