"""Turning eyeshim on in interpreters whose code nobody changed.

Two hooks lead here, and share one code path so that they behave alike:

* ``sitecustomize.py`` in this directory.  ``eyeshim run`` puts the directory
  on PYTHONPATH and sets ``EYESHIM_ENABLED=1``; every interpreter started with
  that environment (the target and its children) imports it at start-up and
  calls :func:`from_sitecustomize`.
* ``eyeshim-enable.pth``, written by ``eyeshim enable`` into an environment's
  site-packages, calls :func:`from_pth` in every interpreter of that
  environment unless ``EYESHIM_ENABLED`` says no.

This module runs at every start-up of an enabled interpreter, so what it
imports must cost nothing measurable: :mod:`eyeshim.config` (where the
``EYESHIM_*`` variables are declared; it imports nothing but ``os``) and
:mod:`eyeshim.patches`, which installs plain stand-in functions, or, for a
module not imported yet (``socket`` itself, urllib3, pip's urllib3), a
post-import hook.  Neither imports socket, threading, typing, wrapt or the
engine: the engine loads at the first call that races.  So every
``EYESHIM_*`` variable is validated here, at start-up, and a bad value is
reported at start-up, not at the first connection.

Whatever goes wrong (a malformed ``EYESHIM_*`` value, a missing policy file, a
bug), the interpreter must still start: each problem is reported once, as
``eyeshim: disabled: <problem>`` on stderr, and the interpreter stays stock.
Unknown ``EYESHIM_*`` names are reported as ``eyeshim: warning: ...`` ("did
you mean") and change nothing.  ``EYESHIM_STRICT=1`` turns any of these into
a failed start (exit status 78, EX_CONFIG), for CI pipelines.
"""

from __future__ import annotations

import _thread
import os
import sys

from ..config import (
    ENABLE_VARIABLE,
    STATS_VARIABLE,
    STRICT_VARIABLE,
    VERBOSE_VARIABLE,
    check_environment,
    read_variable,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at start-up; only mypy needs it
    from typing import Any, Dict, List, Mapping, Optional

__all__ = [
    "DIRECTORY",
    "ENABLE_VARIABLE",
    "PTH_NAME",
    "STRICT_EXIT_STATUS",
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
#: How an interpreter ends when ``EYESHIM_STRICT=1`` and start-up found a
#: problem: EX_CONFIG of sysexits.h.
STRICT_EXIT_STATUS = 78

_lock = _thread.allocate_lock()
# "off" -> "installing" -> "active" | "inactive" | "disabled"
_state = "off"
_origin: Optional[str] = None
_detail: Optional[str] = None
_warned = False
_warnings: List[str] = []


def state() -> Dict[str, Any]:
    """Where the start-up hook stands in this interpreter, for ``status`` and tests.

    ``state`` is "off" (no hook ran or it declined), "active" (installed:
    the integrations are patched or wait for their module's import),
    "inactive" (the environment named no integration) or "disabled" (a
    problem; ``detail`` says which).  ``warnings`` lists what was reported
    without keeping eyeshim off (unknown ``EYESHIM_*`` names).
    """
    return {"state": _state, "origin": _origin, "detail": _detail, "warnings": list(_warnings)}


def enabled_flag(environ: Optional[Mapping[str, str]] = None) -> Optional[bool]:
    """``EYESHIM_ENABLED`` as a bool, None when unset; ValueError when malformed."""
    value: Optional[bool] = read_variable(ENABLE_VARIABLE, environ)
    return value


def from_sitecustomize() -> None:
    """Entry point of the sitecustomize hook: on only when EYESHIM_ENABLED is true."""
    try:
        if enabled_flag():
            _activate("sitecustomize")
    except ValueError as exc:  # a malformed EYESHIM_ENABLED names itself
        _disable(str(exc))
    except Exception as exc:  # never let start-up fail because of eyeshim
        _disable(f"{type(exc).__name__}: {exc}")


def from_pth() -> None:
    """Entry point of the .pth hook: on unless EYESHIM_ENABLED is false."""
    try:
        if enabled_flag() is not False:
            _activate("pth")
    except ValueError as exc:
        _disable(str(exc))
    except Exception as exc:
        _disable(f"{type(exc).__name__}: {exc}")


def _activate(origin: str) -> None:
    global _state, _origin, _detail
    with _lock:
        # The .pth hook and sitecustomize (or two copies of sitecustomize from
        # two installations) may both run in one interpreter: first one wins.
        if _state != "off":
            return
        _state, _origin = "installing", origin
    checked = check_environment()
    _warnings[:] = checked.warnings
    try:
        strict = bool(read_variable(STRICT_VARIABLE))
    except ValueError:
        strict = False  # malformed: already one of the problems
    if strict and (checked.problems or checked.warnings) and not _is_eyeshim_command():
        _fail(checked.problems + checked.warnings)
    try:
        verbose = read_variable(VERBOSE_VARIABLE)
    except ValueError:
        verbose = False
    if verbose:
        _log_to_stderr()
    for message in checked.warnings:
        _say(f"eyeshim: warning: {message}")
    if checked.problems:
        _disable(*checked.problems)
        return
    try:
        patches = sys.modules.get("eyeshim.patches")
        if patches is not None and patches.is_installed():
            # The program's own sitecustomize installed eyeshim, perhaps with
            # its own configuration: keep it.
            _state, _detail = "active", "installed by the program"
            return
        names = checked.integrations
        if not names:
            _state, _detail = "inactive", "no integration left by EYESHIM_INTEGRATIONS/DISABLE"
            return
        from ..patches import install

        install(checked.config, integrations=names)
        _state, _detail = "active", ", ".join(names)
        _debug("installed from %s: %s", origin, _detail)
        stats = os.environ.get(STATS_VARIABLE)
        if stats:
            import atexit

            atexit.register(_write_stats, stats)
    except Exception as exc:
        _undo()
        _disable(f"{type(exc).__name__}: {exc}")


def _write_stats(target: str) -> None:
    try:
        from ..events import write_stats

        write_stats(target)
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


def _disable(*problems: str) -> None:
    global _state, _detail, _warned
    with _lock:
        _state, _detail = "disabled", "; ".join(problems)
        if _warned:
            return
        _warned = True
    for problem in problems:
        _say(f"eyeshim: disabled: {problem}")


def _fail(messages: List[str]) -> None:
    """EYESHIM_STRICT: end the interpreter now, saying why.

    ``os._exit``, because site turns SystemExit raised by a start-up hook
    into a "Fatal Python error" with a traceback; nothing of the program has
    run yet, so there is nothing to flush or clean up but stderr.
    """
    for message in messages:
        _say(f"eyeshim: {message}")
    _say(
        f"eyeshim: {STRICT_VARIABLE}=1: stopping this interpreter (exit status "
        f"{STRICT_EXIT_STATUS}); 'eyeshim status' lists the problems"
    )
    os._exit(STRICT_EXIT_STATUS)


def _is_eyeshim_command() -> bool:
    """Whether this interpreter runs eyeshim's own command (``eyeshim status``,
    ``python -m eyeshim ...``): strict mode must not stop the very tool that
    explains what is wrong; it warns and runs stock like any other."""
    argv: List[str] = list(getattr(sys, "orig_argv", None) or _command_line() or sys.argv)
    for index, arg in enumerate(argv[1:], 1):
        if arg == "-m":
            return argv[index + 1 : index + 2] in (["eyeshim"], ["eyeshim.cli"])
        if arg.startswith("-m"):
            return arg[2:] in ("eyeshim", "eyeshim.cli")
        if not arg.startswith("-"):  # a script
            return os.path.basename(arg) == "eyeshim"
    return bool(argv) and os.path.basename(argv[0]) == "eyeshim"


def _command_line() -> List[str]:
    """The interpreter's own command line, where ``sys.orig_argv`` is missing
    (before 3.10): at start-up ``sys.argv`` does not hold it yet."""
    try:
        with open("/proc/self/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _say(line: str) -> None:
    stream = sys.stderr
    if stream is None:  # pythonw and daemons may have none
        return
    try:
        stream.write(line + "\n")
        stream.flush()
    except Exception:
        pass


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
