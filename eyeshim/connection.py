"""``create_connection``: the drop-in for ``socket.create_connection``.

The contract is the stdlib's (3.11 signature), and where Happy Eyeballs has
nothing to say the behaviour is the stdlib's too:

* ``timeout``: the returned socket is blocking with the caller's timeout, or
  ``socket.getdefaulttimeout()`` for the default sentinel.  Because attempts
  overlap, the timeout bounds the whole call (DNS wait included) rather
  than each address in turn; the stdlib walks the addresses one by one and
  can take ``timeout`` times their number.
* errors: ``socket.gaierror`` when no address could be resolved; the last
  attempt's ``OSError`` (``socket.timeout`` when the deadline passed); with
  ``all_errors=True`` on 3.11+, an ``ExceptionGroup`` of every attempt's
  error.  Bad arguments raise what the stdlib raises.
* ``source_address`` is bound on every attempt.

Three paths, cheapest first:

1. an IP literal (or a name from the hosts file) with one address: a plain
   blocking connect in the caller's thread, exactly like the stdlib;
2. several known addresses (literals can't be, hosts-file names can): a race
   without DNS threads;
3. a name: per-family lookups on the resolver pool and the full race.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, TypeVar

from . import config as _settings
from . import events
from .config import Config, get_config, set_config
from .history import History
from .ordering import Orderer, policy_table
from .racing import _FAMILY_NAMES, Connector, Inbox, Race, SocketConnector, _ExceptionGroup
from .resolving import (
    HOSTS,
    AddrInfo,
    AnswerCache,
    Resolver,
    ThreadedResolver,
    numeric_addresses,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "connect",
    "create_connection",
    "get_config",
    "get_dns_cache",
    "get_history",
    "set_config",
]

# What a failed connect raises: OSError, or with all_errors an ExceptionGroup.
_FAILURES: Any = (OSError, _ExceptionGroup) if _ExceptionGroup is not None else (OSError,)

#: The stdlib's "use socket.getdefaulttimeout()" sentinel.
DEFAULT_TIMEOUT: Any = socket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]

_state_lock = threading.Lock()


_T = TypeVar("_T")
_shared: Dict[type, Any] = {}


def _process_wide(kind: Type[_T]) -> _T:
    """The process's one instance of ``kind``, created on first use."""
    instance = _shared.get(kind)
    if instance is None:
        with _state_lock:
            instance = _shared.get(kind)
            if instance is None:
                instance = _shared[kind] = kind()
    return instance


def get_dns_cache(config: Optional[Config] = None) -> Optional[AnswerCache]:
    """The process-wide DNS answer cache (None when the config disables it).

    A later config with other limits adjusts it in place: cached answers
    survive a configuration change.
    """
    cfg = config if config is not None else _settings._current
    if not cfg.dns_cache:
        return None
    cache = _process_wide(AnswerCache)
    cache.size, cache.ttl = cfg.dns_cache_size, cfg.dns_cache_ttl
    cache.negative_ttl, cache.rotate = cfg.dns_cache_negative_ttl, cfg.dns_cache_rotate
    return cache


def get_history(config: Optional[Config] = None) -> Optional[History]:
    """The process-wide history (None when the config disables history).

    A later config with other limits adjusts it in place rather than
    forgetting what was learnt.
    """
    cfg = config if config is not None else _settings._current
    if not cfg.history:
        return None
    history = _process_wide(History)
    history.max_entries = cfg.history_size
    history.failure_ttl = cfg.history_failure_ttl
    history.rtt_ttl = cfg.history_rtt_ttl
    return history


def _effective_timeout(timeout: Any) -> Optional[float]:
    """Validate ``timeout`` the way ``socket.settimeout`` does; return the
    socket timeout it means (None = blocking)."""
    if timeout is DEFAULT_TIMEOUT:
        return socket.getdefaulttimeout()
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(
            f"timeout must be a number of seconds or None, not {type(timeout).__name__}"
        )
    if math.isnan(timeout):
        raise ValueError("Invalid value NaN (not a number)")
    if timeout < 0:
        raise ValueError("Timeout value out of range")
    return float(timeout)


# What each ``family`` argument resolves: AAAA first (R1).
_FAMILIES: Dict[int, Tuple[int, ...]] = {
    socket.AF_UNSPEC: (socket.AF_INET6, socket.AF_INET),
    socket.AF_INET: (socket.AF_INET,),
    socket.AF_INET6: (socket.AF_INET6,),
}


def _families(family: int) -> Tuple[int, ...]:
    try:
        return _FAMILIES[family]
    except (KeyError, TypeError):
        raise ValueError(f"family must be AF_UNSPEC, AF_INET or AF_INET6, got {family!r}") from None


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
        if all_errors and _ExceptionGroup is not None:
            raise _ExceptionGroup("create_connection failed", [exc]) from None
        raise
    except BaseException:
        sock.close()
        raise
    return sock


def create_connection(
    address: Tuple[Any, Any],
    timeout: Any = DEFAULT_TIMEOUT,
    source_address: Optional[Tuple[Any, ...]] = None,
    *,
    all_errors: bool = False,
) -> socket.socket:
    """Connect to ``address`` = (host, port) with Happy Eyeballs v2.

    Same contract as ``socket.create_connection``; see the module docstring
    for the few places where overlapping attempts change the outcome.
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
) -> socket.socket:
    """``create_connection`` with the knobs integrations and tests need.

    ``family`` restricts resolution (urllib3's ``allowed_gai_family()``);
    ``prepare_socket`` runs on each socket before ``connect()`` (urllib3's
    ``socket_options``); ``resolver``, ``connector``, ``history`` and
    ``find_source`` replace the real DNS, sockets, history and source
    discovery (``history=None`` disables it for this call).
    """
    host, port = address
    socket_timeout = _effective_timeout(timeout)
    cfg = config if config is not None else _settings._current
    families = _families(family)

    known: Optional[List[AddrInfo]] = None
    if resolver is None:
        known = numeric_addresses(host, port, family)
        if known is None and host in HOSTS:
            # Answered from the file without DNS, as the stdlib would (see
            # resolving.py for why this must not go per family).
            known = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
        if known is not None:
            if not known:
                raise OSError("getaddrinfo returns an empty list")
            if len(known) == 1 and connector is None and not events.listening():
                # The fast path: exactly the stdlib's work for one address.
                try:
                    return _connect_one(
                        known[0], timeout, source_address, prepare_socket, all_errors
                    )
                except _FAILURES as exc:
                    known = _nat64_alternatives(known, exc, cfg, families)
                    if known is None:
                        raise

    clock = connector.now if connector is not None else time.monotonic
    start = clock()
    deadline = None if socket_timeout is None else start + socket_timeout
    # None unless someone listens (a subscriber, or the logger at DEBUG).
    emit = events.emitter(host, clock, start)
    hist = get_history(cfg) if history is ... else history
    tried: List[AddrInfo] = []

    def race(initial: Optional[List[AddrInfo]]) -> socket.socket:
        return _race(
            host,
            port,
            initial,
            families,
            cfg,
            hist,
            deadline,
            socket_timeout,
            all_errors,
            emit,
            resolver,
            connector if connector is not None else SocketConnector(source_address, prepare_socket),
            find_source,
            tried,
        )

    try:
        return race(known)
    except _FAILURES as exc:
        ipv4 = [info for info in tried if info[0] == socket.AF_INET]
        synthesized = _nat64_alternatives(ipv4, exc, cfg, families)
        if synthesized is None:
            raise
        if emit is not None:
            emit(
                "nat64",
                ipv4=[str(info[4][0]) for info in ipv4],
                synthesized=[str(info[4][0]) for info in synthesized],
            )
        return race(synthesized)


def _nat64_alternatives(
    ipv4: List[AddrInfo], exc: BaseException, cfg: Config, families: Tuple[int, ...]
) -> Optional[List[AddrInfo]]:
    """NAT64-synthesized addresses for the IPv4 addresses in ``ipv4`` when
    ``exc`` says this host cannot route to IPv4 (RFC 8305 §7), else None.

    This covers IPv4 literals (§7.1) and names whose answers were IPv4 only,
    as from a resolver without DNS64 (§7.3): either way every IPv4 attempt
    failed at once with "unreachable", which on dual-stack and IPv4-only
    hosts does not happen for working addresses.
    """
    if not (
        cfg.nat64
        and ipv4
        and all(info[0] == socket.AF_INET for info in ipv4)
        and socket.AF_INET6 in families
        and _unreachable(exc)
    ):
        return None
    from . import nat64

    nat64.PREFIXES.lifetime = cfg.nat64_prefix_ttl
    prefixes = nat64.PREFIXES.get()
    synthesized: List[AddrInfo] = []
    for info in ipv4:
        synthesized.extend(nat64.synthesized_infos(str(info[4][0]), int(info[4][1]), prefixes))
    return synthesized or None


def _unreachable(exc: BaseException) -> bool:
    """True if ``exc`` (or every error of a group) says "no route from here"."""
    from .nat64 import UNREACHABLE

    inner = getattr(exc, "exceptions", None)
    if inner is not None:
        return bool(inner) and all(_unreachable(e) for e in inner)
    return isinstance(exc, OSError) and exc.errno in UNREACHABLE


def _race(
    host: Any,
    port: Any,
    known: Optional[List[AddrInfo]],
    families: Tuple[int, ...],
    cfg: Config,
    hist: Optional[History],
    deadline: Optional[float],
    socket_timeout: Optional[float],
    all_errors: bool,
    emit: Optional[events.Emit],
    resolver: Optional[Resolver],
    conn: Connector,
    find_source: Optional[Callable[[str, int], Any]],
    tried: Optional[List[AddrInfo]] = None,
) -> socket.socket:
    """Resolve (unless ``known``) and race; the winner gets the caller's timeout.
    ``tried`` receives the addresses attempted, whatever the outcome."""
    orderer = Orderer(
        policy_table(cfg.policy),
        hist,
        cfg.first_address_family_count,
        **({"find_source": find_source} if find_source is not None else {}),
    )
    if emit is not None:
        emit(
            "race",
            port=port,
            timeout=socket_timeout,
            families=[_FAMILY_NAMES[f] for f in families] if known is None else [],
            known=[str(info[4][0]) for info in known] if known is not None else [],
        )
    inbox = Inbox()
    cancels: List[Callable[[], None]] = []
    lookups: Sequence[int] = ()
    try:
        if known is None:
            res = (
                resolver
                if resolver is not None
                else ThreadedResolver(
                    cfg.resolver_threads, cfg.resolver_idle_timeout, cache=get_dns_cache(cfg)
                )
            )
            lookups = families
            for fam in families:
                if emit is not None:
                    emit("query", family=_FAMILY_NAMES[fam])
                cancels.append(res.resolve(host, port, fam, inbox.deliver))
        race = Race(
            conn,
            config=cfg,
            order=orderer,
            history=hist,
            deadline=deadline,
            all_errors=all_errors,
            inbox=inbox,
            lookups=lookups,
            initial=known or (),
            cancel_lookups=cancels,
            emit=emit,
            timeout=socket_timeout,
        )
    except BaseException:
        for cancel in cancels:
            cancel()
        inbox.close()
        conn.close()
        raise
    try:
        sock = race.run()
    finally:
        if tried is not None:
            tried.extend(attempt.info for attempt in race.started)
    if isinstance(sock, socket.socket):
        sock.settimeout(socket_timeout)
    return sock  # type: ignore[no-any-return]
