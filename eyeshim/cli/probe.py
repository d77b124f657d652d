"""``python -m eyeshim probe HOST PORT``: one real race, shown step by step.

When a connection is slow, the question is always the same: which address
was tried, when, what happened to it, and why was it tried in that order?
The probe answers it the way ``curl -v`` does for HTTP: it runs one real
race with :func:`eyeshim.connection.connect` while recording its events
(:mod:`eyeshim.events`), closes the socket, and prints the timeline: DNS
lookups and answers per family, the attempt order with the rule that put
each address ahead of the next, every attempt with its outcome, the
winner, the total, and what the history now knows.

``--repeat N`` runs N races in a row in the same process, so the history
learnt by one shows in the next (the second race to a host with broken
IPv6 goes straight to IPv4), then prints the race counters.  ``--json``
prints the events instead, ``--svg FILE`` draws the timeline.

The probe uses a history of its own, empty at the start (the numbers are
the ones a fresh process would see; ``--no-history`` turns it off), and the
configuration from ``EYESHIM_*`` variables with the options on top.

Exit codes (also in ``--help``): 0 connected, 2 usage, 3 the name did not
resolve, 4 every address failed (refused, unreachable), 5 timed out.  With
``--repeat``, the code of the first race that did not connect.
"""

from __future__ import annotations

import argparse
import contextlib
import errno as _errno
import json
import socket
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, TextIO, Tuple

from .. import events
from ..config import Config, parse_duration
from ..history import History
from .options import add_config_options, config_choices
from .timeline import RaceView, format_race, render_svg, summarize

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_RESOLVE",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "main",
    "probe",
]

EXIT_OK = 0
EXIT_USAGE = 2  # argparse's own code for bad arguments
EXIT_RESOLVE = 3
EXIT_FAILED = 4
EXIT_TIMEOUT = 5

_EPILOG = f"""\
exit codes:
  {EXIT_OK}  connected (every race, with --repeat)
  {EXIT_USAGE}  bad arguments or EYESHIM_* variables
  {EXIT_RESOLVE}  the name did not resolve (getaddrinfo failed or returned nothing)
  {EXIT_FAILED}  every address failed (connection refused, unreachable, ...)
  {EXIT_TIMEOUT}  the timeout passed before any address connected
  With --repeat, the code of the first race that did not connect.

examples:
  python -m eyeshim probe example.org 443
  python -m eyeshim probe example.org https --repeat 2 --svg race.svg
  python -m eyeshim probe --demo --repeat 2      # loopback, IPv6 silently dropped
"""


def _port(text: str) -> int:
    """1-65535, or a service name from the services database (no network)."""
    if text.isdigit():
        port = int(text)
        if 1 <= port <= 65535:
            return port
        raise argparse.ArgumentTypeError(f"port must be 1-65535 or a service name, got {text}")
    try:
        return socket.getservbyname(text, "tcp")
    except OSError:
        raise argparse.ArgumentTypeError(
            f"port must be 1-65535 or a service name, got {text!r} (unknown service)"
        ) from None


def _duration(text: str) -> float:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a duration >= 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eyeshim probe",
        # Raw formatting keeps the exit-code table of the epilog aligned, so
        # the description carries its own line breaks.
        description=(
            "Connect to HOST PORT once with eyeshim and show what the race did: DNS\n"
            "answers, the attempt order and why, every attempt and its outcome, the\n"
            "winner, the total time, and what the connection history learnt.  The\n"
            "socket is closed at once; nothing is sent over it."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("host", nargs="?", metavar="HOST", help="name or IP address")
    parser.add_argument(
        "port", nargs="?", type=_port, metavar="PORT", help="1-65535 or a service name"
    )
    parser.add_argument(
        "--timeout",
        type=_duration,
        default=5.0,
        metavar="S",
        help="timeout of each connection attempt, as the stdlib applies it: 5, 5s or 500ms "
        "(default 5 s)",
    )
    parser.add_argument(
        "--repeat",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run N races in a row (history carries over), then print the counters",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the events as one JSON document instead"
    )
    parser.add_argument("--svg", metavar="FILE", help="also draw the timeline as an SVG picture")
    add_config_options(parser)
    parser.add_argument(
        "--demo",
        action="store_true",
        help=(
            "probe the demo's name instead of HOST PORT: dual-stack.eyeshim.invalid, resolving "
            "(in this process only) to a SYN-dropping ::1 and a working 127.0.0.1"
        ),
    )
    return parser


def _config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Config:
    """The configuration from EYESHIM_* variables, the options on top (the
    same options as 'eyeshim run', with the same meaning)."""
    try:
        config = Config.from_env()
        chosen = config_choices(args, parser, lambda name: getattr(config, name))
        return config.replace(**{name: choice.value for name, choice in chosen.items()})
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))


# -- running races ------------------------------------------------------------------


class _Outcome:
    def __init__(self, view: Optional[RaceView], code: int, message: Optional[str]) -> None:
        self.view = view
        self.code = code
        self.message = message


def _errno_name(code: Optional[int]) -> str:
    if code is None:
        return "error"
    return _errno.errorcode.get(code, f"errno {code}")


def _classify(
    exc: Optional[BaseException], view: Optional[RaceView], host: str, timeout: Optional[float]
) -> Tuple[int, Optional[str]]:
    """Exit code and message for one race."""
    if exc is None:
        return EXIT_OK, None
    if isinstance(exc, socket.gaierror):
        return EXIT_RESOLVE, f"cannot resolve {host}: {exc}"
    attempts = view.attempts if view is not None else []
    if isinstance(exc, socket.timeout):
        pending = [a.address for a in attempts if a.outcome == "timed out"]
        failed = [f"{a.address}: {_errno_name(a.errno)}" for a in attempts if a.outcome == "failed"]
        if pending:
            detail = "no answer from " + ", ".join(pending)
        elif attempts:
            detail = "no address connected"
        else:
            detail = "no address to try yet (DNS too slow?)"
        if failed:
            detail += "; " + ", ".join(failed)
        return EXIT_TIMEOUT, f"timed out after {timeout:g} s: {detail}"
    if not attempts and (view is None or not view.addresses):
        # getaddrinfo "succeeded" with nothing to connect to.
        return EXIT_RESOLVE, f"cannot resolve {host}: {exc}"
    failures = [a for a in attempts if a.outcome == "failed"]
    listing = ", ".join(f"{a.address}: {_errno_name(a.errno)}" for a in failures)
    if failures and all(a.errno == _errno.ECONNREFUSED for a in failures):
        addresses = ", ".join(a.address for a in failures)
        return EXIT_FAILED, f"connection refused by every address ({addresses})"
    return EXIT_FAILED, f"could not connect to any address ({listing or exc})"


def _history_after(
    history: Optional[History], view: RaceView, config: Config
) -> Optional[Dict[str, Dict[str, Any]]]:
    if history is None:
        return None
    known: Dict[str, Dict[str, Any]] = {}
    for address in view.addresses:
        record = history.get(address)
        if record is None or (record.failures == 0 and record.srtt is None):
            continue
        info: Dict[str, Any] = {"failures": record.failures, "rtt": record.srtt}
        if record.failures and record.last_failure is not None:
            # The probe's History runs on time.monotonic (its default clock).
            info["failure_ttl"] = max(
                0.0, history.failure_ttl - (time.monotonic() - record.last_failure)
            )
        if record.srtt is not None:
            info["attempt_delay"] = history.attempt_delay(
                address,
                config.connection_attempt_delay,
                config.min_connection_attempt_delay,
                config.max_connection_attempt_delay,
            )
        known[address] = info
    return known


def _one_race(
    host: str,
    port: int,
    timeout: float,
    config: Config,
    history: Optional[History],
    connect_kwargs: Dict[str, Any],
) -> _Outcome:
    from ..connection import connect

    error: Optional[BaseException] = None
    with events.recording() as recorded:
        try:
            sock = connect((host, port), timeout, config=config, history=history, **connect_kwargs)
        except OSError as exc:
            error = exc
        else:
            sock.close()
    # Only this race's events: another thread of the process may race too.
    numbers = [e.race for e in recorded if e.kind == "race" and e.host == host]
    mine = [e for e in recorded if numbers and e.race == numbers[0]]
    view = summarize(mine) if mine else None
    if view is not None:
        view.history_after = _history_after(history, view, config)
    code, message = _classify(error, view, host, timeout)
    return _Outcome(view, code, message)


def probe(
    host: str,
    port: int,
    *,
    timeout: float = 5.0,
    repeat: int = 1,
    config: Optional[Config] = None,
    getaddrinfo: Optional[Callable[..., Any]] = None,
) -> Tuple[List[_Outcome], Dict[str, float]]:
    """Run ``repeat`` races to (host, port); return their outcomes and the
    counters they added.  ``getaddrinfo`` replaces the resolver's lookup
    function (tests; the fast paths for literals and hosts-file names are
    then skipped, as with any custom resolver)."""
    cfg = config if config is not None else Config.from_env()
    history = (
        History(cfg.history_size, cfg.history_failure_ttl, cfg.history_rtt_ttl)
        if cfg.history
        else None
    )
    connect_kwargs: Dict[str, Any] = {}
    if getaddrinfo is not None:
        from ..resolving import ThreadedResolver

        connect_kwargs["resolver"] = ThreadedResolver(
            cfg.resolver_threads, cfg.resolver_idle_timeout, getaddrinfo=getaddrinfo
        )
    before = events.counters()
    outcomes = [_one_race(host, port, timeout, cfg, history, connect_kwargs) for _ in range(repeat)]
    after = events.counters()
    added = {key: after[key] - before.get(key, 0) for key in after}
    return outcomes, added


# -- output ---------------------------------------------------------------------


def _describe_config(config: Config, timeout: float) -> str:
    parts = [
        f"timeout {timeout:g} s",
        f"attempt delay {config.connection_attempt_delay * 1000:g} ms",
        f"resolution delay {config.resolution_delay * 1000:g} ms",
    ]
    if config.first_address_family_count != 1:
        parts.append(f"first address family count {config.first_address_family_count}")
    parts.append("history on" if config.history else "history off")
    return ", ".join(parts)


def _format_counters(added: Dict[str, float]) -> str:
    order = [
        ("races", "races"),
        ("connected", "connected"),
        ("failed", "failed"),
        ("timeouts", "timeouts"),
        ("wins_ipv6", "won by IPv6"),
        ("wins_ipv4", "won by IPv4"),
        ("fallbacks", "won by a later address (fallbacks)"),
        ("attempts", "connection attempts"),
    ]
    lines = ["counters (eyeshim.events.counters(), these races only):"]
    for key, label in order:
        lines.append(f"  {label:<36} {added.get(key, 0):g}")
    lines.append(
        f"  {'time saved vs. a sequential walk':<36} {added.get('time_saved', 0.0) * 1000:.0f} ms"
    )
    return "\n".join(lines)


def _as_json(
    host: str, port: int, outcomes: List[_Outcome], added: Dict[str, float]
) -> Dict[str, Any]:
    races = []
    for outcome in outcomes:
        view = outcome.view
        races.append(
            {
                "events": [event.as_dict() for event in view.events] if view else [],
                "outcome": view.outcome if view else "no race",
                "elapsed": view.elapsed if view else None,
                "winner": view.winner if view else None,
                "error": outcome.message,
                "exit_code": outcome.code,
                "history": view.history_after if view else None,
            }
        )
    return {"host": host, "port": port, "races": races, "counters": added}


@contextlib.contextmanager
def _demo_target() -> Iterator[Tuple[str, int]]:
    from .demo import DEMO_NAME, BrokenAndWorking, demo_name_resolves_to

    with BrokenAndWorking() as lab, demo_name_resolves_to(lab):
        yield DEMO_NAME, lab.port


def main(
    argv: Optional[List[str]] = None,
    *,
    stdout: Optional[TextIO] = None,
    stderr: Optional[TextIO] = None,
    getaddrinfo: Optional[Callable[..., Any]] = None,
) -> int:
    """The ``probe`` verb.  ``stdout``/``stderr``/``getaddrinfo`` are for tests."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    if args.demo:
        if args.host is not None:
            parser.error("--demo probes its own name: give no HOST or PORT")
    elif args.host is None or args.port is None:
        parser.error("HOST and PORT are required (or --demo)")
    config = _config(args, parser)

    with contextlib.ExitStack() as stack:
        host: str
        port: int
        if args.demo:
            host, port = stack.enter_context(_demo_target())
        else:
            host, port = str(args.host), int(args.port)
        started = time.monotonic()
        outcomes, added = probe(
            host,
            port,
            timeout=args.timeout,
            repeat=args.repeat,
            config=config,
            getaddrinfo=getaddrinfo,
        )
        wall = time.monotonic() - started

    views = [o.view for o in outcomes if o.view is not None]
    if args.svg and views:
        title = f"eyeshim probe {host} port {port}"
        with open(args.svg, "w", encoding="utf-8") as file:
            file.write(render_svg(views, title))

    if args.json:
        json.dump(_as_json(host, port, outcomes, added), out, indent=2)
        out.write("\n")
    else:
        print(
            f"eyeshim probe {host} port {port}: {_describe_config(config, args.timeout)}", file=out
        )
        from ..dns import choice  # which resolver this name gets, and why

        print(f"resolver: {choice(host, config)}", file=out)
        for index, outcome in enumerate(outcomes):
            print(file=out)
            if outcome.view is None:
                print(f"race {index + 1}: no events recorded", file=out)
            else:
                title = f"race {index + 1} of {len(outcomes)}"
                print(format_race(outcome.view, title, outcome.message), file=out)
        if args.repeat > 1:
            print(file=out)
            print(_format_counters(added), file=out)
            print(f"  {'wall time of all races':<36} {wall * 1000:.0f} ms", file=out)
        if args.svg and views:
            print(f"\ntimeline picture written to {args.svg}", file=out)

    failed = [o for o in outcomes if o.code != EXIT_OK]
    for outcome in failed[:1]:
        print(f"eyeshim probe: {outcome.message}", file=err)
    return failed[0].code if failed else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
