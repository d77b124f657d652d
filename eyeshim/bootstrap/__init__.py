"""Turning eyeshim on in interpreters whose code nobody changed.

Two hooks lead here, and share one code path so that they behave alike:

* ``sitecustomize.py`` in this directory.  ``eyeshim run`` puts the directory
  on PYTHONPATH and sets ``EYESHIM_ENABLED=1``; every interpreter started with
  that environment (the target and its children) imports it at start-up and
  calls :func:`from_sitecustomize`.
* ``eyeshim-enable.pth``, written by ``eyeshim enable`` into an environment's
  site-packages, calls :func:`from_pth` in every interpreter of that
  environment unless ``EYESHIM_ENABLED`` says no.

This module runs at every start-up of an enabled interpreter, so it imports
nothing that site has not imported already (``os``, ``sys``, ``_thread``)
but :mod:`eyeshim.config`, where the ``EYESHIM_*`` variables are declared and
which imports nothing else (about a millisecond).  Installing eyeshim itself
is not cheap (wrapt, the engine), and a program that never opens a
connection should not pay for it.  So activation *arms* a tiny import watcher
instead, and installs when the first top-level import that brought in
``socket`` has finished: every patch target (``socket``, urllib3, pip's
urllib3) lives in or behind ``socket``, so nothing can reach the network
before eyeshim is in place, and installing only once the import stack is
clean means install()'s post-import hooks never see a half-initialised
urllib3 (or a half-initialised eyeshim, when the program's own first import
is of eyeshim).

Whatever goes wrong (a malformed ``EYESHIM_*`` value, a missing dependency, a
bug), the interpreter must still start: errors are reported once, as
``eyeshim: disabled: <reason>`` on stderr, and the interpreter stays stock.
"""

from __future__ import annotations

import _thread
import os
import sys

from ..config import ENABLE_VARIABLE, STATS_VARIABLE, VERBOSE_VARIABLE, read_variable

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at start-up; only mypy needs it
    from importlib.machinery import ModuleSpec
    from typing import Any, Dict, Mapping, Optional, Sequence
else:
    # The class of every spec the import system makes, found without
    # importing importlib.machinery.
    ModuleSpec = type(sys.__spec__)

__all__ = [
    "DIRECTORY",
    "ENABLE_VARIABLE",
    "PTH_NAME",
    "VERBOSE_VARIABLE",
    "enabled_flag",
    "from_pth",
    "from_sitecustomize",
    "state",
]

#: The directory ``eyeshim run`` puts on PYTHONPATH (it holds sitecustomize.py).
DIRECTORY = os.path.dirname(os.path.abspath(__file__))
#: The file ``eyeshim enable`` writes into site-packages.
PTH_NAME = "eyeshim-enable.pth"

_lock = _thread.allocate_lock()
# "off" -> "armed" -> "installing" -> "active" | "inactive" | "disabled"
_state = "off"
_origin: Optional[str] = None
_detail: Optional[str] = None
_warned = False
# Per thread (by _thread.get_ident()): is a watched import running in it?
# Nesting is per thread; with one global count, a thread importing while
# another one did would never be watched, and the last import of a burst of
# concurrent ones could not be the one that installs.
_depth: Dict[int, int] = {}
# Specs marked but not (yet) imported, by id: a spec may be asked for without
# an import following (importlib.util.find_spec, runpy for -m), and none may
# stay marked once the watcher is gone.
_marked: Dict[int, ModuleSpec] = {}


def state() -> Dict[str, Optional[str]]:
    """Where the start-up hook stands in this interpreter, for ``status`` and tests.

    ``state`` is "off" (no hook ran or it declined), "armed" (waiting for the
    first import of socket), "active", "inactive" (the environment named no
    integration) or "disabled" (an error; ``detail`` says which).
    """
    return {"state": _state, "origin": _origin, "detail": _detail}


def enabled_flag(environ: Optional[Mapping[str, str]] = None) -> Optional[bool]:
    """``EYESHIM_ENABLED`` as a bool, None when unset; ValueError when malformed."""
    value: Optional[bool] = read_variable(ENABLE_VARIABLE, environ)
    return value


def from_sitecustomize() -> None:
    """Entry point of the sitecustomize hook: on only when EYESHIM_ENABLED is true."""
    try:
        if enabled_flag():
            _activate("sitecustomize")
    except Exception as exc:  # never let start-up fail because of eyeshim
        _disable(exc)


def from_pth() -> None:
    """Entry point of the .pth hook: on unless EYESHIM_ENABLED is false."""
    try:
        if enabled_flag() is not False:
            _activate("pth")
    except Exception as exc:
        _disable(exc)


def _activate(origin: str) -> None:
    global _state, _origin
    with _lock:
        # The .pth hook and sitecustomize (or two copies of sitecustomize from
        # two installations) may both run in one interpreter: first one wins.
        if _state != "off":
            return
        _state, _origin = "armed", origin
    if read_variable(VERBOSE_VARIABLE):
        _log_to_stderr()
    if "socket" in sys.modules:
        # Something imported socket already (another .pth, the user's
        # sitecustomize): nothing to gain from waiting.
        _install()
    else:
        sys.meta_path.insert(0, _watcher)
        _debug("bootstrap armed (%s): installs after the first import of socket", origin)


def _install() -> None:
    global _state, _detail
    with _lock:
        if _state != "armed":
            return
        _state = "installing"
    _disarm()
    try:
        patches = sys.modules.get("eyeshim.patches")
        if patches is not None and patches.is_installed():
            # The program (or its sitecustomize) installed eyeshim itself,
            # perhaps with its own configuration: keep it.
            _state, _detail = "active", "installed by the program"
            return
        from ..patches import install_from_env

        if install_from_env():
            from ..patches import installed_integrations

            _state = "active"
            _detail = ", ".join(
                f"{name}: {how}" for name, how in sorted(installed_integrations().items())
            )
            _debug("installed from %s: %s", _origin, _detail)
            stats = os.environ.get(STATS_VARIABLE)
            if stats:
                import atexit

                from ..events import write_stats

                atexit.register(_write_stats, write_stats, stats)
        else:
            _state, _detail = "inactive", "no integration left by EYESHIM_INTEGRATIONS/DISABLE"
    except Exception as exc:
        _undo()
        _disable(exc)


def _write_stats(write: Any, target: str) -> None:
    try:
        write(target)
    except Exception as exc:  # reporting must never turn an exit into a crash
        sys.stderr.write(f"eyeshim: could not write {STATS_VARIABLE}={target!r}: {exc}\n")


def _undo() -> None:
    # "Stock" means stock: an install that failed half-way must not leave
    # one integration patched.
    try:
        patches = sys.modules.get("eyeshim.patches")
        if patches is not None and patches.is_installed():
            patches.uninstall()
    except Exception:
        pass


def _disable(exc: BaseException) -> None:
    global _state, _detail, _warned
    # A ValueError from the configuration already names the variable, its
    # value and the accepted form; anything else needs its type to make sense.
    reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
    _disarm()
    with _lock:
        _state, _detail = "disabled", reason
        if _warned:
            return
        _warned = True
    stream = sys.stderr
    if stream is not None:  # pythonw and daemons may have none
        try:
            stream.write(f"eyeshim: disabled: {reason}\n")
            stream.flush()
        except Exception:
            pass


def _disarm() -> None:
    try:
        while _watcher in sys.meta_path:
            sys.meta_path.remove(_watcher)
    except ValueError:  # removed by another thread in between
        pass
    with _lock:
        leftovers = list(_marked.values())
        _marked.clear()
    for spec in leftovers:
        # One still being imported (another thread) puts itself back.
        if type(spec) is _WatchedSpec and not spec.__dict__.get("_eyeshim_initializing"):
            spec.__class__ = ModuleSpec  # type: ignore[assignment]


def _import_in_progress() -> bool:
    """True when any module is still executing its import (in any thread)."""
    for module in list(sys.modules.values()):
        try:
            # Not getattr(module, "__spec__"): a lazy module (importlib.util.
            # LazyLoader) would load itself on any attribute access.
            spec = object.__getattribute__(module, "__dict__").get("__spec__")
        except Exception:
            continue
        if spec is not None and getattr(spec, "_initializing", False):
            return True
    return False


def _import_finished(name: str) -> None:
    if _state != "armed" or name not in sys.modules or "socket" not in sys.modules:
        return
    # The outermost import we saw has finished, but an import we could not see
    # (another thread's, or one claimed by a finder ahead of ours) may still be
    # running; installing now could hand half-initialised modules to install().
    if _import_in_progress():
        return
    _install()


class _WatchedSpec(ModuleSpec):
    """A module spec that reports when its import has finished.

    ``importlib._bootstrap._load_unlocked`` (3.9 to 3.13 checked) sets
    ``spec._initializing = True`` before running the module and ``False`` in a
    ``finally`` after it: the one moment the import system tells anyone that
    an import is over.  Specs of watched imports get this class for the
    duration of the import and then become plain specs again, so no trace of
    eyeshim is left on the module.  Wrapping the loader instead would show a
    foreign loader to code that inspects ``__loader__`` while it runs.
    """

    @property
    def _initializing(self) -> bool:
        value: bool = self.__dict__.get("_eyeshim_initializing", False)
        return value

    @_initializing.setter
    def _initializing(self, value: bool) -> None:
        thread = _thread.get_ident()
        if value:
            if not self.__dict__.get("_eyeshim_initializing"):
                self.__dict__["_eyeshim_initializing"] = True
                with _lock:
                    _depth[thread] = _depth.get(thread, 0) + 1
            return
        was_running = self.__dict__.pop("_eyeshim_initializing", False)
        self.__class__ = ModuleSpec  # type: ignore[assignment]
        self.__dict__["_initializing"] = False
        with _lock:
            _marked.pop(id(self), None)
            if was_running:
                left = _depth.pop(thread, 1) - 1
                if left:
                    _depth[thread] = left
        if was_running:
            try:
                _import_finished(self.name)
            except Exception as exc:  # never break the program's import
                _disable(exc)


class _Watcher:
    """Meta path finder that marks the specs of outermost imports.

    It finds nothing itself: it asks the finders behind it, exactly as the
    import system would, and marks the spec it gets.  Imports nested in a
    watched one (same thread) are left alone, which keeps the cost to one
    dict lookup for all but the program's top-level imports.
    """

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]] = None, target: Any = None
    ) -> Optional[ModuleSpec]:
        if _state != "armed" or _thread.get_ident() in _depth:
            return None
        finders = sys.meta_path
        try:
            position = finders.index(self)
        except ValueError:
            return None
        spec = None
        for finder in finders[position + 1 :]:
            find = getattr(finder, "find_spec", None)
            if find is None:
                # A legacy finder: let the import system run the whole
                # lookup itself rather than imitate its fallback.
                return None
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None:
            return None
        # Only plain specs of modules with a loader: a namespace package or a
        # custom spec class is not ours to touch.
        if type(spec) is ModuleSpec and getattr(spec.loader, "exec_module", None) is not None:
            spec.__class__ = _WatchedSpec
            with _lock:
                _marked[id(spec)] = spec
        return spec

    def __repr__(self) -> str:
        return "<eyeshim bootstrap import watcher>"


_watcher = _Watcher()


def _log_to_stderr() -> None:
    import logging

    logger = logging.getLogger("eyeshim")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("eyeshim[%(process)d]: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    # Verbose output is for a person reading stderr; the program's own root
    # handlers would print every record a second time.
    logger.propagate = False


def _debug(message: str, *args: object) -> None:
    # Only touch logging when --verbose configured it: importing it costs ~5 ms.
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger("eyeshim").debug(message, *args)
