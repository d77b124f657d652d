"""``eyeshim status``: is eyeshim on, why, and with what.

The status command's own interpreter is rarely the interesting one, so the
report is mostly about the *environment*: what a new interpreter started
from this shell, with this Python, would do.  Nothing here installs eyeshim
or imports urllib3/requests (importing urllib3 opens an IPv6 probe socket);
library versions come from their installed metadata.

Every problem that would keep eyeshim off in a new interpreter is listed
(each bad ``EYESHIM_*`` value, a missing policy file, an engine that cannot
be loaded), and then the exit status is 1; unknown ``EYESHIM_*`` names are
warnings ("did you mean"), which fail only under ``EYESHIM_STRICT=1``.  For
this interpreter it tells *installed* (``is_installed()``) from *active*:
each integration either races calls or says why it stepped aside.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

from .. import __version__
from ..bootstrap import DIRECTORY, PTH_NAME, enabled_flag
from ..bootstrap import state as bootstrap_state
from ..config import (
    DEFAULT_INTEGRATIONS,
    ENABLE_VARIABLE,
    ENV_PREFIX,
    INTEGRATIONS,
    SETTINGS,
    STATS_VARIABLE,
    STRICT_VARIABLE,
    VERBOSE_VARIABLE,
    Config,
    check_environment,
    read_variable,
    select_integrations,
)
from . import prog

__all__ = ["collect", "main"]

_LIBRARIES = ("urllib3", "requests", "pip")


def _on_pythonpath(environ: Dict[str, str]) -> List[str]:
    mine = {os.path.realpath(DIRECTORY)}
    return [
        entry
        for entry in environ.get("PYTHONPATH", "").split(os.pathsep)
        if entry and os.path.realpath(entry) in mine
    ]


def _pth_files() -> List[Dict[str, Any]]:
    from .venv import pth_content, site_directories

    found = []
    for directory in site_directories():
        path = os.path.join(directory, PTH_NAME)
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    current = handle.read() == pth_content(path)
            except OSError:
                current = False
            found.append({"path": path, "current": current})
    return found


def _config(environ: Dict[str, str]) -> Dict[str, Any]:
    try:
        config = Config.from_env(environ)
    except (TypeError, ValueError) as exc:
        return {"error": str(exc)}
    fields = {}
    for setting in SETTINGS:
        value = getattr(config, setting.name)
        fields[setting.name] = {"value": value, "default": value == setting.default}
    return {
        "fields": fields,
        "policy_source": _policy_source(config.policy),
        "history_file": _history_file(config.history_file, environ),
    }


def _history_file(setting: str, environ: Dict[str, str]) -> Dict[str, Any]:
    """Where the shared history lives (EYESHIM_HISTORY_FILE), and what it holds."""
    if not setting:
        return {"path": None}
    from ..config import history_file_path
    from ..history import History
    from ..history_file import HistoryFile

    path = history_file_path(setting, environ)
    info: Dict[str, Any] = {"path": path, "exists": os.path.exists(path)}
    if info["exists"]:
        try:
            folded = HistoryFile(path, History()).read()
            info.update(size=os.path.getsize(path), lines=folded.lines, lessons=len(folded))
        except OSError as exc:
            info["error"] = f"cannot read it: {exc.strerror}"
    # The nearest directory that exists must let this user write: the
    # default directory is created at the first lesson.
    directory = os.path.dirname(path)
    while directory and not os.path.isdir(directory):
        directory = os.path.dirname(directory)
    if not os.access(path if info["exists"] else directory, os.W_OK):
        info["error"] = f"{path if info['exists'] else directory} is not writable for this user"
    return info


def _policy_source(policy: Any) -> str:
    variable = next(setting.variable for setting in SETTINGS if setting.name == "policy")
    if not isinstance(policy, str):
        return "a PolicyTable object"
    if policy == "rfc6724":
        return f"the RFC 6724 default table ({variable}=rfc6724)"
    if policy == "auto":
        if os.path.exists("/etc/gai.conf"):
            return "/etc/gai.conf (present; 'auto' reads it)"
        return "the RFC 6724 default table ('auto', no /etc/gai.conf)"
    return f"{policy} ({variable})"


def _integrations(environ: Dict[str, str]) -> Dict[str, Any]:
    try:
        names = list(select_integrations(environ))
    except ValueError as exc:
        return {"error": str(exc)}
    return {"effective": names, "known": list(INTEGRATIONS), "default": list(DEFAULT_INTEGRATIONS)}


def _libraries() -> Dict[str, Optional[str]]:
    from importlib import metadata

    out: Dict[str, Optional[str]] = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _this_interpreter() -> Dict[str, Any]:
    info: Dict[str, Any] = {"bootstrap": bootstrap_state()}
    patches = sys.modules.get("eyeshim.patches")
    installed = bool(patches is not None and patches.is_installed())
    info["installed"] = installed
    if installed and patches is not None:
        info["integrations"] = patches.installed_integrations()
        info["status"] = patches.integration_status()
    events = sys.modules.get("eyeshim.events")
    if events is not None:  # only a program that raced has counters
        info["counters"] = events.counters()
    return info


def collect(environ: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Everything ``status`` reports, as plain data (what ``--json`` prints)."""
    env = dict(os.environ if environ is None else environ)
    report: Dict[str, Any] = {
        "eyeshim": {
            "version": __version__,
            "location": os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        },
        "python": {
            "executable": sys.executable,
            "version": sys.version.split()[0],
            "prefix": sys.prefix,
            "virtual_environment": sys.prefix != sys.base_prefix,
        },
        "this_interpreter": _this_interpreter(),
    }
    checked = check_environment(env)
    problems: List[str] = list(checked.problems)
    warnings: List[str] = list(checked.warnings)
    raw = env.get(ENABLE_VARIABLE)
    try:
        flag = enabled_flag(env)
    except ValueError:
        flag = None  # one of the problems already
    engine = _engine_problem()
    if engine is not None:
        problems.append(engine)
    try:
        strict = bool(read_variable(STRICT_VARIABLE, env))
    except ValueError:
        strict = False
    on_path = _on_pythonpath(env)
    pth = _pth_files()
    verbose = env.get(VERBOSE_VARIABLE)
    report["environment"] = {
        ENABLE_VARIABLE: raw,
        VERBOSE_VARIABLE: verbose,
        "bootstrap_directory": DIRECTORY,
        "bootstrap_on_pythonpath": bool(on_path),
        "pth_files": pth,
        "variables": {k: v for k, v in sorted(env.items()) if k.startswith(ENV_PREFIX)},
    }
    # What a new interpreter would do, and why: the same decisions as
    # eyeshim.bootstrap makes, spelled out.
    if flag is False:
        verdict, why = False, f"{ENABLE_VARIABLE}={raw} switches every hook off"
    elif pth:
        verdict, why = True, f"{pth[0]['path']} (the environment-wide switch)"
    elif flag and on_path:
        verdict, why = True, f"{ENABLE_VARIABLE}={raw} and the bootstrap on PYTHONPATH"
    elif flag:
        verdict, why = (
            False,
            (
                f"{ENABLE_VARIABLE}={raw}, but the bootstrap directory is not on PYTHONPATH "
                "(start programs with 'eyeshim run' or use 'eyeshim enable')"
            ),
        )
    else:
        verdict, why = False, "no switch: neither 'eyeshim run' nor 'eyeshim enable'"
    config = _config(env)
    integrations = _integrations(env)
    shared = config.get("history_file", {})
    if shared.get("error"):
        warnings.append(
            f"history file {shared['path']}: {shared['error']}; each process will say so once "
            "and go on without it"
        )
    if strict and warnings:
        problems += [f"{warning} ({STRICT_VARIABLE}=1 makes it fatal)" for warning in warnings]
    if verdict and problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        verdict, why = False, f"{why} is on, but {count} below keep eyeshim off at start-up"
    report["new_interpreters"] = {"eyeshim": verdict, "because": why}
    report["config"] = config
    from ..dns import describe  # which resolver names get, and why

    report["resolver"] = describe(env)
    report["integrations"] = integrations
    report["libraries"] = _libraries()
    report["problems"] = problems
    report["warnings"] = warnings
    return report


def _engine_problem() -> Optional[str]:
    """A new interpreter loads the engine at its first connection: can it?"""
    try:
        import eyeshim.connection  # noqa: F401
    except Exception as exc:
        return f"the engine cannot be loaded ({type(exc).__name__}: {exc}); reinstall eyeshim"
    return None


def _stats(path: str) -> Dict[str, Any]:
    from ..events import read_stats

    try:
        processes, totals = read_stats(path)
    except OSError as exc:
        return {"file": path, "error": f"cannot read stats file {path}: {exc.strerror}"}
    return {"file": path, "processes": processes, "counters": totals}


def _format(report: Dict[str, Any]) -> str:
    lines: List[str] = []
    add = lines.append
    new = report["new_interpreters"]
    add(f"new interpreters: eyeshim {'ON' if new['eyeshim'] else 'off'}: {new['because']}")
    py = report["python"]
    venv = "virtual environment" if py["virtual_environment"] else "not a virtual environment"
    add(f"python:           {py['executable']} ({py['version']}, {venv})")
    es = report["eyeshim"]
    add(f"eyeshim:          {es['version']} at {es['location']}")
    this = report["this_interpreter"]
    boot = this["bootstrap"]
    hook = boot["state"] + (f" via {boot['origin']}" if boot["origin"] else "")
    if boot["detail"]:
        hook += f" ({boot['detail']})"
    add(f"this interpreter: installed={'yes' if this['installed'] else 'no'}; start-up hook {hook}")
    env = report["environment"]
    add("")
    add("switches")
    switch = env[ENABLE_VARIABLE]
    add(f"  {ENABLE_VARIABLE:<24} {switch if switch is not None else '(unset)'}")
    on_path = "yes" if env["bootstrap_on_pythonpath"] else "no"
    add(f"  bootstrap on PYTHONPATH  {on_path} ({env['bootstrap_directory']})")
    if env["pth_files"]:
        for item in env["pth_files"]:
            stale = "" if item["current"] else " (written by another eyeshim version)"
            add(f"  .pth switch              {item['path']}{stale}")
    else:
        add(f"  .pth switch              none ({PTH_NAME} in no site directory)")
    others = {k: v for k, v in env["variables"].items() if k != ENABLE_VARIABLE}
    for key, value in others.items():
        add(f"  {key:<24} {value}")
    add("")
    config = report["config"]
    if "error" in config:
        add(f"config: ERROR: {config['error']}")
    else:
        add("config (from EYESHIM_*; * = not the default)")
        for name, item in config["fields"].items():
            add(f"  {'' if item['default'] else '*'}{name:<30} {item['value']!r}")
        add(f"policy table: {config['policy_source']}")
        shared = config["history_file"]
        if shared["path"] is None:
            add("history file: off (each process learns on its own)")
        elif not shared["exists"]:
            add(f"history file: {shared['path']} (not written yet)")
        elif "lessons" in shared:
            add(
                f"history file: {shared['path']} ({shared['lessons']} live lesson(s) on this "
                f"network, {shared['lines']} line(s), {shared['size']} bytes)"
            )
    add(f"resolver: {report['resolver']}")
    integrations = report["integrations"]
    if "error" in integrations:
        add(f"integrations: ERROR: {integrations['error']}")
    else:
        add(
            f"integrations: {', '.join(integrations['effective']) or 'none'}"
            f" (known: {', '.join(integrations['known'])})"
        )
    for name, item in this.get("status", {}).items():
        if item["active"]:
            how = "active"
        elif item["state"] == "patched":
            how = f"stepped aside: {item['why']}"
        else:
            how = f"{item['state']}: {item['why']}"
        add(f"  in this interpreter: {name}: {how}")
        for wrapper in item["wrappers"]:
            add(f"    with {wrapper}")
    libraries = ", ".join(
        f"{name} {version}" if version else f"{name} not installed"
        for name, version in report["libraries"].items()
    )
    add(f"libraries: {libraries}")
    this = report["this_interpreter"].get("counters")
    if this and this.get("races"):
        from ..events import format_counters

        add(f"races in this interpreter: {format_counters(this)}")
    stats = report.get("stats")
    if stats is not None and "counters" in stats:
        from ..events import format_counters

        add(
            f"races recorded in {stats['file']} by {stats['processes']} process(es): "
            f"{format_counters(stats['counters'])}"
        )
    for warning in report["warnings"]:
        add(f"warning: {warning}")
    for problem in report["problems"]:
        add(f"problem: {problem}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog("status"),
        description="Say whether eyeshim is on for new interpreters, why, and with what settings.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--stats",
        metavar="FILE",
        help="also sum the race counters that processes wrote to FILE at exit "
        f"('eyeshim run --stats FILE', {STATS_VARIABLE}); default: ${STATS_VARIABLE} if it is "
        "a file",
    )
    options = parser.parse_args(argv)
    report = collect()
    stats = options.stats or os.environ.get(STATS_VARIABLE)
    if stats and stats != "-":
        report["stats"] = _stats(stats)
        if "error" in report["stats"] and options.stats:
            report["problems"].append(report["stats"]["error"])
    if options.json:
        print(json.dumps(report, indent=2, sort_keys=True, default=repr))
    else:
        print(_format(report))
    return 1 if report["problems"] else 0
