"""``eyeshim check``: prove that eyeshim works in this interpreter, end to end.

``status`` reads switches and configuration; ``demo`` shows the engine.
Neither proves that the program a platform runs actually gets Happy
Eyeballs: that the start-up hook ran, that each integration patched what
the program calls, that nothing (gevent, an APM's wrapper, a stale install)
made it step aside.  ``check`` proves it the only convincing way, by making
real connections through the patched functions, in this interpreter, to a
name whose preferred address is broken:

1. Is eyeshim installed here, and by what (the ``.pth`` switch, the
   sitecustomize of ``eyeshim run``, the program)?  If not, why not (the
   same reasons ``status`` gives), and the check fails.
2. Each integration: active, or stepped aside and why
   (``integration_status()``).  urllib3 and pip's urllib3 are imported
   first if they are installed, so that their post-import hooks run.
3. The demo's target on loopback (``BrokenAndWorking``): a name resolving
   to an address that silently drops SYNs, listed first, and a working one.
   One connection through each active integration's own entry point:
   ``socket.create_connection``, urllib3's ``HTTPConnection.connect()``
   (what requests and botocore call), and the same in pip's vendored
   urllib3.  The stock functions would wait out the whole timeout on the
   broken address first; each call passes only if eyeshim raced it (its
   events were seen) and it connected to the working address before the
   timeout.

Exit status: 0 when every integration that can run here was proven (and at
least one was), 1 otherwise, 2 for bad arguments.  It runs in the
interpreter that runs it, so it checks what that interpreter's start-up
gave it: run it the way the service starts (``/srv/venv/bin/python -m
eyeshim check`` in an enabled environment, ``eyeshim run -m eyeshim check``
for programs started with ``eyeshim run``, the service's environment
variables included).  Nothing leaves loopback; the races use a private
history, so nothing is taught to the process or to a shared history file.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from .. import __version__, events
from ..config import INTEGRATIONS, get_config
from . import prog
from .options import duration
from .timeline import RaceRecorder

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "Report", "Result", "check", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

#: Integration -> (what is called, the module imported first so that its
#: post-import hook patches it; None: always there).
_ENTRY_POINTS = {
    "socket": ("socket.create_connection", None),
    "urllib3": ("urllib3 HTTPConnection.connect()", "urllib3.connection"),
    "pip": ("pip's urllib3 HTTPConnection.connect()", "pip._vendor.urllib3.connection"),
}

#: Integrations the check cannot race (its target speaks no TLS, and
#: ``getaddrinfo`` makes no connection) -> (what they do, the module imported
#: first, as above).  They are reported active or not, and why.
_NOT_RACED = {
    "https": ("HTTPSConnection races through the TLS handshake", "http.client"),
    "urllib3-https": ("urllib3 HTTPS races through the TLS handshake", "urllib3.connection"),
    "pip-https": (
        "pip's urllib3 HTTPS races through the TLS handshake",
        "pip._vendor.urllib3.connection",
    ),
    "getaddrinfo": ("it re-sorts getaddrinfo, it makes no connection", None),
}


class Result:
    """What the check found for one integration."""

    def __init__(self, name: str, verdict: str, detail: str, **facts: Any) -> None:
        self.name = name
        #: "proven", "failed" or "skipped" (cannot run here, nothing to prove)
        self.verdict = verdict
        self.detail = detail
        self.facts = facts

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict, "detail": self.detail, **self.facts}


class Report:
    """Everything ``check`` found; ``ok`` is the verdict."""

    def __init__(self) -> None:
        self.installed = False
        self.installed_by: Optional[str] = None
        self.problems: List[str] = []
        self.target: Optional[str] = None
        self.timeout: Optional[float] = None
        self.results: List[Result] = []

    @property
    def proven(self) -> List[Result]:
        return [result for result in self.results if result.verdict == "proven"]

    @property
    def failures(self) -> List[str]:
        out = list(self.problems)
        out += [f"{r.name}: {r.detail}" for r in self.results if r.verdict == "failed"]
        if not out and not self.proven:
            out.append("no integration could be checked here")
        return out

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> Dict[str, Any]:
        return {
            "ok": self.ok,
            "python": sys.executable,
            "eyeshim": __version__,
            "installed": self.installed,
            "installed_by": self.installed_by,
            "target": self.target,
            "timeout": self.timeout,
            "integrations": [result.as_dict() for result in self.results],
            "failures": self.failures,
        }


def _installed_by() -> Optional[str]:
    """What installed eyeshim in this interpreter, or None when nothing did."""
    patches = sys.modules.get("eyeshim.patches")
    if patches is None or not patches.is_installed():
        return None
    from ..bootstrap import state

    hook = state()
    if hook["state"] == "active" and hook["origin"] == "pth":
        return "the .pth switch of 'eyeshim enable'"
    if hook["state"] == "active" and hook["origin"] == "sitecustomize":
        return "the start-up hook of 'eyeshim run' (EYESHIM_ENABLED=1, sitecustomize)"
    return "eyeshim.install() in this program"


def _why_not_installed() -> str:
    from ..bootstrap import state

    hook = state()
    if hook["state"] == "disabled":
        return f"the start-up hook turned it off: {hook['detail']}"
    if hook["state"] == "inactive":
        return f"the start-up hook installed nothing: {hook['detail']}"
    from .status import collect

    because = collect()["new_interpreters"]["because"]
    return f"nothing installed it in this interpreter ({because})"


def _wake(module: Optional[str]) -> Optional[str]:
    """Import ``module`` so that its post-import hook patches it; None when
    it is importable, else why not."""
    if module is None:
        return None
    top = module.split(".")[0]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        if sys.modules.get(top) is None and getattr(exc, "name", None) in (top, module):
            return f"{top} is not installed here"
        return f"cannot import {module}: {exc}"
    return None


def _connector(name: str) -> Callable[[str, int, float], Any]:
    """The call that integration ``name`` must race: returns a connected socket."""
    import socket

    if name == "socket":
        return lambda host, port, timeout: socket.create_connection((host, port), timeout=timeout)
    module = importlib.import_module(_ENTRY_POINTS[name][1] or "")

    def through_http_connection(host: str, port: int, timeout: float) -> Any:
        connection = module.HTTPConnection(host, port, timeout=timeout)
        connection.connect()  # opens the TCP connection only; nothing is sent
        sock = connection.sock
        connection.sock = None  # the caller closes it
        return sock

    return through_http_connection


def _race(name: str, lab: Any, timeout: float) -> Result:
    """One connection through integration ``name`` to the lab's name."""
    from ..state import STATE

    what = _ENTRY_POINTS[name][0]
    call = _connector(name)
    recorder = RaceRecorder(lab.name)
    unsubscribe = events.subscribe(recorder)
    started = time.monotonic()
    peer: Optional[str] = None
    error: Optional[str] = None
    try:
        with STATE.private_history():  # a fresh one per call: each must fall back
            sock = call(lab.name, lab.port, timeout)
        try:
            peer = str(sock.getpeername()[0])
        finally:
            sock.close()
    except Exception as exc:  # urllib3 wraps OSError in its own exceptions
        error = f"{type(exc).__name__}: {exc}"
    finally:
        unsubscribe()
    elapsed = time.monotonic() - started
    view = recorder.view()
    tried = [attempt.address for attempt in view.attempts] if view is not None else []
    facts = {"call": what, "elapsed": elapsed, "attempts": tried, "connected_to": peer}
    took = f"{elapsed * 1000:.0f} ms"
    if view is None:
        how = f"failed after {took} ({error})" if error else f"connected to {peer} after {took}"
        return Result(
            name,
            "failed",
            f"{what} did not go through eyeshim: no race was seen; it {how}, as stock would",
            **facts,
        )
    if error is not None:
        return Result(name, "failed", f"{what} raced but failed after {took}: {error}", **facts)
    if peer != lab.working_host or elapsed >= timeout:
        return Result(
            name,
            "failed",
            f"{what} raced but connected to {peer} after {took}, not to "
            f"{lab.working_host} before the {timeout:g} s timeout",
            **facts,
        )
    if tried and tried[0] == lab.broken_host:
        how = f"after {lab.broken_host} did not answer"
    else:
        how = f"trying {lab.working_host} first"
    return Result(
        name,
        "proven",
        f"{what}: connected to {peer} in {took}, {how}; stock waits the whole "
        f"{timeout:g} s on {lab.broken_host} first",
        **facts,
    )


def check(timeout: Optional[float] = None) -> Report:
    """Run the check in this interpreter and return what it found.

    ``timeout`` bounds each connection attempt (default: 3 s, or twice the
    attempt delay if that is longer); it must exceed the attempt delay, or
    eyeshim's fallback could not show."""
    report = Report()
    by = _installed_by()
    report.installed, report.installed_by = by is not None, by
    if by is None:
        report.problems.append(f"eyeshim is not installed: {_why_not_installed()}")
        return report
    patches = sys.modules["eyeshim.patches"]
    delay = get_config().connection_attempt_delay
    report.timeout = max(3.0, 2 * delay) if timeout is None else timeout
    if report.timeout <= delay:
        raise ValueError(
            f"the timeout ({report.timeout:g} s) must be longer than the attempt delay "
            f"({delay * 1000:g} ms), or the fallback cannot show"
        )
    missing: Dict[str, str] = {}
    for name in patches.installed_integrations():
        entry = _ENTRY_POINTS.get(name) or _NOT_RACED.get(name)
        if entry is not None:
            why = _wake(entry[1])
            if why is not None:
                missing[name] = why
    status = patches.integration_status()
    racing = []
    for name in (*_ENTRY_POINTS, *(n for n in INTEGRATIONS if n not in _ENTRY_POINTS)):
        item = status.get(name)
        if item is None:
            report.results.append(Result(name, "skipped", "not installed in this interpreter"))
        elif name in missing:
            report.results.append(Result(name, "skipped", missing[name]))
        elif not item["active"]:
            report.results.append(Result(name, "failed", f"stepped aside: {item['why']}"))
        elif name not in _ENTRY_POINTS:
            what = _NOT_RACED[name][0]
            report.results.append(Result(name, "skipped", f"active; {what} (not raced here)"))
        else:
            racing.append(name)
            report.results.append(Result(name, "pending", ""))
    if racing:
        from .demo import BrokenAndWorking, demo_name_resolves_to

        with BrokenAndWorking() as lab, demo_name_resolves_to(lab):
            report.target = f"{lab.describe()}, port {lab.port}"
            for index, result in enumerate(report.results):
                if result.verdict == "pending":
                    report.results[index] = _race(result.name, lab, report.timeout)
    return report


def _format(report: Report) -> List[str]:
    lines = [f"eyeshim check: {sys.executable} ({sys.version.split()[0]}), eyeshim {__version__}"]
    lines.append(
        f"  installed: {'yes, by ' + report.installed_by if report.installed_by else 'no'}"
    )
    if report.target is not None:
        lines.append(f"  target:    {report.target}; {report.timeout:g} s per attempt")
    marks = {"proven": "ok", "failed": "FAILED", "skipped": "-"}
    for result in report.results:
        lines.append(f"  {result.name:<12} {marks.get(result.verdict, '?'):<7} {result.detail}")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog("check"),
        description=(
            "Prove that eyeshim works in this interpreter: connect through each active "
            "integration (socket.create_connection, urllib3, pip's urllib3) to a loopback "
            "name whose first address drops SYNs. Exit 0 only when eyeshim raced every "
            "call and reached the working address before the stock timeout."
        ),
        epilog=(
            "exit status: 0 proven, 1 not installed here / stepped aside / not proven, "
            "2 bad arguments. Run it as the service runs: with its interpreter and "
            f"environment ('{prog()} run -m eyeshim check' for programs started with "
            "'eyeshim run')."
        ),
    )
    parser.add_argument(
        "--timeout",
        type=duration,
        metavar="S",
        help="timeout of each connection attempt: what stock would wait on the broken "
        "address (default 3 s, or twice the attempt delay)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing but the failures (stderr)"
    )
    options = parser.parse_args(argv)
    try:
        report = check(options.timeout)
    except ValueError as exc:
        parser.error(str(exc))
    if options.json:
        print(json.dumps(report.as_dict(), indent=2))
    elif not options.quiet:
        for line in _format(report):
            print(line)
    for failure in report.failures:
        print(f"eyeshim check: FAILED: {failure}", file=sys.stderr)
    if report.ok and not options.json and not options.quiet:
        count = len(report.proven)
        print(f"eyeshim check: OK: eyeshim changed the outcome of {count} connection(s) here")
    return EXIT_OK if report.ok else EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    from . import entry

    sys.exit(entry(main, sys.argv[1:], "check"))
