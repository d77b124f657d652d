"""``eyeshim run`` (eyeshim/cli/run.py): the target is ``python script.py`` plus eyeshim."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import List

import pytest
from interpreters import (
    POSIX_ONLY,
    RACING_APP,
    REPORT_SCRIPT,
    SOURCE_ROOT,
    clean_env,
    eyeshim_run,
    python,
    report_of,
)

from eyeshim.bootstrap import DIRECTORY
from eyeshim.cli import run

pytestmark = POSIX_ONLY


# -- eyeshim run: the target is python script.py ---------------------------


@pytest.mark.parametrize("code", ["0", "3"])
def test_run_script_is_plain_python_plus_eyeshim(
    report_script: Path, tmp_path: Path, code: str
) -> None:
    plain = python([str(report_script), code, "extra arg"], cwd=tmp_path)
    ran = eyeshim_run([str(report_script), code, "extra arg"], cwd=tmp_path)
    assert ran.returncode == plain.returncode == int(code), ran.stderr
    mine, theirs = report_of(ran), report_of(plain)
    for key in ("argv", "name", "file", "path0", "main_is_this", "spec_type"):
        assert mine[key] == theirs[key], key
    assert mine["argv"] == [str(report_script), code, "extra arg"]
    assert mine["name"] == "__main__" and mine["main_is_this"] is True
    assert mine["path0"] == str(report_script.parent)
    # The bootstrap directory has left sys.path: the program sees what plain
    # python gives it.
    assert mine["path"] == theirs["path"]
    assert theirs["installed"] is False
    assert mine["installed"] is True
    assert mine["integrations"]["socket"] == "patched"  # type: ignore[index]
    assert ran.stderr == plain.stderr == ""


def test_run_relative_script_keeps_argv_as_given(report_script: Path) -> None:
    plain = python(["report.py"], cwd=report_script.parent)
    ran = eyeshim_run(["report.py"], cwd=report_script.parent)
    assert report_of(ran)["argv"] == report_of(plain)["argv"] == ["report.py"]
    assert report_of(ran)["file"] == report_of(plain)["file"]


def test_run_module_is_python_dash_m(tmp_path: Path) -> None:
    (tmp_path / "probe_pkg").mkdir()
    (tmp_path / "probe_pkg" / "__init__.py").write_text("")
    (tmp_path / "probe_pkg" / "tool.py").write_text(REPORT_SCRIPT)
    plain = python(["-m", "probe_pkg.tool", "4", "x"], cwd=tmp_path)
    ran = eyeshim_run(["-m", "probe_pkg.tool", "4", "x"], cwd=tmp_path)
    assert ran.returncode == plain.returncode == 4
    mine, theirs = report_of(ran), report_of(plain)
    for key in ("argv", "name", "file", "path0", "path", "main_is_this", "spec_type"):
        assert mine[key] == theirs[key], key
    assert mine["spec_type"] == "ModuleSpec"
    assert "_Watcher" not in mine["meta_path"]  # type: ignore[operator]
    # As python does: argv[0] is the module's file, sys.path[0] the cwd.
    assert mine["argv"] == [str(tmp_path / "probe_pkg" / "tool.py"), "4", "x"]
    assert mine["path0"] == str(tmp_path)
    assert mine["installed"] is True


def test_run_dash_c(tmp_path: Path) -> None:
    ran = eyeshim_run(
        ["-c", "import sys, socket, eyeshim; print(sys.argv, eyeshim.is_installed())", "a"],
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "['-c', 'a'] True"


def test_run_exception_exits_1_with_traceback(report_script: Path) -> None:
    plain = python([str(report_script), "raise"])
    ran = eyeshim_run([str(report_script), "raise"])
    assert ran.returncode == plain.returncode == 1
    assert ran.stderr == plain.stderr
    assert "Traceback" in ran.stderr and "RuntimeError: probe failed on purpose" in ran.stderr


def test_run_keyboard_interrupt_exits_like_python(report_script: Path) -> None:
    plain = python([str(report_script), "interrupt"])
    ran = eyeshim_run([str(report_script), "interrupt"])
    # Python re-raises SIGINT on itself: -2 here, 130 in a shell.
    assert ran.returncode == plain.returncode != 0
    assert "KeyboardInterrupt" in ran.stderr


def test_run_missing_script_fails_like_python(tmp_path: Path) -> None:
    plain = python([str(tmp_path / "nope.py")])
    ran = eyeshim_run([str(tmp_path / "nope.py")])
    assert ran.returncode == plain.returncode == 2
    assert ran.stderr == plain.stderr


def test_run_forwards_interpreter_options(tmp_path: Path) -> None:
    ran = python(
        [
            "-X",
            "dev",
            "-W",
            "error::UserWarning",
            "-m",
            "eyeshim",
            "run",
            "-c",
            "import sys; print(sys.flags.dev_mode, 'error::UserWarning' in sys.warnoptions)",
        ]
    )
    assert ran.stdout.strip() == "True True", ran.stderr


@pytest.mark.skipif(sys.version_info < (3, 11), reason="-P is new in 3.11")
def test_run_respects_safe_path(report_script: Path) -> None:
    plain = python(["-P", str(report_script)])
    ran = python(["-P", "-m", "eyeshim", "run", str(report_script)])
    assert report_of(ran)["path0"] == report_of(plain)["path0"] != str(report_script.parent)
    assert report_of(ran)["installed"] is True


def test_child_interpreters_get_eyeshim(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent("""\
        import os, subprocess, sys
        child = subprocess.run(
            [sys.executable, "-c",
             "import os, socket, eyeshim; print(eyeshim.is_installed()); "
             "print(os.environ['PYTHONPATH'])"],
            capture_output=True, text=True, check=True)
        print(child.stdout, end="")
        print(child.stderr, end="", file=sys.stderr)
        """)
    )
    ran = eyeshim_run(["--attempt-delay", "300ms", str(script)])
    assert ran.returncode == 0, ran.stderr
    installed, pythonpath = ran.stdout.splitlines()
    assert installed == "True"
    assert pythonpath.split(os.pathsep)[0] == DIRECTORY


def test_nested_run_does_not_grow_pythonpath() -> None:
    once = run.environment(clean_env(), {})
    twice = run.environment(once, {})
    assert twice["PYTHONPATH"] == once["PYTHONPATH"]
    assert once["PYTHONPATH"].split(os.pathsep) == [DIRECTORY, SOURCE_ROOT]
    assert "" not in run.environment({"PYTHONPATH": ""}, {})["PYTHONPATH"].split(os.pathsep)


def test_run_options_become_variables_children_inherit() -> None:
    code = (
        "import json, os, socket, eyeshim; c = eyeshim.get_config(); "
        "print(json.dumps([{k: v for k, v in os.environ.items() if k.startswith('EYESHIM_')}, "
        "c.connection_attempt_delay, c.history, c.first_address_family_count, "
        "sorted(eyeshim.installed_integrations())]))"
    )
    ran = eyeshim_run(
        [
            "--attempt-delay",
            "300ms",
            "--no-history",
            "--integrations",
            "socket,urllib3",
            "--getaddrinfo",
            "--set",
            "first_address_family_count=2",
            "-c",
            code,
        ]
    )
    assert ran.returncode == 0, ran.stderr
    variables, delay, history, fafc, names = json.loads(ran.stdout)
    assert variables == {
        "EYESHIM_ENABLED": "1",
        "EYESHIM_CONNECTION_ATTEMPT_DELAY": "300ms",
        "EYESHIM_HISTORY": "0",
        "EYESHIM_INTEGRATIONS": "socket,urllib3,getaddrinfo",
        "EYESHIM_FIRST_ADDRESS_FAMILY_COUNT": "2",
    }
    assert (delay, history, fafc) == (0.3, False, 2)
    assert names == ["getaddrinfo", "socket", "urllib3"]


def test_run_verbose_logs_to_stderr() -> None:
    ran = eyeshim_run(["--verbose", "-c", "import socket"])
    assert ran.returncode == 0
    assert "installed from sitecustomize" in ran.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--attempt-delay", "soon", "-c", "pass"], "--attempt-delay"),
        (["--integrations", "socket,carrier-pigeon", "-c", "pass"], "carrier-pigeon"),
        (["--set", "no_such_field=1", "-c", "pass"], "no_such_field"),
        (["--no-history"], "nothing to run"),
    ],
)
def test_run_rejects_bad_options(args: List[str], message: str) -> None:
    ran = eyeshim_run(args)
    assert ran.returncode == 2
    assert message in ran.stderr


def test_run_stats_to_stderr(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(RACING_APP)
    ran = eyeshim_run(["--stats", "-", str(app)])
    assert ran.returncode == 0
    assert "eyeshim: 3 race(s): 3 connected" in ran.stderr
    missing = python(["-m", "eyeshim", "status", "--stats", str(tmp_path / "none.jsonl")])
    assert missing.returncode == 1
    assert "cannot read stats file" in missing.stdout


def test_an_option_that_moves_a_bound_works_in_the_program() -> None:
    # run sets EYESHIM_CONNECTION_ATTEMPT_DELAY and the minimum it lowers; the
    # program's start-up check must judge them together, not one by one (it
    # used to turn eyeshim off with "must lie between ...").
    ran = eyeshim_run(
        [
            "--attempt-delay",
            "50ms",
            "-c",
            "import socket, eyeshim; c = eyeshim.get_config(); "
            "print(eyeshim.is_installed(), c.connection_attempt_delay, "
            "c.min_connection_attempt_delay)",
        ]
    )
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.split() == ["True", "0.05", "0.05"]
    # The same values by hand are accepted too; a lone 50 ms is refused, saying why.
    alone = python(
        ["-m", "eyeshim", "status"],
        clean_env(EYESHIM_ENABLED="1", EYESHIM_CONNECTION_ATTEMPT_DELAY="50ms"),
    )
    assert alone.returncode == 1
    assert "lower EYESHIM_MIN_CONNECTION_ATTEMPT_DELAY as well" in alone.stdout


def test_run_usage_names_the_program_as_invoked() -> None:
    ran = python(["-m", "eyeshim", "run"])
    assert ran.returncode == 2
    program = f"{os.path.basename(sys.executable)} -m eyeshim run"
    assert ran.stderr.startswith(f"usage: {program} [options] (script.py")
    assert f"{program}: error: nothing to run" in ran.stderr
