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
========== ===================================================== ==========

Patches are made with wrapt, and for a module not imported yet through a
post-import hook, so ``import urllib3`` after ``install()`` is covered.
``uninstall()`` puts back the very objects it replaced
(``socket.create_connection is original``); if someone else replaced the
attribute in the meantime, theirs is left alone and a warning says so.

All of this is thread-safe and idempotent: ``install()`` twice changes the
configuration, not the number of wrappers.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional

from ..config import (
    DEFAULT_CONFIG,
    DEFAULT_INTEGRATIONS,
    INTEGRATIONS,
    Config,
    get_config,
    select_integrations,
    set_config,
)
from . import _common

__all__ = [
    "DEFAULT_INTEGRATIONS",
    "INTEGRATIONS",
    "install",
    "install_from_env",
    "installed",
    "installed_integrations",
    "is_installed",
    "uninstall",
]

_lock = threading.RLock()
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
    configuration.  ``integrations`` names what to patch (default: socket,
    urllib3, pip); calling again with another set patches the new ones and
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
    out = tuple(dict.fromkeys(names))
    unknown = [name for name in out if name not in INTEGRATIONS]
    if unknown:
        raise ValueError(
            f"unknown integration(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(INTEGRATIONS)}"
        )
    return out


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
    """Each active integration and its state, e.g. ``{"urllib3": "patched"}``:
    "patched", "waiting for import", or "replaced by a third party"."""
    with _lock:
        return {name: patch.state() for name, patch in _active.items()}


@contextlib.contextmanager
def installed(
    config: Optional[Config] = None,
    *,
    integrations: Optional[Iterable[str]] = None,
    **config_keywords: Any,
) -> Iterator[None]:
    """``with eyeshim.installed(): ...``: install for the block, then restore
    exactly what was there before (including a previous install)."""
    with _lock:
        before = dict(_active)
        before_config = get_config()
        install(config, integrations=integrations, **config_keywords)
    try:
        yield
    finally:
        with _lock:
            if before:
                install(before_config, integrations=list(before))
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
