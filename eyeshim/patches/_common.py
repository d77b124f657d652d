"""What every integration shares: one attribute patch, and when to step aside."""

from __future__ import annotations

import socket
import sys
import threading
import warnings
from typing import Any, Callable, Dict, Optional, Tuple


def debug(message: str, *args: Any) -> None:
    """Log at DEBUG on the ``eyeshim`` logger, if logging is in use at all.

    Installing must stay cheap for the start-up hook, and importing logging
    is a few milliseconds.  A program that never imported logging has no
    handler that could show a DEBUG record, so there is nothing to lose.
    """
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger("eyeshim").debug(message, *args)


def warning(message: str, *args: Any) -> None:
    # Warnings reach stderr even without configuration (logging's last
    # resort handler), so logging is imported for them.
    import logging

    logging.getLogger("eyeshim").warning(message, *args)


Wrapper = Callable[[Any, Any, Tuple[Any, ...], Dict[str, Any]], Any]


def step_aside() -> Optional[str]:
    """Why eyeshim must not race right now, or None.

    gevent and eventlet replace the socket module's classes and functions
    with cooperative versions; so do test fakes such as httpretty, and
    proxies such as PySocks' ``socket.socket = socks.socksocket``.  A race on
    real non-blocking sockets would bypass all of them (and block a gevent
    hub), so under any of them eyeshim delegates to what is there.  Checked
    on every call, because they may be applied after ``install()``; the
    checks are a few attribute lookups.  eyeshim never imports gevent or
    eventlet itself.
    """
    cls = socket.socket
    if cls.__module__ != "socket":
        return f"socket.socket is {cls.__module__}.{cls.__qualname__}"
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        return "gevent monkey-patched socket"
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("socket"):
        return "eventlet monkey-patched socket"
    return None


class AttributePatch:
    """Wrap ``module.attribute`` with wrapt, now or when the module is imported.

    ``unpatch()`` restores the original object only if the attribute still
    holds our wrapper; otherwise a third party replaced it after us, and
    putting the original back would silently undo their patch.
    """

    def __init__(self, module: str, attribute: str, wrapper: Wrapper) -> None:
        self.module_name = module
        self.attribute = attribute
        self._wrapper_func = wrapper
        self._lock = threading.Lock()
        self._active = False
        self._module: Any = None
        self._original: Any = None
        self._wrapped: Any = None

    def patch(self) -> None:
        import wrapt

        with self._lock:
            self._active = True
        # Fires at once when the module is already imported, otherwise when
        # it is.  wrapt keeps the hook after unpatch(): _apply checks
        # _active, so a stale hook does nothing.
        wrapt.register_post_import_hook(self._apply, self.module_name)

    def _apply(self, module: Any) -> None:
        import wrapt

        with self._lock:
            if not self._active or self._wrapped is not None:
                return
            original = getattr(module, self.attribute, None)
            if original is None:
                warning("%s.%s not found; not patched", self.module_name, self.attribute)
                return
            wrapped = wrapt.FunctionWrapper(original, self._wrapper_func)
            setattr(module, self.attribute, wrapped)
            self._module, self._original, self._wrapped = module, original, wrapped
        debug("patched %s.%s", self.module_name, self.attribute)

    def unpatch(self) -> None:
        with self._lock:
            self._active = False
            module, original, wrapped = self._module, self._original, self._wrapped
            self._module = self._original = self._wrapped = None
        if wrapped is None:
            return
        current = getattr(module, self.attribute, None)
        if current is wrapped:
            setattr(module, self.attribute, original)
            debug("restored %s.%s", self.module_name, self.attribute)
        else:
            message = (
                f"eyeshim: {self.module_name}.{self.attribute} was replaced by someone else "
                "after eyeshim patched it; leaving their version in place"
            )
            warnings.warn(message, RuntimeWarning, stacklevel=3)
            warning("%s", message)

    def state(self) -> str:
        with self._lock:
            if not self._active:
                return "inactive"
            if self._wrapped is None:
                return "waiting for import"
            module, wrapped = self._module, self._wrapped
        if getattr(module, self.attribute, None) is not wrapped:
            return "replaced by a third party"
        return "patched"

    @property
    def original(self) -> Any:
        return self._original


class PatchGroup:
    """Several attribute patches that make up one integration."""

    def __init__(self, *patches: AttributePatch) -> None:
        self.patches = patches

    def patch(self) -> None:
        for patch in self.patches:
            patch.patch()

    def unpatch(self) -> None:
        for patch in self.patches:
            patch.unpatch()

    def state(self) -> str:
        states = [p.state() for p in self.patches]
        # The first patch is the one that matters; the others are extra
        # bindings of the same function (e.g. ssl's copy).
        return states[0]
