"""TLS servers on loopback for tests: both families on one port, behaviour
chosen per family, and a resolver that gives a test name both addresses.

``DualServer`` answers an HTTP GET with ``server=<address reached>`` and
echoes anything else (``echo:<data>``).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any, Callable, Dict, List

import pytest
import trustme

from eyeshim.resolving import Answer

#: The name the servers' certificates are for.
NAME = "dual.test"


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_v6 = pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1)")


class StaticResolver:
    """Answers every lookup at once with fixed addresses."""

    def __init__(self, addresses: List[str]) -> None:
        self.addresses = addresses

    def resolve(self, host: Any, port: Any, family: int, deliver: Callable[[Answer], None]) -> Any:
        infos = [
            info
            for address in self.addresses
            if (socket.AF_INET6 if ":" in address else socket.AF_INET) == family
            for info in socket.getaddrinfo(address, port, family, socket.SOCK_STREAM)
        ]
        error = None if infos else socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        deliver(Answer(family, infos, error))
        return lambda: None


class DualServer:
    """A TLS server on ::1 and 127.0.0.1, one port; per family: ``ok``,
    ``silent`` (accepts TCP, never answers the ClientHello), ``badcert`` (a
    certificate from a CA the client does not trust), ``slow`` (answers
    after ``slow_s``)."""

    def __init__(self, ca: Any, behaviour: Dict[int, str], slow_s: float = 0.4) -> None:
        leaf = ca.issue_cert("dual.test", "127.0.0.1", "::1")
        self.good = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(self.good)
        other = trustme.CA().issue_cert("dual.test")
        self.bad = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        other.configure_cert(self.bad)
        self.behaviour = behaviour
        self.slow_s = slow_s
        self.accepted: Dict[int, int] = {socket.AF_INET6: 0, socket.AF_INET: 0}
        self.held: List[socket.socket] = []
        self._stop = threading.Event()
        self.listeners: List[socket.socket] = []
        six = socket.socket(socket.AF_INET6)
        six.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        six.bind(("::1", 0))
        self.port = six.getsockname()[1]
        four = socket.socket(socket.AF_INET)
        four.bind(("127.0.0.1", self.port))
        for listener in (six, four):
            listener.listen(64)
            listener.settimeout(0.1)
            self.listeners.append(listener)
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            family = listener.family
            self.accepted[family] += 1
            how = self.behaviour.get(family, "ok")
            if how == "silent":
                self.held.append(conn)  # never read, never answered
                continue
            threading.Thread(target=self._serve, args=(conn, how), daemon=True).start()

    def _serve(self, conn: socket.socket, how: str) -> None:
        conn.settimeout(5)
        try:
            if how == "slow":
                time.sleep(self.slow_s)
            context = self.bad if how == "badcert" else self.good
            with context.wrap_socket(conn, server_side=True) as tls:
                data = tls.recv(4096)
                if data.startswith((b"GET ", b"HEAD ")):
                    while b"\r\n\r\n" not in data:
                        more = tls.recv(4096)
                        if not more:
                            return
                        data += more
                    body = f"server={tls.getsockname()[0]}\n".encode()
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                else:
                    tls.sendall(b"echo:" + data)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        for sock in (*self.listeners, *self.held):
            sock.close()


def resolve_name(
    monkeypatch: Any, name: str = NAME, addresses: tuple = ("::1", "127.0.0.1")
) -> None:
    """Make ``socket.getaddrinfo`` answer ``name`` with ``addresses`` (in that
    order, per family as asked), for code that resolves through it."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, family, *args, **kwargs)
        found = []
        for address in addresses:
            own = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family in (0, own):
                found += real(address, port, own, *args, **kwargs)
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return found

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class ConnectProxy:
    """An HTTP proxy on 127.0.0.1 that serves ``CONNECT host:port`` (a tunnel), and counts
    the tunnels it opened."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.tunnels: List[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            target = head.split(b" ")[1].decode()
            self.tunnels.append(target)
            host, _, port = target.rpartition(":")
            with socket.create_connection((host.strip("[]"), int(port)), 5) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

                def pump(source: socket.socket, sink: socket.socket) -> None:
                    try:
                        while data := source.recv(65536):
                            sink.sendall(data)
                    except OSError:
                        pass
                    finally:
                        try:
                            sink.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass

                other = threading.Thread(target=pump, args=(upstream, client), daemon=True)
                other.start()
                pump(client, upstream)
                other.join(5)

    def close(self) -> None:
        self.listener.close()
