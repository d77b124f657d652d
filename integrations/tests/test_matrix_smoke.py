"""A few real matrix cells (stock only) so CI exercises the runner end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.conftest import lab_name
from integrations.lab import Lab, LabUnavailable
from integrations.matrix import build_cells, render_markdown, run_matrix
from integrations.scenarios import BROKEN, SCENARIOS, matrix_zone

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def matrix_lab() -> Iterator[Lab]:
    try:
        lab = Lab(lab_name("m"), clients=("ds", "v4"), zone=matrix_zone(), broken=BROKEN).up()
    except LabUnavailable as exc:
        pytest.skip(f"lab unavailable: {exc.reason}")
    try:
        yield lab
    finally:
        lab.down()


def test_stock_cells(matrix_lab: Lab) -> None:
    chosen = tuple(s for s in SCENARIOS if s.key in ("s1", "s2", "s5"))
    cells = build_cells(("ds", "v4"), ("http.client", "requests"), ("stock",), chosen)
    # A 1 s client timeout keeps the broken-address cells short.
    results = run_matrix(matrix_lab, cells, concurrency=8, timeout=1.0, progress=False)
    assert len(results) == len(cells) == 12
    cell = {(r["scenario"], r["client"], r["stack"], r["mode"]): r for r in results}
    for stack in ("http.client", "requests"):
        ok = cell[("s1", "ds", stack, "stock")]
        assert ok["outcome"] == "ok" and ok["winner"] == "10.64.78.34" and ok["elapsed"] < 0.5
        # Dual-stack glibc sorts the (broken) IPv4 first: stock waits out the whole timeout,
        # then reaches the IPv6 address. This is the behaviour eyeshim exists to fix.
        slow = cell[("s5", "ds", stack, "stock")]
        assert slow["outcome"] == "ok" and slow["winner"] == "2002:a40:4c07:1::faf1"
        assert 0.9 < slow["elapsed"] < 2.5
        # IPv4-only client, IPv6-only name: no path at all.
        assert cell[("s2", "v4", stack, "stock")]["outcome"] == "error"
    text = render_markdown(
        results,
        {
            "versions": {
                "date": "d",
                "kernel": "k",
                "python": "p",
                "glibc": "g",
                "urllib3": "u",
                "requests": "r",
                "eyeshim": "e",
            },
            "cells": len(results),
            "concurrency": 8,
            "duration": 1.0,
            "timeout": 1.0,
            "problems": None,
        },
    )
    assert "| s5 | broken IPv4 + IPv6 | .35✗ ::faf1 |" in text
    assert "✓ ::faf1" in text
