"""``eyeshim enable`` / ``disable`` (eyeshim/cli/venv.py), in throwaway environments."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from interpreters import POSIX_ONLY, SOURCE_ROOT, TIMEOUT, in_venv, venv_path

from eyeshim.bootstrap import PTH_NAME
from eyeshim.cli.venv import pth_content

pytestmark = POSIX_ONLY


# -- enable / disable in a throwaway environment -----------------------------


@pytest.fixture()
def venv(tmp_path: Path) -> Path:
    """A virtual environment that sees this eyeshim and its dependencies.

    A base's site-packages is processed after the venv's own, too late for
    the venv's .pth files; so eyeshim's source directory is put on the path
    by a .pth that sorts before eyeshim-enable.pth, as an install into the
    venv would.
    """
    root = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(root)],
        check=True,
        timeout=TIMEOUT,
    )
    site_packages = Path(venv_path(root, "purelib"))
    # wrapt too: when these tests run in a venv themselves (CI's 3.9 run),
    # the new venv's "system" site-packages is the base interpreter's, which
    # lacks it.
    import wrapt

    wrapt_root = str(Path(wrapt.__file__).resolve().parent.parent)
    (site_packages / "_eyeshim_source.pth").write_text(f"{SOURCE_ROOT}\n{wrapt_root}\n")
    return root


CHECK = "import socket, eyeshim; print(eyeshim.is_installed())"


def test_enable_disable_round_trip(venv: Path) -> None:
    machine_pth = Path(sysconfig.get_paths()["purelib"]) / PTH_NAME
    machine_had_it = machine_pth.exists()
    pth = Path(venv_path(venv, "purelib")) / PTH_NAME
    assert in_venv(venv, ["-c", CHECK]).stdout.strip() == "False"

    first = in_venv(venv, ["-m", "eyeshim", "enable"])
    assert first.returncode == 0, first.stderr
    assert f"enabled: wrote {pth}" in first.stdout
    assert "checked: a new" in first.stdout
    assert pth.read_text() == pth_content(str(pth))
    again = in_venv(venv, ["-m", "eyeshim", "enable"])
    assert again.returncode == 0 and "already enabled" in again.stdout

    on = in_venv(venv, ["-c", CHECK])
    assert (on.stdout.strip(), on.stderr) == ("True", "")
    opted_out = in_venv(venv, ["-c", CHECK], EYESHIM_ENABLED="0")
    assert (opted_out.stdout.strip(), opted_out.stderr) == ("False", "")
    # -I ignores PYTHONPATH and every PYTHON* variable; .pth files still run.
    isolated = in_venv(venv, ["-I", "-c", CHECK])
    assert isolated.stdout.strip() == "True"
    broken = in_venv(venv, ["-c", CHECK], EYESHIM_HISTORY="maybe")
    assert broken.returncode == 0 and broken.stdout.strip() == "False"
    assert broken.stderr.count("eyeshim: disabled: EYESHIM_HISTORY='maybe'") == 1

    status = in_venv(venv, ["-m", "eyeshim", "status", "--json"])
    report = json.loads(status.stdout)
    assert report["new_interpreters"]["eyeshim"] is True
    assert report["environment"]["pth_files"] == [{"path": str(pth), "current": True}]

    off = in_venv(venv, ["-m", "eyeshim", "disable"])
    assert off.returncode == 0 and f"disabled: removed {pth}" in off.stdout
    assert not pth.exists()
    off_again = in_venv(venv, ["-m", "eyeshim", "disable"])
    assert off_again.returncode == 0 and "was not enabled" in off_again.stdout
    assert in_venv(venv, ["-c", CHECK]).stdout.strip() == "False"
    # The machine's own interpreter was never touched.
    assert machine_pth.exists() == machine_had_it


def test_enable_refuses_a_switch_that_cannot_work(tmp_path: Path) -> None:
    # eyeshim only in the base environment: the venv's .pth runs before the
    # base's site-packages is on sys.path, so the switch could not load it.
    root = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=TIMEOUT
    )
    pth = Path(venv_path(root, "purelib")) / PTH_NAME
    result = in_venv(root, ["-m", "eyeshim", "enable"], PYTHONPATH=SOURCE_ROOT)
    assert result.returncode == 1
    assert "did not turn eyeshim on" in result.stderr
    assert not pth.exists()


def test_stale_switch_never_stops_start_up(tmp_path: Path) -> None:
    root = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=TIMEOUT
    )
    pth = Path(venv_path(root, "purelib")) / PTH_NAME
    pth.write_text(pth_content(str(pth)))  # eyeshim was uninstalled, the file stayed
    ran = in_venv(root, ["-c", "print('started')"])
    assert ran.returncode == 0 and ran.stdout.strip() == "started"
    assert ran.stderr.count("eyeshim: disabled: cannot load eyeshim") == 1
    assert str(pth) in ran.stderr
    assert in_venv(root, ["-c", "print('started')"], EYESHIM_ENABLED="0").stderr == ""
