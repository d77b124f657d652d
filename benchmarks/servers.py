"""Loopback servers for the benchmarks, each run as its own process.

``python -m benchmarks.servers accept`` accepts on 127.0.0.1 and [::1] (same
port) and closes each connection at once: the far end of a bare TCP connect.
``python -m benchmarks.servers http`` (on the same two addresses: names that
resolve to both must reach it on whichever comes first) answers every request with a tiny
``Connection: close`` response, and ``GET /stats`` with the number of
connections accepted so far, so a scenario can check that each request really
opened a connection.

Both print ``{"port": N}`` when ready and exit when their standard input
closes, so they never outlive the benchmark that started them.  They run in a
separate process because a server sharing the clients' GIL would measure the
server's scheduling as much as the clients' connects.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import sys
import threading
from collections.abc import Sequence
from typing import Any, Optional

__all__ = ["ServerProcess", "bind_pair", "main"]

BACKLOG = 4096  # Linux caps this at net.core.somaxconn (4096 on recent kernels)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)


def bind_pair(hosts: tuple[str, ...] = ("127.0.0.1", "::1")) -> list[socket.socket]:
    """Listening sockets on every host in ``hosts``, all on one free port."""
    for _ in range(50):
        sockets: list[socket.socket] = []
        try:
            port = 0
            for host in hosts:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                sock.listen(BACKLOG)
                port = sock.getsockname()[1]
            return sockets
        except OSError:
            for sock in sockets:  # that port was taken on the other address: retry
                sock.close()
    raise OSError(f"no port free on all of {hosts}")


def _accept_forever(listener: socket.socket) -> None:
    while True:
        conn, _ = listener.accept()
        conn.close()


def _serve_http(listeners: list[socket.socket]) -> None:
    """One selector loop: accept, read up to the end of the headers, answer, close.

    Non-blocking and single-threaded because a thread per connection costs more
    than the whole exchange at thousands of connections per second.
    """
    accepted = 0
    selector = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytes] = {}
    for listener in listeners:
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, None)
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if key.data is None:  # a listener
                while True:
                    try:
                        conn, _ = sock.accept()
                    except BlockingIOError:
                        break
                    accepted += 1
                    conn.setblocking(False)
                    buffers[conn] = b""
                    selector.register(conn, selectors.EVENT_READ, "conn")
                continue
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            data = buffers[sock] + chunk
            if chunk and b"\r\n\r\n" not in data:
                buffers[sock] = data
                continue
            selector.unregister(sock)
            del buffers[sock]
            if chunk:
                body = RESPONSE
                if data.startswith(b"GET /stats "):
                    payload = json.dumps({"accepted": accepted}).encode()
                    body = (
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                        % len(payload)
                    ) + payload
                try:
                    # Tiny responses fit the socket buffer: one send suffices.
                    sock.sendall(body)
                except OSError:
                    pass
            sock.close()


def _exit_when_parent_goes() -> None:
    sys.stdin.buffer.read()
    os._exit(0)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.servers")
    parser.add_argument("kind", choices=["accept", "http"])
    args = parser.parse_args(argv)
    listeners = bind_pair()
    print(json.dumps({"port": listeners[0].getsockname()[1]}), flush=True)
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    if args.kind == "accept":
        for listener in listeners[1:]:
            threading.Thread(target=_accept_forever, args=(listener,), daemon=True).start()
        _accept_forever(listeners[0])
    else:
        _serve_http(listeners)
    return 0


if __name__ == "__main__":
    sys.exit(main())


class ServerProcess:
    """``with ServerProcess(python, "accept") as server: server.port``; ``prefix``
    runs it inside a namespace (``ip netns exec NS``)."""

    def __init__(
        self,
        python: str,
        kind: str,
        prefix: Sequence[str] = (),
        module: str = "benchmarks.servers",
        args: Sequence[str] = (),
    ) -> None:
        import subprocess

        from benchmarks.harness import REPO_ROOT

        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        self.proc = subprocess.Popen(
            [*prefix, python, "-m", module, kind, *args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"benchmark {kind} server failed to start")
        #: what the server said when it was ready (``port``, and what else it tells)
        self.ready: dict[str, Any] = json.loads(line)
        self.port: int = self.ready["port"]

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()  # the server exits when its stdin closes
        try:
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
            self.proc.wait()
