"""The one owner of what eyeshim keeps between calls, in this process.

Everything a connection learns or caches for the next one lives in a single
object, :data:`STATE`, created lazily piece by piece:

==================  ==========================================  ==============
piece               what it is                                  after fork()
==================  ==========================================  ==============
history             per-address RTTs and failures (R10-R12)     kept, new lock
history file        the history shared through a file (opt-in)  kept, new lock
DNS answer cache    optional per-family answers (off default)   kept, new lock
resolver pool       threads running ``getaddrinfo``             dropped
lookups in flight   races waiting on one shared lookup          dropped
NAT64 prefixes      RFC 7050 discovery result                   kept, new lock
policy tables       parsed gai.conf, re-read at most 1/s        kept, new lock
resolv.conf         parsed, re-read at most 1/s                 kept
nsswitch.conf       its hosts: line, re-read at most 1/s        kept
stub resolver       sockets of its lookups; lookups whose race  sockets closed,
                    ended, kept ~1 s to fill the DNS cache      lookups dropped
source addresses    route look-ups, kept for a second           kept
hosts file          the names it lists, re-read on change       kept, new lock
counters            what races came to (``eyeshim status``)     zeroed
==================  ==========================================  ==============

Why one owner: ``fork()`` copies a process with only the forking thread
alive.  Any lock another thread held at that instant stays locked in the
child for ever, and any lookup a pool thread was running will never deliver
its answer there.  Reproduced before this module existed: with the DNS cache
on, a child forked while the parent was inside a lookup joined that lookup
and waited, with ``timeout=None`` for ever, for a thread that did not exist.
With every piece in one place, one ``os.register_at_fork`` hook resets
exactly what a child cannot trust, and nothing can be forgotten; before the
fork, it lets resolver threads that finished their work exit.

Knowledge (history, cache entries, prefixes) is kept across fork: it is as
true in the child as in the parent.  A history shared through a file
(``history_file``) stays shared: the child appends its own lessons to the
same file (appends take no lock, see history_file.py).  Only synchronisation
and threads are replaced.  Counters restart at zero: the child is a new process and reports
its own races.

This module imports nothing of eyeshim at import time; each piece's module
is loaded when the piece is first used.
"""

from __future__ import annotations

import _thread
import importlib
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple

    from .candidates import HostsFile
    from .config import Config
    from .dns.nsswitch import HostsLine
    from .dns.resolvconf import ResolvConf
    from .dns.stub import StubState
    from .events import Counters
    from .history import History
    from .history_file import HistoryFile
    from .nat64 import Prefixes
    from .resolving import AnswerCache, Lookups
    from .sorting import PolicyTable
    from .sorting.policy import GaiConfCache

__all__ = ["STATE", "ProcessState", "SourceCache"]


class SourceCache:
    """Source addresses found by route look-ups, kept for a second.

    Each look-up is a UDP socket ``connect()``-ed to the destination (no packet
    is sent) and costs a few system calls; the engine asks for the same
    destinations race after race.  A second is short enough that a network
    change (which also flushes the history, R12) is noticed at once in human
    terms.
    """

    def __init__(self, lifetime: float = 1.0, size: int = 1024) -> None:
        self.lifetime = lifetime
        self.size = size
        self._entries: Dict[str, Tuple[float, Optional[str]]] = {}

    def __call__(self, address: str, port: int) -> Optional[str]:
        now = time.monotonic()
        entry = self._entries.get(address)
        if entry is not None and now < entry[0]:
            return entry[1]
        from .sorting import find_source

        found = find_source(address, port)
        source = None if found is None else str(found)
        if len(self._entries) >= self.size:
            self._entries.clear()  # crude, but bounded, and refilled in one race
        self._entries[address] = (now + self.lifetime, source)
        return source


# attribute -> (module, factory) of each piece created on first use
_PIECES = {
    "_history": (".history", "History"),
    "_dns_cache": (".resolving", "AnswerCache"),
    "_lookups": (".resolving", "Lookups"),
    "_prefixes": (".nat64", "Prefixes"),
    "_sources": (".state", "SourceCache"),
    "_hosts": (".candidates", "HostsFile"),
    "_counters": (".events", "Counters"),
    "_gai_conf": (".sorting.policy", "GaiConfCache"),
    "_stub": (".dns.stub", "StubState"),
}

# How long a parsed gai.conf is trusted before its stat() is checked again:
# a stat() per race would cost more than the sort it feeds.
_POLICY_RECHECK = 1.0


class ProcessState:
    """Everything eyeshim keeps between calls (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._history: Optional[History] = None
        # The history_file setting the history is shared by ("" = not
        # shared), and the file's keeper; _private counts private_history()
        # blocks, during which nothing is shared.
        self._shared = ""
        self._history_file: Optional[HistoryFile] = None
        self._private = 0
        # Its own lock: reading the file looks up routes (the sources piece,
        # which takes _lock).
        self._sharing = _thread.allocate_lock()
        self._dns_cache: Optional[AnswerCache] = None
        self._lookups: Optional[Lookups] = None
        self._prefixes: Optional[Prefixes] = None
        self._policies: Dict[str, Tuple[float, PolicyTable]] = {}
        self._gai_conf: Optional[GaiConfCache] = None
        self._resolv_conf: Optional[Tuple[float, Optional[Tuple[int, int, int]], ResolvConf]] = None
        self._nsswitch: Optional[Tuple[float, Optional[Tuple[int, int, int]], HostsLine]] = None
        self._stub: Optional[StubState] = None
        self._sources: Optional[SourceCache] = None
        self._hosts: Optional[HostsFile] = None
        self._counters: Optional[Counters] = None

    # -- the pieces ----------------------------------------------------------------

    def _piece(self, attribute: str) -> Any:
        """The piece kept in ``attribute``, created on first use from its
        module (imported only then: a process that never connects loads
        none of them)."""
        piece = getattr(self, attribute)
        if piece is None:
            with self._lock:
                piece = getattr(self, attribute)
                if piece is None:
                    module, name = _PIECES[attribute]
                    factory = getattr(importlib.import_module(module, __package__), name)
                    piece = factory()
                    setattr(self, attribute, piece)
        return piece

    def history(self, config: Config) -> Optional[History]:
        """The process's history, or None when ``config`` turns history off.

        A later config with other limits adjusts it in place rather than
        forgetting what was learnt.
        """
        if not config.history:
            return None
        history: History = self._piece("_history")
        history.configure(config.history_size, config.history_failure_ttl, config.history_rtt_ttl)
        if config.history_file != self._shared:
            self._share(history, config.history_file)
        return history

    def _share(self, history: History, setting: str) -> None:
        """Share ``history`` through the file ``setting`` names ("": stop):
        read the file into it now (the first race that uses the history),
        and let it append what it learns from now on."""
        from .config import history_file_path

        with self._sharing:
            if setting == self._shared or self._private:
                return
            history.journal = None
            self._history_file = None
            if setting:
                from .history_file import HistoryFile

                shared = HistoryFile(
                    history_file_path(setting), history, create_directory=setting == "auto"
                )
                shared.load()
                history.journal = shared.record
                self._history_file = shared
            self._shared = setting

    def private_history(self) -> _PrivateHistory:
        """``with STATE.private_history():`` races in the block use a fresh
        history, shared with no file, and the process's own comes back after.

        For eyeshim's own tools (``demo``, ``check``), whose races to a
        made-up name on loopback must not teach the process, or every
        process sharing the history file, that ``::1`` drops SYNs.  Races of
        other threads during the block use the private history too.
        """
        return _PrivateHistory(self)

    def dns_cache(self, config: Config) -> Optional[AnswerCache]:
        """The process's DNS answer cache, or None when ``config`` turns it off.

        A later config with other limits adjusts it in place: cached answers
        survive a configuration change.
        """
        if not config.dns_cache:
            return None
        cache: AnswerCache = self._piece("_dns_cache")
        cache.configure(
            config.dns_cache_size,
            config.dns_cache_ttl,
            config.dns_cache_negative_ttl,
            config.dns_cache_rotate,
            config.dns_cache_min_ttl,
            config.dns_cache_max_ttl,
            config.dns_cache_stale,
        )
        return cache

    def lookups(self) -> Lookups:
        """The resolver threads and the lookups they are running."""
        lookups: Lookups = self._piece("_lookups")
        return lookups

    def nat64_prefixes(self, config: Config) -> Prefixes:
        """The NAT64 prefixes of this network (RFC 7050), discovered on demand."""
        prefixes: Prefixes = self._piece("_prefixes")
        prefixes.lifetime = config.nat64_prefix_ttl
        return prefixes

    def policy_table(self, setting: Any) -> PolicyTable:
        """``Config.policy`` as a policy table.

        ``"rfc6724"`` is RFC 6724's table.  ``"auto"`` (``/etc/gai.conf``) or a
        path is read the way glibc reads a gai.conf: what the file does not
        replace keeps glibc's built-in values, so eyeshim's first choice is
        the address ``getaddrinfo`` would have put first, and eyeshim is never
        slower than the stdlib where that address works.  No file: RFC 6724.
        """
        from . import sorting

        if not isinstance(setting, str):
            return setting  # type: ignore[no-any-return]
        if setting == "rfc6724":
            return sorting.PolicyTable.rfc6724()
        path = sorting.DEFAULT_GAI_CONF if setting == "auto" else setting
        now = time.monotonic()
        cached = self._policies.get(path)
        if cached is not None and now < cached[0]:
            return cached[1]
        table = sorting.PolicyTable.system(path, base=sorting.PolicyTable.glibc())
        self._policies[path] = (now + _POLICY_RECHECK, table)
        return table

    def gai_conf(self) -> GaiConfCache:
        """Parsed gai.conf files, revalidated by ``stat()``."""
        cache: GaiConfCache = self._piece("_gai_conf")
        return cache

    def resolv_conf(self) -> ResolvConf:
        """``/etc/resolv.conf`` as glibc reads it; its ``stat()`` is looked at
        again at most once a second."""
        from .dns import resolvconf

        conf: ResolvConf = self._file("_resolv_conf", resolvconf.DEFAULT_PATH, resolvconf.load)
        return conf

    def nsswitch(self) -> HostsLine:
        """The ``hosts:`` line of ``/etc/nsswitch.conf``, looked at again at
        most once a second."""
        from .dns import nsswitch

        line: HostsLine = self._file("_nsswitch", nsswitch.DEFAULT_PATH, nsswitch.load)
        return line

    def _file(self, attribute: str, path: str, load: Any) -> Any:
        """A parsed system file kept in ``attribute``: its ``stat()`` is
        checked at most once a second, and it is parsed again when it changed."""
        now = time.monotonic()
        cached = getattr(self, attribute)
        if cached is not None and now < cached[0]:
            return cached[2]
        try:
            info = os.stat(path)
            stamp: Optional[Tuple[int, int, int]] = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            stamp = None
        if cached is not None and stamp == cached[1]:
            parsed = cached[2]
        else:
            stamp, parsed = load()
        setattr(self, attribute, (now + _POLICY_RECHECK, stamp, parsed))
        return parsed

    def stub(self) -> StubState:
        """The stub resolver's sockets and the lookups no race waits for."""
        stub: StubState = self._piece("_stub")
        return stub

    def sources(self) -> SourceCache:
        """Source address discovery, cached for a second."""
        sources: SourceCache = self._piece("_sources")
        return sources

    def hosts(self) -> HostsFile:
        """The names listed in the hosts file."""
        hosts: HostsFile = self._piece("_hosts")
        return hosts

    def counters(self) -> Counters:
        """The race counters of this process."""
        counters: Counters = self._piece("_counters")
        return counters

    def reset_counters(self) -> None:
        with self._lock:
            self._counters = None

    # -- fork ------------------------------------------------------------------------

    def before_fork(self) -> None:
        """Let the resolver threads that finished their work exit first, so
        that the child is forked from a process without them."""
        lookups = self._lookups
        if lookups is not None:
            lookups.before_fork()

    def after_fork_in_child(self) -> None:
        """Replace what a forked child cannot trust (see the module docstring)."""
        self._lock = _thread.allocate_lock()
        self._sharing = _thread.allocate_lock()
        if self._history is not None:
            self._history.after_fork()
        if self._history_file is not None:
            self._history_file.after_fork()
        if self._dns_cache is not None:
            self._dns_cache.after_fork()
        if self._prefixes is not None:
            self._prefixes.after_fork()
        if self._hosts is not None:
            self._hosts.after_fork()
        if self._gai_conf is not None:
            self._gai_conf.after_fork()
        if self._stub is not None:
            # The parent's lookups go on in the parent; their sockets are
            # closed here (the parent's copies stay open).
            self._stub.after_fork()
        # The parent's threads do not exist here: no lookup of theirs will
        # ever answer, and no thread of theirs will take new work.
        self._lookups = None
        self._counters = None


class _PrivateHistory:
    """See :meth:`ProcessState.private_history`."""

    def __init__(self, state: ProcessState) -> None:
        self._state = state
        self._saved: Any = None

    def __enter__(self) -> None:
        state = self._state
        with state._sharing, state._lock:
            self._saved = (state._history, state._shared, state._history_file)
            state._history, state._shared, state._history_file = None, "", None
            state._private += 1

    def __exit__(self, *exc: Any) -> None:
        state = self._state
        with state._sharing, state._lock:
            state._history, state._shared, state._history_file = self._saved
            state._private -= 1


#: The process's state: the only instance.
STATE = ProcessState()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=STATE.before_fork, after_in_child=STATE.after_fork_in_child)
