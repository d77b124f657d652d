"""The machine a run was made on, for the report's header."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from typing import Any

from benchmarks.envs import Environments

__all__ = ["describe"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _curl_version() -> str:
    try:
        proc = subprocess.run(["curl", "--version"], capture_output=True, text=True, timeout=10,
                              check=False)
    except OSError:
        return "not installed"
    return proc.stdout.split("\n", 1)[0]


def describe(envs: Environments) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "system": platform.system(),
        "python": platform.python_version(),
        "python_main_env": envs.main,
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "curl": _curl_version(),
        "packages": envs.packages,
        "environment_problems": envs.problems,
    }
