"""The ``eyeshim`` command itself (eyeshim/cli/__init__.py): verbs, names, endings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from interpreters import POSIX_ONLY, TIMEOUT, clean_env, python

from eyeshim import __version__

pytestmark = POSIX_ONLY

#: The console script pip installed next to this interpreter (CI installs it).
SCRIPT = Path(sys.executable).parent / "eyeshim"
needs_script = pytest.mark.skipif(not SCRIPT.exists(), reason="no eyeshim console script here")


def test_eyeshim_help_lists_the_verbs() -> None:
    result = python(["-m", "eyeshim", "--help"])
    for verb in ("demo", "run", "enable", "disable", "status", "check", "probe"):
        assert verb in result.stdout


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag: str) -> None:
    result = python(["-m", "eyeshim", flag])
    assert (result.returncode, result.stdout, result.stderr) == (0, f"eyeshim {__version__}\n", "")


@pytest.mark.parametrize(
    ("verb", "hint"),
    [
        ("stauts", "did you mean 'status'?"),
        ("prob", "did you mean 'probe'?"),
        ("chek", "did you mean 'check'?"),
        ("frobnicate", "(choose from demo, run, enable, disable, status, check, probe)"),
    ],
)
def test_an_unknown_verb_gets_a_did_you_mean(verb: str, hint: str) -> None:
    result = python(["-m", "eyeshim", verb])
    assert result.returncode == 2
    assert f"error: unknown verb {verb!r}" in result.stderr and hint in result.stderr


def test_usage_lines_name_the_program_as_it_was_invoked() -> None:
    program = f"{os.path.basename(sys.executable)} -m eyeshim"
    for verb in ("probe", "status", "check", "demo", "enable"):
        result = python(["-m", "eyeshim", verb, "--no-such-option"])
        assert result.returncode == 2
        assert result.stderr.startswith(f"usage: {program} {verb} "), result.stderr
    module = python(["-m", "eyeshim.cli.probe"])
    assert module.stderr.startswith(
        f"usage: {os.path.basename(sys.executable)} -m eyeshim.cli.probe [options]"
    )


@needs_script
def test_the_console_script_says_eyeshim() -> None:
    env = clean_env()
    for verb in ("probe", "run", "status"):
        result = subprocess.run(
            [str(SCRIPT), verb, "--no-such-option"],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert result.returncode == 2
        assert result.stderr.startswith(f"usage: eyeshim {verb} "), result.stderr
        assert "python -m" not in result.stderr
    top = subprocess.run(
        [str(SCRIPT), "stauts"], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert top.stderr.startswith("usage: eyeshim ") and "did you mean 'status'?" in top.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--json"],
        ["demo", "--timeout", "1"],
        ["probe", "--demo"],
        ["probe", "--demo", "--json"],
        ["check"],
        ["-V"],
    ],
)
def test_a_reader_that_went_away_ends_the_command_quietly(args: List[str]) -> None:
    # stdout is a pipe whose reader has closed (`eyeshim ... | head` once head
    # has exited): every write fails with EPIPE.
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "eyeshim", *args],
            env=clean_env(),
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT,
        )
    finally:
        os.close(writer)
    assert result.returncode == 141, result.stderr  # 128 + SIGPIPE, as a shell reports it
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert "Exception ignored" not in result.stderr


def test_piping_into_head_prints_no_traceback() -> None:
    command = f"{sys.executable} -m eyeshim status | head -n 1"
    result = subprocess.run(
        ["sh", "-c", command], env=clean_env(), capture_output=True, text=True, timeout=TIMEOUT
    )
    assert re.match(r"new interpreters: eyeshim (ON|off)", result.stdout)
    assert result.stderr == ""
