"""An HTTP(S) server behind the demo's broken-IPv6 name, for the shim tests.

``BrokenAndWorking`` (eyeshim/cli/demo.py) gives a name whose IPv6 address drops
SYNs and whose IPv4 address listens; this module serves HTTP on that IPv4
listener, optionally with TLS from a trustme CA.
"""

from __future__ import annotations

import contextlib
import http.server
import socketserver
import ssl
import threading
from typing import Any, Iterator, Optional

from eyeshim.cli.demo import DEMO_NAME, BrokenAndWorking, demo_name_resolves_to


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"hello from {self.connection.getsockname()[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False


class Site:
    """The broken-IPv6 name, served over HTTP (and HTTPS when ``tls``)."""

    def __init__(self, lab: BrokenAndWorking, tls: Optional[Any] = None) -> None:
        self.lab = lab
        self.port = lab.port
        self.scheme = "https" if tls is not None else "http"
        self.url = f"{self.scheme}://{DEMO_NAME}:{self.port}/"
        listener = lab.sockets[2]  # the working IPv4 listener
        self.server = _Server(("127.0.0.1", self.port), _Handler, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = listener
        if tls is not None:
            self.server.socket = tls.wrap_socket(listener, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.thread.join(5)


@contextlib.contextmanager
def broken_ipv6_site(tls: Optional[ssl.SSLContext] = None) -> Iterator[Site]:
    with BrokenAndWorking() as lab, demo_name_resolves_to(lab), Site(lab, tls) as site:
        yield site
