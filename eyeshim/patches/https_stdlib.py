"""``http.client.HTTPSConnection.connect``: HTTPS in the stdlib, raced through TLS.

http.client, and through it urllib.request, xmlrpc.client and the rest,
connects an HTTPS connection in two steps: ``HTTPConnection.connect``
(audit event, ``self._create_connection``, ``TCP_NODELAY``, the proxy
tunnel) and then ``self._context.wrap_socket(self.sock,
server_hostname=self.host)``.  The context is the connection's own, made
when it was created, so the whole connect can run as one race through TLS:
the stand-in does those same steps with ``eyeshim.connect(...,
tls=TlsSpec(self._context, self.host))`` and stores the winner's
``SSLSocket`` where the stdlib would.  Everything about TLS stays the
stdlib's and the caller's: the context (verification, hostname checking,
ALPN, session tickets, key logging), SNI, the exceptions.

It steps aside (the stdlib's own ``connect``, whose TCP connect the
``socket`` integration still races) through a proxy tunnel
(``set_tunnel``: TLS goes through the proxy, the race stays at TCP to it),
when ``_create_connection`` was replaced (a test double, or a connection
made before eyeshim was installed), when ``HTTPConnection.connect`` is not
the stdlib's own, when the context is not one eyeshim can drive
(``tls.usable_context``), and on a Python whose http.client it does not
know (3.9 to 3.14 are known).
"""

from __future__ import annotations

import sys

from ._common import AttributePatch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Tuple

#: The Pythons whose http.client connects as described above.
KNOWN = ((3, 9), (3, 10), (3, 11), (3, 12), (3, 13), (3, 14))

_connect: Any = None


def version_problem() -> Optional[str]:
    """Why this Python's http.client is not one the integration knows, or None."""
    if sys.version_info[:2] in KNOWN:
        return None
    return f"http.client of Python {sys.version_info[0]}.{sys.version_info[1]} is not known"


def _why_not(conn: Any) -> Optional[str]:
    """Why this connection goes the stdlib's way, or None."""
    if getattr(conn, "_tunnel_host", None):
        return "through a proxy tunnel"
    problem = version_problem()
    if problem is not None:
        return problem
    client = sys.modules.get("http.client")
    socket = sys.modules.get("socket")
    if client is None or socket is None:
        return "http.client not imported"
    base = client.HTTPConnection.connect
    if getattr(base, "__module__", None) != "http.client" or "__wrapped__" in getattr(
        base, "__dict__", {}
    ):
        return "HTTPConnection.connect is not the stdlib's"
    create = getattr(conn, "_create_connection", None)
    if create is not socket.create_connection:
        return "the connection's _create_connection is not socket.create_connection"
    from ..tls import usable_context

    if not usable_context(getattr(conn, "_context", None)):
        return "its SSL context is not one eyeshim can drive"
    return None


def _nodelay(sock: Any) -> None:
    # http.client sets TCP_NODELAY on its socket before the handshake; here
    # on each attempt's, before connect().  It may not exist (ENOPROTOOPT).
    import errno
    import socket

    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        if exc.errno != errno.ENOPROTOOPT:
            raise


def _handler(below: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    if kwargs or len(args) != 1 or _why_not(args[0]) is not None:
        return below(*args, **kwargs)
    global _connect
    if _connect is None:
        from ..connection import connect

        _connect = connect
    from ..tls import TlsSpec

    conn = args[0]
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    conn.sock = _connect(
        (conn.host, conn.port),
        conn.timeout,
        conn.source_address,
        prepare_socket=_nodelay,
        tls=TlsSpec(conn._context, conn.host),
    )


class HttpsPatch(AttributePatch):
    """The stand-in, and a status that says when this Python falls back."""

    def report(self) -> Dict[str, Any]:
        out = super().report()
        problem = version_problem()
        if out["active"] and problem is not None:
            out["active"] = False
            out["why"] = f"TLS racing falls back to TCP racing: {problem}"
        return out


def make(name: str) -> HttpsPatch:
    return HttpsPatch("http.client", "HTTPSConnection.connect", _handler)
