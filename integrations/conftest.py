"""pytest wiring for the lab: skip ``@pytest.mark.lab`` tests with a reason when the lab cannot
run here (not root, no namespaces, tools missing), and a module-scoped ``lab`` fixture."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from integrations.lab import Lab, LabUnavailable, unavailable_reason
from integrations.scenarios import matrix_zone


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lab_items = [item for item in items if item.get_closest_marker("lab")]
    if not lab_items:
        return
    reason = unavailable_reason()
    if reason:
        skip = pytest.mark.skip(reason=f"lab unavailable: {reason}")
        for item in lab_items:
            item.add_marker(skip)


def lab_name(tag: str) -> str:
    """A lab name unique to this pytest process, so parallel runs on one machine don't
    collide (names must match [a-z0-9]{1,16})."""
    return f"{tag}{os.getpid()}"[:16]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """A lab with every client variant and the matrix zone, nothing broken. Tests that break
    addresses or add latency must undo it (or use their own names/addresses)."""
    try:
        instance = Lab(lab_name("t"), zone=matrix_zone()).up()
    except LabUnavailable as exc:
        pytest.skip(f"lab unavailable: {exc.reason}")
    try:
        yield instance
    finally:
        instance.down()
