"""``eyeshim demo`` (eyeshim/cli/demo.py): stock against eyeshim, offline."""

from __future__ import annotations

import subprocess
import sys

from interpreters import CTRL_C, clean_env, python


def test_demo_command_shows_the_fallback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "eyeshim", "demo", "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "ms" in line and "connected" in line]
    assert len(lines) == 3
    assert all(line.rstrip().endswith("127.0.0.1") for line in lines)


WITHOUT_IPV6 = """\
import sys
from eyeshim.cli import demo
demo._ipv6_loopback_works = lambda: False  # as on a host with IPv6 turned off
sys.exit(demo.main(["--timeout", "1s"]))
"""


def test_without_ipv6_the_demo_does_not_call_two_ipv4_addresses_dual_stack() -> None:
    proc = python(["-c", WITHOUT_IPV6])
    assert proc.returncode == 0, proc.stderr
    assert "dual-stack" not in proc.stdout
    first = proc.stdout.splitlines()[0]
    assert first.startswith("two-addresses.eyeshim.invalid resolves to 127.0.0.2 and 127.0.0.1")
    assert "no IPv6 on loopback here" in first
    assert "stock tried 127.0.0.2 first" in proc.stdout


def test_the_demo_teaches_a_shared_history_file_nothing(tmp_path: object) -> None:
    from pathlib import Path

    history = Path(str(tmp_path)) / "history.tsv"
    proc = subprocess.run(
        [sys.executable, "-m", "eyeshim", "run", "-m", "eyeshim", "demo", "--timeout", "1"],
        env=clean_env(EYESHIM_HISTORY_FILE=str(history)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    # ::1 dropping SYNs is true of the demo's socket only, not of this host.
    assert not history.exists()
    # Under eyeshim, "stock" is still the stdlib's function: it waits the timeout.
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith("  stock ")]
    assert len(rows) == 1 and float(rows[0][2]) >= 900, rows


INTERRUPTED = CTRL_C + """
import subprocess, sys
demo = subprocess.Popen(
    [sys.executable, "-m", "eyeshim", "demo", "--timeout", "60"],
    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    preexec_fn=default_sigint,
)
for line in demo.stdout:
    if line.startswith("stock socket.create_connection"):  # now waiting on the broken address
        break
ctrl_c(demo)
_, err = demo.communicate(timeout=30)
print(repr((demo.returncode, err)))
"""


def test_ctrl_c_ends_the_demo_with_one_line() -> None:
    proc = python(["-c", INTERRUPTED])
    assert proc.returncode == 0, proc.stderr
    code, err = eval(proc.stdout)
    assert code == 130
    assert err.strip() == f"{sys.executable.rsplit('/', 1)[-1]} -m eyeshim demo: interrupted"
