"""``eyeshim probe TARGET [PORT]``: one real race, shown as it happens.

When a connection is slow, the question is always the same: which address
was tried, when, what happened to it, and why was it tried in that order?
The probe answers it the way ``curl -v`` does for HTTP: it runs one real
race with :func:`eyeshim.connection.connect`, prints each event of it
(:mod:`eyeshim.events`) the moment it happens (DNS lookups and answers per
family, the attempt order with the rule that put each address ahead of the
next, every attempt and its outcome), then the summary: the attempts, the
winner, the total, and what the history now knows.  The socket is closed at
once; nothing is sent over it.

The target is ``HOST PORT``, ``HOST:PORT``, ``[IPv6]:PORT`` or a URL
(``https://host:port/path``: the port defaults to the scheme's).  ``-4`` /
``-6`` restrict the race to one family; ``--resolve HOST:PORT:ADDR[,ADDR]``
(curl's option) gives the addresses without asking DNS.

``--repeat N`` runs N races in a row in the same process, so the history
learnt by one shows in the next (the second race to a host with broken
IPv6 goes straight to IPv4), then prints the race counters.  ``--json``
prints the events instead, at the end; ``--svg FILE`` draws the timeline.
Ctrl-C stops the race and prints what happened so far.

``--tls`` races through the TLS handshake (the system's CA certificates,
HOST as the name verified), as the HTTPS integrations do: the timeline
shows when each attempt's TCP connection completed and its handshake began.

The probe uses a history of its own, empty at the start (``--no-history``
turns it off), or, with a shared history file (``EYESHIM_HISTORY_FILE``),
what that file says, as a new process would see it; it never writes the
file.  The configuration comes from ``EYESHIM_*`` variables with the
options on top.

Exit codes are in ``--help`` (the table ``_EPILOG``).
"""

from __future__ import annotations

import argparse
import errno as _errno
import json
import socket
import sys
import time
from typing import Any, Callable, Dict, List, Optional, TextIO, Tuple

from .. import events
from ..config import Config, history_file_path
from ..history import History
from ..resolving import Answer
from . import EXIT_INTERRUPTED, EXIT_PIPE, entry, prog
from .options import add_config_options, config_choices, duration
from .timeline import RaceRecorder, RaceView, format_event, format_summary, render_svg

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_RESOLVE",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "StaticResolver",
    "main",
    "parse_resolve",
    "parse_target",
    "probe",
]

EXIT_OK = 0
EXIT_USAGE = 2  # argparse's own code for bad arguments
EXIT_RESOLVE = 3
EXIT_FAILED = 4
EXIT_TIMEOUT = 5

_EPILOG = """\
exit codes:
  {ok}  connected (every race, with --repeat)
  {usage}  bad arguments or EYESHIM_* variables
  {resolve}  the name did not resolve (getaddrinfo failed or returned nothing)
  {failed}  every address failed (connection refused, unreachable, ...)
  {timeout}  every address tried timed out (the timeout bounds each attempt)
  {interrupted}  interrupted (Ctrl-C): the timeline so far is printed
  {pipe}  the reader of the output went away (| head)
  With --repeat, the code of the first race that did not connect.

examples:
  {prog} example.org 443
  {prog} https://example.org/ --repeat 2 --svg race.svg
  {prog} '[2001:db8::1]:443' -6
  {prog} example.org 443 --resolve example.org:443:192.0.2.1,[2001:db8::1]
  {prog} --demo --repeat 2      # loopback, the preferred address drops SYNs
"""

_SCHEME_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


# -- the target --------------------------------------------------------------------


def _port(text: str) -> int:
    """1-65535, or a service name from the services database (no network)."""
    if text.isdigit():
        port = int(text)
        if 1 <= port <= 65535:
            return port
        raise ValueError(f"port must be 1-65535 or a service name, got {text}")
    try:
        return socket.getservbyname(text, "tcp")
    except OSError:
        raise ValueError(
            f"port must be 1-65535 or a service name, got {text!r} (unknown service)"
        ) from None


def _ipv6_literal(text: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6, text.partition("%")[0])
    except (OSError, ValueError):
        return False
    return True


def parse_target(target: str, port: Optional[str] = None) -> Tuple[str, int]:
    """(host, port) from what the command line gave: ``HOST PORT``,
    ``HOST:PORT``, ``[IPv6]``, ``[IPv6]:PORT`` or a URL (the port defaults
    to the scheme's).  ValueError says what is wrong."""
    host: str
    given: Optional[str] = None
    if "://" in target:
        from urllib.parse import urlsplit

        parts = urlsplit(target)
        host = parts.hostname or ""
        try:
            number = parts.port
        except ValueError:
            raise ValueError(f"bad port in URL {target!r}") from None
        scheme = parts.scheme.lower()
        if number is not None:
            given = str(number)
        elif port is None:
            if scheme in _SCHEME_PORTS:
                given = str(_SCHEME_PORTS[scheme])
            else:
                try:
                    given = str(socket.getservbyname(scheme, "tcp"))
                except OSError:
                    raise ValueError(f"no default port for {scheme!r}: give PORT") from None
        if not host:
            raise ValueError(f"no host in URL {target!r}")
    elif target.startswith("["):
        inside, bracket, rest = target[1:].partition("]")
        if not bracket or not _ipv6_literal(inside) or (rest and not rest.startswith(":")):
            raise ValueError(f"expected [IPv6 address] or [IPv6 address]:PORT, got {target!r}")
        host, given = inside, (rest[1:] or None)
    elif target.count(":") == 1:
        host, _, given = target.partition(":")
    else:
        host = target  # a name, an IPv4 address, or an IPv6 address without brackets
    if given is not None and port is not None:
        raise ValueError(f"two ports: {target!r} has one, and PORT {port} is another")
    text = given if given is not None else port
    if text is None:
        raise ValueError("PORT is required (or HOST:PORT, or a URL)")
    if not host:
        raise ValueError(f"no host in {target!r}")
    return host, _port(text)


def parse_resolve(text: str) -> Tuple[str, int, List[str]]:
    """``HOST:PORT:ADDR[,ADDR...]`` (curl's ``--resolve``; IPv6 addresses
    with or without brackets) -> (host, port, addresses)."""
    if text.startswith("["):
        inside, _, rest = text[1:].partition("]")
        host, rest = inside, rest[1:] if rest.startswith(":") else "!"
    else:
        host, _, rest = text.partition(":")
    port, sep, addresses = rest.partition(":")
    if not host or not sep or not addresses:
        raise ValueError(f"expected HOST:PORT:ADDRESS[,ADDRESS...], got {text!r}")
    out = []
    for item in addresses.split(","):
        address = item.strip()
        if address.startswith("[") and address.endswith("]"):
            address = address[1:-1]
        try:
            socket.getaddrinfo(address, 0, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
        except (socket.gaierror, UnicodeError):
            raise ValueError(f"{item.strip()!r} is not an IP address (in {text!r})") from None
        out.append(address)
    return host, _port(port), out


class StaticResolver:
    """A resolver for :func:`eyeshim.connection.connect` that answers from
    fixed addresses, without DNS (``--resolve``).  Each family's lookup
    answers at once with the addresses of that family, or with the error
    ``getaddrinfo`` gives a name with no address of it."""

    #: What the race's ``query`` events say answered (events.Query.resolver).
    description = "--resolve (no DNS)"

    def __init__(self, addresses: List[str]) -> None:
        self.addresses = addresses

    def resolve(
        self, host: Any, port: Any, family: int, deliver: Callable[[Answer], None]
    ) -> Callable[[], None]:
        infos = []
        for address in self.addresses:
            try:
                infos.extend(
                    socket.getaddrinfo(
                        address, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
                    )
                )
            except socket.gaierror:
                continue  # an address of the other family
        if infos:
            deliver(Answer(family, infos))
        else:
            code = getattr(socket, "EAI_NODATA", socket.EAI_NONAME)
            names: Dict[int, str] = {socket.AF_INET6: "IPv6 ", socket.AF_INET: "IPv4 "}
            which = names.get(family, "")
            message = f"--resolve gives it no {which}address"
            deliver(Answer(family, [], socket.gaierror(code, message)))
        return lambda: None


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
    if isinstance(exc, UnicodeError):  # raised as socket.create_connection raises it
        return EXIT_RESOLVE, f"cannot resolve {host}: not a valid host name ({exc})"
    if type(exc).__module__ == "ssl" and not isinstance(exc, socket.timeout):
        return EXIT_FAILED, f"TLS handshake failed: {exc}"
    attempts = view.attempts if view is not None else []
    failed = [f"{a.address}: {_errno_name(a.errno)}" for a in attempts if a.outcome == "failed"]
    if isinstance(exc, socket.timeout):
        pending = [a.address for a in attempts if a.outcome == "timed out"]
        each = f"the timeout of {timeout:g} s per attempt" if timeout is not None else "a timeout"
        if pending:
            detail = f"no answer within {each} from {', '.join(pending)}"
        else:
            detail = f"no address connected within {each}"
        if failed:
            detail += "; " + ", ".join(failed)
        return EXIT_TIMEOUT, detail
    if not attempts and (view is None or not view.addresses):
        # getaddrinfo "succeeded" with nothing to connect to.
        return EXIT_RESOLVE, f"cannot resolve {host}: {exc}"
    failures = [a for a in attempts if a.outcome == "failed"]
    if timeout == 0 and any(a.errno == _errno.EINPROGRESS for a in attempts):
        return EXIT_FAILED, (
            "--timeout 0 makes each attempt a non-blocking connect(), which ends at once "
            "with EINPROGRESS unless it is refused (as socket.create_connection does with "
            "timeout=0); give a timeout above 0"
        )
    if failures and all(a.errno == _errno.ECONNREFUSED for a in failures):
        addresses = ", ".join(a.address for a in failures)
        return EXIT_FAILED, f"connection refused by every address ({addresses})"
    return EXIT_FAILED, f"could not connect to any address ({', '.join(failed) or exc})"


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
    show: Optional[Callable[[events.RaceEvent], None]],
) -> _Outcome:
    from ..connection import connect

    race = RaceRecorder(host, show)
    error: Optional[BaseException] = None
    interrupted = False
    started = time.monotonic()
    unsubscribe = events.subscribe(race)
    try:
        sock = connect((host, port), timeout, config=config, history=history, **connect_kwargs)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a name IDNA cannot encode
        error = exc
    except KeyboardInterrupt:
        interrupted = True  # the race closed its sockets; show what it did
    else:
        sock.close()
    finally:
        unsubscribe()
    view = race.view()
    if interrupted:
        elapsed = time.monotonic() - started
        if view is not None:
            view.outcome, view.elapsed = "interrupted", max(view.elapsed, elapsed)
            for attempt in view.attempts:
                if attempt.outcome == "pending":
                    attempt.outcome, attempt.end = "interrupted", view.elapsed
        return _Outcome(view, EXIT_INTERRUPTED, f"interrupted after {elapsed * 1000:.0f} ms")
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
    resolver: Optional[Any] = None,
    family: int = socket.AF_UNSPEC,
    history: Any = ...,
    show: Optional[Callable[[events.RaceEvent], None]] = None,
    before: Optional[Callable[[int], None]] = None,
    after: Optional[Callable[[_Outcome], None]] = None,
    tls: bool = False,
) -> Tuple[List[_Outcome], Dict[str, float]]:
    """Run ``repeat`` races to (host, port); return their outcomes and the
    counters they added.  An interrupted race (Ctrl-C) is the last one.

    ``getaddrinfo`` replaces the resolver's lookup function (tests; the fast
    paths for literals and hosts-file names are then skipped, as with any
    ``resolver``).  ``history``: the History to race with (default: a new
    one, None when the configuration turns history off).  ``show`` gets
    each event as it happens; ``before(index)`` and ``after(outcome)`` are
    called around each race.  ``tls``: race through the TLS handshake.
    """
    cfg = config if config is not None else Config.from_env()
    if history is ...:
        history = _new_history(cfg)
    connect_kwargs: Dict[str, Any] = {"family": family}
    if resolver is not None:
        connect_kwargs["resolver"] = resolver
    elif getaddrinfo is not None:
        from ..resolving import ThreadedResolver

        connect_kwargs["resolver"] = ThreadedResolver(
            cfg.resolver_threads, cfg.resolver_idle_timeout, getaddrinfo=getaddrinfo
        )
    if tls:
        import ssl

        from ..tls import TlsSpec

        connect_kwargs["tls"] = TlsSpec(ssl.create_default_context(), host)
    counted = events.counters()
    outcomes: List[_Outcome] = []
    for index in range(repeat):
        if before is not None:
            before(index)
        outcome = _one_race(host, port, timeout, cfg, history, connect_kwargs, show)
        outcomes.append(outcome)
        if after is not None:
            after(outcome)
        if outcome.code == EXIT_INTERRUPTED:
            break
    now = events.counters()
    added = {key: now[key] - counted.get(key, 0) for key in now}
    return outcomes, added


def _new_history(config: Config) -> Optional[History]:
    if not config.history:
        return None
    return History(config.history_size, config.history_failure_ttl, config.history_rtt_ttl)


def _shared_history(config: Config, history: History) -> str:
    """Read the shared history file into the probe's own history, as a new
    process would (the probe never writes it); a note saying so."""
    from ..history_file import HistoryFile

    path = history_file_path(config.history_file)
    keeper = HistoryFile(path, history)
    try:
        lessons = keeper.teach(keeper.read())
    except OSError as exc:
        return f"history file {path}: cannot read it ({exc.strerror or exc})"
    return f"history from {path}: {lessons} lesson(s), as a new process would see them"


# -- the command ------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    name = prog("probe")
    parser = argparse.ArgumentParser(
        prog=name,
        usage=f"{name} [options] (TARGET [PORT] | --demo)",
        # Raw formatting keeps the exit-code table of the epilog aligned, so
        # the description carries its own line breaks.
        description=(
            "Connect to TARGET once with eyeshim and show the race as it happens, like\n"
            "curl -v: DNS answers, the attempt order and why, every attempt and its\n"
            "outcome; then the winner, the total time, and what the history learnt.\n"
            "TARGET is HOST PORT, HOST:PORT, [IPv6]:PORT or a URL (https://host/path).\n"
            "The socket is closed at once; nothing is sent over it."
        ),
        epilog=_EPILOG.format(
            ok=EXIT_OK,
            usage=EXIT_USAGE,
            resolve=EXIT_RESOLVE,
            failed=EXIT_FAILED,
            timeout=EXIT_TIMEOUT,
            interrupted=EXIT_INTERRUPTED,
            pipe=EXIT_PIPE,
            prog=name,
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "host", nargs="?", metavar="TARGET", help="name, IP address, HOST:PORT or URL"
    )
    parser.add_argument("port", nargs="?", metavar="PORT", help="1-65535 or a service name")
    families = parser.add_mutually_exclusive_group()
    families.add_argument(
        "-4", dest="family", action="store_const", const=socket.AF_INET, help="IPv4 only"
    )
    families.add_argument(
        "-6", dest="family", action="store_const", const=socket.AF_INET6, help="IPv6 only"
    )
    parser.add_argument(
        "--resolve",
        metavar="HOST:PORT:ADDR[,ADDR]",
        action="append",
        default=[],
        help="connect to these addresses for HOST:PORT instead of asking DNS (as curl's "
        "--resolve; repeatable)",
    )
    parser.add_argument(
        "--timeout",
        type=duration,
        default=5.0,
        metavar="S",
        help="timeout of each connection attempt, from its own start, as the stdlib applies "
        "it (not of DNS, not of the race): 5, 5s or 500ms (default 5 s)",
    )
    parser.add_argument(
        "--repeat",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run N races in a row (history carries over), then print the counters",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the events as one JSON document at the end"
    )
    parser.add_argument("--svg", metavar="FILE", help="also draw the timeline as an SVG picture")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="race through the TLS handshake (system CAs, HOST verified), as HTTPS does",
    )
    add_config_options(parser)
    parser.add_argument(
        "--demo",
        action="store_true",
        help=(
            "probe the demo's name instead of TARGET: on loopback, resolving (in this process "
            "only) to an address that drops SYNs (::1) and a working 127.0.0.1"
        ),
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Config:
    """The configuration from EYESHIM_* variables, the options on top (the
    same options as 'eyeshim run', with the same meaning)."""
    try:
        config = Config.from_env()
        chosen = config_choices(args, parser, lambda name: getattr(config, name))
        return config.replace(**{name: choice.value for name, choice in chosen.items()})
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))


def _describe_config(config: Config, timeout: float) -> str:
    parts = [
        f"timeout {timeout:g} s per attempt",
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


class _Printer:
    """Text output as the race goes; remembers a reader that went away
    (``| head``) instead of failing inside the race's event callback."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.gone = False

    def line(self, text: str = "") -> None:
        if self.gone:
            return
        try:
            print(text, file=self.out, flush=True)
        except BrokenPipeError:
            self.gone = True

    def event(self, event: events.RaceEvent) -> None:
        self.line(format_event(event))


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
    family: int = args.family or socket.AF_UNSPEC
    host, port = "", 0
    if args.demo:
        if args.host is not None:
            parser.error("--demo probes its own name: give no TARGET or PORT")
    elif args.host is None:
        parser.error("TARGET is required (HOST PORT, HOST:PORT, [IPv6]:PORT or a URL), or --demo")
    else:
        try:
            host, port = parse_target(args.host, args.port)
        except ValueError as exc:
            parser.error(str(exc))
        literal = _literal_family(host)
        if family and literal and literal != family:
            wanted = "-4 asks for IPv4" if family == socket.AF_INET else "-6 asks for IPv6"
            parser.error(f"{wanted}, but {host} is an address of the other family")
    resolves = []
    for text in args.resolve:
        try:
            resolves.append(parse_resolve(text))
        except ValueError as exc:
            parser.error(f"--resolve: {exc}")
    config = _config(args, parser)
    svg = None
    if args.svg:
        # Before the race, not after it: a bad path is a usage error.
        try:
            svg = open(args.svg, "w", encoding="utf-8")  # noqa: SIM115 - kept open for the end
        except OSError as exc:
            parser.error(f"--svg {args.svg}: cannot write it: {exc.strerror or exc}")
    try:
        return _run(args, config, host, port, family, resolves, svg, out, err, getaddrinfo)
    finally:
        if svg is not None:
            svg.close()


def _literal_family(host: str) -> int:
    for candidate in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(candidate, host.partition("%")[0])
            return candidate
        except (OSError, ValueError):
            continue
    return 0


def _run(
    args: argparse.Namespace,
    config: Config,
    host: str,
    port: int,
    family: int,
    resolves: List[Tuple[str, int, List[str]]],
    svg: Optional[TextIO],
    out: TextIO,
    err: TextIO,
    getaddrinfo: Optional[Callable[..., Any]],
) -> int:
    import contextlib

    printer = _Printer(out)
    with contextlib.ExitStack() as stack:
        if args.demo:
            from .demo import BrokenAndWorking, demo_name_resolves_to

            # The probe races with a History of its own: nothing reaches the
            # process's (or a shared file's) history.
            lab = stack.enter_context(BrokenAndWorking())
            stack.enter_context(demo_name_resolves_to(lab))
            host, port = lab.name, lab.port
        notes = []
        resolver = None
        for name, number, addresses in resolves:
            if name.lower() in ("*", host.lower()) and number == port:
                resolver = StaticResolver(addresses)
                notes.append(f"addresses from --resolve, no DNS: {', '.join(addresses)}")
                break
        else:
            if resolves:
                notes.append(f"--resolve has no entry for {host}:{port}: resolving it as usual")
            if getaddrinfo is None:
                from ..dns import choice  # which resolver this name gets, and why

                notes.append(f"resolver: {choice(host, config)}")
        history = _new_history(config)
        if history is not None and config.history_file:
            notes.append(_shared_history(config, history))
        if not args.json:
            printer.line(
                f"eyeshim probe {host} port {port}: {_describe_config(config, args.timeout)}"
            )
            for note in notes:
                printer.line(f"  {note}")

        def before(index: int) -> None:
            if not args.json:
                printer.line()
                printer.line(f"race {index + 1} of {args.repeat}")

        def after(outcome: _Outcome) -> None:
            if args.json:
                return
            if outcome.view is None:
                printer.line("  no events recorded")
            else:
                printer.line()
                printer.line(format_summary(outcome.view, outcome.message))

        started = time.monotonic()
        outcomes, added = probe(
            host,
            port,
            timeout=args.timeout,
            repeat=args.repeat,
            config=config,
            getaddrinfo=getaddrinfo,
            resolver=resolver,
            family=family,
            history=history,
            show=None if args.json else printer.event,
            before=before,
            after=after,
            tls=args.tls,
        )
        wall = time.monotonic() - started

    views = [o.view for o in outcomes if o.view is not None]
    if svg is not None and views:
        svg.write(render_svg(views, f"eyeshim probe {host} port {port}"))
    if args.json:
        try:
            json.dump(_as_json(host, port, outcomes, added), out, indent=2)
            out.write("\n")
            out.flush()
        except BrokenPipeError:
            printer.gone = True
    else:
        if len(outcomes) > 1:
            printer.line()
            printer.line(_format_counters(added))
            printer.line(f"  {'wall time of all races':<36} {wall * 1000:.0f} ms")
        if svg is not None and views:
            printer.line(f"\ntimeline picture written to {svg.name}")
    failed = [o for o in outcomes if o.code != EXIT_OK]
    for outcome in failed[:1]:
        print(f"eyeshim probe: {outcome.message}", file=err)
    if printer.gone:
        raise BrokenPipeError(_errno.EPIPE, "the reader of the output went away")
    return failed[0].code if failed else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry(main, sys.argv[1:], "probe"))
