"""Timelines (eyeshim/cli/timeline.py): recorded events as text and SVG, no network."""

from __future__ import annotations

import errno
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import List

from eyeshim import events


def test_errno_names_in_failures() -> None:
    # A failure before connect() (no attempt event) still shows as an attempt.
    from eyeshim.cli.timeline import format_race, summarize

    recorded: List[events.RaceEvent] = [
        events.RaceStarted(1, 0.0, "h", port=1, timeout=1.0, families=[], known=["::1"]),
        events.AttemptFailed(
            1,
            0.001,
            "h",
            address="::1",
            errno=errno.EAFNOSUPPORT,
            error="x",
            elapsed=0.0,
            before_connect=True,
        ),
        events.Done(1, 0.002, "h", outcome="failed", elapsed=0.002, error="OSError: x"),
    ]
    view = summarize(recorded)
    assert [(a.address, a.outcome, a.errno_name) for a in view.attempts] == [
        ("::1", "failed", "EAFNOSUPPORT")
    ]
    assert "EAFNOSUPPORT" in format_race(view)


def test_all_combinations_of_outcomes_render(tmp_path: Path) -> None:
    from eyeshim.cli.timeline import render_svg, summarize

    views = []
    for outcome in ("connected", "timeout", "failed", "resolve failed"):
        host = "h&<x>"
        recorded: List[events.RaceEvent] = [
            events.RaceStarted(1, 0.0, host, port=1, timeout=None, families=["ipv6"], known=[]),
            events.Query(1, 0.0, host, family="ipv6"),
        ]
        if outcome != "resolve failed":
            recorded.append(events.DnsAnswer(1, 0.001, host, family="ipv6", addresses=["::1"]))
            recorded.append(
                events.AttemptStarted(
                    1, 0.002, host, address="::1", family="ipv6", number=1, next_in=0.25
                )
            )
        else:
            recorded.append(events.DnsAnswer(1, 0.001, host, family="ipv6", error="<no>"))
        if outcome == "connected":
            recorded.append(events.Connected(1, 0.003, host, address="::1", rtt=0.001, local=None))
        recorded.append(events.Done(1, 0.5, host, outcome=outcome, elapsed=0.5))
        views.append(summarize(recorded))
    svg = render_svg(views, "title with <markup> & ampersands")
    root = ET.fromstring(svg)  # escaped: parses
    assert root.find("{http://www.w3.org/2000/svg}title").text == (  # type: ignore[union-attr]
        "title with <markup> & ampersands"
    )
    assert "gave up at" in svg  # where a race that timed out ended
    assert "not tried" not in svg
