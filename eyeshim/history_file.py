"""The history, shared by one user's processes through a small file (``history_file``).

A history lives in its process, so every short-lived process (pip, a CLI, a
cron job) on a network whose IPv6 is dead pays an attempt delay at its first
connection to each name: it starts knowing nothing.  With
``EYESHIM_HISTORY_FILE=1`` (off by default) the processes of one user share
what failed, through ``$XDG_CACHE_HOME/eyeshim/history.tsv``, and the
second ``pip install`` goes straight to IPv4.

**What is shared** is the knowledge that changes the order of the next race
(``history.py``): addresses that timed out, were unreachable or lost a race;
(address, port) pairs that refused; families dead for a name; and what took
them back (a success, a flush when the network changed, ``forget``).  RTTs
are not shared: every connection changes them, so sharing them would write
on the happy path, and they save a fraction of an attempt delay at most.

**The file** is text, one lesson per line in the order they were written,
fields separated by tabs: the wall-clock time, the network (below), the kind
(``failed``, ``refused``, ``dead``, ``ok``, ``forget``, ``flush``) and its
fields (an address, a port, a name, a family).  Not JSON: the file is read
at a process's first race, and splitting a line costs a twentieth of
parsing it as JSON.

**Concurrent writers, without a lock.**

* A lesson is appended with one ``write()`` of one short line to the file
  opened with ``O_APPEND``: the kernel puts each such write at the end of
  the file, whole, so the lines of concurrent writers never interleave (on
  local file systems; NFS does not promise it).
* Reading folds the lines in order; a line that does not parse (a torn
  write after a crash, another version's kind) is skipped.
* When the file has grown past twice what it still says plus 16 KiB, the
  process that notices rewrites it: the live lessons go to a temporary file
  in the same directory, which ``os.replace()`` then puts in place
  atomically, so a reader sees the old file or the new one, never half of
  one.  A lesson another process appends to the old file between the read
  and the rename is lost; that process still knows it, and the next failure
  teaches it again.
* No lock is ever held, so none can be left held: not by a process killed
  in the middle of a write, not by ``fork()`` (a child inherits no lock to
  wait for), not on a file system without locks.

**Bounded and expiring** like the in-memory history: a lesson older than
``history_failure_ttl`` is dropped when read, at most ``history_size`` of
each kind are kept (the most recent), and compaction drops the rest.

**Network changes** (R12: no knowledge across networks).  Each line carries
the network it was learnt on: the source addresses this host uses towards a
global IPv6 and a global IPv4 destination (route look-ups of documentation
addresses; nothing is sent).  Lines of another network are ignored when
read and dropped at the next compaction.

**When.**  The file is read once per process, at the first race that uses
the history (``state.STATE``), not at start-up: a process that never
connects never reads it.  A lesson is appended in the racing thread when it
is learnt, after the race; a race where nothing failed learns nothing and
writes nothing.  One process writes the same lesson at most once a minute
(a client retrying a closed port in a loop).

**Errors**: a file that cannot be read or written is reported once per
process on stderr, and the process goes on without it.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Tuple

    from .history import History

__all__ = ["Folded", "HistoryFile", "fold", "network"]

#: Destinations of the route look-ups that name the network: documentation
#: addresses (RFC 3849, RFC 5737), which the default route carries and which
#: nothing is ever sent to.
_PROBES = ("2001:db8::1", "192.0.2.1")
#: One process writes one lesson at most this often.
_REPEAT = 60.0
#: Growth tolerated beyond twice the live lessons before a compaction.
_SLACK = 16384
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_FAMILIES: Dict[str, int] = {"ipv6": socket.AF_INET6, "ipv4": socket.AF_INET}
_NAMES: Dict[int, str] = {family: name for name, family in _FAMILIES.items()}


def network() -> str:
    """This host's network, as the lines name it: its source addresses towards
    a global IPv6 and a global IPv4 destination ("-" for none)."""
    from .state import STATE

    sources = STATE.sources()  # route look-ups, kept for a second
    return " ".join(sources(address, 9) or "-" for address in _PROBES)


class Folded:
    """What a file says, folded: wall-clock times of the live lessons."""

    __slots__ = ("dead", "failed", "lines", "refused")

    def __init__(self) -> None:
        #: address -> [when, failures]
        self.failed: Dict[str, List[Any]] = {}
        #: (address, port) -> when
        self.refused: Dict[Tuple[str, Any], float] = {}
        #: (name, family) -> when
        self.dead: Dict[Tuple[str, int], float] = {}
        #: lines read (for the compaction decision and ``status``)
        self.lines = 0

    def __len__(self) -> int:
        return len(self.failed) + len(self.refused) + len(self.dead)

    def encode(self, net: str) -> List[str]:
        """The live lessons as lines, oldest first."""
        items: List[Tuple[float, Tuple[Any, ...]]] = []
        for address, (when, failures) in self.failed.items():
            items.append((when, ("failed", address, failures)))
        for (address, port), when in self.refused.items():
            items.append((when, ("refused", address, port)))
        for (name, family), when in self.dead.items():
            items.append((when, ("dead", name, _NAMES[family])))
        items.sort(key=lambda item: item[0])
        return [_line(when, net, fields) for when, fields in items]


def _line(when: float, net: str, fields: Tuple[Any, ...]) -> str:
    return "\t".join((f"{when:.3f}", net, *("" if f is None else str(f) for f in fields))) + "\n"


def _port(text: str) -> Any:
    """A port as the history keys it: the int of the socket address (a
    service name stays a name; none is None)."""
    if text.isdigit():
        return int(text)
    return text or None


def fold(lines: List[str], now: float, net: str, ttl: float, size: int) -> Folded:
    """Fold the lines of a file into what is still live at wall time ``now``
    on network ``net``: at most ``size`` lessons of each kind, none older
    than ``ttl``.  Lines that do not parse, or of another network, are
    skipped."""
    folded = Folded()
    failed, refused, dead = folded.failed, folded.refused, folded.dead
    for text in lines:
        folded.lines += 1
        if not text.endswith("\n"):
            continue  # a write still in progress, or cut short: its fields may be too
        fields = text[:-1].split("\t")
        if len(fields) < 3 or fields[1] != net:
            continue
        try:
            when, kind = float(fields[0]), fields[2]
            if kind == "failed":
                address = fields[3]
                count = int(fields[4]) if len(fields) > 4 else 1
                known = failed.get(address)
                failed[address] = (
                    [max(when, known[0]), known[1] + count] if known else [when, count]
                )
            elif kind == "refused":
                key = (fields[3], _port(fields[4]))
                refused[key] = max(when, refused.get(key, when))
            elif kind == "dead":
                dead_key = (fields[3], _FAMILIES[fields[4]])
                dead[dead_key] = max(when, dead.get(dead_key, when))
            elif kind in ("ok", "forget"):
                address = fields[3]
                if address in failed and failed[address][0] <= when:
                    del failed[address]
                if kind == "ok":
                    key = (address, _port(fields[4]))
                    if refused.get(key, when + 1) <= when:
                        del refused[key]
                    family = _FAMILIES.get(fields[5])
                    for gone in [k for k, t in dead.items() if k[1] == family and t <= when]:
                        del dead[gone]
            elif kind == "flush":
                for table in (refused, dead):
                    for gone in [k for k, t in table.items() if t <= when]:
                        del table[gone]
                for address in [a for a, (t, _) in failed.items() if t <= when]:
                    del failed[address]
        except (ValueError, IndexError, KeyError):  # torn, or another version's
            continue
    oldest = now - ttl
    _keep(failed, oldest, size, lambda value: value[0])
    _keep(refused, oldest, size, lambda value: value)
    _keep(dead, oldest, size, lambda value: value)
    return folded


def _keep(table: Dict[Any, Any], oldest: float, size: int, when: Any) -> None:
    """Drop what is older than ``oldest``, keep the ``size`` most recent,
    and leave the table ordered oldest first (the LRU order of History)."""
    live = sorted(
        ((key, value) for key, value in table.items() if when(value) >= oldest),
        key=lambda item: when(item[1]),
    )
    table.clear()
    table.update(live[-size:] if size > 0 else [])


class HistoryFile:
    """The file one process's history is shared through (see the module doc)."""

    def __init__(self, path: str, history: History, *, create_directory: bool = False) -> None:
        self.path = path
        self.history = history
        self._create_directory = create_directory
        self._lock = threading.Lock()
        self._written: Dict[Tuple[Any, ...], float] = {}
        self._limit = _SLACK
        self._broken = False

    def after_fork(self) -> None:
        """In a forked child: the lock may have been held by a parent thread."""
        self._lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------

    def read(self) -> Folded:
        """What the file says now (empty when there is no file)."""
        history = self.history
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                lines = handle.readlines()
        except FileNotFoundError:
            lines = []
        return fold(lines, time.time(), network(), history.failure_ttl, history.max_entries)

    def load(self) -> int:
        """Teach the history what the file says, and rewrite a file grown
        past its bound; the number of lessons taught."""
        try:
            folded = self.read()
        except OSError as exc:
            self._fail("cannot read it", exc)
            return 0
        taught = self.teach(folded)
        size = _size(self.path)
        # Twice what the live lessons take (as long as the file's lines are,
        # on average), and some slack.
        self._limit = 2 * size * taught // max(1, folded.lines) + _SLACK
        if folded.lines > taught and size > self._limit:
            try:
                self._compact()
            except OSError as exc:
                self._fail("cannot rewrite it", exc)
        return taught

    def teach(self, folded: Folded) -> int:
        """Teach the history what ``folded`` says; the number of lessons."""
        now = time.time()
        self.history.restore(
            {a: (max(0.0, now - when), count) for a, (when, count) in folded.failed.items()},
            {key: max(0.0, now - when) for key, when in folded.refused.items()},
            {key: max(0.0, now - when) for key, when in folded.dead.items()},
        )
        return len(folded)

    # -- writing ---------------------------------------------------------------------

    def record(self, kind: str, *fields: Any) -> None:
        """The history's journal: append one lesson.  Never raises."""
        if self._broken:
            return
        try:
            now = time.time()
            key = (kind, *fields)
            with self._lock:
                if kind in ("ok", "forget", "flush"):
                    # Whatever was written before may be contradicted now.
                    self._written.clear()
                else:
                    last = self._written.get(key)
                    if last is not None and now - last < _REPEAT:
                        return
                    if len(self._written) >= 4096:
                        self._written.clear()
                    self._written[key] = now
            if not _shareable(kind, fields):
                return
            if self._append(_line(now, network(), _lesson(kind, fields))) > self._limit:
                self._compact()
        except Exception as exc:  # sharing must never break a connection
            self._fail("cannot write it", exc)

    def _append(self, line: str) -> int:
        """Append one line; the file's size after it."""
        # Never through a symbolic link: a path in a shared directory (an
        # explicit one may be) must not let another user aim the appends.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NO_FOLLOW
        try:
            fd = os.open(self.path, flags, 0o600)
        except FileNotFoundError:
            if not self._create_directory:
                raise
            os.makedirs(os.path.dirname(self.path), 0o700, exist_ok=True)
            fd = os.open(self.path, flags, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def _compact(self) -> None:
        """Rewrite the file with its live lessons only (atomically)."""
        with self._lock:
            folded = self.read()
            lines = folded.encode(network())
            temporary = f"{self.path}.{os.getpid()}.{threading.get_ident()}.tmp"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW
            try:
                fd = os.open(temporary, flags, 0o600)
            except FileExistsError:  # left by a process of the same id that died here
                os.unlink(temporary)
                fd = os.open(temporary, flags, 0o600)
            try:
                try:
                    os.write(fd, "".join(lines).encode("utf-8"))
                finally:
                    os.close(fd)
                os.replace(temporary, self.path)
            except BaseException:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass
                raise
            self._limit = 2 * sum(map(len, lines)) + _SLACK

    def _fail(self, what: str, exc: BaseException) -> None:
        # stderr, not logging: this runs inside a connection, and logging
        # handlers may connect (see events.quiet_logging).  Once per process.
        if self._broken:
            return
        self._broken = True
        self.history.journal = None
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else repr(exc)
        stream = sys.stderr
        if stream is not None:
            try:
                stream.write(
                    f"eyeshim: history file {self.path}: {what} ({reason}); going on without it\n"
                )
            except Exception:
                pass


def _lesson(kind: str, fields: Tuple[Any, ...]) -> Tuple[Any, ...]:
    """A journal call as the fields of its line."""
    if kind == "dead":
        name, family = fields
        return (kind, name.decode("ascii") if isinstance(name, bytes) else name, _NAMES[family])
    if kind == "ok":
        address, port, family = fields
        return (kind, address, port, _NAMES.get(family))
    return (kind, *fields)


def _shareable(kind: str, fields: Tuple[Any, ...]) -> bool:
    """Can this lesson be written as one line (a name is text without tab
    or newline, a family is one of the two)?"""
    if kind == "dead":
        name, family = fields
        if isinstance(name, bytes):
            if not name.isascii():
                return False
            name = name.decode("ascii")
        if not isinstance(name, str) or family not in _NAMES:
            return False
        fields = (name,)
    return not any(isinstance(f, str) and ("\t" in f or "\n" in f or "\r" in f) for f in fields)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
