"""One call's settings, built once and read by every step.

``connect()`` checks its arguments, looks up what the process state offers
(history, policy, caches) and puts the result here.  Every step of the call
then reads the same object: ``candidates.py`` (which addresses, when),
``ordering.py`` (in which order), ``racing.py`` (the attempts) and the
remembering and reporting at the end.  Nothing is passed down as a long
list of positional arguments, and a step that needs one more setting gets
it from here rather than from a new parameter threaded through the others.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional, Tuple

    from .config import Config
    from .dns.resolvconf import ResolvConf
    from .events import Trace
    from .history import History
    from .nat64 import Prefixes
    from .racing import Connector
    from .resolving import Resolver

__all__ = ["Dial"]


class Dial:
    """What one ``connect()`` call was asked to do, and with what."""

    __slots__ = (
        "all_errors",
        "clock",
        "config",
        "connector",
        "deadline",
        "families",
        "find_source",
        "history",
        "host",
        "nat64_prefixes",
        "port",
        "resolv_conf",
        "resolver",
        "start",
        "timeout",
        "tls",
        "trace",
    )

    def __init__(
        self,
        host: Any,
        port: Any,
        *,
        families: Tuple[int, ...],
        timeout: Optional[float],
        all_errors: bool,
        config: Config,
        history: Optional[History],
        connector: Connector,
        resolver: Optional[Resolver],
        find_source: Optional[Callable[[str, int], Optional[str]]],
        nat64_prefixes: Optional[Prefixes],
        trace: Optional[Trace],
        start: float,
        resolv_conf: Optional[ResolvConf] = None,
        tls: Any = None,
    ) -> None:
        #: The name or literal and the port, as the caller gave them.
        self.host, self.port = host, port
        #: The per-family lookups asked for, AAAA first (``family`` argument).
        self.families = families
        #: The caller's timeout as a socket timeout (None: blocking).
        self.timeout = timeout
        #: When the call gives up (None: never).
        self.deadline = None if timeout is None else start + timeout
        #: ``all_errors`` of ``socket.create_connection`` (3.11+).
        self.all_errors = all_errors
        self.config = config
        #: The history to read and to teach (None: history off for this call).
        self.history = history
        #: Clock and sockets (the real ones, or a fake network in tests).
        self.connector = connector
        self.clock: Callable[[], float] = connector.now
        #: The resolver (None: per-family getaddrinfo on the process's pool).
        self.resolver = resolver
        #: Source address discovery (None: the process's cached route look-ups).
        self.find_source = find_source
        #: NAT64 prefix discovery (None: the process's).
        self.nat64_prefixes = nat64_prefixes
        #: resolv.conf's search rules (None: the system's, read when needed).
        self.resolv_conf = resolv_conf
        #: The TLS stage (``tls.TlsSpec``, or ``tls.Later`` until the caller
        #: hands its context over), or None: the race ends at TCP.
        self.tls = tls
        #: The race's events, or None when nobody listens.
        self.trace = trace
        #: When the call began, on ``clock``.
        self.start = start
