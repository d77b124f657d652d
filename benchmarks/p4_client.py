"""P4's client process: many threads of requests, each request on a new connection.

One process per mode (``stock`` or ``eyeshim``, the latter through
``eyeshim.install()``, which patches urllib3 process-wide, so the two modes
cannot share a process).  Commands, on the worker protocol of
:mod:`benchmarks.worker`:

* ``hello``: imports requests (and installs eyeshim);
* ``warmup``: a small block, then records the process's descriptors and threads;
* ``block``: ``threads`` threads, each with its own ``requests.Session``, make
  ``requests`` GETs with ``Connection: close`` (so urllib3 cannot reuse the
  connection: every request opens a TCP connection); returns wall time and
  counts;
* ``leaks``: waits ``wait`` seconds (eyeshim's idle resolver threads exit after
  ``resolver_idle_timeout``) and compares descriptors and threads with the
  baseline.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from typing import Any

from benchmarks.worker import serve

_baseline: dict[str, int] = {}
_mode = os.environ.get("EYESHIM_BENCH_P4_MODE", "stock")


def _counts() -> dict[str, int]:
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
        "os_threads": len(os.listdir("/proc/self/task")),
    }


def _one_thread(url: str, count: int, barrier: threading.Barrier, out: Counter[str]) -> None:
    import requests

    local: Counter[str] = Counter()
    with requests.Session() as session:
        barrier.wait()
        for _ in range(count):
            try:
                response = session.get(url, headers={"Connection": "close"}, timeout=10)
                response.content  # noqa: B018 - read the body, as a client would
                local["ok" if response.status_code == 200 else f"http {response.status_code}"] += 1
            except Exception as exc:  # counted, not fatal: the block must finish
                local[type(exc).__name__] += 1
    out.update(local)  # Counter.update of ints under the GIL; one call per thread


def _block(url: str, threads: int, requests_each: int) -> dict[str, Any]:
    outcome: Counter[str] = Counter()
    barrier = threading.Barrier(threads + 1)
    workers = [
        threading.Thread(target=_one_thread, args=(url, requests_each, barrier, outcome))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    return {"wall": wall, "outcome": dict(outcome)}


def _handle(request: dict[str, Any]) -> Any:
    op = request["op"]
    if op == "hello":
        import requests  # noqa: F401 - fail here, with the reason, if requests is missing

        if _mode == "eyeshim":
            import eyeshim

            eyeshim.install()
        return {"python": sys.version.split()[0], "unavailable": {}, "mode": _mode}
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
