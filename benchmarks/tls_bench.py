"""HTTPS on loopback for P6: a TLS server process and a measuring worker.

``python -m benchmarks.tls_bench serve DIR`` makes a CA and a certificate
(trustme) in DIR, listens on 127.0.0.1 and [::1] (one port), and answers
every HTTPS request with a tiny ``Connection: close`` response; it prints
``{"port": N, "ca": PATH}`` when ready and exits when its standard input
closes.  A thread per connection: the handshake dominates, and both
contenders pay the same server.

``python -m benchmarks.tls_bench`` (no argument) is a worker speaking
:mod:`benchmarks.worker`'s protocol with one more op, ``https``: ``n``
requests with one stack (``http.client`` or ``requests``), each on a new
connection, timed from the request call to the end of the body.  With
``BENCH_TLS_MODE=eyeshim`` in its environment the worker calls
``eyeshim.install()`` first, with the default integrations and the TLS ones;
with ``eyeshim-tcp``, the default integrations only (the race ends at TCP and
the stack wraps the winner itself).
"""

from __future__ import annotations

import json
import os
import platform
import socket
import ssl
import sys
import threading
import time
from typing import Any, Callable, Optional

from benchmarks import fakedns
from benchmarks.servers import ServerProcess, bind_pair
from benchmarks.worker import serve

__all__ = ["TlsServerProcess", "main"]

#: The name P6 resolves (benchmarks.fakedns) to ::1 and 127.0.0.1.
DUAL_NAME = "dual.bench.eyeshim.invalid"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)


def _answer(context: ssl.SSLContext, conn: socket.socket) -> None:
    try:
        conn.settimeout(10)
        with context.wrap_socket(conn, server_side=True) as tls:
            with tls.makefile("rb") as request:
                for line in request:
                    if line == b"\r\n":  # the end of the request's head
                        break
                else:
                    return  # the client went away first
            tls.sendall(RESPONSE)
    except OSError:
        pass
    finally:
        conn.close()


def _accept(listener: socket.socket, context: ssl.SSLContext) -> None:
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_answer, args=(context, conn), daemon=True).start()


def _serve(directory: str) -> int:
    import trustme

    ca = trustme.CA()
    ca_path = os.path.join(directory, "ca.pem")
    ca.cert_pem.write_to_path(ca_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", DUAL_NAME, "127.0.0.1", "::1").configure_cert(context)
    listeners = bind_pair()
    print(json.dumps({"port": listeners[0].getsockname()[1], "ca": ca_path}), flush=True)
    for listener in listeners:
        threading.Thread(target=_accept, args=(listener, context), daemon=True).start()
    sys.stdin.buffer.read()  # until the benchmark goes
    return 0


class TlsServerProcess(ServerProcess):
    """``with TlsServerProcess(python, tmp) as server: server.port, server.ca``."""

    def __init__(self, python: str, directory: str) -> None:
        super().__init__(python, "serve", module="benchmarks.tls_bench", args=(directory,))
        self.ca: str = self.ready["ca"]

    def __enter__(self) -> TlsServerProcess:
        return self


# -- the worker ----------------------------------------------------------------------------


def _fetcher(stack: str, host: str, port: int, ca: str, timeout: float) -> Callable[[], bytes]:
    context = ssl.create_default_context(cafile=ca)
    if stack == "http.client":
        import http.client

        from integrations.cell import get_root

        def fetch() -> bytes:
            return get_root(
                http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
            )

        return fetch
    import requests

    session = requests.Session()
    session.trust_env = False
    url = f"https://{host}:{port}/"

    def fetch_requests() -> bytes:
        return session.get(url, timeout=timeout, verify=ca).content

    return fetch_requests


def _batch(request: dict[str, Any]) -> dict[str, Any]:
    fetch = _fetcher(request["stack"], request["host"], int(request["port"]), request["ca"], 5.0)
    fetch()  # warm: imports, the context's CA file, first-connection costs
    times: list[float] = []
    errors: dict[str, int] = {}
    began = time.perf_counter()
    for _ in range(int(request["n"])):
        start = time.perf_counter()
        try:
            body = fetch()
        except Exception as exc:  # counted, not fatal: the table shows it
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            continue
        times.append(time.perf_counter() - start)
        if body != b"ok":
            errors["bad body"] = errors.get("bad body", 0) + 1
    return {"times": times, "errors": errors, "wall": time.perf_counter() - began}


def _handle(request: dict[str, Any]) -> Any:
    op = request["op"]
    if op == "hello":
        return {"python": platform.python_version(), "unavailable": {}}
    if op == "fake_names":
        fakedns.install_fake_names(request["table"])
        return {}
    if op == "https":
        return _batch(request)
    raise ValueError(f"unknown op {op!r}")


def main(argv: Optional[list[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"]:
        return _serve(args[1])
    mode = os.environ.get("BENCH_TLS_MODE")
    if mode in ("eyeshim", "eyeshim-tcp"):
        import eyeshim
        from eyeshim.config import DEFAULT_INTEGRATIONS, TLS_INTEGRATIONS

        tls = TLS_INTEGRATIONS if mode == "eyeshim" else ()
        eyeshim.install(integrations=[*DEFAULT_INTEGRATIONS, *tls])
        # The engine loads at the first connection, a one-time cost (P5's), not a request's.
        import eyeshim.connection
        import eyeshim.tls
    return serve(_handle)


if __name__ == "__main__":
    sys.exit(main())
