"""eyeshim's start-up hook for interpreters started by ``eyeshim run``.

``eyeshim run`` prepends this file's directory to PYTHONPATH and sets
``EYESHIM_ENABLED=1``, so Python's ``site`` imports this module at start-up in
the target and in every child interpreter that inherits the environment.  It
then does two things, both of which must never stop the interpreter:

1. when ``EYESHIM_ENABLED`` is true, hand over to ``eyeshim.bootstrap`` (which
   arms a watcher and installs at the first import of socket);
2. run the sitecustomize this file shadows, if there is one, exactly as
   ``site`` would have: same moment, same error message.

PYTHONPATH reaches interpreters of other versions and other environments,
which may not have eyeshim (or have another version of it).  So this file is
plain Python 3 that any version can compile (no f-strings, hence the %
formatting; no ``from __future__ import annotations``), and it talks to
eyeshim through one stable entry point only.
"""

import os
import sys

_FALSE = ("", "0", "false", "no", "off")
# Marks, while the shadowed sitecustomize is being looked up, which file is
# doing the chaining, so that this very file, found again under a spelling of
# its directory we failed to recognise, does not chain to itself for ever.
_CHAINING = "_eyeshim_sitecustomize_chaining"


def _same_directory(entry, mine):  # type: (str, tuple[str, ...]) -> bool
    try:
        return os.path.abspath(entry) in mine or os.path.realpath(entry) in mine
    except Exception:  # an entry that is not a str (seen: bytes, Path objects)
        return False


def _same_file(first, second):  # type: (object, str) -> bool
    try:
        return os.path.realpath(first) == os.path.realpath(second)  # type: ignore
    except Exception:
        return False


def _bootstrap():  # type: () -> None
    # Cheap gate first: PYTHONPATH leaks into every child interpreter, and one
    # that was started without EYESHIM_ENABLED must not even import eyeshim.
    if os.environ.get("EYESHIM_ENABLED", "").strip().lower() in _FALSE:
        return
    try:
        from eyeshim.bootstrap import from_sitecustomize
    except Exception as exc:
        # Most often: a child interpreter of another Python or another
        # environment, where eyeshim is not installed.  EYESHIM_QUIET=1 (the
        # name is declared in eyeshim.config) silences it.
        if os.environ.get("EYESHIM_QUIET", "").strip().lower() in _FALSE:
            sys.stderr.write(
                "eyeshim: disabled: cannot load eyeshim in %s (%s: %s); "  # noqa: UP031
                "EYESHIM_QUIET=1 silences this\n" % (sys.executable, type(exc).__name__, exc)
            )
        return
    from_sitecustomize()


def _report(exc):  # type: (BaseException) -> None
    # Word for word what site.execsitecustomize prints, so a broken
    # sitecustomize looks the same with and without eyeshim.
    if sys.flags.verbose:
        sys.excepthook(*sys.exc_info())
    else:
        sys.stderr.write(
            "Error in sitecustomize; set PYTHONVERBOSE for traceback:\n%s: %s\n"  # noqa: UP031
            % (exc.__class__.__name__, exc)
        )


def _chain():  # type: () -> None
    here = os.path.dirname(os.path.abspath(__file__))
    mine = (here, os.path.realpath(here))
    marker = sys.modules.get(_CHAINING)
    if marker is not None and _same_file(getattr(marker, "__file__", None), __file__):
        return  # found ourselves again: there is nothing else to chain to
    # Our directory leaves sys.path for good: it holds nothing but this hook,
    # and the program should see the sys.path plain python would give it.
    # (It may already be gone; then there is nothing to remove.)
    sys.path[:] = [entry for entry in sys.path if not _same_directory(entry, mine)]
    ours = sys.modules.pop("sitecustomize", None)
    sys.modules[_CHAINING] = ours  # type: ignore[assignment]
    try:
        try:
            __import__("sitecustomize")
        except ImportError as exc:
            # (Python 2, which may inherit PYTHONPATH too, has no exc.name.)
            missing = getattr(exc, "name", None) == "sitecustomize" or str(exc) == (
                "No module named sitecustomize"
            )
            if not missing:
                raise
    except Exception as exc:
        _report(exc)
    finally:
        del sys.modules[_CHAINING]
        # The import statement in site that is running this file pops
        # sys.modules["sitecustomize"] when this file is done: something must
        # be there.  The shadowed module when it loaded (it is the real
        # site customisation of this interpreter), otherwise this one.
        if "sitecustomize" not in sys.modules and ours is not None:
            sys.modules["sitecustomize"] = ours


def _run():  # type: () -> None
    # The shadowed sitecustomize runs first, at the moment site would run it:
    # it may extend sys.path (where eyeshim may live) or import socket itself,
    # and eyeshim's bootstrap then installs at once instead of waiting.
    try:
        _chain()
    finally:
        try:
            _bootstrap()
        except Exception as exc:  # a mismatched eyeshim must not stop start-up
            message = "eyeshim: disabled: %s: %s\n" % (type(exc).__name__, exc)  # noqa: UP031
            sys.stderr.write(message)


# Imported as eyeshim.bootstrap.sitecustomize (by a test, a linter, pydoc),
# this file must do nothing.
if __name__ == "sitecustomize":
    _run()
