"""urllib3's HTTPS connections (1.26 and 2.x, requests, botocore, pip's copy),
raced through TLS.

urllib3 connects an HTTPS connection in two steps inside
``HTTPSConnection.connect``: ``_new_conn()`` (TCP, through
``util.connection.create_connection``, which the ``urllib3`` integration
races) and then, after building its context from the connection's settings
(``create_urllib3_context``, CA files, client certificates, ALPN,
``SSLKEYLOGFILE``), the handshake in ``util.ssl_._ssl_wrap_socket_impl(sock,
context, tls_in_tls, server_hostname)``, followed by its own checks
(``assert_hostname``, ``assert_fingerprint``, ``is_verified``, warnings).
The context exists only between the two steps, so the race spans them
(``tls.Later``):

1. ``HTTPSConnection.connect``'s stand-in marks the call (this thread, this
   connection) when it goes straight to the origin: no proxy;
2. the ``urllib3`` integration's ``create_connection``, seeing the mark,
   races with ``tls=Later()``: it returns at the first TCP connection, as
   urllib3 expects, and keeps the other attempts; connect errors come out
   here, where urllib3 maps them (NewConnectionError, ConnectTimeoutError,
   NameResolutionError);
3. ``_ssl_wrap_socket_impl``'s stand-in, called with that socket and
   urllib3's finished context, finishes the race: handshakes on every
   connected attempt, the winner returned as the ``SSLSocket`` urllib3 would
   have made, handshake errors raised here, where urllib3 expects them.

So everything urllib3 does around the handshake is urllib3's own code,
unchanged.  It steps aside: through a proxy (CONNECT tunnel or forwarding:
the race stays at TCP to the proxy), TLS in TLS, a context eyeshim cannot
drive (``tls.usable_context``: the race ends at TCP and urllib3 wraps the
winner itself), a urllib3 version it does not know (1.26.x and 2.x are
known), and without the ``urllib3``/``pip`` integration (step 2 is its).
"""

from __future__ import annotations

import _thread
import sys

from ._common import AttributePatch, PatchGroup, chain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Tuple

#: integration name -> the urllib3 package it patches
PACKAGES = {
    "urllib3-https": "urllib3",
    "pip-https": "pip._vendor.urllib3",
}
#: the integration that races urllib3's TCP connects for each package
TCP_INTEGRATION = {"urllib3": "urllib3", "pip._vendor.urllib3": "pip"}

# The HTTPS connect under way on each thread (a call nests when a warning or
# a callback connects on its own).
_calls = _thread._local()


class _Call:
    __slots__ = ("address", "later", "package")

    def __init__(self, package: str, address: Tuple[Any, Any]) -> None:
        self.package = package
        self.address = address
        self.later: Any = None


# (package, version, the wrap function's attribute) -> the verdict: checked once per version.
_verdicts: Dict[Tuple[str, str, int], Optional[str]] = {}


def version_problem(package: str) -> Optional[str]:
    """Why this urllib3 is not one the integration knows, or None."""
    module = sys.modules.get(package)
    version = str(getattr(module, "__version__", "?"))
    ssl_ = sys.modules.get(f"{package}.util.ssl_")
    key = (package, version, id(getattr(ssl_, "_ssl_wrap_socket_impl", None)))
    if key not in _verdicts:
        _verdicts[key] = _version_problem(package, version)
    return _verdicts[key]


def _version_problem(package: str, version: str) -> Optional[str]:
    if version.startswith("1.26.") or version.split(".")[0] == "2":
        ssl_ = sys.modules.get(f"{package}.util.ssl_")
        # The function beneath any stand-in (eyeshim's own included).
        impl = chain(getattr(ssl_, "_ssl_wrap_socket_impl", None))[-1]
        code = getattr(impl, "__code__", None)
        names = code.co_varnames[:4] if code is not None else ()
        if names == ("sock", "ssl_context", "tls_in_tls", "server_hostname"):
            return None
        return f"{package} {version}: _ssl_wrap_socket_impl is not as known"
    return f"{package} {version} is not a version eyeshim knows (1.26.x, 2.x)"


def later_for(package: str, address: Tuple[Any, Any]) -> Any:
    """For the ``urllib3`` integration's ``create_connection``: a
    ``tls.Later`` when this call is the TCP step of a marked HTTPS connect
    to ``address``, else None."""
    call: Optional[_Call] = getattr(_calls, "current", None)
    if call is None or call.package != package or call.later is not None:
        return None
    if call.address != address:
        return None
    from ..tls import Later

    call.later = Later()
    return call.later


def _connect_handler(package: str) -> Any:
    def handler(below: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        conn = args[0] if len(args) == 1 and not kwargs else None
        if (
            conn is None
            or getattr(conn, "_tunnel_host", None)
            or getattr(conn, "proxy", None)
            or version_problem(package) is not None
        ):
            return below(*args, **kwargs)
        call = _Call(package, (getattr(conn, "_dns_host", conn.host), conn.port))
        previous = getattr(_calls, "current", None)
        _calls.current = call
        try:
            return below(*args, **kwargs)
        finally:
            _calls.current = previous
            later = call.later
            if later is not None and later.waiting:
                later.abandon()  # urllib3 never reached its handshake

    return handler


def _wrap_handler(below: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    call: Optional[_Call] = getattr(_calls, "current", None)
    later = call.later if call is not None else None
    if later is None or not later.waiting or not args or later.sock is not args[0]:
        return below(*args, **kwargs)
    names = ("sock", "ssl_context", "tls_in_tls", "server_hostname")
    given = dict(zip(names, args), **kwargs)
    from ..tls import TlsSpec, usable_context

    context: Any = given.get("ssl_context")
    if given.get("tls_in_tls") or not usable_context(context):
        later.abandon()  # the TCP winner goes to urllib3's own wrap
        return below(*args, **kwargs)
    return later.finish(TlsSpec(context, given.get("server_hostname")))


class HttpsPatch(PatchGroup):
    """The two stand-ins, and a status that says when urllib3 falls back."""

    def __init__(self, package: str, *patches: AttributePatch) -> None:
        super().__init__(*patches)
        self.package = package

    def report(self) -> Dict[str, Any]:
        out = self.patches[0].report()
        if not out["active"]:
            return out
        problem = version_problem(self.package)
        if problem is None:
            from . import installed_integrations

            tcp = TCP_INTEGRATION[self.package]
            if tcp not in installed_integrations():
                problem = f"the {tcp!r} integration, which races its TCP connects, is not installed"
        if problem is not None:
            out["active"] = False
            out["why"] = f"TLS racing falls back to TCP racing: {problem}"
        return out


def make(name: str) -> HttpsPatch:
    package = PACKAGES[name]
    return HttpsPatch(
        package,
        AttributePatch(
            f"{package}.connection", "HTTPSConnection.connect", _connect_handler(package)
        ),
        AttributePatch(f"{package}.util.ssl_", "_ssl_wrap_socket_impl", _wrap_handler),
    )
