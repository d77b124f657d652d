"""A measuring process: reads JSON commands on stdin, answers one JSON line each.

The benchmark keeps one worker per Python environment (the benchmark's own
virtual environment, the urllib3.future one) and, in the lab, per network
namespace.  A long-lived worker lets the orchestrator interleave contenders
round by round without paying an interpreter start per measurement, and
keeps imports, thread pools and event loops warm as they would be in a
service.

Commands (``op``): ``hello`` (which contenders can run here), ``fake_names``
(see :mod:`benchmarks.fakedns`), ``batch`` (see
:func:`benchmarks.contenders.run_batch`), ``resolver_used``,
``thread_cost`` and ``profile`` (see :mod:`benchmarks.contenders`), ``clear_history``,
``quit``.
"""

from __future__ import annotations

import json
import platform
import sys
import traceback
from typing import Any, Callable

from benchmarks import contenders, fakedns


def _handle(request: dict[str, Any]) -> Any:
    op = request["op"]
    if op == "hello":
        return {
            "python": platform.python_version(),
            "executable": sys.executable,
            "unavailable": {
                name: reason
                for name in request.get("contenders", contenders.ALL)
                if (reason := contenders.available(name)) is not None
            },
        }
    if op == "fake_names":
        fakedns.install_fake_names(request["table"])
        return {}
    if op == "batch":
        return contenders.run_batch(
            request["contender"],
            request["host"],
            int(request["port"]),
            int(request["n"]),
            float(request["timeout"]),
            cpu=bool(request.get("cpu")),
            clear_history=bool(request.get("clear_history")),
            warmup=bool(request.get("warmup")),
        )
    if op == "resolver_used":
        return contenders.resolver_used(
            request["contender"],
            request["host"],
            int(request["port"]),
            float(request.get("timeout", 5.0)),
        )
    if op == "profile":
        return contenders.profile(
            request["contender"],
            request["host"],
            int(request["port"]),
            float(request.get("timeout", 5.0)),
            int(request.get("n", 1)),
            clear_history=bool(request.get("clear_history")),
        )
    if op == "thread_cost":
        return contenders.thread_cost(
            int(request.get("n", 200)), request.get("host"), int(request.get("port", 0))
        )
    if op == "clear_history":
        import eyeshim

        history = eyeshim.get_history()
        if history is not None:
            history.clear()
        return {}
    raise ValueError(f"unknown op {op!r}")


def serve(handle: Callable[[dict[str, Any]], Any]) -> int:
    """Answer commands from stdin with ``handle`` until ``quit`` or EOF."""
    # The protocol owns stdout; anything a library prints goes to stderr.
    out = sys.stdout
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "quit":
            break
        try:
            reply = {"ok": True, "result": handle(request)}
        except Exception as exc:
            reply = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(),
            }
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve(_handle))
