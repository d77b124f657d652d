"""Name resolution of eyeshim's own, and when it may stand in for the system.

* ``resolvconf``: ``/etc/resolv.conf`` (and ``LOCALDOMAIN``, ``RES_OPTIONS``)
  read the way glibc reads them;
* ``nsswitch``: the ``hosts:`` line of ``/etc/nsswitch.conf``;
* ``wire``: the DNS message codec;
* ``stub``: the stub resolver that runs on the race's selector.

:func:`choice` is the one place that decides, per name, between the stub
resolver and threaded ``getaddrinfo``, and says why.  The rule: a resolver
that answers differently from the system is worse than a slow one, so the
stub answers only where it provably does what ``getaddrinfo`` would do, and
every other case keeps ``getaddrinfo`` (docs/design.md, "Which resolver,
when").
"""

from __future__ import annotations

import os
import socket
import sys
import types

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple

    from ..config import Config
    from ..resolving import Resolver

__all__ = ["GETADDRINFO", "STUB", "Choice", "choice", "resolver_for"]

STUB = "stub"
GETADDRINFO = "getaddrinfo"

# What the stdlib's own getaddrinfo is: a Python function of socket.py
# calling the C function of _socket.  Anything else in its place (a test
# double, gevent, a library's patch) must be honoured.
_STDLIB_CODE = None
_gai = getattr(socket, "getaddrinfo", None)
if getattr(_gai, "__module__", None) == "socket" and getattr(_gai, "__code__", None) is not None:
    code = _gai.__code__  # type: ignore[union-attr]
    if code.co_filename == getattr(socket, "__file__", None):
        _STDLIB_CODE = code
del _gai

# A host name as DNS carries it: letters, digits, hyphens, underscores, dots
# between non-empty labels (no regular expression: re stays unimported).
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_OWN_NAMES = ("localhost", "localhost.localdomain")
# What may be an IP literal (candidates.numeric_addresses decides; this only explains).
_LITERAL_CHARS = frozenset("0123456789abcdefABCDEFxX.:")


def _plain_name(name: str) -> bool:
    body = name[:-1] if name.endswith(".") else name
    return bool(body) and _NAME_CHARS.issuperset(body) and "" not in body.split(".")


class Choice:
    """Which resolver a name gets (:data:`STUB` or :data:`GETADDRINFO`),
    and why, in words."""

    __slots__ = ("reason", "resolver")

    def __init__(self, resolver: str, reason: str) -> None:
        self.resolver = resolver
        self.reason = reason

    @property
    def stub(self) -> bool:
        return self.resolver == STUB

    def __str__(self) -> str:
        return f"{self.resolver} ({self.reason})"

    def __repr__(self) -> str:
        return f"Choice({self.resolver!r}, {self.reason!r})"


def idna(host: str) -> Optional[str]:
    """``host`` as the socket module sends it (``host.encode("idna")``), or
    None where that raises.  ASCII names take the codec's own fast path
    here, without importing it (it loads stringprep and unicodedata)."""
    if host.isascii():
        labels = host.split(".")
        if all(0 < len(label) < 64 for label in labels[:-1]) and len(labels[-1]) < 64:
            return host
        return None
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _is_literal(text: str) -> bool:
    try:
        if ":" in text:
            socket.inet_pton(socket.AF_INET6, text)
        else:
            socket.inet_aton(text)
    except OSError:
        return False
    return True


def _system(reason: str) -> Choice:
    return Choice(GETADDRINFO, reason)


def _getaddrinfo_replaced() -> Optional[str]:
    """Who replaced socket.getaddrinfo, or None when it is the stdlib's.

    A wrapper is a replacement (a wrapt proxy forwards ``__code__``, hence
    the type check), except eyeshim's own opt-in re-sorting stand-in, which
    only reorders what the stdlib's function returns: the race sorts the
    stub's answers itself.
    """
    current: Any = socket.getaddrinfo
    common = sys.modules.get("eyeshim.patches._common")
    ours = sys.modules.get("eyeshim.patches.getaddrinfo")
    if common is not None and ours is not None:
        patch = common.patch_of(current)
        if patch is not None and patch.handler is ours._handler:
            current = current.__wrapped__
    if (
        _STDLIB_CODE is not None
        and type(current) is types.FunctionType
        and current.__code__ is _STDLIB_CODE
    ):
        c_function = getattr(socket, "_socket", None)
        inner = getattr(c_function, "getaddrinfo", None)
        if inner is not None and getattr(inner, "__self__", None) is c_function:
            return None
        return "socket._socket.getaddrinfo is replaced"
    owner = getattr(current, "__module__", None) or type(current).__name__
    return f"socket.getaddrinfo is replaced (by {owner}): it is honoured"


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (AttributeError, ValueError, OSError):
        return False


_IS_GLIBC = _glibc()


# The last process-wide verdict and what it was worked out from: the files
# are re-read by STATE at most once a second, so this is recomputed only when
# one of them (or the configuration, or socket.getaddrinfo) changed.
_last: Tuple[Any, ...] = ()


def _process(config: Config) -> Optional[Choice]:
    """The verdict that holds for every name in this process, if any."""
    global _last
    from ..state import STATE

    key = (
        config.resolver,
        socket.getaddrinfo,
        "HOSTALIASES" in os.environ,
        STATE.nsswitch(),
        STATE.resolv_conf(),
    )
    last = _last
    if last and last[0] == key[0] and all(a is b for a, b in zip(last[1:-1], key[1:])):
        verdict: Optional[Choice] = last[-1]
        return verdict
    verdict = _work_out(config)
    _last = (*key, verdict)
    return verdict


# What choice() said for each name, and the facts it was worked out from:
# the process-wide ones (``_last``), the hosts file's names (a new frozenset
# each time the file is re-read) and the host's own name.  Working a name out
# (IDNA, its shape, the hosts file) costs more than the rest of a cached
# race's set-up.  New facts get a new table, swapped in whole, so a thread
# still working from the old facts writes into the old table, never the new
# one.  Bounded: a process connecting to many names forgets.
_by_host: Tuple[Tuple[Any, ...], Dict[Any, Choice]] = ((), {})
_BY_HOST_MAX = 512


def _work_out(config: Config) -> Optional[Choice]:
    if config.resolver == "system":
        return _system("EYESHIM_RESOLVER=system")
    if not _IS_GLIBC:
        return _system("the stub reproduces glibc's resolver, and this is not glibc")
    replaced = _getaddrinfo_replaced()
    if replaced is not None:
        return _system(replaced)
    if "HOSTALIASES" in os.environ:
        return _system("HOSTALIASES is set (glibc's per-user aliases)")
    from ..state import STATE

    line = STATE.nsswitch()
    if not line.supported:
        return _system(line.reason)
    problems = STATE.resolv_conf().stub_problems()
    if problems:
        return _system(
            f"{STATE.resolv_conf().origin} says what the stub does not implement: "
            + ", ".join(problems)
        )
    return None


def choice(host: Any = None, config: Optional[Config] = None) -> Choice:
    """Which resolver eyeshim uses for ``host`` (with ``host=None``: for
    names in general, in this process), and why."""
    if config is None:
        from ..config import get_config

        config = get_config()
    verdict = _process(config)
    if verdict is not None:
        return verdict
    from ..state import STATE

    if host is None:
        return Choice(STUB, _stub_why())
    global _by_host
    hosts = STATE.hosts()
    own_name = socket.gethostname()
    facts = (_last, hosts.names(), own_name)
    memo = _by_host
    if memo[0] != facts:
        memo = _by_host = (facts, {})
    table = memo[1]
    try:
        known = table.get((type(host), host))
    except TypeError:  # not hashable: worked out below, as any odd host is
        known = None
    if known is not None:
        return known
    found = _for_host(host, STATE.nsswitch(), hosts, own_name)
    if isinstance(host, (str, bytes)):
        if len(table) >= _BY_HOST_MAX:
            table.clear()
        table[(type(host), host)] = found
    return found


def _stub_why() -> str:
    from ..state import STATE

    line, conf = STATE.nsswitch(), STATE.resolv_conf()
    return f"nsswitch hosts: {' '.join(line.services)}; nameservers {', '.join(conf.nameservers)}"


def _for_host(host: Any, line: Any, hosts: Any, own_name: str) -> Choice:
    encoded: Optional[str]
    if isinstance(host, bytes):
        try:
            encoded = host.decode("ascii")
        except UnicodeDecodeError:
            return _system("a name of non-ASCII bytes")
    elif isinstance(host, str):
        encoded = idna(host)
        if encoded is None:
            return _system("a name IDNA cannot encode: getaddrinfo raises what it raises")
    else:
        return _system(f"a host of type {type(host).__name__}")
    name = encoded
    address = name.partition("%")[0]
    if address and _LITERAL_CHARS.issuperset(address) and _is_literal(address):
        return Choice("none", "an IP address: no lookup")
    if not _plain_name(name) or len(name.rstrip(".")) > 253:
        return _system("not a plain host name (characters or lengths DNS names do not have)")
    lowered = name.lower().rstrip(".")
    if host in hosts:
        return _system("listed in the hosts file: answered by getaddrinfo before any resolver")
    if line.local_names and (lowered == "local" or lowered.endswith(".local")):
        return _system("a .local name, answered by mdns in nsswitch.conf")
    if line.own_names and (
        lowered in _OWN_NAMES
        or lowered.endswith(".localhost")
        or lowered.endswith(".localhost.localdomain")
        or lowered.startswith("_")
        or lowered == own_name.lower().rstrip(".")
    ):
        return _system("the host's own name or a localhost name, answered by myhostname")
    return Choice(STUB, _stub_why())


def resolver_for(
    host: Any, port: Any, families: Tuple[int, ...], config: Config
) -> Tuple[Optional[Resolver], Choice]:
    """The stub resolver for one race, or None (and why) when the name goes
    to getaddrinfo."""
    chosen = choice(host, config)
    if not chosen.stub:
        return None, chosen
    if isinstance(port, bool) or not isinstance(port, int):
        # Service names and the rest: getaddrinfo's own parsing and errors.
        return None, _system("a port that is not a number")
    from ..state import STATE

    conf = STATE.resolv_conf()
    if "no-aaaa" in conf.flags and socket.AF_INET not in families:
        return None, _system("options no-aaaa with an IPv6-only lookup")
    from .stub import StubResolver

    cache = STATE.dns_cache(config)
    resolver = StubResolver(conf, families, STATE.stub(), cache, config.dns_cache_stale)
    return resolver, chosen


def describe(environ: Any = None, host: Any = None) -> str:
    """One line for ``eyeshim status`` and ``eyeshim probe``: which resolver
    a process configured by ``environ`` (``EYESHIM_*``) uses for ``host``
    (None: names in general), and why."""
    from ..config import Config

    try:
        config = Config.from_env(environ)
    except (TypeError, ValueError) as exc:
        return f"unknown (bad configuration: {exc})"
    return str(choice(host, config))
