"""``eyeshim demo`` (eyeshim/cli/demo.py): stock against eyeshim, offline."""

from __future__ import annotations

import subprocess
import sys


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
