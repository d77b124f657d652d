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

import socket
from typing import Any, Dict, Optional, Tuple

from ._common import AttributePatch, PatchGroup, step_aside

_connect: Any = None


def _create_connection(
    address: Tuple[Any, Any],
    timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: Optional[Tuple[Any, ...]] = None,
    *,
    all_errors: bool = False,
) -> Any:
    global _connect
    if _connect is None:  # the engine loads at the first connection
        from ..connection import connect

        _connect = connect
    return _connect(address, timeout, source_address, all_errors=all_errors)


def _wrapper(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    if step_aside() is not None:
        return wrapped(*args, **kwargs)
    return _create_connection(*args, **kwargs)


def make(name: str) -> PatchGroup:
    return PatchGroup(
        AttributePatch("socket", "create_connection", _wrapper),
        AttributePatch("ssl", "create_connection", _wrapper),
    )
