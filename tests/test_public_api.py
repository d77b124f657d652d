"""What the documentation tells people to call is there after ``import eyeshim``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import List

from interpreters import clean_env

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# eyeshim.<name>... not preceded by a word, a path or "-m " (a module run as
# a program, not an attribute) and not part of a host name (x.eyeshim.invalid).
_REFERENCE = re.compile(r"(?<![\w./-])(?<!-m )eyeshim(?:\.[A-Za-z_]\w*)+")


def documented() -> List[str]:
    names = set()
    for doc in DOCS:
        for match in _REFERENCE.finditer(doc.read_text(encoding="utf-8")):
            names.add(match.group(0))
    return sorted(names)


RESOLVE = """\
import importlib, json, sys, types
import eyeshim
missing = []
for dotted in json.loads(sys.argv[1]):
    parts = dotted.split(".")
    value = eyeshim
    for depth, part in enumerate(parts[1:], 1):
        try:
            value = getattr(value, part)
        except AttributeError:
            # Below the package itself, a module path in the docs (eyeshim.cli.run)
            # is imported as such, the way any reader would use it.
            if depth > 1 and isinstance(value, types.ModuleType):
                try:
                    value = importlib.import_module(f"{value.__name__}.{part}")
                    continue
                except ImportError:
                    pass
            missing.append(dotted)
            break
print(json.dumps(missing))
"""


def test_every_documented_name_is_reachable_after_import_eyeshim() -> None:
    names = documented()
    assert {"eyeshim.events.subscribe", "eyeshim.events.counters", "eyeshim.install"} <= set(names)
    assert "eyeshim.config.check_environment" in names
    result = subprocess.run(
        [sys.executable, "-c", RESOLVE, json.dumps(names)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_a_name_that_is_not_there_is_an_attribute_error() -> None:
    code = (
        "import eyeshim\n"
        "for name in ('no_such_thing', '_private', '__wrapped__'):\n"
        "    assert not hasattr(eyeshim, name), name\n"
        "print(sorted(set(dir(eyeshim)) & {'events', 'install', 'Config'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "['Config', 'events', 'install']", result.stderr
