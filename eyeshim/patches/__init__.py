"""install() / uninstall(): Happy Eyeballs for code that cannot be changed.

Each integration is one small module here whose ``make(name)`` returns the
integration's patch: an object with ``patch()``, ``unpatch()`` and
``state()`` (``_common.AttributePatch``, or a ``PatchGroup`` of them).  The
names and their modules are registered in ``eyeshim.config.INTEGRATIONS``,
so that the environment's choice can be checked without importing this
package:

========== ===================================================== ==========
name       what it patches                                       default
========== ===================================================== ==========
socket     ``socket.create_connection`` (http.client, urllib,     on
           smtplib, ftplib, xmlrpc, httpx's sync transport, ...)
urllib3    ``urllib3.util.connection.create_connection``          on
           (urllib3 1.26 and 2.x, requests, botocore)
pip        the same in ``pip._vendor.urllib3``                    on
getaddrinfo ``socket.getaddrinfo`` re-sorted (RFC 6724, history,  off
           interleaving) for libraries that loop over it
https      ``http.client.HTTPSConnection.connect``: HTTPS without     opt-in
           a proxy raced through the TLS handshake (urllib.request,
           xmlrpc, ...)
urllib3-   ``urllib3``'s ``HTTPSConnection.connect`` and             opt-in
https      ``util.ssl_._ssl_wrap_socket_impl``: HTTPS without a
           proxy raced through the TLS handshake, on top of
           ``urllib3``'s TCP race (requests, botocore)
pip-https  the same in ``pip._vendor.urllib3``                    opt-in
========== ===================================================== ==========

Each patch is a plain function standing in for the original (see
``_common``), made now for modules already imported and through eyeshim's
own post-import hook for the others, so ``import urllib3`` after
``install()`` is covered.  Installing imports neither wrapt nor the engine:
the engine loads at the first call that races.  ``uninstall()`` puts back
the very objects it replaced (``socket.create_connection is original``),
takes eyeshim out from beneath other wrappers, and leaves no eyeshim
behaviour behind where it cannot (a foreign wrapper holding eyeshim's
function gets a pass-through).

``installed_integrations()`` says how each patch sits ("patched", "waiting
for import", ...); ``integration_status()`` says whether each one races
right now, or why it stepped aside (gevent, a foreign socket class, a
foreign wrapper it cannot get beneath).

All of this is thread-safe and idempotent: ``install()`` twice changes the
configuration, not the number of wrappers.  This package is imported at
interpreter start-up by the drop-in, so it imports nothing heavy (no
typing, threading, contextlib or socket).
"""

from __future__ import annotations

import _thread
import os

from ..config import (
    DEFAULT_CONFIG,
    DEFAULT_INTEGRATIONS,
    INTEGRATIONS,
    Config,
    get_config,
    known_integrations,
    select_integrations,
    set_config,
)
from . import _common

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, Dict, Iterable, Mapping, Optional, Type

__all__ = [
    "DEFAULT_INTEGRATIONS",
    "INTEGRATIONS",
    "install",
    "install_from_env",
    "installed",
    "installed_integrations",
    "integration_status",
    "is_installed",
    "uninstall",
]

_lock = _thread.RLock()
_active: Dict[str, Any] = {}  # name -> the integration's Patch object


def _module(name: str) -> Any:
    import importlib

    return importlib.import_module(INTEGRATIONS[name], __name__)


def install(
    config: Optional[Config] = None,
    *,
    integrations: Optional[Iterable[str]] = None,
    **config_keywords: Any,
) -> None:
    """Turn Happy Eyeballs on for this process.

    ``config`` (or keywords for its fields) becomes the process-wide
    configuration.  ``integrations`` names what to patch (default:
    ``DEFAULT_INTEGRATIONS``); calling again with another set patches the new ones and
    undoes the ones left out.
    """
    names = _check_names(DEFAULT_INTEGRATIONS if integrations is None else integrations)
    if config is None:
        config = get_config()
    if config_keywords:
        config = config.replace(**config_keywords)
    with _lock:
        set_config(config)
        for name in list(_active):
            if name not in names:
                _active.pop(name).unpatch()
        for name in names:
            if name not in _active:
                _active[name] = _module(name).make(name)
                _active[name].patch()
        _common.debug("installed: %s", ", ".join(sorted(_active)))


def _check_names(names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError("integrations must be a collection of names, not a string")
    return known_integrations(names, INTEGRATIONS, "known")


def uninstall() -> None:
    """Restore every patched function; stop waiting for unimported modules."""
    with _lock:
        while _active:
            _, patch = _active.popitem()
            patch.unpatch()
        set_config(DEFAULT_CONFIG)
        _common.debug("uninstalled")


def is_installed() -> bool:
    with _lock:
        return bool(_active)


def installed_integrations() -> Dict[str, str]:
    """Each installed integration and how its patch sits, e.g.
    ``{"urllib3": "patched"}``: "patched", "waiting for import", or
    "replaced by a third party".  Installed is not active: see
    :func:`integration_status`."""
    with _lock:
        return {name: patch.state() for name, patch in _active.items()}


def integration_status() -> Dict[str, Dict[str, Any]]:
    """Each installed integration: does it race calls *right now*, and if not, why.

    ``{"socket": {"active": False, "state": "patched", "why": "gevent
    monkey-patched socket", "wrappers": [...]}}``.  ``active`` is True when
    the next call would go through eyeshim's race; ``why`` says what keeps
    it from doing so (the module is not imported yet, gevent or eventlet,
    a foreign ``socket.socket``, a foreign function it cannot get beneath);
    ``wrappers`` lists the foreign wrappers of the same function and where
    they sit.  Computed on each call: gevent may patch after ``install()``.
    """
    with _lock:
        return {name: patch.report() for name, patch in _active.items()}


class installed:
    """``with eyeshim.installed(): ...``: install for the block, then restore
    exactly what was there before (including a previous install)."""

    def __init__(
        self,
        config: Optional[Config] = None,
        *,
        integrations: Optional[Iterable[str]] = None,
        **config_keywords: Any,
    ) -> None:
        self._arguments = (config, integrations, config_keywords)

    def __enter__(self) -> None:
        config, integrations, keywords = self._arguments
        with _lock:
            self._before = dict(_active)
            self._before_config = get_config()
            install(config, integrations=integrations, **keywords)

    def __exit__(
        self,
        kind: Optional[Type[BaseException]],
        value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        with _lock:
            if self._before:
                install(self._before_config, integrations=list(self._before))
            else:
                uninstall()


def install_from_env(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Install with the configuration and integrations named by ``EYESHIM_*``.

    ``EYESHIM_INTEGRATIONS`` replaces the default set; ``EYESHIM_DISABLE``
    removes names from it (``eyeshim.config.select_integrations``).  Raises
    ValueError naming the variable on bad input.  Returns True when
    something was installed.
    """
    env = os.environ if environ is None else environ
    config = Config.from_env(env)
    names = select_integrations(env)
    if not names:
        return False
    install(config, integrations=names)
    return True


# Re-exported for integrations and tests.
step_aside = _common.step_aside
