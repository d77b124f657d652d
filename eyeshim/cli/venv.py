"""``eyeshim enable`` / ``eyeshim disable``: the switch for a whole environment.

``enable`` writes ``eyeshim-enable.pth`` into the environment's
site-packages.  ``site`` executes ``import`` lines of ``.pth`` files at every
interpreter start (unless ``-S``), and unlike PYTHONPATH this survives ``-E``
and ``-I`` and reaches interpreters started by any tool, with any
environment.  The switch is the file itself: it turns eyeshim on unless
``EYESHIM_ENABLED`` is false, so a single program can still opt out.

The line must never break start-up.  An exception in a ``.pth`` line makes
site print a traceback and skip the rest of the file, on every interpreter
start, so the line catches everything: eyeshim's own hook reports its errors
as one ``eyeshim: disabled: ...`` line.  A file whose eyeshim is gone
(``pip uninstall eyeshim`` without ``disable`` first: pip does not know the
file) does nothing, silently: uninstalling must not leave a warning at every
start.  Any other failure to load eyeshim says how to remove the file
(``EYESHIM_QUIET=1`` silences it).

Where the file may go is checked first: ``--user`` inside a virtual
environment is refused (the user site-packages is shared by every
interpreter of that Python version on the machine, and a venv does not even
read it), and so is a ``--path`` that is not a site-packages directory of
this interpreter; no directory is ever created.
"""

from __future__ import annotations

import argparse
import os
import site
import subprocess
import sys
import sysconfig
from typing import List, Optional, Sequence

from ..bootstrap import DIRECTORY, PTH_NAME
from ..config import ENABLE_VARIABLE, ENV_PREFIX, QUIET_VARIABLE, read_variable
from . import prog

__all__ = ["disable", "enable", "pth_content", "site_directories"]

# Run by site through exec(); a try statement cannot follow "import x;" on one
# line, hence the nested exec.  Only os and sys are touched before eyeshim's
# own hook, and both are imported by site already.
#
# site runs a venv's site-packages twice (once for the venv, once among the
# prefixes), and with it every .pth line: eyeshim's hook is idempotent, and
# the message for a stale file is said once thanks to a mark on site itself.
_PTH_CODE = """\
try:
    from eyeshim.bootstrap import from_pth
except Exception as exc:
    import os, site, sys
    gone = isinstance(exc, ImportError) and exc.name in ('eyeshim', 'eyeshim.bootstrap')
    no = ('0', 'false', 'no', 'off')
    off = os.environ.get({variable!r}, '').strip().lower() in no
    quiet = os.environ.get({quiet!r}, '').strip().lower() not in no + ('',)
    if not (gone or off or quiet or getattr(site, '_eyeshim_warned', False)):
        site._eyeshim_warned = True
        sys.stderr.write('eyeshim: disabled: cannot load eyeshim (%s: %s); delete %s\\n'
                         % (type(exc).__name__, exc, {path!r}))
else:
    from_pth()
"""


def pth_content(path: str) -> str:
    """The text of the switch file at ``path`` (the path goes into its message)."""
    code = _PTH_CODE.format(path=path, variable=ENABLE_VARIABLE, quiet=QUIET_VARIABLE)
    return (
        "# eyeshim: Happy Eyeballs for every interpreter of this environment.\n"
        "# Written by 'python -m eyeshim enable'; remove with 'python -m eyeshim disable'.\n"
        f"import sys; exec({code!r})\n"
    )


def site_directories() -> List[str]:
    """Where this interpreter processes .pth files, in site's order."""
    found: List[str] = []
    candidates: List[str] = []
    try:
        candidates += site.getsitepackages()
    except AttributeError:  # virtualenv < 20 replaced site.py without it
        pass
    paths = sysconfig.get_paths()
    candidates += [paths["purelib"], paths["platlib"]]
    if site.ENABLE_USER_SITE:
        candidates.append(site.getusersitepackages())
    for candidate in candidates:
        if candidate and os.path.realpath(candidate) not in map(os.path.realpath, found):
            found.append(candidate)
    return found


def _target(options: argparse.Namespace) -> str:
    if options.path:
        return str(os.path.abspath(options.path))
    if options.user:
        return str(site.getusersitepackages())
    return str(sysconfig.get_paths()["purelib"])


def _parser(verb: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog(verb),
        description=(
            "Turn eyeshim on for every interpreter of this Python environment "
            f"(writes {PTH_NAME} into its site-packages; {ENABLE_VARIABLE}=0 still opts out)."
            if verb == "enable"
            else f"Remove the {PTH_NAME} that 'eyeshim enable' wrote."
        ),
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="the user site-packages instead")
    where.add_argument("--path", metavar="DIR", help="this site-packages directory instead")
    if verb == "enable":
        parser.add_argument(
            "--no-check",
            action="store_true",
            help="do not start an interpreter to check that the switch works",
        )
    return parser


def _is_site_directory(directory: str) -> bool:
    real = os.path.realpath(directory)
    return any(os.path.realpath(entry) == real for entry in site_directories())


def _check() -> Optional[str]:
    """Start a fresh interpreter of this environment and see the switch work.

    Returns None, or what went wrong.  The child gets no EYESHIM_* variable
    and no bootstrap directory on PYTHONPATH, so only the .pth can turn it on.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
    entries = env.get("PYTHONPATH", "").split(os.pathsep)
    kept = [e for e in entries if e and os.path.realpath(e) != os.path.realpath(DIRECTORY)]
    env["PYTHONPATH"] = os.pathsep.join(kept)
    if not kept:
        del env["PYTHONPATH"]
    # Not "import eyeshim": the current directory (on sys.path under -c) may
    # hold a checkout; what counts is what the .pth loaded at start-up.
    code = (
        "import sys; b = sys.modules.get('eyeshim.bootstrap'); "
        "print(b.state()['state'] if b else 'cannot load eyeshim')"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not start {sys.executable}: {exc}"
    said = result.stdout.strip()
    if result.returncode == 0 and said == "active":
        return None
    why = result.stderr.strip() or f"the hook reports {said or 'nothing'!r}"
    return why


def _refusal(options: argparse.Namespace) -> Optional[str]:
    """Why ``enable`` must not write where it was told to, or None."""
    if options.user and sys.prefix != sys.base_prefix:
        return (
            f"refusing --user inside a virtual environment ({sys.prefix}): the user "
            f"site-packages ({site.getusersitepackages()}) is read by every "
            f"python{sys.version_info[0]}.{sys.version_info[1]} of this user outside "
            "virtual environments, not by this one; run 'eyeshim enable' without --user "
            "to enable this environment, or run the --user form with the machine's python"
        )
    if options.path:
        if not os.path.isdir(options.path):
            return f"refusing --path {options.path}: no such directory (enable creates none)"
        if not _is_site_directory(options.path):
            listed = ", ".join(site_directories()) or "none"
            return (
                f"refusing --path {options.path}: not a site-packages directory of "
                f"{sys.executable}, so no interpreter of it would read the file "
                f"(its site directories: {listed})"
            )
    return None


def enable(argv: Optional[Sequence[str]] = None) -> int:
    options = _parser("enable").parse_args(argv)
    refusal = _refusal(options)
    if refusal is not None:
        print(f"eyeshim enable: {refusal}", file=sys.stderr)
        return 2
    directory = _target(options)
    path = os.path.join(directory, PTH_NAME)
    content = pth_content(path)
    try:
        with open(path, encoding="utf-8") as existing:
            previous: Optional[str] = existing.read()
    except FileNotFoundError:
        previous = None
    except OSError as exc:
        print(f"eyeshim enable: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    if previous == content:
        print(f"eyeshim is already enabled: {path}")
    else:
        try:
            if options.user:  # the user site-packages may not exist yet, as for pip --user
                os.makedirs(directory, exist_ok=True)
            # Write and rename: an interpreter starting right now must see
            # the old file or the new one, never half a line.
            temporary = f"{path}.{os.getpid()}.tmp"
            with open(temporary, "w", encoding="utf-8") as out:
                out.write(content)
            os.replace(temporary, path)
        except OSError as exc:
            print(f"eyeshim enable: cannot write {path}: {exc}", file=sys.stderr)
            return 1
        print(f"enabled: wrote {path}" if previous is None else f"enabled: rewrote {path}")
    if not options.path and not options.user and sys.prefix == sys.base_prefix:
        print(
            f"note: {sys.prefix} is not a virtual environment: every program run by "
            f"{sys.executable} now gets eyeshim"
        )
    if options.user and not site.ENABLE_USER_SITE:
        print("note: this interpreter does not read the user site-packages (-s)")
        return 0
    if options.no_check:
        return 0
    problem = _check()
    if problem is None:
        print(f"checked: a new {sys.executable} turns eyeshim on")
        return 0
    # A switch that does not work would print an error at every interpreter
    # start of the environment: take it back.
    if previous is None:
        _remove(path)
    print(
        f"eyeshim enable: a new interpreter did not turn eyeshim on, so {path} was "
        f"{'removed' if previous is None else 'left as it was before'}:\n  {problem}",
        file=sys.stderr,
    )
    if "cannot load eyeshim" in problem or "No module named 'eyeshim" in problem:
        print(
            "  (eyeshim must be importable when site-packages .pth files run: install it "
            "into this environment itself, not only into a --system-site-packages base)",
            file=sys.stderr,
        )
    return 1


def _remove(path: str) -> bool:
    try:
        os.remove(path)
    except FileNotFoundError:
        return False
    return True


def disable(argv: Optional[Sequence[str]] = None) -> int:
    options = _parser("disable").parse_args(argv)
    path = os.path.join(_target(options), PTH_NAME)
    try:
        removed = _remove(path)
    except OSError as exc:
        print(f"eyeshim disable: cannot remove {path}: {exc}", file=sys.stderr)
        return 1
    print(f"disabled: removed {path}" if removed else f"eyeshim was not enabled: no {path}")
    elsewhere = [
        os.path.join(d, PTH_NAME)
        for d in site_directories()
        if os.path.realpath(d) != os.path.realpath(os.path.dirname(path))
        and os.path.exists(os.path.join(d, PTH_NAME))
    ]
    for other in elsewhere:
        print(f"note: still enabled by {other}")
    try:
        switched_on = read_variable(ENABLE_VARIABLE) is True
    except ValueError:  # malformed: 'eyeshim status' says so
        switched_on = False
    if switched_on:
        print(f"note: {ENABLE_VARIABLE} is set in this environment ('eyeshim run' sets it)")
    return 0
