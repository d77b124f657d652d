"""The lab's server process: HTTP on port 80 of every server address plus the impaired DNS,
and with ``--tls-dir`` HTTPS on port 443 (a simple package index for pip included).

Run inside the server namespace by the lab::

    ip netns exec eyl-NAME-srv python -m integrations.servers --state-dir DIR --dns 10.64.78.53 ...

It signals readiness by writing one line to ``--ready-fd`` once every socket is bound, so the lab
never races its first query against the bind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

from integrations.dnszone import Zone, answer_query
from integrations.procutil import die_with_parent
from integrations.scheduler import Scheduler

# A default backlog of 100 overflowed under fast back-to-back connects on these machines, and a
# dropped SYN costs a 1 s retransmit that looks exactly like a Happy Eyeballs bug.
LISTEN_BACKLOG = 4096


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "eyeshim-lab"

    def do_GET(self) -> None:
        # The body names the local address the client reached, which is how the matrix learns
        # which address won the race.
        local = self.connection.getsockname()[0]
        body = f"server={local}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass  # hundreds of matrix requests would only flood the log


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True
    allow_reuse_address = True


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        # One wildcard listener per family serves every server address, and getsockname() in
        # the handler still reports the specific address that was reached.
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


# The one package of the HTTPS index (``pip download`` cells). Its version names the server
# address that served the index page, so the cell learns which address won.
PROBE_PACKAGE = "eyeshim-lab-probe"


def probe_wheel(version: str) -> tuple[str, bytes]:
    """A minimal valid wheel of the probe package at ``version``: (file name, bytes)."""
    import base64
    import hashlib
    import io
    import zipfile

    dist = f"eyeshim_lab_probe-{version}"
    files = {
        "eyeshim_lab_probe/__init__.py": b"",
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {PROBE_PACKAGE}\nVersion: {version}\n"
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: eyeshim-lab\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return f"{dist}-py3-none-any.whl", out.getvalue()


class _HTTPSHandler(_Handler):
    """``/`` as over HTTP, plus the index: ``/simple/<package>/`` links one wheel whose version
    names the address reached (``1.0+a34``, ``1.0+a443``), ``/files/<wheel>`` serves it."""

    def do_GET(self) -> None:
        local = self.connection.getsockname()[0]
        if self.path.startswith("/simple/"):
            tag = local.replace(".", ":").rsplit(":", 1)[-1] or "0"
            name, _ = probe_wheel(f"1.0+a{tag}")
            body = f'<html><body><a href="/files/{name}">{name}</a></body></html>\n'.encode()
            self._send(body, "text/html")
        elif self.path.startswith("/files/eyeshim_lab_probe-"):
            from urllib.parse import unquote

            version = unquote(self.path).split("-")[1]
            _, data = probe_wheel(version)
            self._send(data, "application/octet-stream")
        else:
            super().do_GET()

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


class TlsBehaviour:
    """What the HTTPS server does per connection, from ``tls.json`` in the TLS directory
    (re-read when it changes): ``silent`` addresses accept TCP and never answer the
    ClientHello; names in ``bad_names`` (SNI) get a certificate from a CA nobody trusts."""

    def __init__(self, directory: Path) -> None:
        import ssl

        self.path = directory / "tls.json"
        self.good = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.good.load_cert_chain(directory / "good.pem")
        self.bad = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.bad.load_cert_chain(directory / "bad.pem")
        self.good.sni_callback = self._sni
        self._key: Optional[tuple[int, int]] = None
        self.silent: frozenset[str] = frozenset()
        self.bad_names: frozenset[str] = frozenset()

    def reload(self) -> None:
        import json

        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        key = (st.st_mtime_ns, st.st_size)
        if key != self._key:
            data = json.loads(self.path.read_text())
            self.silent = frozenset(data.get("silent", ()))
            self.bad_names = frozenset(data.get("bad_names", ()))
            self._key = key

    def _sni(self, sslobj: Any, name: Optional[str], context: Any) -> None:
        if name in self.bad_names:
            sslobj.context = self.bad


class _HTTPSServer(_HTTPServer):
    behaviour: TlsBehaviour

    def finish_request(self, request: Any, client_address: Any) -> None:
        behaviour = self.behaviour
        behaviour.reload()
        if request.getsockname()[0] in behaviour.silent:
            # Hold the connection without a word until the client gives up.
            request.settimeout(60)
            with contextlib.suppress(OSError):
                while request.recv(65536):
                    pass
            return
        request.settimeout(30)
        try:
            tls = behaviour.good.wrap_socket(request, server_side=True)
        except OSError:
            return  # the client refused the certificate, or gave up
        self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]


class _HTTPSServer6(_HTTPSServer, _HTTPServer6):
    pass


class DNSServer:
    """DNS over UDP and TCP, bound to the specific addresses it is queried on.

    glibc drops replies whose source differs from the address it queried, so a wildcard bind
    would break as soon as the server has several addresses. Queries that arrive on one of
    ``dns64_addresses`` are answered as a DNS64 resolver would, with ``dns64_prefix``. TCP
    (RFC 7766: two-byte length, several queries per connection) is what a resolver falls back
    to for a truncated reply. ``port=0`` binds a free port (tests, benchmarks on loopback):
    :attr:`port` says which, for a single address.
    """

    def __init__(
        self,
        zone_path: Path,
        addresses: list[str],
        port: int = 53,
        dns64_addresses: tuple[str, ...] = (),
        dns64_prefix: Optional[str] = None,
    ) -> None:
        if dns64_addresses and dns64_prefix is None:
            raise ValueError("DNS64 listeners need a prefix")
        self.zone_path = zone_path
        self._zone_key: Optional[tuple[int, int, int]] = None
        self._zone_lock = threading.Lock()
        self.zone = Zone()
        self.scheduler = Scheduler("dns-replies")
        self.selector = selectors.DefaultSelector()
        self.sockets: list[socket.socket] = []
        self.port = port
        self._stopped = False
        for address, prefix in [(a, None) for a in addresses] + [
            (a, dns64_prefix) for a in dns64_addresses
        ]:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock, listener = self._bind(family, address, port)
            self.port = sock.getsockname()[1]
            # The selector's data: (transport, DNS64 prefix for this listener or None).
            self.selector.register(sock, selectors.EVENT_READ, ("udp", prefix))
            self.sockets.append(sock)
            self.selector.register(listener, selectors.EVENT_READ, ("tcp", prefix))
            self.sockets.append(listener)
        self._reload()

    @staticmethod
    def _bind(family: int, address: str, port: int) -> tuple[socket.socket, socket.socket]:
        """A UDP socket and a TCP listener on the same port (with ``port=0``, a free one for
        both: a few tries, as the UDP port may be taken for TCP)."""
        for attempt in range(20):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            listener = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.bind((address, port))
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((address, sock.getsockname()[1]))
                listener.listen(64)
            except OSError:
                sock.close()
                listener.close()
                if port or attempt == 19:
                    raise
                continue
            sock.setblocking(False)
            listener.setblocking(False)
            return sock, listener
        raise AssertionError("unreachable")

    def _reload(self) -> None:
        try:
            st = self.zone_path.stat()
        except FileNotFoundError:
            return
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._zone_lock:
            if key != self._zone_key:
                self.zone = Zone.read(self.zone_path)
                self._zone_key = key

    def serve_forever(self) -> None:
        while not self._stopped:
            for key, _ in self.selector.select(0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                transport, prefix = key.data
                if transport == "tcp":
                    try:
                        conn, _ = sock.accept()
                    except OSError:
                        continue
                    threading.Thread(
                        target=self._serve_tcp, args=(conn, prefix), daemon=True
                    ).start()
                    continue
                try:
                    data, peer = sock.recvfrom(4096)
                except (BlockingIOError, OSError):
                    continue
                self._reload()
                answer = answer_query(self.zone, data, prefix)
                if answer.payload is None:
                    continue
                payload = answer.payload

                def send(s: socket.socket = sock, p: bytes = payload, to: Any = peer) -> None:
                    with contextlib.suppress(OSError):
                        s.sendto(p, to)

                # Every reply goes through the timer, delayed or not, so replies of one type
                # can never hold up another.
                self.scheduler.call_later(answer.delay_s, send)

    def _serve_tcp(self, conn: socket.socket, prefix: Optional[str]) -> None:
        conn.settimeout(5.0)
        lock = threading.Lock()

        def read(size: int) -> bytes:
            data = b""
            while len(data) < size:
                chunk = conn.recv(size - len(data))
                if not chunk:
                    raise EOFError
                data += chunk
            return data

        try:
            while not self._stopped:
                size = int.from_bytes(read(2), "big")
                message = read(size)
                self._reload()
                answer = answer_query(self.zone, message, prefix, tcp=True)
                if answer.payload is None:
                    continue
                framed = len(answer.payload).to_bytes(2, "big") + answer.payload

                def send(p: bytes = framed) -> None:
                    with lock, contextlib.suppress(OSError):
                        conn.sendall(p)

                self.scheduler.call_later(answer.delay_s, send)
        except (EOFError, OSError):
            pass
        finally:
            # Replies still on the timer are dropped with the connection after a grace period.
            self.scheduler.call_later(2.0, conn.close)

    def stop(self) -> None:
        """Stop serving (tests and benchmarks; the lab's server is killed instead)."""
        if self._stopped:
            return
        self._stopped = True
        self.scheduler.stop()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                self.selector.unregister(sock)
            sock.close()
        self.selector.close()


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--dns", action="append", default=[], help="address to serve DNS on")
    parser.add_argument(
        "--dns64", action="append", default=[], help="address to serve DNS64 on (with a prefix)"
    )
    parser.add_argument("--dns64-prefix", default=None, help="NAT64 prefix for DNS64 answers")
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument(
        "--tls-dir", type=Path, default=None, help="HTTPS on 443 with good.pem, bad.pem here"
    )
    parser.add_argument("--ready-fd", type=int, default=-1)
    parser.add_argument("--parent", type=int, default=0, help="die when this pid exits")
    args = parser.parse_args(argv)

    if args.parent:
        die_with_parent(args.parent)
    # Plain SIGTERM handling: exit at once, no cleanup is needed for sockets.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    # Matrix cells raise themselves to nice -10 while timing; the servers they talk to must not
    # be starved by them (threads started later inherit this).
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, -15)

    http4 = _HTTPServer(("0.0.0.0", args.http_port), _Handler)
    servers: list[ThreadingHTTPServer] = [http4]
    if socket.has_ipv6 and Path("/proc/net/if_inet6").exists():
        servers.append(_HTTPServer6(("::", args.http_port), _Handler))
    if args.tls_dir is not None:
        behaviour = TlsBehaviour(args.tls_dir)
        https: list[_HTTPSServer] = [_HTTPSServer(("0.0.0.0", 443), _HTTPSHandler)]
        if len(servers) > 1:
            https.append(_HTTPSServer6(("::", 443), _HTTPSHandler))
        for listener in https:
            listener.behaviour = behaviour
        servers.extend(https)
    dns = DNSServer(
        args.state_dir / "zone.json",
        args.dns,
        dns64_addresses=tuple(args.dns64),
        dns64_prefix=args.dns64_prefix,
    )
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()

    if args.ready_fd >= 0:
        os.write(args.ready_fd, b"ready\n")
        os.close(args.ready_fd)
    dns64 = f", dns64 {args.dns64} prefix {args.dns64_prefix}" if args.dns64 else ""
    print(f"servers: http :{args.http_port}, dns {args.dns}{dns64}", file=sys.stderr, flush=True)
    dns.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
