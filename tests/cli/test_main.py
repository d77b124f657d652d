"""The ``eyeshim`` command itself (eyeshim/cli/__init__.py): its verbs."""

from __future__ import annotations

from interpreters import POSIX_ONLY, python

pytestmark = POSIX_ONLY


def test_eyeshim_help_lists_the_verbs() -> None:
    result = python(["-m", "eyeshim", "--help"])
    for verb in ("demo", "run", "enable", "disable", "status"):
        assert verb in result.stdout
