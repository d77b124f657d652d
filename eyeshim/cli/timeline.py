"""Timelines of races: the recorded events as text and as an SVG picture.

``eyeshim probe`` records the events of a race (``eyeshim.events``) and
hands them here.  :func:`summarize` folds one race's events into a
:class:`RaceView` (what each attempt did, from when to when, and who won);
:func:`format_race` renders it as text, like ``curl -v``, and
:func:`render_svg` draws one or more races on a shared time axis.

The SVG is built from strings with every text escaped, and is
self-contained (no stylesheet, script, font or image is fetched), so it can
be attached to a bug report or put in documentation as it is.  Pure: no
sockets, no clock; the events carry all the times.  :class:`RaceRecorder`
collects one race's events as they happen, for the probe and ``check``.
"""

from __future__ import annotations

import errno as _errno
import math
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from xml.sax.saxutils import escape, quoteattr

from .. import events as ev
from ..events import RaceEvent

__all__ = [
    "AttemptView",
    "RaceRecorder",
    "RaceView",
    "format_event",
    "format_race",
    "format_summary",
    "render_svg",
    "summarize",
]

_RECORD_TYPE = {"ipv6": "AAAA", "ipv4": "A"}
_FAMILY = {"ipv6": "IPv6", "ipv4": "IPv4"}
_GATE_REASONS = {
    "aaaa": "AAAA answered first",
    "all answered": "every lookup has answered",
    "resolution delay": "the Resolution Delay passed",
    "known": "the addresses were known without DNS",
}


@dataclass
class AttemptView:
    """One connection attempt, from its start to its end."""

    address: str
    family: str  # "ipv6" / "ipv4"
    number: Optional[int]
    start: float
    next_in: Optional[float] = None  # the attempt delay it started
    end: Optional[float] = None
    #: connected | failed | cancelled (lost the race) | timed out | pending
    outcome: str = "pending"
    errno: Optional[int] = None
    error: Optional[str] = None
    #: how long it took, as the race measured it (the ``attempt`` event is
    #: emitted a little after the connect() it reports)
    took: Optional[float] = None
    #: with TLS: how long its TCP connection took (the handshake followed)
    tcp: Optional[float] = None

    @property
    def errno_name(self) -> str:
        if self.errno is None:
            return self.error or "error"
        return _errno.errorcode.get(self.errno, f"errno {self.errno}")

    def describe(self) -> str:
        """The outcome in a few words (also the SVG bar's caption)."""
        if self.took is not None:
            took = _ms(self.took)
        else:
            took = "" if self.end is None else _ms(self.end - self.start)
        tls = f" (TCP {_ms(self.tcp)}, then TLS)" if self.tcp is not None else ""
        if self.outcome == "connected":
            return f"connected in {took}{tls}"
        if self.outcome == "failed":
            if self.tcp is not None:
                return f"TLS failed after {took}{tls}: {self.error}"
            return f"{self.errno_name} after {took}"
        if self.outcome == "cancelled":
            return f"cancelled after {took}{tls} (lost the race)"
        if self.outcome == "timed out":
            return f"timed out after {took}"
        if self.outcome == "interrupted":
            return f"still connecting after {took} (interrupted)"
        return "pending"


@dataclass
class RaceView:
    """One race, folded from its events."""

    number: int
    host: str
    port: Any = None
    timeout: Optional[float] = None
    events: List[RaceEvent] = field(default_factory=list)
    #: (time, family, addresses or None, error or None), in arrival order
    answers: List[Tuple[float, str, Optional[List[str]], Optional[str]]] = field(
        default_factory=list
    )
    queries: List[Tuple[float, str]] = field(default_factory=list)
    attempts: List[AttemptView] = field(default_factory=list)
    #: every address the race knew of, in the order it learnt them
    addresses: List[str] = field(default_factory=list)
    families: Dict[str, str] = field(default_factory=dict)
    #: the last ``sorted`` event: attempt order of the untried addresses
    order: List[str] = field(default_factory=list)
    rules: List[str] = field(default_factory=list)
    winner: Optional[str] = None
    won_at: Optional[float] = None
    outcome: str = "unknown"
    error: Optional[str] = None
    elapsed: float = 0.0
    #: what the history knows after the race, per address (the probe fills it)
    history_after: Optional[Dict[str, Dict[str, Any]]] = None


class RaceRecorder:
    """An event subscriber (``events.subscribe``) that keeps the events of
    one race, the first to ``host`` that starts after it subscribed (other
    threads of the process may race too), and hands each to ``show`` as it
    happens."""

    def __init__(self, host: str, show: Optional[Callable[[RaceEvent], None]] = None) -> None:
        self.host = host
        self.show = show
        self.number: Optional[int] = None
        self.events: List[RaceEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: RaceEvent) -> None:
        with self._lock:
            if self.number is None:
                if event.kind != "race" or event.host != self.host:
                    return
                self.number = event.race
            elif event.race != self.number:
                return
            self.events.append(event)
            if self.show is not None:
                self.show(event)

    def view(self) -> Optional[RaceView]:
        """The race so far, folded (None before it started)."""
        with self._lock:
            return summarize(self.events) if self.events else None


def _family_of(address: str) -> str:
    return "ipv6" if ":" in address else "ipv4"


def summarize(events: Sequence[RaceEvent]) -> RaceView:
    """Fold the events of one race (in emission order) into a RaceView."""
    if not events:
        raise ValueError("no events to summarize")
    view = RaceView(number=events[0].race, host=events[0].host, events=list(events))
    running: Dict[str, AttemptView] = {}

    def learn(address: str, family: Optional[str] = None) -> None:
        if address not in view.families:
            view.addresses.append(address)
            view.families[address] = family or _family_of(address)

    for event in events:
        now = event.time
        if isinstance(event, ev.RaceStarted):
            view.port, view.timeout = event.port, event.timeout
            for address in event.known:
                learn(str(address))
        elif isinstance(event, ev.Query):
            view.queries.append((now, event.family))
        elif isinstance(event, ev.DnsAnswer):
            if event.error is not None:
                view.answers.append((now, event.family, None, event.error))
            else:
                addresses = [str(a) for a in event.addresses or ()]
                view.answers.append((now, event.family, addresses, None))
                for address in addresses:
                    learn(address, event.family)
        elif isinstance(event, ev.Sorted):
            view.order, view.rules = list(event.order), list(event.rules)
            for address in view.order:
                learn(address)
        elif isinstance(event, ev.AttemptStarted):
            attempt = AttemptView(event.address, event.family, event.number, now, event.next_in)
            learn(event.address, attempt.family)
            view.attempts.append(attempt)
            running[event.address] = attempt
        elif isinstance(event, ev.AttemptFailed):
            attempt_or_none = running.pop(event.address, None)
            if attempt_or_none is None:
                # Failed before connect() (e.g. a source address of the other
                # family): there was no attempt event, show it as one anyway.
                attempt_or_none = AttemptView(event.address, _family_of(event.address), None, now)
                learn(event.address)
                view.attempts.append(attempt_or_none)
            attempt_or_none.end = now
            attempt_or_none.outcome = "timed out" if event.timed_out else "failed"
            attempt_or_none.errno = event.errno
            attempt_or_none.error = event.error
            attempt_or_none.took = event.elapsed
        elif isinstance(event, ev.TlsStarted):
            if event.address in running:
                running[event.address].tcp = event.tcp
        elif isinstance(event, ev.Connected):
            attempt_or_none = running.pop(event.address, None)
            if attempt_or_none is not None:
                attempt_or_none.end = now
                attempt_or_none.outcome = "connected"
                attempt_or_none.took = event.rtt
            view.winner, view.won_at = event.address, now
        elif isinstance(event, ev.Done):
            view.outcome, view.error, view.elapsed = event.outcome, event.error, now
            # Whatever still runs now lost to the winner and was closed.
            for attempt in running.values():
                attempt.end = now
                attempt.outcome = "cancelled"
            running.clear()
    if not view.elapsed and events:
        view.elapsed = events[-1].time
    return view


# -- text -----------------------------------------------------------------------


def _ms(seconds: float) -> str:
    """A duration in ms with a precision that suits it."""
    ms = seconds * 1000
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms"


def _event_lines(event: RaceEvent) -> List[str]:
    """What one event says, as one or more text lines (without the time)."""
    if isinstance(event, ev.RaceStarted):
        if event.known:
            how = "known without DNS: " + ", ".join(map(str, event.known))
        else:
            how = "querying " + " and ".join(_RECORD_TYPE.get(f, f) for f in event.families)
        timeout = "none" if event.timeout is None else f"{event.timeout:g} s per attempt"
        return [f"{event.host} port {event.port}, timeout {timeout}; {how}"]
    if isinstance(event, ev.Query):
        return [f"{_RECORD_TYPE.get(event.family, event.family)} lookup started"]
    if isinstance(event, ev.DnsAnswer):
        rtype = _RECORD_TYPE.get(event.family, event.family)
        if event.error is not None:
            return [f"{rtype}: failed: {event.error}"]
        addresses = event.addresses or []
        return [f"{rtype}: {', '.join(map(str, addresses)) if addresses else '(no addresses)'}"]
    if isinstance(event, ev.GateOpened):
        return [f"connecting may begin: {_GATE_REASONS.get(event.reason, event.reason)}"]
    if isinstance(event, ev.HistoryKnown):
        knew = [f"{address}: {_knowledge(info)}" for address, info in event.known.items()]
        return ["before sorting, history knew " + "; ".join(knew)]
    if isinstance(event, ev.Sorted):
        if len(event.order) < 2:
            return [f"attempt order: {', '.join(event.order) or '(empty)'}"]
        lines = ["attempt order, with what put each address ahead of the next:"]
        for index, address in enumerate(event.order):
            lines.append(f"  {index + 1}. {address}")
            if index < len(event.order) - 1:
                reason = event.rules[index] if index < len(event.rules) else "?"
                lines.append(f"       ahead of the next by {reason}")
        return lines
    if isinstance(event, ev.AttemptStarted):
        family = _FAMILY.get(event.family, event.family)
        tail = f", attempt delay {_ms(event.next_in)}" if event.next_in else ""
        return [f"#{event.number} {event.address} ({family}){tail}"]
    if isinstance(event, ev.TlsStarted):
        return [
            f"{event.address}: TCP connected in {_ms(event.tcp)}; TLS handshake under way, "
            f"next attempt in {_ms(event.next_in)}"
        ]
    if isinstance(event, ev.AttemptFailed) and event.tls:
        what = "timed out (the caller's timeout)" if event.timed_out else f"failed: {event.error}"
        return [f"{event.address}: TLS handshake {what}, {_ms(event.elapsed)} after the start"]
    if isinstance(event, ev.AttemptFailed):
        code = event.errno
        if event.timed_out:
            return [f"{event.address}: timed out after {_ms(event.elapsed)} (the caller's timeout)"]
        name = _errno.errorcode.get(code, f"errno {code}") if code is not None else "error"
        why = os.strerror(code) if code is not None else event.error
        when = "before connect()" if event.before_connect else "after"
        return [f"{event.address}: {name} ({why}) {when} {_ms(event.elapsed)}"]
    if isinstance(event, ev.Connected):
        return [f"{event.address} in {_ms(event.rtt)} (local address {event.local})"]
    if isinstance(event, ev.Recorded):
        meaning = {
            "success": "success (RTT sample)",
            "failure": "failure",
            "lost": "lost the race (counts as a failure)",
            "tls failure": "TCP works, TLS does not (for this port)",
        }.get(event.outcome, event.outcome)
        return [f"history: {event.address} {meaning}"]
    if isinstance(event, ev.LosersClosed):
        return ["losing attempts closed: " + ", ".join(event.addresses)]
    if isinstance(event, ev.Nat64):
        found = ", ".join(event.synthesized) or "no NAT64 prefix"
        took = f" (prefix discovery {_ms(event.discovery)})" if event.discovery is not None else ""
        return [f"IPv4 unreachable from here: {', '.join(event.ipv4)} -> {found}{took}"]
    if isinstance(event, ev.Done):
        if event.outcome == "connected":
            return [f"connected to {event.address}, {event.attempts} attempt(s)"]
        return [f"{event.outcome}: {event.error}, {event.attempts} attempt(s)"]
    return [" ".join(f"{key}={value}" for key, value in event.data.items())]


def _knowledge(info: Mapping[str, Any]) -> str:
    parts = []
    if info.get("failures"):
        parts.append(f"failed {info['failures']}x recently")
    if info.get("rtt") is not None:
        parts.append(f"RTT {_ms(info['rtt'])}")
    if info.get("used"):
        parts.append("connected before")
    return ", ".join(parts) or "nothing live"


def format_race(view: RaceView, title: Optional[str] = None, verdict: Optional[str] = None) -> str:
    """The race as text: the event timeline, then the attempts, the winner
    (or ``verdict``, or the error, when it failed), the total and what the
    history knows now."""
    out: List[str] = [title or f"race {view.number}"]
    out.extend(format_event(event) for event in view.events)
    out.append("")
    out.append(format_summary(view, verdict))
    return "\n".join(out)


def format_event(event: RaceEvent) -> str:
    """One event as timeline text: its time, its kind, what it says (one or
    more lines).  ``eyeshim probe`` prints these as the race goes."""
    lines = _event_lines(event)
    out = [f"  {event.time * 1000:8.1f} ms  {event.kind:<9}  {lines[0]}"]
    out.extend(f"  {'':11}  {'':9}  {line}" for line in lines[1:])
    return "\n".join(out)


def format_summary(view: RaceView, verdict: Optional[str] = None) -> str:
    """What the race came to: the attempts, the winner (or ``verdict``, or
    the error), the total and what the history knows now."""
    out: List[str] = []
    if view.attempts:
        out.append("  attempts:")
        width = max(len(a.address) for a in view.attempts)
        for attempt in view.attempts:
            number = f"#{attempt.number}" if attempt.number is not None else "# "
            start = f"started {attempt.start * 1000:7.1f} ms"
            out.append(
                f"    {number:<3} {attempt.address:<{width}}  "
                f"{_FAMILY.get(attempt.family, attempt.family)}  {start}  {attempt.describe()}"
            )
    else:
        out.append("  attempts: none")
    total = _ms(view.elapsed)
    if view.outcome == "connected" and view.winner is not None:
        fallback = ""
        if view.attempts and view.attempts[0].address != view.winner:
            fallback = f", after {view.attempts[0].address} did not answer in time"
        won = _ms(view.won_at or 0.0)
        out.append(f"  winner:   {view.winner} at {won}{fallback}")
    else:
        out.append(f"  outcome:  {verdict or f'{view.outcome}: {view.error}'}")
    out.append(f"  total:    {total}")
    if view.history_after is not None:
        if view.history_after:
            out.append("  history now knows:")
            width = max(len(a) for a in view.history_after)
            for address, info in view.history_after.items():
                out.append(f"    {address:<{width}}  {_after(info)}")
        else:
            out.append("  history now knows: nothing about these addresses")
    return "\n".join(out)


def _after(info: Mapping[str, Any]) -> str:
    parts = []
    if info.get("failures"):
        ttl = info.get("failure_ttl")
        until = f" for the next {ttl:.0f} s" if ttl is not None else ""
        parts.append(f"failed {info['failures']}x: sorted last{until}")
    if info.get("rtt") is not None:
        parts.append(f"connected, smoothed RTT {_ms(info['rtt'])}")
        if info.get("attempt_delay") is not None:
            parts.append(f"next attempt delay after it {_ms(info['attempt_delay'])}")
    return "; ".join(parts) or "nothing"


# -- SVG ------------------------------------------------------------------------

_FONT = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
_MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"
_COLOURS = {
    "connected": "#2f9e44",
    "failed": "#e03131",
    "cancelled": "#adb5bd",
    "timed out": "#868e96",
    "pending": "#adb5bd",
    "interrupted": "#adb5bd",
    "ipv6": "#5f3dc4",
    "ipv4": "#e8590c",
    "text": "#212529",
    "muted": "#6c757d",
    "grid": "#dee2e6",
    "lane": "#f8f9fa",
    "win": "#2f9e44",
    "deadline": "#e03131",
}
_WIDTH = 980
_LANE = 34
_DNS_LANE = 46
_BAR = 16


def _text_width(text: str, size: float) -> float:
    # DejaVu Sans averages a little over 0.6 em per character; an estimate
    # is all string-built SVG can have, so err on the wide side.
    return len(text) * size * 0.62


def _nice_step(span_ms: float, target_ticks: int = 8) -> float:
    raw = span_ms / max(1, target_ticks)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            return float(factor * magnitude)
    return float(10 * magnitude)


class _Svg:
    def __init__(self) -> None:
        self.parts: List[str] = []

    def add(self, tag: str, content: Optional[str] = None, **attrs: Any) -> None:
        rendered = " ".join(
            f"{name.rstrip('_').replace('_', '-')}={quoteattr(_fmt(value))}"
            for name, value in attrs.items()
            if value is not None
        )
        if content is None:
            self.parts.append(f"<{tag} {rendered}/>")
        else:
            self.parts.append(f"<{tag} {rendered}>{content}</{tag}>")

    def text(self, x: float, y: float, text: str, **attrs: Any) -> None:
        attrs.setdefault("font_family", _FONT)
        attrs.setdefault("font_size", 13)
        attrs.setdefault("fill", _COLOURS["text"])
        self.add("text", escape(text), x=x, y=y, **attrs)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _lanes_of(view: RaceView) -> List[str]:
    """Addresses in the order they were first tried, untried ones last."""
    tried = list(dict.fromkeys(a.address for a in view.attempts))
    return tried + [a for a in view.addresses if a not in tried]


def render_svg(views: Sequence[RaceView], title: str = "eyeshim probe") -> str:
    """Draw the races one under the other on a shared time axis (ms).

    Per race: a DNS lane with the lookups (a line from query to answer, a
    mark at the answer, per family), one lane per address with a bar per
    attempt coloured by outcome (green connected, red failed, grey
    cancelled or timed out), a dashed line at the moment of the win (or
    of the timeout), and a time axis.
    """
    if not views:
        raise ValueError("no races to draw")
    label_size = 13
    all_lanes = [lane for view in views for lane in _lanes_of(view)]
    label_width = max([_text_width(lane, label_size) for lane in all_lanes] + [90.0])
    left = 20 + label_width + 50  # the address, then its family
    right = _WIDTH - 30
    span = max(max(view.elapsed for view in views), 0.001) * 1.04
    for view in views:
        for attempt in view.attempts:
            span = max(span, (attempt.end or attempt.start) * 1.04)
    span_ms = span * 1000
    step = _nice_step(span_ms)
    span_ms = math.ceil(span_ms / step) * step

    def x_of(seconds: float) -> float:
        return left + (right - left) * min(seconds * 1000, span_ms) / span_ms

    svg = _Svg()
    y = 34.0
    svg.text(20, y, title, font_size=18, font_weight="bold")
    y += 16
    for view in views:
        y = _draw_race(svg, view, y + 20, left, right, x_of, span_ms, step)
    y = _draw_legend(svg, y + 18)
    height = y + 16
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_fmt(height)}" '
        f'viewBox="0 0 {_WIDTH} {_fmt(height)}" role="img">'
        f"<title>{escape(title)}</title>"
        f'<rect x="0" y="0" width="{_WIDTH}" height="{_fmt(height)}" fill="#ffffff"/>'
    )
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + head + "".join(svg.parts) + "</svg>\n"


def _race_caption(view: RaceView) -> str:
    if view.outcome == "connected":
        what = f"connected to {view.winner} in {_ms(view.won_at or view.elapsed)}"
    elif view.outcome == "timeout":
        what = f"timed out after {_ms(view.elapsed)}"
    elif view.outcome == "resolve failed":
        what = "could not resolve the name"
    else:
        what = f"{view.outcome} after {_ms(view.elapsed)}"
    return f"race {view.number}: {view.host} port {view.port}, {what}"


def _draw_race(
    svg: _Svg,
    view: RaceView,
    top: float,
    left: float,
    right: float,
    x_of: Any,
    span_ms: float,
    step: float,
) -> float:
    svg.text(20, top, _race_caption(view), font_size=15, font_weight="bold")
    lanes = _lanes_of(view)
    lanes_top = top + 14
    lanes_bottom = lanes_top + _DNS_LANE + _LANE * len(lanes)

    # Lane backgrounds and labels first, so that grid and bars go on top.
    svg.add(
        "rect", x=left, y=lanes_top, width=right - left, height=_DNS_LANE, fill=_COLOURS["lane"]
    )
    svg.text(20, lanes_top + _DNS_LANE / 2 + 5, "DNS", font_weight="bold")
    for index, address in enumerate(lanes):
        lane_y = lanes_top + _DNS_LANE + index * _LANE
        if index % 2 == 1:
            svg.add(
                "rect", x=left, y=lane_y, width=right - left, height=_LANE, fill=_COLOURS["lane"]
            )
        family = view.families.get(address, _family_of(address))
        # class/data-address: lets a script (or a test) find the lanes.
        svg.text(
            20,
            lane_y + _LANE / 2 + 5,
            address,
            font_family=_MONO,
            class_="lane",
            data_address=address,
        )
        svg.text(
            left - 10,
            lane_y + _LANE / 2 + 5,
            _FAMILY.get(family, family),
            font_size=11,
            fill=_COLOURS.get(family, _COLOURS["muted"]),
            text_anchor="end",
        )

    # Grid and axis.
    tick = 0.0
    while tick <= span_ms + 1e-9:
        x = x_of(tick / 1000)
        svg.add(
            "line",
            x1=x,
            y1=lanes_top,
            x2=x,
            y2=lanes_bottom,
            stroke=_COLOURS["grid"],
            stroke_width=1,
        )
        svg.text(
            x,
            lanes_bottom + 16,
            f"{tick:g}",
            font_size=11,
            fill=_COLOURS["muted"],
            text_anchor="middle",
        )
        tick += step
    svg.add(
        "line",
        x1=left,
        y1=lanes_bottom,
        x2=right,
        y2=lanes_bottom,
        stroke=_COLOURS["muted"],
        stroke_width=1,
    )
    svg.text(
        right,
        lanes_bottom + 30,
        "time since the race started (ms)",
        font_size=11,
        fill=_COLOURS["muted"],
        text_anchor="end",
    )

    # DNS: one row per family; a line from the query to the answer, a mark
    # at the answer.
    queried = {family: when for when, family in view.queries}
    rows = [f for f in ("ipv6", "ipv4") if f in queried or any(a[1] == f for a in view.answers)]
    if not rows:
        svg.text(
            left + 8,
            lanes_top + _DNS_LANE / 2 + 4,
            "no lookup: the addresses were known without DNS (IP literal or hosts file)",
            font_size=11,
            fill=_COLOURS["muted"],
        )
    for row, family in enumerate(rows):
        row_y = lanes_top + (_DNS_LANE / (len(rows) + 1)) * (row + 1)
        colour = _COLOURS.get(family, _COLOURS["text"])
        answer = next((a for a in view.answers if a[1] == family), None)
        start = queried.get(family, answer[0] if answer else 0.0)
        end = answer[0] if answer else view.elapsed
        svg.add(
            "line",
            x1=x_of(start),
            y1=row_y,
            x2=x_of(end),
            y2=row_y,
            stroke=colour,
            stroke_width=2,
            stroke_dasharray=None if answer else "4 3",
        )
        rtype = _RECORD_TYPE.get(family, family)
        if answer is None:
            caption = f"{rtype}: no answer"
        elif answer[3] is not None:
            caption = f"{rtype}: {answer[3]}"
        else:
            caption = f"{rtype} {', '.join(answer[2] or []) or '(none)'} at {_ms(answer[0])}"
        mark_x = x_of(end)
        if answer is not None:
            filled = answer[3] is None
            svg.add(
                "circle",
                cx=mark_x,
                cy=row_y,
                r=5,
                fill=colour if filled else "#ffffff",
                stroke=colour,
                stroke_width=2,
            )
        _label(svg, caption, mark_x + 9, row_y + 4, right, 11, colour, anchor_left=mark_x - 9)

    # Attempts.
    lane_index = {address: index for index, address in enumerate(lanes)}
    tried = {attempt.address for attempt in view.attempts}
    for address in lanes:
        if address not in tried:
            lane_y = lanes_top + _DNS_LANE + lane_index[address] * _LANE
            svg.text(
                min(x_of(view.elapsed) + 8, right - 60),
                lane_y + _LANE / 2 + 4,
                "not tried",
                font_size=11,
                fill=_COLOURS["muted"],
                font_style="italic",
            )
    for before, attempt in zip(view.attempts, view.attempts[1:]):
        # An attempt that started because the previous one's attempt delay
        # ran out (not because it failed): show the wait that released it.
        if before.next_in is None or before.number is None:
            continue
        due = before.start + before.next_in
        if before.end is not None and before.end < due - 0.002 and before.outcome == "failed":
            continue
        lane_y = lanes_top + _DNS_LANE + lane_index[attempt.address] * _LANE + _LANE / 2
        x0, x1 = x_of(before.start), x_of(attempt.start)
        svg.add(
            "line",
            x1=x0,
            y1=lane_y,
            x2=x1,
            y2=lane_y,
            stroke=_COLOURS["muted"],
            stroke_width=1,
            stroke_dasharray="2 3",
        )
        svg.add(
            "line",
            x1=x0,
            y1=lane_y - 4,
            x2=x0,
            y2=lane_y + 4,
            stroke=_COLOURS["muted"],
            stroke_width=1,
        )
        caption = f"attempt delay {_ms(before.next_in)}"
        if x1 - x0 > _text_width(caption, 11) + 20:
            svg.text(
                (x0 + x1) / 2,
                lane_y - 4,
                caption,
                font_size=11,
                fill=_COLOURS["muted"],
                text_anchor="middle",
            )
    for attempt in view.attempts:
        lane_y = lanes_top + _DNS_LANE + lane_index[attempt.address] * _LANE
        bar_y = lane_y + (_LANE - _BAR) / 2
        x0 = x_of(attempt.start)
        x1 = max(x_of(attempt.end if attempt.end is not None else view.elapsed), x0 + 3)
        colour = _COLOURS.get(attempt.outcome, _COLOURS["pending"])
        svg.add("rect", x=x0, y=bar_y, width=x1 - x0, height=_BAR, rx=3, fill=colour)
        caption = attempt.describe()
        if attempt.number is not None:
            caption = f"#{attempt.number} {caption}"
        size = 12
        if x1 - x0 >= _text_width(caption, size) + 14:
            svg.text(
                x0 + 7,
                bar_y + _BAR - 4,
                caption,
                font_size=size,
                fill="#ffffff",
                font_weight="bold",
            )
        else:
            _label(
                svg,
                caption,
                x1 + 6,
                bar_y + _BAR - 4,
                right,
                size,
                _COLOURS["text"],
                anchor_left=x0 - 6,
            )

    # The moment the race was decided (or given up).
    if view.won_at is not None:
        marker = (view.won_at, _COLOURS["win"], f"won at {_ms(view.won_at)}")
    elif view.outcome == "timeout":
        marker = (view.elapsed, _COLOURS["deadline"], f"gave up at {_ms(view.elapsed)}")
    else:
        marker = None
    if marker is not None:
        at, colour, text = marker
        x = x_of(at)
        svg.add(
            "line",
            x1=x,
            y1=lanes_top - 4,
            x2=x,
            y2=lanes_bottom,
            stroke=colour,
            stroke_width=2,
            stroke_dasharray="6 4",
        )
        _label(svg, text, x + 5, lanes_top - 2, right, 11, colour, anchor_left=x - 5, weight="bold")
    return lanes_bottom + 36


def _label(
    svg: _Svg,
    text: str,
    x: float,
    y: float,
    right: float,
    size: float,
    colour: str,
    anchor_left: float,
    weight: Optional[str] = None,
) -> None:
    """Text to the right of ``x``, or ending at ``anchor_left`` when it
    would run off the plot.  A white halo keeps it readable over grid lines
    and the attempt-delay line."""
    halo = {
        "stroke": "#ffffff",
        "stroke_width": 4,
        "stroke_linejoin": "round",
        "paint_order": "stroke",
    }
    if x + _text_width(text, size) <= right + 20:
        svg.text(x, y, text, font_size=size, fill=colour, font_weight=weight, **halo)
    else:
        svg.text(
            anchor_left,
            y,
            text,
            font_size=size,
            fill=colour,
            font_weight=weight,
            text_anchor="end",
            **halo,
        )


def _draw_legend(svg: _Svg, top: float) -> float:
    x = 20.0
    items = [
        ("bar", "connected", "connected"),
        ("bar", "failed", "failed"),
        ("bar", "cancelled", "cancelled (lost) / timed out"),
        ("dot", "ipv6", "AAAA answer"),
        ("dot", "ipv4", "A answer"),
        ("win", "win", "win"),
        ("delay", "muted", "attempt delay"),
    ]
    for shape, key, text in items:
        colour = _COLOURS[key]
        if shape == "bar":
            svg.add("rect", x=x, y=top - 10, width=22, height=12, rx=3, fill=colour)
            x += 28
        elif shape == "dot":
            svg.add("circle", cx=x + 6, cy=top - 4, r=5, fill=colour)
            x += 16
        elif shape == "win":
            svg.add(
                "line",
                x1=x + 4,
                y1=top - 14,
                x2=x + 4,
                y2=top + 4,
                stroke=colour,
                stroke_width=2,
                stroke_dasharray="6 4",
            )
            x += 12
        else:
            svg.add(
                "line",
                x1=x,
                y1=top - 4,
                x2=x + 22,
                y2=top - 4,
                stroke=colour,
                stroke_width=1,
                stroke_dasharray="2 3",
            )
            x += 28
        svg.text(x, top, text, font_size=12, fill=_COLOURS["muted"])
        x += _text_width(text, 12) + 22
    return top
