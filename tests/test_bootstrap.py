"""The start-up hook (eyeshim/bootstrap): on when asked, never in the way.

Everything here starts real interpreters, as ``eyeshim run`` would.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from interpreters import (
    POSIX_ONLY,
    SOURCE_ROOT,
    TIMEOUT,
    clean_env,
    eyeshim_run,
    in_venv,
    python,
    report_of,
)

from eyeshim.bootstrap import DIRECTORY
from eyeshim.cli.run import environment

pytestmark = POSIX_ONLY


# -- the bootstrap: never in the way ----------------------------------------


def test_broken_variable_warns_once_and_runs_stock(report_script: Path) -> None:
    ran = eyeshim_run([str(report_script)], env=clean_env(EYESHIM_RESOLUTION_DELAY="soon"))
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
        # eyeshim.config is read at start-up (it declares the variables) and
        # eyeshim.patches installs the stand-ins and hooks, so what they must
        # not bring along is checked instead.
        "dataclasses",
        "inspect",
        "contextlib",
        "difflib",
        "selectors",
        "eyeshim.connection",
        "eyeshim.racing",
        "eyeshim.events",
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
    # Installed: the stand-ins wait for socket's import through a hook.
    assert state == "active"


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


def test_users_sitecustomize_still_runs(report_script: Path, tmp_path: Path) -> None:
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
    # Once for the interpreter of "eyeshim run" itself, once for the target.
    assert ran.stderr.count("user sitecustomize ran") == 2


def test_users_broken_sitecustomize_reported_like_python(tmp_path: Path) -> None:
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "sitecustomize.py").write_text("raise RuntimeError('broken on purpose')\n")
    env = clean_env(PYTHONPATH=os.pathsep.join([str(custom), SOURCE_ROOT]))
    code = "import socket, eyeshim; print(eyeshim.is_installed())"
    plain = python(["-c", code], env)
    target_env = environment(env, {})
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


# -- start-up that costs nothing: stand-ins now, the engine at the first call ----------

STAND_INS = """\
import inspect, socket, sys
stock = socket.create_connection.__wrapped__
print("stand-in", type(socket.create_connection).__name__, socket.create_connection.__name__,
      inspect.signature(socket.create_connection) == inspect.signature(stock))
heavy = ("wrapt", "eyeshim.connection", "eyeshim.racing", "threading", "typing")
print("before a call", [m for m in heavy if m in sys.modules and m not in BASELINE])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
socket.create_connection(listener.getsockname(), timeout=5).close()
print("after a call", "eyeshim.connection" in sys.modules)
import urllib3.util.connection as u3, eyeshim
u3_stock = u3.create_connection.__wrapped__
print("urllib3", eyeshim.installed_integrations()["urllib3"], u3_stock.__module__)
eyeshim.uninstall()
print("restored", socket.create_connection is stock, u3.create_connection is u3_stock,
      eyeshim.is_installed())
"""


def test_start_up_installs_stand_ins_and_loads_the_engine_at_the_first_call() -> None:
    pytest.importorskip("urllib3")
    # What this machine's site loads anyway (some .pth files import threading):
    # eyeshim must add none of it.
    stock = python(["-c", "import inspect, socket, sys; print(sorted(sys.modules))"])
    baseline = set(ast.literal_eval(stock.stdout))
    ran = eyeshim_run(["-c", f"BASELINE = {sorted(baseline)!r}\n" + STAND_INS])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        "stand-in function create_connection True",
        "before a call []",
        "after a call True",
        "urllib3 patched urllib3.util.connection",
        "restored True True False",
    ]
    assert ran.stderr == ""


# -- loud, safe misconfiguration ---------------------------------------------------------

PRINT_STATE = "import socket, eyeshim; print(eyeshim.is_installed())"


def test_every_bad_variable_is_named_once_and_the_interpreter_runs_stock() -> None:
    env = clean_env(
        EYESHIM_RESOLUTION_DELAY="soon",
        EYESHIM_HISTORY="maybe",
        EYESHIM_DISABLE="sockets",
        EYESHIM_POLICY="/nonexistent/gai.conf",
    )
    ran = eyeshim_run(["-c", PRINT_STATE], env)
    assert (ran.returncode, ran.stdout.strip()) == (0, "False")
    lines = ran.stderr.splitlines()
    assert all(line.startswith("eyeshim: disabled: ") for line in lines), ran.stderr
    assert len(lines) == 4
    assert "EYESHIM_RESOLUTION_DELAY='soon': expected a duration such as 250ms" in ran.stderr
    assert "EYESHIM_HISTORY='maybe': expected one of 1/0, true/false" in ran.stderr
    assert "EYESHIM_DISABLE='sockets': unknown integration(s) 'sockets'; expected" in ran.stderr
    assert (
        "EYESHIM_POLICY='/nonexistent/gai.conf': no file at '/nonexistent/gai.conf'; "
        "expected 'auto', 'rfc6724' or the path of a gai.conf file"
    ) in ran.stderr


def test_an_unknown_name_gets_a_did_you_mean_and_changes_nothing() -> None:
    ran = eyeshim_run(["-c", PRINT_STATE], clean_env(EYESHIM_DISBLE="pip", EYESHIM_FOO="1"))
    assert (ran.returncode, ran.stdout.strip()) == (0, "True")
    assert ran.stderr.splitlines() == [
        "eyeshim: warning: EYESHIM_DISBLE is not a variable of eyeshim (ignored); "
        "did you mean EYESHIM_DISABLE?",
        "eyeshim: warning: EYESHIM_FOO is not a variable of eyeshim (ignored); "
        "'eyeshim status' lists the known ones",
    ]


def test_strict_turns_any_start_up_problem_into_a_failed_start() -> None:
    for bad in ({"EYESHIM_RESOLUTION_DELAY": "soon"}, {"EYESHIM_VERBSE": "1"}):
        ran = eyeshim_run(["-c", "print('the program ran')"], clean_env(EYESHIM_STRICT="1", **bad))
        assert ran.returncode == 78, ran.stderr
        assert ran.stdout == ""
        assert "eyeshim: EYESHIM_STRICT=1: stopping this interpreter (exit status 78)" in (
            ran.stderr
        )
        assert next(iter(bad)) in ran.stderr
    fine = eyeshim_run(["-c", PRINT_STATE], clean_env(EYESHIM_STRICT="1"))
    assert (fine.returncode, fine.stdout.strip(), fine.stderr) == (0, "True", "")
    # eyeshim's own command still runs, to say what is wrong.
    status = eyeshim_run(
        ["-m", "eyeshim", "status"], clean_env(EYESHIM_STRICT="1", EYESHIM_HISTORY="maybe")
    )
    assert status.returncode == 1
    assert "problem: EYESHIM_HISTORY='maybe'" in status.stdout


def test_quiet_silences_interpreters_that_cannot_load_eyeshim(tmp_path: Path) -> None:
    root = tmp_path / "bare"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=TIMEOUT
    )
    loud = in_venv(root, ["-c", "print('started')"], EYESHIM_ENABLED="1", PYTHONPATH=DIRECTORY)
    assert "EYESHIM_QUIET=1 silences this" in loud.stderr
    quiet = in_venv(
        root,
        ["-c", "print('started')"],
        EYESHIM_ENABLED="1",
        EYESHIM_QUIET="1",
        PYTHONPATH=DIRECTORY,
    )
    assert (quiet.returncode, quiet.stdout.strip(), quiet.stderr) == (0, "started", "")
    # Interpreters that have eyeshim still report bad settings.
    ran = eyeshim_run(["-c", PRINT_STATE], clean_env(EYESHIM_QUIET="1", EYESHIM_HISTORY="maybe"))
    assert "eyeshim: disabled: EYESHIM_HISTORY='maybe'" in ran.stderr
