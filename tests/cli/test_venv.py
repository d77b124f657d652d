"""``eyeshim enable`` / ``disable`` (eyeshim/cli/venv.py), in throwaway environments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import List

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
    (site_packages / "_eyeshim_source.pth").write_text(f"{SOURCE_ROOT}\n")
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
    # The proof a platform team runs in the environment: a real race through
    # the shims the .pth installed.
    check = in_venv(venv, ["-m", "eyeshim", "check", "--json"])
    assert check.returncode == 0, check.stdout + check.stderr
    proof = json.loads(check.stdout)
    assert proof["installed_by"] == "the .pth switch of 'eyeshim enable'"
    assert {r["name"]: r["verdict"] for r in proof["integrations"]}["socket"] == "proven"

    off = in_venv(venv, ["-m", "eyeshim", "disable"])
    assert off.returncode == 0 and f"disabled: removed {pth}" in off.stdout
    assert not pth.exists()
    off_again = in_venv(venv, ["-m", "eyeshim", "disable"])
    assert off_again.returncode == 0 and "was not enabled" in off_again.stdout
    assert in_venv(venv, ["-c", CHECK]).stdout.strip() == "False"
    assert in_venv(venv, ["-m", "eyeshim", "check", "-q"]).returncode == 1  # rolled back
    # The machine's own interpreter was never touched.
    assert machine_pth.exists() == machine_had_it


def test_enable_refuses_a_switch_that_cannot_work(tmp_path: Path) -> None:
    # eyeshim visible to the enabling process only (as from a base environment
    # whose site-packages a venv's .pth files run before): a new interpreter
    # could not load it, so the switch would do nothing.
    root = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=TIMEOUT
    )
    pth = Path(venv_path(root, "purelib")) / PTH_NAME
    code = (
        f"import sys; sys.path.insert(0, {SOURCE_ROOT!r}); from eyeshim.cli import main; "
        "sys.exit(main(['enable']))"
    )
    result = in_venv(root, ["-c", code])
    assert result.returncode == 1
    assert "did not turn eyeshim on" in result.stderr
    assert "install it into this environment itself" in result.stderr
    assert not pth.exists()


def test_switch_left_behind_by_uninstall_is_silent(tmp_path: Path) -> None:
    root = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=TIMEOUT
    )
    pth = Path(venv_path(root, "purelib")) / PTH_NAME
    pth.write_text(pth_content(str(pth)))  # eyeshim was uninstalled, the file stayed
    ran = in_venv(root, ["-c", "print('started')"])
    assert (ran.returncode, ran.stdout.strip(), ran.stderr) == (0, "started", "")


def test_switch_with_a_broken_eyeshim_warns_once_and_starts(tmp_path: Path) -> None:
    root = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=TIMEOUT
    )
    site_packages = Path(venv_path(root, "purelib"))
    broken = site_packages / "eyeshim"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise RuntimeError('half-installed on purpose')\n")
    pth = site_packages / PTH_NAME
    pth.write_text(pth_content(str(pth)))
    ran = in_venv(root, ["-c", "print('started')"])
    assert ran.returncode == 0 and ran.stdout.strip() == "started"
    assert ran.stderr.count("eyeshim: disabled: cannot load eyeshim") == 1, ran.stderr
    assert "half-installed on purpose" in ran.stderr and str(pth) in ran.stderr
    for quiet in ({"EYESHIM_ENABLED": "0"}, {"EYESHIM_QUIET": "1"}):
        assert in_venv(root, ["-c", "print('started')"], **quiet).stderr == ""


# -- enable that cannot damage a machine ---------------------------------------------


def test_enable_refuses_user_inside_a_venv(venv: Path, tmp_path: Path) -> None:
    user_base = tmp_path / "userbase"  # where --user would write, for this test
    result = in_venv(venv, ["-m", "eyeshim", "enable", "--user"], PYTHONUSERBASE=str(user_base))
    assert result.returncode == 2
    assert "eyeshim enable: refusing --user inside a virtual environment" in result.stderr
    assert "run 'eyeshim enable' without --user" in result.stderr
    assert not user_base.exists()  # nothing written, no directory created


def test_enable_refuses_a_path_that_is_not_a_site_directory(venv: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    result = in_venv(venv, ["-m", "eyeshim", "enable", "--path", str(missing)])
    assert result.returncode == 2
    assert f"refusing --path {missing}: no such directory (enable creates none)" in result.stderr
    assert not (tmp_path / "no").exists()
    plain = tmp_path / "plain"
    plain.mkdir()
    result = in_venv(venv, ["-m", "eyeshim", "enable", "--path", str(plain)])
    assert result.returncode == 2
    assert f"refusing --path {plain}: not a site-packages directory of" in result.stderr
    assert list(plain.iterdir()) == []
    site_packages = venv_path(venv, "purelib")
    ok = in_venv(venv, ["-m", "eyeshim", "enable", "--path", site_packages])
    assert ok.returncode == 0, ok.stderr
    assert (Path(site_packages) / PTH_NAME).exists()


@pytest.mark.slow
def test_pip_uninstall_leaves_no_warning_behind(tmp_path: Path) -> None:
    # A real install into a throwaway venv (not editable, wrapt not needed),
    # enabled, then removed with pip: the .pth stays, and says nothing.
    root = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=TIMEOUT)

    def in_venv(root: Path, args: List[str], **extra: str) -> subprocess.CompletedProcess[str]:
        # From an empty directory: -m and -c put the current directory on
        # sys.path, and the checkout's eyeshim must not stand in for the
        # installed one.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EYESHIM_", "PYTHON"))}
        return subprocess.run(
            [str(root / "bin" / "python"), *args],
            env=dict(env, **extra),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    install = in_venv(
        root,
        [
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            SOURCE_ROOT,
        ],
    )
    if install.returncode != 0:
        pytest.skip(f"cannot build eyeshim here: {install.stderr.strip()[-300:]}")
    enabled = in_venv(root, ["-m", "eyeshim", "enable"])
    assert enabled.returncode == 0, enabled.stderr + enabled.stdout
    assert "checked: a new" in enabled.stdout
    on = in_venv(root, ["-c", CHECK])
    assert (on.stdout.strip(), on.stderr) == ("True", "")
    removed = in_venv(
        root, ["-m", "pip", "uninstall", "--yes", "--disable-pip-version-check", "eyeshim"]
    )
    assert removed.returncode == 0, removed.stderr
    pth = Path(venv_path(root, "purelib")) / PTH_NAME
    assert pth.exists()  # pip does not know the file...
    after = in_venv(root, ["-c", "print('started')"], EYESHIM_ENABLED="1")
    assert (after.returncode, after.stdout.strip(), after.stderr) == (0, "started", "")
