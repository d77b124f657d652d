"""Starting real interpreters, for the tests of the start-up hook and the commands.

What these tests check is what a user's program sees at start-up, which no
in-process test can show: every helper here runs a fresh ``python``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

import eyeshim

#: Each test module that starts interpreters through these helpers.
POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="POSIX exec semantics")


TIMEOUT = 120


# The directory holding the eyeshim package these tests import, so that
# child interpreters find the same eyeshim even without an installed copy.


SOURCE_ROOT = str(Path(eyeshim.__file__).resolve().parent.parent)

#: Python source, for the scripts of the Ctrl-C tests: ``ctrl_c(process)``
#: sends SIGINT the way a terminal does, once the process sleeps in poll().
#: Sent any earlier, it can land in the instant between the interpreter
#: releasing the GIL and the system call, where CPython (stock too) only
#: sees it when poll() returns: the test would wait out the 60 s timeout.
CTRL_C = """
import signal, time
def ctrl_c(process):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{process.pid}/wchan") as wchan:
            if "poll" in wchan.read():
                break
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
def default_sigint():
    # Ctrl-C at a terminal reaches a process whose SIGINT is the default; a
    # background job of a non-interactive shell (CI) inherits it ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
"""


def clean_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EYESHIM_", "PYTHON"))}
    env["PYTHONPATH"] = SOURCE_ROOT
    env.update(extra)
    return env


def python(
    args: List[str], env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=clean_env() if env is None else env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def eyeshim_run(
    args: List[str], env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None
) -> subprocess.CompletedProcess[str]:
    return python(["-m", "eyeshim", "run", *args], env, cwd)


#: A program that prints, as JSON, what it sees of itself and of eyeshim.
REPORT_SCRIPT = """\
import json, os, sys
main = sys.modules["__main__"]
report = {
    "argv": sys.argv,
    "name": __name__,
    "file": __file__,
    "path0": sys.path[0],
    "path": sys.path,
    "main_is_this": main.__dict__ is globals(),
}
import socket
import eyeshim
report["installed"] = eyeshim.is_installed()
report["integrations"] = eyeshim.installed_integrations()
# No trace of the bootstrap's import watcher once it has installed.
report["spec_type"] = type(main.__spec__).__name__
report["meta_path"] = [type(finder).__name__ for finder in sys.meta_path]
print(json.dumps(report))
code = sys.argv[1] if len(sys.argv) > 1 else "0"
if code == "raise":
    raise RuntimeError("probe failed on purpose")
if code == "interrupt":
    raise KeyboardInterrupt
sys.exit(int(code))
"""


def report_of(result: subprocess.CompletedProcess[str]) -> Dict[str, object]:
    line = result.stdout.strip().splitlines()[0]
    value: Dict[str, object] = json.loads(line)
    return value


def venv_path(root: Path, key: str) -> str:
    exe = root / "bin" / "python"
    out = subprocess.run(
        [str(exe), "-c", f"import sysconfig; print(sysconfig.get_paths()[{key!r}])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    return out.stdout.strip()


def in_venv(root: Path, args: List[str], **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EYESHIM_", "PYTHON"))}
    env.update(extra)
    return subprocess.run(
        [str(root / "bin" / "python"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


RACING_APP = """\
import socket
from eyeshim.cli.demo import DEMO_NAME, BrokenAndWorking, demo_name_resolves_to
with BrokenAndWorking() as lab, demo_name_resolves_to(lab):
    for _ in range(3):
        socket.create_connection((DEMO_NAME, lab.port), timeout=3).close()
"""
