"""``socket.create_connection``: http.client, urllib.request and the rest.

Every stdlib client that opens TCP connections (http.client, urllib.request,
smtplib, ftplib, imaplib, poplib, xmlrpc.client, logging.handlers) and
several third-party ones (httpcore's sync backend, hence httpx; PyMySQL)
call ``socket.create_connection`` through the module at call time, so one
patch covers them all.  ``ssl`` imported its own reference by name, so that
binding is patched too.

http.client stores the function per instance in ``HTTPConnection.__init__``:
connections created before ``install()`` keep the stock one.
"""

from __future__ import annotations

from ._common import AttributePatch, PatchGroup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Tuple

_connect: Any = None


def _create_connection(*args: Any, **kwargs: Any) -> Any:
    """``socket.create_connection(address, timeout, source_address, *,
    all_errors)`` through the engine, which is loaded at the first call."""
    global _connect
    if _connect is None:
        from ..connection import connect

        _connect = connect
    return _connect(*args, **kwargs)


def _handler(below: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    if kwargs or len(args) != 1:
        # Arguments this Python's create_connection does not take (all_errors
        # before 3.11, a typo, one given twice, none): the stdlib raises its
        # own TypeError.
        code = below.__code__
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        positional = code.co_varnames[: min(len(args), code.co_argcount)]
        if (
            len(args) > code.co_argcount
            or not (args or "address" in kwargs)
            or any(name not in names or name in positional for name in kwargs)
        ):
            return below(*args, **kwargs)
    return _create_connection(*args, **kwargs)


def make(name: str) -> PatchGroup:
    # ssl did ``from socket import create_connection``: its binding is
    # patched too (socket's own stand-in, when ssl is imported after it).
    return PatchGroup(
        AttributePatch("socket", "create_connection", _handler),
        AttributePatch("ssl", "create_connection", _handler, genuine=("socket",)),
    )
