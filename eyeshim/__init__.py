"""eyeshim: Happy Eyeballs v2 (RFC 8305) for synchronous Python.

``eyeshim.create_connection`` is a drop-in for ``socket.create_connection``
that resolves AAAA and A concurrently, sorts by RFC 6724, and races
staggered non-blocking connection attempts, so a broken IPv6 (or IPv4) path
costs a quarter of a second instead of a full TCP timeout.

The package imports lazily: ``import eyeshim`` loads nothing but this file,
so the sitecustomize bootstrap adds next to nothing to interpreter start-up;
the engine is loaded at the first attribute access.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Not ``from typing import TYPE_CHECKING``: typing costs 5-10 ms to import on
# 3.12+, and this file is imported at start-up by the sitecustomize drop-in.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from . import events
    from .config import Config, get_config, set_config
    from .connection import connect, create_connection, get_history
    from .history import History
    from .patches import (
        install,
        install_from_env,
        installed,
        installed_integrations,
        integration_status,
        is_installed,
        uninstall,
    )

# public name -> module that defines it
_EXPORTS = {
    "Config": ".config",
    "History": ".history",
    "connect": ".connection",
    "create_connection": ".connection",
    "get_config": ".config",
    "get_history": ".connection",
    "set_config": ".config",
    "install": ".patches",
    "install_from_env": ".patches",
    "installed": ".patches",
    "installed_integrations": ".patches",
    "integration_status": ".patches",
    "is_installed": ".patches",
    "uninstall": ".patches",
}

__all__ = [
    "Config",
    "History",
    "__version__",
    "connect",
    "create_connection",
    "events",
    "get_config",
    "get_history",
    "install",
    "install_from_env",
    "installed",
    "installed_integrations",
    "integration_status",
    "is_installed",
    "set_config",
    "uninstall",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
    elif name.startswith("_"):
        raise AttributeError(f"module 'eyeshim' has no attribute {name!r}")
    else:
        # A submodule, as the docs use them after a plain ``import eyeshim``:
        # ``eyeshim.events.subscribe(...)``, ``eyeshim.config.check_environment()``.
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'eyeshim' has no attribute {name!r}") from None
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
