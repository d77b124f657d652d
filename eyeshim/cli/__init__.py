"""The ``eyeshim`` command (also ``python -m eyeshim``).

Each verb lives in the module of its idea and is imported only when used, so
``eyeshim --help`` stays instant.  What every verb shares lives here: the
name the program was invoked by (usage lines say ``eyeshim probe`` or
``python -m eyeshim probe``, whichever was typed), and how a verb ends when
its reader goes away (``| head``: no traceback, status 141, as for any
command killed by SIGPIPE) or when Ctrl-C interrupts it (one line, status
130, as a shell reports it).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, List, Optional, Sequence

__all__ = ["EXIT_INTERRUPTED", "EXIT_PIPE", "entry", "main", "prog"]

#: What a shell reports for a command ended by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130
#: What a shell reports for a command whose reader went away (128 + SIGPIPE).
EXIT_PIPE = 141

# verb -> (module, function taking the verb's argv and returning the exit
# status, one-line help)
_VERBS = {
    "demo": (
        "eyeshim.cli.demo",
        "main",
        "show stock create_connection against eyeshim on a broken-IPv6 name",
    ),
    "run": (
        "eyeshim.cli.run",
        "main",
        "run a script (or -m module) with eyeshim, child interpreters included",
    ),
    "enable": (
        "eyeshim.cli.venv",
        "enable",
        "turn eyeshim on for every interpreter of this environment (.pth)",
    ),
    "disable": ("eyeshim.cli.venv", "disable", "undo 'enable'"),
    "status": ("eyeshim.cli.status", "main", "say whether and why eyeshim is active, and how"),
    "check": (
        "eyeshim.cli.check",
        "main",
        "prove that eyeshim works in this interpreter: exit 0 only if it changed a race",
    ),
    "probe": (
        "eyeshim.cli.probe",
        "main",
        "one race step by step, like curl -v: DNS, order and why, attempts, winner",
    ),
}


def prog(verb: Optional[str] = None) -> str:
    """The command line that ran ``verb`` (the usage line's ``prog``):
    ``eyeshim probe`` from the console script, ``python -m eyeshim probe``
    from ``-m eyeshim``, ``python -m eyeshim.cli.probe`` when the verb's own
    module is the program."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None) or ""
    if name.split(".")[0] != "eyeshim":
        program = "eyeshim"
    else:
        module = name[: -len(".__main__")] if name.endswith(".__main__") else name
        executable = os.path.basename(sys.executable) or "python"
        program = f"{executable} -m {module}"
        if verb is not None and module.endswith(f".{verb}"):
            return program  # the verb's module itself: no verb to add
    return program if verb is None else f"{program} {verb}"


def _stdout_gone() -> bool:
    """Has the reader of stdout gone away (a pipe whose reader closed)?"""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def entry(function: Callable[[List[str]], int], argv: Sequence[str], verb: Optional[str]) -> int:
    """Run one verb's ``function(argv)`` and return its exit status; a reader
    gone from stdout and Ctrl-C end it quietly (see the module doc)."""
    try:
        try:
            status = function(list(argv))
            sys.stdout.flush()
            return status
        except BrokenPipeError:
            if not _stdout_gone():
                raise  # a socket's, not stdout's
            # Python's own advice: point stdout at devnull, so that the flush
            # at exit does not fail a second time.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return EXIT_PIPE
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{prog(verb)}: interrupted\n")
        return EXIT_INTERRUPTED


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return entry(_dispatch, args, args[0] if args and args[0] in _VERBS else None)


def _dispatch(args: List[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=prog(),
        description="Happy Eyeballs v2 (RFC 8305) for synchronous Python.",
        epilog=f"Run '{prog()} VERB --help' for a verb's options.",
    )
    parser.add_argument("-V", "--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, (_, _, help_text) in _VERBS.items():
        sub.add_parser(verb, help=help_text, add_help=False)
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from .. import __version__

        print(f"eyeshim {__version__}")
        return 0
    verb, rest = args[0], args[1:]
    if verb not in _VERBS:
        import difflib

        close = difflib.get_close_matches(verb, list(_VERBS), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else f" (choose from {', '.join(_VERBS)})"
        what = "option" if verb.startswith("-") else "verb"
        parser.error(f"unknown {what} {verb!r}{hint}")
    import importlib

    module_name, function, _ = _VERBS[verb]
    module = importlib.import_module(module_name)
    status: int = getattr(module, function)(rest)
    return status
