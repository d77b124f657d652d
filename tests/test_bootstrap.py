"""The start-up hook (eyeshim/bootstrap): on when asked, never in the way.

Everything here starts real interpreters, as ``eyeshim run`` would.
"""

from __future__ import annotations

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
        # eyeshim.config is read at start-up (it declares the variables), so
        # what it must not bring along is checked instead.
        "dataclasses",
        "inspect",
        "eyeshim.patches",
        "eyeshim.connection",
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
