"""``eyeshim run``: run a Python program, and every Python it starts, with eyeshim.

``eyeshim run [options] script.py args...`` (or ``-m module``, ``-c command``)
re-executes the interpreter as ``python script.py args...`` with two changes
to the environment: ``EYESHIM_ENABLED=1`` and eyeshim's bootstrap directory
(``eyeshim/bootstrap``, holding ``sitecustomize.py``) in front of PYTHONPATH.
Options become ``EYESHIM_*`` variables in the same environment.

Why exec and not runpy in this process: with exec the program *is* ``python
script.py``: ``__main__``, ``sys.argv``, ``sys.path[0]``, ``-m`` resolution,
tracebacks, exit codes, signals and ``multiprocessing``'s spawn (which re-runs
``__main__`` by path) are CPython's own, not an imitation, and no frame or
module of the launcher is left behind.  Child interpreters must get eyeshim
through the environment anyway, so the target getting it the same way means
one mechanism, tested once.  The price is one more interpreter start
(~20 ms), paid once per ``eyeshim run``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..bootstrap import DIRECTORY
from ..config import (
    DEFAULT_INTEGRATIONS,
    DISABLE_VARIABLE,
    ENABLE_VARIABLE,
    ENV_PREFIX,
    INTEGRATIONS_VARIABLE,
    SETTINGS,
    STATS_VARIABLE,
    VERBOSE_VARIABLE,
    Config,
    read_variable,
    select_integrations,
)
from . import prog
from .options import add_config_options, config_choices

__all__ = ["command_line", "environment", "interpreter_flags", "main"]

_USAGE = "%(prog)s [options] (script.py | -m module | -c command | -) [args ...]"

_DESCRIPTION = """\
Run a Python program with Happy Eyeballs: as 'python script.py args...', with
eyeshim installed in it and in every Python interpreter it starts.
Options set EYESHIM_* variables (see docs/configuration.md), which the
program's children inherit."""

_SETTINGS = {setting.name: setting for setting in SETTINGS}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog("run"),
        usage=_USAGE,
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_options(parser)
    add = parser.add_argument
    add(
        "--integrations",
        metavar="NAMES",
        help=f"comma list replacing the default {','.join(DEFAULT_INTEGRATIONS)} "
        f"({INTEGRATIONS_VARIABLE})",
    )
    add(
        "--disable",
        metavar="NAMES",
        help=f"comma list of integrations to leave alone ({DISABLE_VARIABLE})",
    )
    add(
        "--getaddrinfo",
        action="store_true",
        help="also re-sort socket.getaddrinfo results (opt-in integration)",
    )
    add(
        "--set",
        metavar="FIELD=VALUE",
        action="append",
        default=[],
        help="any configuration field, e.g. first_address_family_count=2 (repeatable)",
    )
    add(
        "-v",
        "--verbose",
        action="store_true",
        help=f"log eyeshim's decisions to stderr, in children too ({VERBOSE_VARIABLE}=1)",
    )
    add(
        "--stats",
        metavar="FILE",
        help="at exit, each process reports its race counters: '-' prints a line to "
        "stderr, a file collects one JSON line per process for 'eyeshim status "
        f"--stats FILE' ({STATS_VARIABLE})",
    )
    return parser


def _split(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Split into (launcher options, program) where the program starts like
    python's own command line: a script path, ``-``, ``-m mod`` or ``-c cmd``,
    without letting argparse loose on the program's arguments."""
    args = list(argv)
    # Options that take a value, read off the parser so the two cannot drift.
    valued = {
        option
        for action in _parser()._actions
        if action.nargs != 0
        for option in action.option_strings
    }
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return args[:index], args[index + 1 :]
        if arg in ("-m", "-c") or (arg[:2] in ("-m", "-c") and len(arg) > 2):
            return args[:index], args[index:]
        if arg == "-" or not arg.startswith("-"):
            return args[:index], args[index:]
        if arg in valued:
            index += 1  # its value, which may well start with a dash
        index += 1
    return args, []


def _program(target: List[str]) -> List[str]:
    """The program part of the command line, with ``-mmod`` spelled ``-m mod``."""
    first = target[0]
    if first[:2] in ("-m", "-c") and len(first) > 2:
        return [first[:2], first[2:], *target[1:]]
    return target


def _overrides(
    options: argparse.Namespace, parser: argparse.ArgumentParser, environ: Mapping[str, str]
) -> Dict[str, Tuple[str, str]]:
    """EYESHIM_* variable -> (value, the option that set it)."""
    out: Dict[str, Tuple[str, str]] = {}
    for item in options.set:
        name, sep, value = item.partition("=")
        name = name.strip().lower().replace("-", "_")
        if not sep or name not in _SETTINGS:
            parser.error(
                f"--set {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(_SETTINGS)}"
            )
        out[_SETTINGS[name].variable] = (value, f"--set {name}")
    before = {**environ, **{var: value for var, (value, _) in out.items()}}

    def current(name: str) -> object:
        # What the field is without the options; a malformed variable is the
        # target's to report (see command_line), so its default stands in.
        setting = _SETTINGS[name]
        try:
            value = read_variable(setting.variable, before)
        except ValueError:
            value = None
        return setting.default if value is None else value

    fixed = [name for name in _SETTINGS if _SETTINGS[name].variable in out]
    for name, choice in config_choices(options, parser, current, fixed).items():
        out[_SETTINGS[name].variable] = (choice.text, choice.option)
    if options.integrations is not None:
        out[INTEGRATIONS_VARIABLE] = (options.integrations, "--integrations")
    if options.disable is not None:
        out[DISABLE_VARIABLE] = (options.disable, "--disable")
    if options.getaddrinfo:
        # Opt-in on top of whatever set is in force (option, environment or
        # the default), and out of a disable list that would cancel it.
        base = _current(out, environ, INTEGRATIONS_VARIABLE)
        names = _names(base) if base is not None else list(DEFAULT_INTEGRATIONS)
        if "getaddrinfo" not in names:
            names.append("getaddrinfo")
        out[INTEGRATIONS_VARIABLE] = (",".join(names), "--getaddrinfo")
        disabled = _current(out, environ, DISABLE_VARIABLE)
        if disabled is not None and "getaddrinfo" in _names(disabled):
            kept = [name for name in _names(disabled) if name != "getaddrinfo"]
            out[DISABLE_VARIABLE] = (",".join(kept), "--getaddrinfo")
    if options.verbose:
        out[VERBOSE_VARIABLE] = ("1", "--verbose")
    if options.stats:
        target = options.stats if options.stats == "-" else os.path.abspath(options.stats)
        out[STATS_VARIABLE] = (target, "--stats")
    return out


def _current(
    out: Mapping[str, Tuple[str, str]], environ: Mapping[str, str], var: str
) -> Optional[str]:
    if var in out:
        return out[var][0]
    return environ.get(var)


def _names(text: str) -> List[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _problem(env: Mapping[str, str]) -> Optional[str]:
    """What install_from_env would reject in ``env``, or None."""
    try:
        Config.from_env(env)
        select_integrations(env)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


def _on_path(entries: Sequence[str], directory: str) -> bool:
    mine = {os.path.abspath(directory), os.path.realpath(directory)}
    return any(
        entry and (os.path.abspath(entry) in mine or os.path.realpath(entry) in mine)
        for entry in entries
    )


def environment(
    environ: Mapping[str, str],
    overrides: Mapping[str, str],
    *,
    ignore_python_variables: bool = False,
) -> Dict[str, str]:
    """The target's environment: ``environ`` plus the switch, the bootstrap
    directory first on PYTHONPATH (once, however deep ``run`` is nested) and
    ``overrides``.  ``ignore_python_variables`` drops PYTHON* first, which is
    what ``-E``/``-I`` would have made the target ignore."""
    env = dict(environ)
    if ignore_python_variables:
        env = {key: value for key, value in env.items() if not key.startswith("PYTHON")}
    entries = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    if not _on_path(entries, DIRECTORY):
        # No empty entry may sneak in: an empty PYTHONPATH entry means the
        # current directory.
        entries.insert(0, DIRECTORY)
    env["PYTHONPATH"] = os.pathsep.join(entries)
    env[ENABLE_VARIABLE] = "1"
    env.update(overrides)
    return env


def interpreter_flags() -> Tuple[List[str], bool]:
    """Options of this interpreter to give the target, and whether PYTHON*
    variables must be dropped (the launcher ran under ``-E`` or ``-I``).

    ``-E``/``-I`` themselves are not passed on: they would make the target
    ignore PYTHONPATH and with it the bootstrap.  Their effect is imitated
    instead: PYTHON* variables are dropped, and ``-I`` becomes ``-s -P``
    (``-P`` exists from 3.11 on).  ``-S`` is not passed on either (it would
    skip sitecustomize); ``-u`` cannot be seen from inside and is lost
    (PYTHONUNBUFFERED is inherited as usual).
    """
    flags = sys.flags
    args: List[str] = []
    if flags.optimize:
        args.append("-" + "O" * flags.optimize)
    if flags.dont_write_bytecode:
        args.append("-B")
    if flags.no_user_site or flags.isolated:
        args.append("-s")
    if getattr(flags, "safe_path", False) or (flags.isolated and sys.version_info >= (3, 11)):
        args.append("-P")
    if flags.bytes_warning:
        args.append("-" + "b" * flags.bytes_warning)
    if flags.verbose:
        args.append("-" + "v" * flags.verbose)
    if flags.quiet:
        args.append("-q")
    if flags.inspect:
        args.append("-i")
    for option in sys.warnoptions:
        args += ["-W", option]
    for key, value in sys._xoptions.items():
        args += ["-X", key if value is True else f"{key}={value}"]
    return args, bool(flags.ignore_environment or flags.isolated)


def command_line(
    argv: Sequence[str], environ: Optional[Mapping[str, str]] = None
) -> Tuple[List[str], Dict[str, str]]:
    """The argv and environment ``eyeshim run argv`` would execute.

    Exits (SystemExit, status 2) on a command-line error, like argparse.
    """
    parser = _parser()
    options_part, target = _split(argv)
    options = parser.parse_args(options_part)
    if not target:
        parser.error("nothing to run: give a script, -m module or -c command")
    target = _program(target)
    if target[0] in ("-m", "-c") and len(target) < 2:
        parser.error(f"argument expected for {target[0]}")
    env_in = os.environ if environ is None else environ
    overrides = _overrides(options, parser, env_in)
    values = {var: value for var, (value, _) in overrides.items()}
    flags, ignore_env = interpreter_flags()
    env = environment(env_in, values, ignore_python_variables=ignore_env)
    if _problem(env) is not None:
        # Blame the command line only for what it alone gets wrong.  A bad
        # variable inherited from the environment is reported by the target
        # itself ("eyeshim: disabled: ..."), which then runs stock: the
        # same behaviour as any other interpreter of that environment.
        clean = {k: v for k, v in env.items() if not k.startswith(ENV_PREFIX)}
        alone = _problem({**clean, **values})
        if alone is not None:
            culprits = sorted({option for var, (_, option) in overrides.items() if var in alone})
            parser.error(f"{', '.join(culprits) or 'options'}: {alone}")
    if not sys.executable:
        parser.error("cannot tell which interpreter this is (sys.executable is empty)")
    return [sys.executable, *flags, *target], env


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command, env = command_line(args)
    if env.get(VERBOSE_VARIABLE) == "1":
        shown = " ".join(
            f"{key}={env[key]}"
            for key in sorted(env)
            if key.startswith(ENV_PREFIX) or key == "PYTHONPATH"
        )
        sys.stderr.write(f"eyeshim run: {shown} {' '.join(command)}\n")
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if os.name == "posix":
            os.execve(command[0], command, env)
        # No exec on Windows (os.execv spawns and returns at once): wait instead.
        import subprocess

        return subprocess.call(command, env=env)
    except OSError as exc:
        sys.stderr.write(f"eyeshim run: cannot start {command[0]}: {exc}\n")
        return 127
