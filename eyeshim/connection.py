"""``create_connection``: the drop-in for ``socket.create_connection``.

The contract is the stdlib's (3.11 signature), and where Happy Eyeballs has
nothing to say the behaviour is the stdlib's too:

* ``timeout``: the returned socket is blocking with the caller's timeout, or
  ``socket.getdefaulttimeout()`` for the default sentinel.
* errors: ``socket.gaierror`` when no address could be resolved; the last
  attempt's ``OSError`` otherwise; with ``all_errors=True`` on 3.11+, an
  ``ExceptionGroup`` of every attempt's error.  Bad arguments raise what
  the stdlib raises.
* ``source_address`` is bound on every attempt.

One call, top to bottom (:func:`connect`):

1. **check** the arguments the way the stdlib does, and build the
   :class:`~eyeshim.dial.Dial` that every later step reads;
2. **known addresses**: an IP literal, or a name from the hosts file
   (``candidates.known_addresses``).  A single one is connected exactly as
   the stdlib would, blocking, in the caller's thread: no race to run;
3. **resolve** (``candidates.Candidates``: per-family lookups, the
   Resolution Delay), **order** (``ordering.Orderer``: RFC 6724, history,
   interleaving) and **race** (``racing.Race``: staggered attempts);
4. **remember** what the race taught (``history``);
5. **NAT64**: when every IPv4 attempt failed because this host has no IPv4
   route, race the NAT64-synthesized addresses (RFC 8305 §7);
6. **report**: counters, the last events, and the winner with the caller's
   timeout, or the error.

With ``tls`` (``tls.TlsSpec``) every attempt is TCP and then a TLS
handshake, and the winner is the ``SSLSocket`` (see ``tls.py``); with
``tls.Later()`` the race stops after step 3 at its first TCP connection and
steps 4-6 run when the caller finishes it.
"""

from __future__ import annotations

import errno
import operator
import socket

from . import events
from .addrinfo import AddrInfo, ExceptionGroup, address_of, family_name, lookup_families
from .candidates import Candidates, known_addresses
from .config import Config, get_config
from .dial import Dial
from .history import History
from .ordering import Orderer
from .racing import Attempt, Connector, Outcome, Race, SocketConnector
from .resolving import AnswerCache, Resolver, ThreadedResolver
from .state import STATE

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from typing import Any, Callable, Dict, List, Optional, Tuple

    from .dns.resolvconf import ResolvConf
    from .nat64 import Prefixes
    from .tls import Later, TlsSpec

__all__ = [
    "DEFAULT_TIMEOUT",
    "connect",
    "create_connection",
    "get_dns_cache",
    "get_history",
]

#: The stdlib's "use socket.getdefaulttimeout()" sentinel.
DEFAULT_TIMEOUT: Any = socket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


def get_history(config: Optional[Config] = None) -> Optional[History]:
    """The process-wide history (None when the config disables history)."""
    return STATE.history(config if config is not None else get_config())


def get_dns_cache(config: Optional[Config] = None) -> Optional[AnswerCache]:
    """The process-wide DNS answer cache (None when the config disables it)."""
    return STATE.dns_cache(config if config is not None else get_config())


def create_connection(
    address: Tuple[Any, Any],
    timeout: Any = DEFAULT_TIMEOUT,
    source_address: Optional[Tuple[Any, ...]] = None,
    *,
    all_errors: bool = False,
) -> socket.socket:
    """Connect to ``address`` = (host, port) with Happy Eyeballs v2.

    Same contract as ``socket.create_connection``; see the module docstring.
    """
    return connect(address, timeout, source_address, all_errors=all_errors)


def connect(
    address: Tuple[Any, Any],
    timeout: Any = DEFAULT_TIMEOUT,
    source_address: Optional[Tuple[Any, ...]] = None,
    *,
    all_errors: bool = False,
    config: Optional[Config] = None,
    family: int = socket.AF_UNSPEC,
    prepare_socket: Optional[Callable[[socket.socket], None]] = None,
    resolver: Optional[Resolver] = None,
    connector: Optional[Connector] = None,
    history: Any = ...,
    find_source: Optional[Callable[[str, int], Any]] = None,
    nat64_prefixes: Optional[Prefixes] = None,
    resolv_conf: Optional[ResolvConf] = None,
    tls: Any = None,
) -> socket.socket:
    """``create_connection`` with the knobs integrations and tests need.

    ``family`` restricts resolution (urllib3's ``allowed_gai_family()``);
    ``prepare_socket`` runs on each socket before ``connect()`` (urllib3's
    ``socket_options``).  ``tls``: a ``tls.TlsSpec`` races through the TLS
    handshake and returns the winner's ``SSLSocket``; a ``tls.Later``
    returns the first TCP connection and leaves the race to be finished
    with the caller's context (``Later.finish``).  ``resolver``, ``connector``, ``history``,
    ``find_source``, ``nat64_prefixes`` and ``resolv_conf`` replace the real
    DNS, sockets, history, source discovery, NAT64 prefix discovery and
    ``/etc/resolv.conf`` (``history=None`` turns history off for this call).
    """
    # 1. check, as the stdlib would
    host, port = address
    socket_timeout = _effective_timeout(timeout)
    cfg = config if config is not None else get_config()
    families = lookup_families(family)

    # 2. known addresses: a single one is the stdlib's own work
    known: Optional[List[AddrInfo]] = None
    if resolver is None:
        known = known_addresses(host, port, family, STATE.hosts())
        if known is not None and len(known) == 1 and connector is None and not events.listening():
            try:
                sock = _connect_one(known[0], timeout, source_address, prepare_socket, all_errors)
            except _FAILURES as exc:
                if not _nat64_may_help(cfg, find_source, known, families, exc):
                    raise
                # This host cannot route IPv4: race the literal again (it
                # fails at once) and let step 5 try NAT64.
            else:
                if tls is not None and not tls.deferred:
                    return tls.wrap_blocking(sock)  # type: ignore[no-any-return]
                return sock  # nothing to race: the caller wraps it as it would

    if connector is None:
        if tls is None:
            connector = SocketConnector(source_address, prepare_socket)
        else:
            # ssl is imported only by calls that race through TLS.
            from .tls import TlsConnector

            connector = TlsConnector(None if tls.deferred else tls, source_address, prepare_socket)
    start = connector.now()
    dial = Dial(
        host,
        port,
        families=families,
        timeout=socket_timeout,
        all_errors=all_errors,
        config=cfg,
        history=STATE.history(cfg) if history is ... else history,
        connector=connector,
        resolver=resolver,
        find_source=find_source,
        nat64_prefixes=nat64_prefixes,
        trace=events.Trace.start(host, connector.now, start),
        start=start,
        resolv_conf=resolv_conf,
        tls=tls,
    )

    # 3. resolve -> order -> race
    race, outcome = _race(dial, known)
    if outcome.kind != "tcp":
        # 4. remember
        _remember(dial, outcome)
        # 5. NAT64
        if outcome.sock is None:
            race, outcome = _race_nat64(dial, race, outcome)
    if outcome.kind == "tcp":
        return _stop_for_tls(dial, race, outcome)
    # 6. report
    return _report(dial, outcome)


def _stop_for_tls(dial: Dial, race: Race, outcome: Outcome) -> socket.socket:
    """A ``Later`` race stopped at its first TCP connection: hand that
    socket over (blocking, with the caller's timeout, as the stdlib returns
    it) and let the caller finish or abandon the race."""
    later: Later = dial.tls
    sock: socket.socket = outcome.sock

    def finish(spec: TlsSpec) -> ssl.SSLSocket:
        dial.tls = spec
        done = race.resume(spec)
        _remember(dial, done)
        return _report(dial, done)  # type: ignore[return-value]

    def abandon() -> None:
        done = race.abandon()
        _remember(dial, done)
        _report(dial, done)

    try:
        sock.settimeout(dial.timeout)
    except BaseException:
        abandon()
        raise
    later.wait_for(sock, finish, abandon)
    return sock


def _effective_timeout(timeout: Any) -> Optional[float]:
    """The socket timeout ``timeout`` means (None: blocking), accepted and
    refused exactly as ``socket.settimeout`` accepts and refuses it: floats,
    and anything with ``__index__`` (bool and numpy integers included)."""
    if timeout is DEFAULT_TIMEOUT:
        return socket.getdefaulttimeout()
    if timeout is None:
        return None
    try:
        value = timeout if isinstance(timeout, float) else operator.index(timeout)
    except TypeError:
        value = None
    if value is None or not 0 <= value <= _MAX_TIMEOUT:  # NaN too
        _refuse_timeout(timeout)  # raises, unless this Python's socket takes it
        return float(timeout)
    return float(value)


# The largest timeout a socket takes: 2**63 - 1 nanoseconds.
_MAX_TIMEOUT = (2**63 - 1) / 1e9


def _refuse_timeout(timeout: Any) -> None:
    """Raise what ``socket.settimeout(timeout)`` raises, with its very type and
    message on this Python (they differ between versions): a closed socket
    object parses the value before it finds it has no descriptor."""
    probe = socket.socket()
    probe.close()
    try:
        probe.settimeout(timeout)
    except OSError:
        pass  # it parsed: the checks above were too strict for this Python


# What a failed connect raises: OSError, or with all_errors an ExceptionGroup.
_FAILURES: Any = (OSError, ExceptionGroup) if ExceptionGroup is not None else (OSError,)


def _connect_one(
    info: AddrInfo,
    timeout: Any,
    source_address: Optional[Tuple[Any, ...]],
    prepare_socket: Optional[Callable[[socket.socket], None]],
    all_errors: bool,
) -> socket.socket:
    """The stdlib's loop body for a single address (no race to run)."""
    family, type_, proto, _, sockaddr = info
    sock = socket.socket(family, type_, proto)
    try:
        if prepare_socket is not None:
            prepare_socket(sock)
        if timeout is not DEFAULT_TIMEOUT:
            sock.settimeout(timeout)
        if source_address:
            sock.bind(source_address)
        sock.connect(sockaddr)
    except OSError as exc:
        sock.close()
        if all_errors and ExceptionGroup is not None:
            raise ExceptionGroup("create_connection failed", [exc]) from None
        raise
    except BaseException:
        sock.close()
        raise
    return sock


# -- 3. resolve -> order -> race ------------------------------------------------


def _race(dial: Dial, known: Optional[List[AddrInfo]]) -> Tuple[Race, Outcome]:
    """Run one race over ``known`` addresses, or over the name's lookups."""
    cfg = dial.config
    order = Orderer(
        STATE.policy_table(cfg.policy),
        dial.history,
        cfg.first_address_family_count,
        dial.find_source,
        name=dial.host,
    )
    if dial.trace is not None:
        dial.trace(
            events.RaceStarted,
            port=dial.port,
            timeout=dial.timeout,
            families=[family_name(f) for f in dial.families] if known is None else [],
            known=[address_of(info) for info in known] if known is not None else [],
        )
    candidates = Candidates(dial, order, known)
    if known is None:
        try:
            candidates.start(dial.resolver or _default_resolver(cfg, dial))
        except BaseException:
            candidates.close()
            dial.connector.close()
            raise
    race = Race(dial, candidates, defer_tls=dial.tls is not None and dial.tls.deferred)
    return race, race.run()


def _default_resolver(cfg: Config, dial: Dial) -> Resolver:
    """The stub resolver on the race's selector where it provably answers
    as getaddrinfo would, else getaddrinfo on threads; the choice, and why,
    is ``eyeshim.dns.choice``'s (imported only when it may say stub)."""
    reason = "EYESHIM_RESOLVER=system"
    if cfg.resolver != "system":
        from .dns import resolver_for

        stub, chosen = resolver_for(dial.host, dial.port, dial.families, cfg)
        if stub is not None:
            return stub
        reason = chosen.reason
    threaded = ThreadedResolver(
        cfg.resolver_threads, cfg.resolver_idle_timeout, cache=STATE.dns_cache(cfg)
    )
    threaded.description = f"getaddrinfo: {reason}"
    return threaded


# -- 4. remember ----------------------------------------------------------------


def _remember(dial: Dial, outcome: Outcome) -> None:
    """Teach the history what this race showed (R10-R12).

    A timeout, an unreachable route, and an attempt still pending when a
    *later-started* attempt won (it had a head start and lost) count against
    the address; a refusal only against the address's port (the host is up).
    An attempt whose TCP connection worked and whose TLS handshake failed
    (or lost) is remembered as such for the address's port ("TCP works, TLS
    does not").  When every attempted address of a family failed in any of
    these ways but refusing, while the other family connected, the family
    is remembered as dead for this name.  The RTT taught is the TCP
    connect's, handshake or not.
    """
    history = dial.history
    if history is None:
        return
    trace = dial.trace
    winner = outcome.winner
    # The winner first: what worked is the news; then what did not.
    ordered = [a for a in outcome.attempts if a is winner] + [
        a for a in outcome.attempts if a is not winner
    ]
    broken: Dict[int, bool] = {}
    for attempt in ordered:
        family, port = attempt.info[0], attempt.info[4][1]
        if attempt.result == Attempt.CONNECTED:
            history.record_success(
                attempt.address, attempt.tcp_time, outcome.local, port=port, family=family
            )
            recorded = "success"
        elif attempt.in_tls and attempt.result in (
            Attempt.FAILED,
            Attempt.TIMED_OUT,
            Attempt.LOST,
        ):
            history.record_tls_failure(attempt.address, port=port)
            broken[family] = broken.get(family, True)
            recorded = "tls failure"
        elif attempt.result in (Attempt.FAILED, Attempt.TIMED_OUT, Attempt.LOST):
            refused = getattr(attempt.error, "errno", None) == errno.ECONNREFUSED
            history.record_failure(attempt.address, port=port, refused=refused)
            broken[family] = broken.get(family, True) and not refused
            recorded = "lost" if attempt.result == Attempt.LOST else "failure"
        else:
            continue
        if trace is not None:
            trace(events.Recorded, address=attempt.address, outcome=recorded)
    if winner is not None:
        for family, dead in broken.items():
            if dead and family != winner.info[0]:
                history.record_dead_family(dial.host, family)


# -- 5. NAT64 (RFC 8305 §7) -----------------------------------------------------


def _nat64_may_help(
    cfg: Config,
    find_source: Optional[Callable[[str, int], Any]],
    tried: List[AddrInfo],
    families: Tuple[int, ...],
    error: BaseException,
) -> bool:
    """Could NAT64 reach ``tried`` (IPv4 addresses), which failed with
    ``error``?  Only on a host with no IPv4 route to them: a failure alone
    does not say that (a router's ICMP host-unreachable looks the same)."""
    from .nat64 import unreachable

    if not (
        cfg.nat64
        and tried
        and all(info[0] == socket.AF_INET for info in tried)
        and socket.AF_INET6 in families
        and unreachable(error)
    ):
        return False
    if find_source is None:
        find_source = STATE.sources()
    # A route look-up (no packet sent): None when IPv4 cannot leave this host.
    return all(find_source(address_of(info), int(info[4][1])) is None for info in tried)


def _race_nat64(dial: Dial, race: Race, outcome: Outcome) -> Tuple[Race, Outcome]:
    """When every IPv4 attempt failed because this host cannot route IPv4,
    race the NAT64-synthesized addresses instead (RFC 8305 §7.1 for literals,
    §7.3 for names whose answers were IPv4 only).  Prefix discovery waits at
    most the caller's timeout."""
    tried = [attempt.info for attempt in outcome.attempts]
    if outcome.error is None or not _nat64_may_help(
        dial.config, dial.find_source, tried, dial.families, outcome.error
    ):
        return race, outcome
    from .nat64 import synthesized_infos

    prefixes = dial.nat64_prefixes or STATE.nat64_prefixes(dial.config)
    began = dial.clock()
    found = prefixes.get(dial.timeout)
    synthesized: List[AddrInfo] = []
    for info in tried:
        synthesized.extend(synthesized_infos(address_of(info), int(info[4][1]), found))
    if dial.trace is not None:
        dial.trace(
            events.Nat64,
            ipv4=[address_of(info) for info in tried],
            synthesized=[address_of(info) for info in synthesized],
            discovery=dial.clock() - began,
        )
    if not synthesized:
        return race, outcome
    # A second race on the same connector (the first closed its sockets).
    race, second = _race(dial, synthesized)
    if second.kind != "tcp":
        _remember(dial, second)
    second.attempts[:0] = outcome.attempts
    return race, second


# -- 6. report ------------------------------------------------------------------


def _report(dial: Dial, outcome: Outcome) -> socket.socket:
    """Count the race, send its last events, and hand over the winner (with
    the caller's timeout) or raise the error."""
    try:
        _count(dial, outcome)
        trace = dial.trace
        if trace is not None:
            if outcome.losers:
                trace(events.LosersClosed, addresses=outcome.losers)
            error = outcome.error
            trace(
                events.Done,
                outcome=outcome.kind,
                elapsed=outcome.ended - dial.start,
                address=outcome.winner.address if outcome.winner is not None else None,
                error=None if error is None else f"{type(error).__name__}: {error}",
                attempts=len(outcome.attempts),
            )
        if _eventful(outcome):
            events.log_summary(lambda: _summary(dial, outcome))
    except BaseException:
        # An interrupt (or a subscriber's KeyboardInterrupt) after the win
        # must not leak the winner's socket.
        if outcome.sock is not None:
            outcome.sock.close()
        raise
    sock = outcome.result()
    if isinstance(sock, socket.socket):
        sock.settimeout(dial.timeout)
    return sock  # type: ignore[no-any-return]


def _count(dial: Dial, outcome: Outcome) -> None:
    winner = outcome.winner
    saved = 0.0
    if winner is not None:
        # What the stdlib's sequential walk would have spent before reaching
        # the winner: the full timeout on every earlier address still pending
        # at the win (or at least the time it had been pending), the failure
        # time of the ones that failed.
        won_at = winner.ended
        first = outcome.attempts[0].started
        sequential = 0.0
        for earlier in outcome.attempts:
            if earlier is winner:
                break
            if earlier.result == Attempt.FAILED:
                sequential += earlier.elapsed
            else:
                sequential += max(dial.timeout or 0.0, won_at - earlier.started)
        sequential += won_at - winner.started
        saved = max(0.0, sequential - (won_at - first))
    events.count(
        outcome.kind,
        family=winner.info[0] if winner is not None else 0,
        attempts=len(outcome.attempts),
        fallback=winner is not None and winner is not outcome.attempts[0],
        saved=saved,
    )


def _eventful(outcome: Outcome) -> bool:
    """Did Happy Eyeballs change anything a person debugging would want to
    know about (an address failed, was overtaken, or timed out)?"""
    return any(attempt.result != Attempt.CONNECTED for attempt in outcome.attempts)


def _summary(dial: Dial, outcome: Outcome) -> str:
    host = f"{dial.host}:{dial.port}"
    tried = ", ".join(
        f"{a.address} {a.result} after {a.elapsed * 1000:.0f} ms" for a in outcome.attempts
    )
    if outcome.winner is not None:
        return f"{host}: connected to {outcome.winner.address} ({tried})"
    return f"{host}: {outcome.kind} ({tried})"
