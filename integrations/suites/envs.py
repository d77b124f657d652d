"""Getting the suites: sdists from PyPI, unpacked, and one virtual environment per suite.

Everything goes under one work directory (a temporary one unless ``--workdir`` names one to
keep and reuse): ``downloads/`` (sdists, checked against versions.py's sha256), ``src/``
(unpacked), ``envs/<suite>/`` (venvs, reused while their requirements, constraints and Python
are unchanged), ``pip-cache/`` and ``logs/``. Nothing is written into the checkout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from integrations.lab import REPO_ROOT
from integrations.suites.versions import CONSTRAINTS_DIR, PytestSuite

__all__ = [
    "PLUGIN_MODULE",
    "SetupError",
    "Workdir",
    "fetch_sources",
    "freeze",
    "make_env",
]

# pip's own default waits 15 s (this machine's configuration: 180 s) on a stalled connection
# before it retries; a stall should cost less than that.
PIP_TIMEOUT = 60
PLUGIN_SOURCE = Path(__file__).resolve().parent / "plugin.py"
# The name the plugin has inside a suite's environment (``pytest -p eyeshim_suite_plugin``).
PLUGIN_MODULE = "eyeshim_suite_plugin"


class SetupError(RuntimeError):
    """A download or an install failed; the message ends with the tool's output."""


class Workdir:
    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("downloads", "src", "envs", "pip-cache", "logs", "runs"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def env(self, name: str) -> Path:
        return self.root / "envs" / name

    def source(self, suite: PytestSuite) -> Path:
        return self.root / "src" / f"{suite.project}-{suite.version}"


def _pip_environment(workdir: Workdir) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EYESHIM_")}
    env["PIP_CACHE_DIR"] = str(workdir.root / "pip-cache")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def _run(argv: Sequence[str], log: Path, env: dict[str, str], what: str) -> None:
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(argv)}\n")
        fh.flush()
        proc = subprocess.run(
            list(argv), stdout=fh, stderr=subprocess.STDOUT, env=env, timeout=900, check=False
        )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SetupError(f"{what} failed (exit {proc.returncode}); end of {log}:\n{tail}")


def _pip(python: Path) -> list[str]:
    """This interpreter's pip, acting on the environment of ``python``."""
    return [sys.executable, "-m", "pip", "--python", str(python)]


def check_pip() -> None:
    """``pip --python`` came with pip 22.3."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("pip")
    except PackageNotFoundError:
        raise SetupError(f"{sys.executable} has no pip") from None
    if tuple(int(p) for p in re.findall(r"\d+", found)[:2]) < (22, 3):
        raise SetupError(f"pip {found} is too old: the gate needs pip >= 22.3 (--python)")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_sources(suite: PytestSuite, workdir: Workdir, *, check_hash: bool = True) -> Path:
    """The suite's sdist from PyPI (``pip download --no-deps --no-binary PROJECT``), checked
    and unpacked; returns the unpacked tree."""
    name = f"{suite.project}-{suite.version}.tar.gz"
    sdist = workdir.downloads / name
    if not sdist.exists():
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                # Only the project as an sdist: ":all:" would also build its build backend
                # (hatchling, setuptools...) from sdists, minutes instead of seconds.
                "--no-binary",
                suite.project,
                "--timeout",
                str(PIP_TIMEOUT),
                "--dest",
                str(workdir.downloads),
                suite.requirement,
            ],
            workdir.logs / f"download-{suite.name}.log",
            _pip_environment(workdir),
            f"downloading the sdist of {suite.requirement}",
        )
    if not sdist.exists():
        raise SetupError(f"pip download of {suite.requirement} did not leave {name}")
    digest = sha256(sdist)
    if check_hash and digest != suite.sdist_sha256:
        raise SetupError(
            f"{name}: sha256 {digest}, versions.py pins {suite.sdist_sha256}; "
            "refusing to run tests from an sdist that is not the pinned one"
        )
    tree = workdir.source(suite)
    if not (tree / suite.paths[0]).exists():
        shutil.rmtree(tree, ignore_errors=True)
        with tarfile.open(sdist) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tree.parent, filter="data")
            else:  # Python < 3.11.4: the sdist comes from PyPI and its hash was checked
                tar.extractall(tree.parent)
    missing = [p for p in suite.paths if not (tree / p).exists()]
    if missing:
        raise SetupError(f"{name} has no {', '.join(missing)}")
    return tree


def _stamp(requirements: Sequence[str], constraints: Optional[Path]) -> str:
    text = constraints.read_text() if constraints is not None and constraints.exists() else ""
    return json.dumps(
        {
            "python": sys.version,
            "executable": sys.executable,
            "requirements": list(requirements),
            "constraints": text,
        },
        sort_keys=True,
    )


def make_env(
    name: str,
    requirements: Sequence[str],
    constraints: Optional[Path],
    workdir: Workdir,
) -> Path:
    """A venv with ``requirements`` (pinned by ``constraints``), eyeshim from this checkout
    (editable) and the plugin; returns its python. Reused when nothing it depends on
    changed."""
    env_dir = workdir.env(name)
    python = env_dir / "bin" / "python"
    stamp_file = env_dir / "eyeshim-suite-stamp.json"
    stamp = _stamp(requirements, constraints)
    log = workdir.logs / f"install-{name}.log"
    if not (python.exists() and stamp_file.exists() and stamp_file.read_text() == stamp):
        shutil.rmtree(env_dir, ignore_errors=True)
        environ = _pip_environment(workdir)
        # No pip of its own (ensurepip costs seconds of CPU per environment): this
        # interpreter's pip installs into it (pip >= 22.3: --python).
        _run(
            [sys.executable, "-m", "venv", "--without-pip", str(env_dir)],
            log,
            environ,
            f"creating venv {name}",
        )
        argv = [*_pip(python), "install", "--quiet", "--no-compile", "--timeout", str(PIP_TIMEOUT)]
        if constraints is not None:
            argv += ["-c", str(constraints)]
        argv += [*requirements, "-e", str(REPO_ROOT)]
        _run(argv, log, environ, f"installing the {name} environment")
        stamp_file.write_text(stamp)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shutil.copyfile(PLUGIN_SOURCE, Path(purelib) / f"{PLUGIN_MODULE}.py")
    return python


def _load_toml(text: str) -> Optional[dict[str, Any]]:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(text)
    return None


def lock_constraints(tree: Path, lock: str) -> Optional[str]:
    """Constraints from the sdist's own pins: ``uv.lock`` (urllib3 2.x ships the lock of its
    CI; the newest version it names for each package) or a requirements file (its ``==`` lines,
    markers kept, URLs dropped). None when there is no such file."""
    path = tree / lock
    if not lock or not path.exists():
        return None
    if lock.endswith(".lock"):
        data = _load_toml(path.read_text())
        if data is None:
            return None
        from packaging.version import InvalidVersion, Version

        best: dict[str, Version] = {}
        for package in data.get("package", []):
            name, version = package.get("name"), package.get("version")
            if not name or not version:
                continue
            try:
                parsed = Version(version)
            except InvalidVersion:
                continue
            if name not in best or parsed > best[name]:
                best[name] = parsed
        return "".join(f"{name}=={version}\n" for name, version in sorted(best.items()))
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if "==" in line and "@" not in line and not line.startswith(("#", "-")):
            lines.append(line)
    return "".join(line + "\n" for line in lines)


def freeze(suite: PytestSuite, workdir: Workdir) -> Path:
    """Rewrite ``constraints/<suite>.txt`` from a fresh environment: the versions of the
    sdist's own lock file where it has one, else the newest releases pip picks today. The
    packages versions.py pins itself (the suite's project, ``name==version`` requirements) are
    left out, so that each version lives in one place."""
    name = f"freeze-{suite.name}"
    lock = lock_constraints(fetch_sources(suite, workdir), suite.lock)
    lock_file = None
    if lock is not None:
        lock_file = workdir.root / f"{name}-lock.txt"
        lock_file.write_text(
            "".join(
                line + "\n"
                for line in lock.splitlines()
                if line.split("==")[0].strip().lower() != suite.project.lower()
            )
        )
    python = make_env(name, [suite.requirement, *suite.requirements], lock_file, workdir)
    out = subprocess.run(
        [*_pip(python), "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pinned = {suite.project.lower()} | {
        r.split("==")[0].lower() for r in suite.requirements if "==" in r
    }
    lines = [
        line
        for line in out.splitlines()
        if line and not line.startswith("#") and line.split("==")[0].lower() not in pinned
    ]
    target = CONSTRAINTS_DIR / f"{suite.name}.txt"
    target.write_text(
        f"# Test dependencies of the {suite.label} suite, pinned: written by\n"
        "# `python -m integrations.suites --freeze` (pip freeze of a fresh environment).\n"
        + "\n".join(lines)
        + "\n"
    )
    return target
