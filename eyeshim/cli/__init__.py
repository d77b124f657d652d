"""The ``eyeshim`` command (also ``python -m eyeshim``).

Each verb lives in the module of its idea and is imported only when used, so
``eyeshim --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

__all__ = ["main"]

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
    "probe": (
        "eyeshim.cli.probe",
        "main",
        "one race step by step: DNS, order and why, attempts, winner (--json, --svg)",
    ),
}


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="eyeshim",
        description="Happy Eyeballs v2 (RFC 8305) for synchronous Python.",
        epilog="Run 'eyeshim VERB --help' for a verb's options.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, (_, _, help_text) in _VERBS.items():
        sub.add_parser(verb, help=help_text, add_help=False)
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    if args[0] == "--version":
        from .. import __version__

        print(f"eyeshim {__version__}")
        return 0
    verb, rest = args[0], args[1:]
    if verb not in _VERBS:
        parser.error(f"unknown verb {verb!r} (choose from {', '.join(_VERBS)})")
    import importlib

    module_name, function, _ = _VERBS[verb]
    module = importlib.import_module(module_name)
    result: int = getattr(module, function)(rest)
    return result
