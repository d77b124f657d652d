"""The network lab (integrations/lab.py) as the lab scenarios use it.

One lab, named ``bench``, with the one client P2 and P3 need: ``ds``, a
dual-stack host with a global IPv6 address (2001:db8:c::101).  Its IPv6
destination is the server bridge's ``2001:db8:c::1`` (on-link, served by the
lab's wildcard HTTP listener): native IPv6, which glibc and eyeshim alike
prefer over IPv4 (RFC 6724 precedence 40 against 35), as on most dual-stack
hosts.  (The 6to4 addresses of the matrix would not do: glibc and eyeshim
order them differently against IPv4.)  Every connection of these scenarios
goes from that namespace to the lab's server namespace, and nowhere else.
"""

from __future__ import annotations

from typing import Any

from benchmarks.harness import Context, Skip

__all__ = ["CLIENT", "SERVER_V4", "SERVER_V6", "client_prefix", "get_lab"]

CLIENT = "ds"
SERVER_V4 = "10.64.78.34"
SERVER_V6 = "2001:db8:c::1"
HTTP_PORT = 80


def get_lab(ctx: Context) -> Any:
    """The running lab, started on first use; :class:`Skip` when it cannot run."""
    if ctx.no_lab:
        raise Skip("lab scenarios disabled by --no-lab")
    if "lab" in ctx.resources:
        return ctx.resources["lab"]
    if "lab_error" in ctx.resources:
        raise Skip(ctx.resources["lab_error"])
    try:
        from integrations.lab import Lab, LabError, LabUnavailable
    except ImportError as exc:
        ctx.resources["lab_error"] = f"the lab cannot be imported: {exc}"
        raise Skip(ctx.resources["lab_error"]) from exc
    try:
        lab = Lab("bench", clients=[CLIENT]).up()
    except LabUnavailable as exc:
        ctx.resources["lab_error"] = f"lab unavailable: {exc.reason}"
        raise Skip(ctx.resources["lab_error"]) from exc
    except LabError as exc:
        ctx.resources["lab_error"] = f"lab failed to start: {exc}"
        raise Skip(ctx.resources["lab_error"]) from exc
    ctx.resources["lab"] = lab
    ctx.on_close(lab.down)
    ctx.log(f"lab up in {lab.timings['up'] * 1000:.0f} ms")
    return lab


def client_prefix(lab: Any) -> list[str]:
    """argv prefix that runs a command inside the client namespace."""
    prefix: list[str] = lab.exec_argv(CLIENT, [])
    return prefix
