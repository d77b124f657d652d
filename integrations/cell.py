"""One matrix cell: fetch ``http://HOST/`` with one HTTP stack, stock or with eyeshim installed.

Run by the matrix inside a client namespace, one process per cell::

    python -m integrations.cell --stack requests --mode eyeshim --host s4.example.org --timeout 5

Prints one JSON object: outcome (``ok``, ``error`` or ``skip``), the error type, the server
address that answered (from the response body) and the elapsed time. The clock starts after
every import and after ``eyeshim.install()``, right before the request, and stops when the body
has been read, so interpreter start-up is not included; with the lab's instant server the time
is resolution + connect.
"""

from __future__ import annotations

import argparse
import errno as errno_mod
import json
import os
import socket
import sys
import time
from typing import Any, Callable, Optional

STACKS = ("http.client", "urllib", "urllib3", "requests")
MODES = ("stock", "eyeshim")


def _fetch_http_client(host: str, timeout: float) -> Callable[[], bytes]:
    import http.client

    def fetch() -> bytes:
        conn = http.client.HTTPConnection(host, 80, timeout=timeout)
        try:
            conn.request("GET", "/")
            return conn.getresponse().read()
        finally:
            conn.close()

    return fetch


def _fetch_urllib(host: str, timeout: float) -> Callable[[], bytes]:
    import urllib.request

    # No proxies whatever the environment says: the lab is not reachable through one.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def fetch() -> bytes:
        with opener.open(f"http://{host}/", timeout=timeout) as response:
            data: bytes = response.read()
            return data

    return fetch


def _fetch_urllib3(host: str, timeout: float) -> Callable[[], bytes]:
    import urllib3

    # retries=False: one connection attempt per request, like requests' default adapter, so a
    # timeout is reported once instead of being retried (and multiplied) by urllib3's Retry(3).
    pool = urllib3.PoolManager(
        retries=False, timeout=urllib3.Timeout(connect=timeout, read=timeout)
    )

    def fetch() -> bytes:
        response = pool.request("GET", f"http://{host}/")
        data: bytes = response.data
        return data

    return fetch


def _fetch_requests(host: str, timeout: float) -> Callable[[], bytes]:
    import requests

    session = requests.Session()
    session.trust_env = False  # ignore proxy variables and netrc

    def fetch() -> bytes:
        return session.get(f"http://{host}/", timeout=timeout).content

    return fetch


_FACTORIES: dict[str, Callable[[str, float], Callable[[], bytes]]] = {
    "http.client": _fetch_http_client,
    "urllib": _fetch_urllib,
    "urllib3": _fetch_urllib3,
    "requests": _fetch_requests,
}


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (``reason``, ``__cause__``, ``__context__``, or an
    exception passed as first argument, as requests and urllib3 do)."""
    seen: list[BaseException] = []
    current: Optional[BaseException] = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        nxt: Any = getattr(current, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = current.__cause__ or current.__context__
        if nxt is None and current.args and isinstance(current.args[0], BaseException):
            nxt = current.args[0]
        current = nxt if isinstance(nxt, BaseException) else None
    return seen


def classify(exc: BaseException) -> str:
    """Short, stack-independent label for the table: timeout, dns, refused, ENETUNREACH..."""
    for item in _chain(exc):
        if isinstance(item, socket.gaierror):
            return "dns"
        name = type(item).__name__
        if name in ("NameResolutionError", "LocationParseError"):
            return "dns"
        if isinstance(item, TimeoutError) or "Timeout" in name:
            return "timeout"
        if isinstance(item, ConnectionRefusedError):
            return "refused"
        if isinstance(item, OSError) and item.errno:
            return errno_mod.errorcode.get(item.errno, str(item.errno))
    return type(exc).__name__


def _boost_priority() -> None:
    """Raise this process's CPU priority for the timed part.

    The matrix starts cells at nice 10 and runs several at once on a 2-core machine; without
    this, one cell's timed connect competes with other cells' interpreter start-up and imports,
    adding tens of ms of noise. Only root may lower niceness; elsewhere this is a no-op.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    except OSError:
        pass


def run_cell(stack: str, mode: str, host: str, timeout: float) -> dict[str, Any]:
    result: dict[str, Any] = {"stack": stack, "mode": mode, "host": host}
    if mode == "eyeshim":
        try:
            import eyeshim

            install = eyeshim.install
        except (ImportError, AttributeError) as exc:
            result.update(outcome="skip", error="eyeshim.install unavailable", detail=repr(exc))
            return result
        install()
        # The engine loads at the first connection; like importing the stack
        # itself (below), that is a one-time cost, measured by the benchmarks'
        # P5, not part of how a scenario's connection goes.
        import eyeshim.connection
    fetch = _FACTORIES[stack](host, timeout)
    _boost_priority()
    start = time.perf_counter()
    try:
        body = fetch()
    except Exception as exc:  # every stack has its own exception tree; record, don't crash
        result.update(
            outcome="error",
            elapsed=time.perf_counter() - start,
            error=classify(exc),
            error_type=" <- ".join(type(e).__name__ for e in _chain(exc)),
            detail=str(exc)[:300],
        )
        return result
    elapsed = time.perf_counter() - start
    text = body.decode(errors="replace").strip()
    winner = text.split("=", 1)[1] if text.startswith("server=") else None
    result.update(outcome="ok", elapsed=elapsed, winner=winner)
    return result


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", choices=STACKS, required=True)
    parser.add_argument("--mode", choices=MODES, default="stock")
    parser.add_argument("--host", required=True)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    print(json.dumps(run_cell(args.stack, args.mode, args.host, args.timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
