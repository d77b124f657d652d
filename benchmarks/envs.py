"""The benchmark's own Python environments.

The contenders a user would pick instead of eyeshim are not eyeshim's
dependencies, and must not become them; urllib3.future even *replaces* the
``urllib3`` package, so it cannot share an environment with requests' stock
urllib3.  So the benchmark makes two virtual environments in a cache
directory and installs into those only:

* ``main``: aiohappyeyeballs, requests, wrapt 2.x and trustme (P6's TLS
  server certificate); eyeshim itself comes
  from this checkout through PYTHONPATH, so what is measured is the working
  tree;
* ``urllib3-future``: urllib3.future alone;
* ``wrapt1``: wrapt 1.x only, for P5.  eyeshim no longer uses wrapt (it used
  to, and what installing eyeshim cost depended mostly on which wrapt the
  environment had: 2.x imports asyncio and importlib.metadata); P5 runs in
  both to show that having either installed changes nothing.

Each environment is rebuilt only when its requirement list changes (a stamp
file holds it).  In smoke mode nothing is installed: everything runs in the
current interpreter and contenders it lacks are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

__all__ = ["Environments", "cache_dir", "prepare"]

REQUIREMENTS: dict[str, list[str]] = {
    # trustme: P6's TLS server makes its certificate with it.
    "main": ["aiohappyeyeballs", "requests", "wrapt>=2", "trustme"],
    "urllib3-future": ["urllib3-future"],
    "wrapt1": ["wrapt>=1.14,<2"],
}


def cache_dir() -> Path:
    explicit = os.environ.get("EYESHIM_BENCH_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eyeshim-bench"


@dataclass
class Environments:
    """Interpreters to run workers with; None where an environment is missing."""

    main: str = sys.executable
    urllib3_future: Optional[str] = None
    wrapt1: Optional[str] = None
    problems: dict[str, str] = field(default_factory=dict)
    packages: dict[str, dict[str, str]] = field(default_factory=dict)


def _python_in(directory: Path) -> Path:
    return directory / "bin" / "python"


def _freeze(python: str) -> dict[str, str]:
    proc = subprocess.run(
        [python, "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        return {item["name"]: item["version"] for item in json.loads(proc.stdout)}
    except (ValueError, KeyError, TypeError):
        return {}


def _ensure(name: str, log: Callable[[str], None]) -> Path:
    directory = cache_dir() / name
    stamp = directory / "eyeshim-bench-requirements.json"
    wanted = json.dumps(REQUIREMENTS[name])
    python = _python_in(directory)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    log(f"creating the {name} environment in {directory} ...")
    venv.EnvBuilder(with_pip=True, clear=True).create(directory)
    proc = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *REQUIREMENTS[name],
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"pip install {' '.join(REQUIREMENTS[name])} failed: {tail}")
    stamp.write_text(wanted)
    return python


def prepare(install: bool, log: Callable[[str], None]) -> Environments:
    """The interpreters for this run; with ``install`` the two venvs are made first."""
    envs = Environments()
    if not install:
        envs.problems["urllib3-future"] = "smoke mode installs nothing (run without --smoke)"
        return envs
    for name in REQUIREMENTS:
        try:
            python = str(_ensure(name, log))
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            envs.problems[name] = str(exc)
            continue
        envs.packages[name] = _freeze(python)
        if name == "main":
            envs.main = python
        elif name == "wrapt1":
            envs.wrapt1 = python
        else:
            envs.urllib3_future = python
    return envs
