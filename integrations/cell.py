"""One matrix cell: fetch ``http://HOST/`` with one HTTP stack, stock or with eyeshim installed.

Run by the matrix inside a client namespace, one process per cell::

    python -m integrations.cell --stack requests --mode eyeshim --host s4.example.org --timeout 5
    python -m integrations.cell --stack pip --mode eyeshim --host t1.example.org \
        --scheme https --ca /run/eyeshim-lab/matrix/tls/ca.pem

With ``--scheme https`` the stacks fetch ``https://HOST/`` trusting ``--ca``; the ``pip`` stack
(https only) runs ``pip download`` of the lab index's one package, in this process (pip's own
imports done before the clock starts), and reads the winner from the version it got.

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

Fetch = Callable[[], bytes]

STACKS = ("http.client", "urllib", "urllib3", "requests", "pip")
#: HTTPS connections one fetch makes (pip: the index page, then the wheel).
CONNECTIONS = {"pip": 2}
#: Stacks that only run over HTTPS (the lab's package index is HTTPS only).
HTTPS_ONLY = ("pip",)
MODES = ("stock", "eyeshim")


def _context(ca: Optional[str]) -> Any:
    import ssl

    return ssl.create_default_context(cafile=ca)


def _fetch_http_client(host: str, timeout: float, scheme: str, ca: Optional[str]) -> Fetch:
    import http.client

    def fetch() -> bytes:
        conn = (
            http.client.HTTPSConnection(host, 443, timeout=timeout, context=_context(ca))
            if scheme == "https"
            else http.client.HTTPConnection(host, 80, timeout=timeout)
        )
        return get_root(conn)

    return fetch


def get_root(conn: Any) -> bytes:
    """``GET /`` on an http.client connection, the body, and the connection closed."""
    try:
        conn.request("GET", "/")
        body: bytes = conn.getresponse().read()
        return body
    finally:
        conn.close()


def _fetch_urllib(host: str, timeout: float, scheme: str, ca: Optional[str]) -> Fetch:
    import urllib.request

    # No proxies whatever the environment says: the lab is not reachable through one.
    handlers: list[Any] = [urllib.request.ProxyHandler({})]
    if scheme == "https":
        handlers.append(urllib.request.HTTPSHandler(context=_context(ca)))
    opener = urllib.request.build_opener(*handlers)

    def fetch() -> bytes:
        with opener.open(f"{scheme}://{host}/", timeout=timeout) as response:
            data: bytes = response.read()
            return data

    return fetch


def _fetch_urllib3(host: str, timeout: float, scheme: str, ca: Optional[str]) -> Fetch:
    import urllib3

    # retries=False: one connection attempt per request, like requests' default adapter, so a
    # timeout is reported once instead of being retried (and multiplied) by urllib3's Retry(3).
    pool = urllib3.PoolManager(
        retries=False, timeout=urllib3.Timeout(connect=timeout, read=timeout), ca_certs=ca
    )

    def fetch() -> bytes:
        response = pool.request("GET", f"{scheme}://{host}/")
        data: bytes = response.data
        return data

    return fetch


def _fetch_requests(host: str, timeout: float, scheme: str, ca: Optional[str]) -> Fetch:
    import requests

    session = requests.Session()
    session.trust_env = False  # ignore proxy variables and netrc

    def fetch() -> bytes:
        return session.get(f"{scheme}://{host}/", timeout=timeout, verify=ca or True).content

    return fetch


class PipFailed(Exception):
    """``pip download`` exited non-zero; ``kind`` is what its output says went wrong."""

    def __init__(self, output: str, timed_out: bool) -> None:
        super().__init__(output.strip().splitlines()[-1] if output.strip() else "pip failed")
        self.output = output
        if "CERTIFICATE_VERIFY_FAILED" in output:
            self.kind = "certificate"
        elif "timed out" in output or "Timeout" in output or timed_out:
            # pip does not always say why it gave up on an index page; it took the timeout.
            self.kind = "timeout"
        else:
            self.kind = "pip failed"


def _fetch_pip(host: str, timeout: float, scheme: str, ca: Optional[str]) -> Fetch:
    import contextlib
    import io
    import tempfile

    # pip imports most of itself lazily, per command: do it now, off the clock.
    import pip._internal.commands.download
    import pip._internal.network.session
    import pip._internal.resolution.resolvelib.resolver  # noqa: F401
    from pip._internal.cli.main import main as pip_main

    def fetch() -> bytes:
        with tempfile.TemporaryDirectory() as dest:
            output = io.StringIO()
            argv = ["download", "--isolated", "--no-deps", "--no-cache-dir", "--retries", "0"]
            argv += ["--disable-pip-version-check", "--timeout", str(timeout), "-d", dest]
            argv += ["--index-url", f"{scheme}://{host}/simple/"]
            if ca:
                argv += ["--cert", ca]
            began = time.perf_counter()
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                code = pip_main([*argv, "eyeshim-lab-probe"])
            got = os.listdir(dest)
            if code != 0 or not got:
                raise PipFailed(output.getvalue(), time.perf_counter() - began >= timeout)
        # eyeshim_lab_probe-1.0+a34-py3-none-any.whl: the index page came from .34
        tag = got[0].split("+a", 1)[1].split("-", 1)[0]
        winner = f"10.64.78.{tag}" if len(tag) <= 2 else f"2001:db8:c::{tag}"
        return f"server={winner}\n".encode()

    return fetch


_FACTORIES: dict[str, Callable[[str, float, str, Optional[str]], Fetch]] = {
    "http.client": _fetch_http_client,
    "urllib": _fetch_urllib,
    "urllib3": _fetch_urllib3,
    "requests": _fetch_requests,
    "pip": _fetch_pip,
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
    """Short, stack-independent label for the table: timeout, dns, refused, ENETUNREACH,
    certificate..."""
    chain = _chain(exc)
    if isinstance(exc, PipFailed):
        return exc.kind
    if any(type(item).__name__ == "SSLCertVerificationError" for item in chain):
        return "certificate"
    for item in chain:
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


def run_cell(
    stack: str,
    mode: str,
    host: str,
    timeout: float,
    scheme: str = "http",
    ca: Optional[str] = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {"stack": stack, "mode": mode, "host": host}
    if mode == "eyeshim":
        try:
            import eyeshim

            install = eyeshim.install
        except (ImportError, AttributeError) as exc:
            result.update(outcome="skip", error="eyeshim.install unavailable", detail=repr(exc))
            return result
        install()  # the default integrations race HTTPS through the TLS handshake
        # The engine loads at the first connection; like importing the stack
        # itself (below), that is a one-time cost, measured by the benchmarks'
        # P5, not part of how a scenario's connection goes.
        import eyeshim.connection

        if scheme == "https":
            import eyeshim.tls
    fetch = _FACTORIES[stack](host, timeout, scheme, ca)
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
    parser.add_argument("--scheme", choices=("http", "https"), default="http")
    parser.add_argument("--ca", default=None, help="https: the CA file to trust")
    args = parser.parse_args(argv)
    result = run_cell(args.stack, args.mode, args.host, args.timeout, args.scheme, args.ca)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
