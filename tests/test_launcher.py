"""eyeshim run, the sitecustomize bootstrap, enable/disable and status.

Everything here starts real interpreters: what is tested is what a user's
program sees at start-up, which no in-process test can show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

import pytest

import eyeshim
from eyeshim import launcher
from eyeshim.bootstrap import DIRECTORY, PTH_NAME
from eyeshim.venv import pth_content

TIMEOUT = 120
# The directory holding the eyeshim package these tests import, so that
# child interpreters find the same eyeshim even without an installed copy.
SOURCE_ROOT = str(Path(eyeshim.__file__).resolve().parent.parent)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX exec semantics")


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


PROBE = """\
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


@pytest.fixture()
def probe(tmp_path: Path) -> Path:
    script = tmp_path / "scripts" / "probe.py"
    script.parent.mkdir()
    script.write_text(PROBE)
    return script


def report_of(result: subprocess.CompletedProcess[str]) -> Dict[str, object]:
    line = result.stdout.strip().splitlines()[0]
    value: Dict[str, object] = json.loads(line)
    return value


# -- eyeshim run: the target is python script.py ---------------------------


@pytest.mark.parametrize("code", ["0", "3"])
def test_run_script_is_plain_python_plus_eyeshim(probe: Path, tmp_path: Path, code: str) -> None:
    plain = python([str(probe), code, "extra arg"], cwd=tmp_path)
    ran = eyeshim_run([str(probe), code, "extra arg"], cwd=tmp_path)
    assert ran.returncode == plain.returncode == int(code), ran.stderr
    mine, theirs = report_of(ran), report_of(plain)
    for key in ("argv", "name", "file", "path0", "main_is_this", "spec_type"):
        assert mine[key] == theirs[key], key
    assert mine["argv"] == [str(probe), code, "extra arg"]
    assert mine["name"] == "__main__" and mine["main_is_this"] is True
    assert mine["path0"] == str(probe.parent)
    # The bootstrap directory has left sys.path: the program sees what plain
    # python gives it.
    assert mine["path"] == theirs["path"]
    assert theirs["installed"] is False
    assert mine["installed"] is True
    assert mine["integrations"]["socket"] == "patched"  # type: ignore[index]
    assert ran.stderr == plain.stderr == ""


def test_run_relative_script_keeps_argv_as_given(probe: Path) -> None:
    plain = python(["probe.py"], cwd=probe.parent)
    ran = eyeshim_run(["probe.py"], cwd=probe.parent)
    assert report_of(ran)["argv"] == report_of(plain)["argv"] == ["probe.py"]
    assert report_of(ran)["file"] == report_of(plain)["file"]


def test_run_module_is_python_dash_m(tmp_path: Path) -> None:
    (tmp_path / "probe_pkg").mkdir()
    (tmp_path / "probe_pkg" / "__init__.py").write_text("")
    (tmp_path / "probe_pkg" / "tool.py").write_text(PROBE)
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


def test_run_exception_exits_1_with_traceback(probe: Path) -> None:
    plain = python([str(probe), "raise"])
    ran = eyeshim_run([str(probe), "raise"])
    assert ran.returncode == plain.returncode == 1
    assert ran.stderr == plain.stderr
    assert "Traceback" in ran.stderr and "RuntimeError: probe failed on purpose" in ran.stderr


def test_run_keyboard_interrupt_exits_like_python(probe: Path) -> None:
    plain = python([str(probe), "interrupt"])
    ran = eyeshim_run([str(probe), "interrupt"])
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
def test_run_respects_safe_path(probe: Path) -> None:
    plain = python(["-P", str(probe)])
    ran = python(["-P", "-m", "eyeshim", "run", str(probe)])
    assert report_of(ran)["path0"] == report_of(plain)["path0"] != str(probe.parent)
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
    once = launcher.environment(clean_env(), {})
    twice = launcher.environment(once, {})
    assert twice["PYTHONPATH"] == once["PYTHONPATH"]
    assert once["PYTHONPATH"].split(os.pathsep) == [DIRECTORY, SOURCE_ROOT]
    assert "" not in launcher.environment({"PYTHONPATH": ""}, {})["PYTHONPATH"].split(os.pathsep)


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


def test_eyeshim_help_lists_the_verbs() -> None:
    result = python(["-m", "eyeshim", "--help"])
    for verb in ("demo", "run", "enable", "disable", "status"):
        assert verb in result.stdout


# -- the bootstrap: never in the way ----------------------------------------


def test_broken_variable_warns_once_and_runs_stock(probe: Path) -> None:
    ran = eyeshim_run([str(probe)], env=clean_env(EYESHIM_RESOLUTION_DELAY="soon"))
    assert ran.returncode == 0
    assert report_of(ran)["installed"] is False
    warnings = [line for line in ran.stderr.splitlines() if line.startswith("eyeshim: disabled")]
    assert len(warnings) == 1, ran.stderr
    assert "EYESHIM_RESOLUTION_DELAY='soon'" in warnings[0]


def test_broken_switch_value_never_stops_start_up() -> None:
    env = clean_env(EYESHIM_ENABLED="maybe", PYTHONPATH=os.pathsep.join([DIRECTORY, SOURCE_ROOT]))
    ran = python(["-c", "import socket, eyeshim; print(eyeshim.is_installed())"], env)
    assert ran.returncode == 0
    assert ran.stdout.strip() == "False"
    assert ran.stderr.count("eyeshim: disabled: EYESHIM_ENABLED='maybe'") == 1


def test_pythonpath_alone_does_nothing() -> None:
    # PYTHONPATH leaks into every child; only EYESHIM_ENABLED turns it on.
    env = clean_env(PYTHONPATH=os.pathsep.join([DIRECTORY, SOURCE_ROOT]))
    ran = python(["-c", "import socket, sys; print('eyeshim' in sys.modules)"], env)
    assert (ran.returncode, ran.stdout.strip(), ran.stderr) == (0, "False", "")


def test_start_up_imports_nothing_heavy() -> None:
    heavy = (
        "threading",
        "ssl",
        "urllib3",
        "socket",
        "wrapt",
        "logging",
        "typing",
        "eyeshim.patches",
        "eyeshim.connection",
        "eyeshim.config",
    )
    code = f"import sys; print([m for m in {heavy!r} if m in sys.modules])"
    stock = python(["-c", code], clean_env())
    env = clean_env(EYESHIM_ENABLED="1", PYTHONPATH=os.pathsep.join([DIRECTORY, SOURCE_ROOT]))
    ran = python(["-c", code + "; import eyeshim.bootstrap as b; print(b.state()['state'])"], env)
    # Compared with a stock start-up of the same interpreter: some sites
    # import threading or typing from their own .pth files.
    loaded, state = ran.stdout.split("\n")[:2]
    extra = set(json.loads(loaded.replace("'", '"'))) - set(
        json.loads(stock.stdout.strip().replace("'", '"'))
    )
    assert extra == set(), ran.stderr
    assert state == "armed"


def test_api_used_before_socket_sees_it_installed() -> None:
    # The program's first import is eyeshim itself: the bootstrap waits for
    # that import to finish instead of installing from inside it.
    ran = eyeshim_run(["-c", "import eyeshim; print(eyeshim.is_installed())"])
    assert (ran.returncode, ran.stdout.strip(), ran.stderr) == (0, "True", "")


def test_urllib3_imported_first_is_patched() -> None:
    pytest.importorskip("requests")
    code = "import requests, eyeshim; print(eyeshim.installed_integrations()['urllib3'])"
    ran = eyeshim_run(["-c", code])
    assert (ran.returncode, ran.stdout.strip()) == (0, "patched"), ran.stderr


def test_imports_in_threads_still_install(tmp_path: Path) -> None:
    # Imports overlapping in several threads: the last one to finish sees no
    # import in progress and installs, before the program goes on.
    script = tmp_path / "threads.py"
    script.write_text(
        textwrap.dedent("""\
        import importlib, threading
        names = ["json", "csv", "decimal", "http.client", "urllib.request", "smtplib",
                 "xml.dom.minidom", "email.mime.text", "ftplib", "xmlrpc.client"]
        threads = [threading.Thread(target=importlib.import_module, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        import sys
        import eyeshim.bootstrap as b
        print(b.state()["state"], sys.modules["eyeshim.patches"].installed_integrations()["socket"])
        """)
    )
    for _ in range(3):
        ran = eyeshim_run([str(script)])
        assert (ran.returncode, ran.stdout.strip()) == (0, "active patched"), ran.stderr


def test_program_that_installs_itself_is_respected() -> None:
    code = (
        "import eyeshim; eyeshim.install(connection_attempt_delay=0.4, integrations=['socket']); "
        "import socket; print(eyeshim.get_config().connection_attempt_delay, "
        "sorted(eyeshim.installed_integrations()))"
    )
    ran = eyeshim_run(["-c", code])
    assert ran.stdout.strip() == "0.4 ['socket']", ran.stderr


def test_users_sitecustomize_still_runs(probe: Path, tmp_path: Path) -> None:
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "sitecustomize.py").write_text(
        "import os, sys\nsys.stderr.write('user sitecustomize ran\\n')\nMARK = 42\n"
    )
    code = (
        "import sitecustomize, socket, eyeshim; print(sitecustomize.MARK, eyeshim.is_installed())"
    )
    env = clean_env(PYTHONPATH=os.pathsep.join([str(custom), SOURCE_ROOT]))
    plain = python(["-c", code], env)
    ran = eyeshim_run(["-c", code], env)
    assert plain.stdout.strip() == "42 False"
    assert ran.stdout.strip() == "42 True"
    # Once for the launcher's own interpreter, once for the target.
    assert ran.stderr.count("user sitecustomize ran") == 2


def test_users_broken_sitecustomize_reported_like_python(tmp_path: Path) -> None:
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "sitecustomize.py").write_text("raise RuntimeError('broken on purpose')\n")
    env = clean_env(PYTHONPATH=os.pathsep.join([str(custom), SOURCE_ROOT]))
    code = "import socket, eyeshim; print(eyeshim.is_installed())"
    plain = python(["-c", code], env)
    target_env = launcher.environment(env, {})
    ran = python(["-c", code], target_env)
    assert ran.returncode == plain.returncode == 0
    assert ran.stderr == plain.stderr
    assert "Error in sitecustomize; set PYTHONVERBOSE for traceback:\nRuntimeError: broken" in (
        ran.stderr
    )
    assert ran.stdout.strip() == "True"


def test_interpreter_without_eyeshim_still_starts(tmp_path: Path) -> None:
    # A child interpreter of another environment inherits PYTHONPATH (and
    # with it the bootstrap) but has no eyeshim to load.
    root = tmp_path / "bare"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=TIMEOUT
    )
    ran = in_venv(root, ["-c", "print('started')"], EYESHIM_ENABLED="1", PYTHONPATH=DIRECTORY)
    assert ran.returncode == 0 and ran.stdout.strip() == "started"
    assert ran.stderr.count("eyeshim: disabled: cannot load eyeshim") == 1, ran.stderr


def test_sitecustomize_imported_as_a_module_does_nothing() -> None:
    ran = python(["-c", "import sys, eyeshim.bootstrap.sitecustomize; print(len(sys.path) > 0)"])
    assert (ran.returncode, ran.stdout.strip(), ran.stderr) == (0, "True", "")


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


# -- status --------------------------------------------------------------------


def test_status_reports_the_environment() -> None:
    result = python(["-m", "eyeshim", "status"], clean_env(EYESHIM_ENABLED="1"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "EYESHIM_ENABLED" in out and "bootstrap on PYTHONPATH  no" in out
    assert "integrations: socket, urllib3, pip" in out
    assert "policy table:" in out and "libraries: urllib3" in out
    assert "not on PYTHONPATH" in out  # the switch alone is not enough, and it says so


def test_status_json_under_run_and_with_errors() -> None:
    ran = eyeshim_run(["--getaddrinfo", "-m", "eyeshim", "status", "--json"])
    report = json.loads(ran.stdout)
    assert report["new_interpreters"]["eyeshim"] is True
    assert report["environment"]["bootstrap_on_pythonpath"] is True
    assert "getaddrinfo" in report["integrations"]["effective"]
    assert report["problems"] == []

    bad = python(
        ["-m", "eyeshim", "status", "--json"],
        clean_env(EYESHIM_ENABLED="1", EYESHIM_RESOLUTION_DELAY="soon", EYESHIM_DISABLE="nothing"),
    )
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert "EYESHIM_RESOLUTION_DELAY" in report["config"]["error"]
    assert "EYESHIM_DISABLE" in report["integrations"]["error"]
    assert len(report["problems"]) == 2


RACING_APP = """\
import socket
from eyeshim.demo import DEMO_NAME, BrokenAndWorking, demo_name_resolves_to
with BrokenAndWorking() as lab, demo_name_resolves_to(lab):
    for _ in range(3):
        socket.create_connection((DEMO_NAME, lab.port), timeout=3).close()
"""


def test_run_stats_are_collected_per_process_and_summed_by_status(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(RACING_APP)
    stats = tmp_path / "stats.jsonl"
    for _ in range(2):
        ran = eyeshim_run(["--stats", str(stats), str(app)])
        assert ran.returncode == 0, ran.stderr
    lines = [json.loads(line) for line in stats.read_text().splitlines()]
    assert len(lines) == 2
    assert all(line["counters"]["races"] == 3 for line in lines)
    # The first race of each process falls back from the broken ::1.
    assert all(line["counters"]["fallbacks"] == 1 for line in lines)
    status = python(["-m", "eyeshim", "status", "--json", "--stats", str(stats)])
    report = json.loads(status.stdout)
    assert report["stats"]["processes"] == 2
    assert report["stats"]["counters"]["races"] == 6
    assert report["stats"]["counters"]["time_saved"] > 2 * 2.0  # ~2.75 s per process
    text = python(["-m", "eyeshim", "status", "--stats", str(stats)]).stdout
    assert "by 2 process(es): 6 race(s)" in text


def test_run_stats_to_stderr(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(RACING_APP)
    ran = eyeshim_run(["--stats", "-", str(app)])
    assert ran.returncode == 0
    assert "eyeshim: 3 race(s): 3 connected" in ran.stderr
    missing = python(["-m", "eyeshim", "status", "--stats", str(tmp_path / "none.jsonl")])
    assert missing.returncode == 1
    assert "cannot read stats file" in missing.stdout
