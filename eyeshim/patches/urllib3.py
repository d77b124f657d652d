"""``urllib3.util.connection.create_connection`` (urllib3 1.26 and 2.x).

urllib3 has its own copy of the stdlib's connect loop, and requests,
botocore and pip go through it, so patching ``socket.create_connection`` is
not enough.  ``HTTPConnection._new_conn`` calls it through the module at call
time in both major versions.  The replacement keeps urllib3's semantics to
the letter, because urllib3 turns exceptions into its own by type:

* the host loses its ``[]``; a host that does not encode as IDNA raises
  urllib3's ``LocationParseError`` before any lookup;
* ``allowed_gai_family()`` is consulted on every call (a user who forces
  IPv4 through it still gets IPv4 only);
* ``socket_options`` are applied to each attempt's socket before
  ``connect()`` (and before ``bind()``), as urllib3 does;
* urllib3's timeout sentinel (taken from the wrapped function's defaults:
  ``socket._GLOBAL_DEFAULT_TIMEOUT`` in 1.26, an enum member in 2.x) means
  the socket's default timeout;
* ``socket.gaierror``, ``socket.timeout`` and other ``OSError`` come out as
  the stdlib raises them, which urllib3 maps to NameResolutionError,
  ConnectTimeoutError and NewConnectionError.

The same code patches pip's vendored copy (``pip._vendor.urllib3``).
``requests.packages.urllib3`` is the very same module object as
``urllib3``, so it is patched once.
"""

from __future__ import annotations

import sys

from ._common import AttributePatch, PatchGroup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Sequence, Tuple

MODULES = {
    "urllib3": "urllib3.util.connection",
    "pip": "pip._vendor.urllib3.util.connection",
}


def _call(
    module: Any,
    default_timeout: Any,
    address: Tuple[Any, Any],
    timeout: Any = None,
    source_address: Optional[Tuple[Any, ...]] = None,
    socket_options: Optional[Sequence[Tuple[Any, ...]]] = None,
) -> Any:
    from ..connection import DEFAULT_TIMEOUT, connect

    # The TCP step of an HTTPS connect that the urllib3-https integration
    # races through TLS: a tls.Later, which urllib3's wrap then finishes.
    tls = None
    if "eyeshim.patches.https_urllib3" in sys.modules:
        from .https_urllib3 import later_for

        tls = later_for(module.__name__.rpartition(".util.")[0], address)
    host, port = address
    if host.startswith("["):
        host = host.strip("[]")
    family = module.allowed_gai_family()
    try:
        host.encode("idna")
    except UnicodeError:
        raise module.LocationParseError(f"'{host}', label empty or too long") from None
    prepare = None
    if socket_options:

        def prepare(sock: Any) -> None:
            for option in socket_options:
                sock.setsockopt(*option)

    return connect(
        (host, port),
        DEFAULT_TIMEOUT if timeout is default_timeout else timeout,
        source_address,
        family=family,
        prepare_socket=prepare,
        tls=tls,
    )


def _handler_for(module_name: str) -> Any:
    def handler(below: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        module = sys.modules[module_name]
        default_timeout = below.__defaults__[0]  # type: ignore[index]
        if len(args) < 2 and "timeout" not in kwargs:
            kwargs = dict(kwargs, timeout=default_timeout)
        return _call(module, default_timeout, *args, **kwargs)

    return handler


def make(name: str) -> PatchGroup:
    module_name = MODULES[name]
    return PatchGroup(AttributePatch(module_name, "create_connection", _handler_for(module_name)))
