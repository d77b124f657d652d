"""Candidates: which addresses a race may try, and when (RFC 8305 §3).

Everything about getting addresses to the race lives here, so the race
itself (``racing.py``) only schedules attempts:

* **Known addresses.**  An IP literal is resolved with ``AI_NUMERICHOST``,
  no I/O at all.  A name listed in the hosts file is resolved with one
  stock ``AF_UNSPEC`` call in the caller's thread: with ``hosts: files dns``
  a per-family AAAA lookup of a name the file lists only with IPv4
  (``localhost`` on many systems) falls through to DNS, sending a query
  the stock call never would.
* **Lookups.**  Any other name is looked up once per family, AAAA first
  (R1), both at once (R2), on the resolver (``resolving.py``); the answers
  arrive through an :class:`Inbox`.
* **The gate** (when connecting may begin).  At once when AAAA answers with
  an address the policy ranks above IPv4 and history does not say just
  failed (R3); when A answered first, after the Resolution Delay unless
  AAAA answers sooner (R4, R5); at once when every lookup has answered
  (R6).  The R3 exception, and why: RFC 8305 assumes IPv6 is preferred,
  but under RFC 6724 a 6to4 address ranks below IPv4 and a gai.conf can
  prefer IPv4 outright; starting with such an address would spend an
  attempt delay on the address the sort ranks second.
* **Late answers** join the untried addresses, sorted together with them
  (R7, R24); attempts already running are not touched (R22).
* **Which resolution error is raised** when nothing resolved.

The order itself is ``ordering.py``'s; this module asks it to sort whenever
addresses join.
"""

from __future__ import annotations

import _thread
import collections
import math
import os
import select
import socket
import time

from . import events
from .addrinfo import AddrInfo, Host, Port, address_of, family_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

    from .dial import Dial
    from .ordering import Orderer
    from .resolving import Answer, Resolver

__all__ = ["Candidates", "HostsFile", "Inbox", "known_addresses", "numeric_addresses"]


# A literal of a family the caller excluded (urllib3 forcing IPv4 and an
# IPv6 literal): glibc says EAI_ADDRFAMILY or EAI_FAMILY.
_WRONG_FAMILY = frozenset(
    code
    for code in (getattr(socket, "EAI_ADDRFAMILY", None), getattr(socket, "EAI_FAMILY", None))
    if code is not None
)


# Characters an IP literal can hold before any "%scope": digits, hex, dots,
# colons, and the "x" of inet_aton's hex forms ("0x7f.1").  A host with any
# other character is a name, and asking getaddrinfo (which then raises) costs
# more than the whole stdlib fast path we are trying to match.
_LITERAL_CHARACTERS = "0123456789abcdefABCDEFxX.:"


def numeric_addresses(host: Host, port: Port, family: int = 0) -> Optional[List[AddrInfo]]:
    """Resolve ``host`` without any I/O if it is an IP literal (or None).

    Returns None for a name that needs a lookup.  Other errors (a bad port,
    a wrong argument type) propagate exactly as getaddrinfo raises them, so
    the caller sees the stdlib's own error for bad input.
    """
    if isinstance(host, str) and host.partition("%")[0].strip(_LITERAL_CHARACTERS):
        return None
    try:
        return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_NONAME:
            return None
        if exc.errno in _WRONG_FAMILY:
            return []  # a literal of the other family: nothing to connect to
        # EAI_SERVICE (unknown port name) and friends: same answer as the
        # stdlib would give, no point asking DNS.
        raise


class HostsFile:
    """The set of names in the hosts file, re-read when the file changes."""

    def __init__(self, path: str = "/etc/hosts", recheck: float = 1.0) -> None:
        self.path = path
        self.recheck = recheck
        self._checked = -math.inf
        self._lock = _thread.allocate_lock()
        self._stamp: Optional[Tuple[int, int]] = None
        self._names: frozenset[str] = frozenset()

    def after_fork(self) -> None:
        """In a forked child: the lock may have been held by a parent thread."""
        self._lock = _thread.allocate_lock()

    def __contains__(self, host: object) -> bool:
        if isinstance(host, bytes):
            try:
                host = host.decode("ascii")
            except UnicodeDecodeError:
                return False
        if not isinstance(host, str):
            return False
        return host.lower().rstrip(".") in self.names()

    def names(self) -> frozenset[str]:
        # A stat() per connection would cost more than the rest of the fast
        # path; the file is looked at again at most once per ``recheck``.
        now = time.monotonic()
        if now < self._checked + self.recheck:
            return self._names
        try:
            st = os.stat(self.path)
        except OSError:
            stamp = None
        else:
            stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            self._checked = now
            if stamp is None:
                self._names, self._stamp = frozenset(), None
            elif stamp != self._stamp:
                self._names = self._parse()
                self._stamp = stamp
            return self._names

    def _parse(self) -> frozenset[str]:
        names: set[str] = set()
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    fields = line.split("#", 1)[0].split()
                    names.update(name.lower().rstrip(".") for name in fields[1:])
        except OSError:
            return frozenset()
        return frozenset(names)


def known_addresses(
    host: Host, port: Port, family: int, hosts: HostsFile
) -> Optional[List[AddrInfo]]:
    """The addresses of ``host`` if they are known without DNS, else None.

    IP literals (and None), then names in the hosts file, as the stock
    ``AF_UNSPEC`` call returns them.  OSError when that call returns nothing
    (the stdlib's "getaddrinfo returns an empty list").
    """
    known = numeric_addresses(host, port, family)
    if known is None and host in hosts:
        known = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    if known is not None and not known:
        raise OSError("getaddrinfo returns an empty list")
    return known


class Inbox:
    """DNS answers travelling to the racing thread, and what it must watch
    for them.

    Answers come two ways.  Resolver threads call :meth:`deliver` from their
    own thread; a resolver that works on the race's own thread (non-blocking
    sockets, no thread at all) is given the inbox (``attach(inbox)``),
    registers its sockets with :meth:`watch` and its next timeout with
    :meth:`wake_at`; its callbacks, run in the racing thread when a socket
    is readable or the time has come, call :meth:`deliver` there.

    The racer blocks in :meth:`wait` while no attempt runs (a condition
    variable, or ``poll()`` when sockets are watched), or in the connector's
    ``select()`` while attempts run, which watches :meth:`watchers`.  A
    delivery from a thread notifies the condition and, once the racer asked
    for one, writes a byte to a wake-up socket pair, created only when
    needed: on the happy path both answers arrive before any attempt starts,
    and the race costs no extra file descriptors.
    """

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        # Held while nothing has arrived; a delivery releases it, and the
        # racer's acquire() both waits for and consumes the signal.  Cheaper
        # than a Condition, which allocates a lock per wait.
        self._arrived = _thread.allocate_lock()
        self._arrived.acquire()
        self._signalled = False
        self._answers: Deque[Answer] = collections.deque()
        self._reader: Optional[socket.socket] = None
        self._writer: Optional[socket.socket] = None
        self._watched: Dict[int, Callable[[], None]] = {}
        self._timer: Optional[Tuple[float, Callable[[], None]]] = None
        #: False once a resolver on the racing thread is attached: it delivers
        #: only from that thread, so no wake-up socket pair is ever needed.
        self.threads = True
        self._closed = False

    def deliver(self, answer: Answer) -> None:
        """Called from any thread; an answer for a finished race is dropped."""
        with self._lock:
            if self._closed:
                return
            self._answers.append(answer)
            if not self._signalled:
                self._signalled = True
                self._arrived.release()
            if self._writer is not None:
                try:
                    self._writer.send(b"\0")
                except OSError:
                    pass  # the pipe is full: the reader is awake anyway

    def take(self) -> List[Answer]:
        with self._lock:
            answers = list(self._answers)
            self._answers.clear()
            return answers

    def watch(self, fd: int, on_readable: Callable[[], None]) -> None:
        """Call ``on_readable()`` in the racing thread whenever ``fd`` is
        readable (a resolver's own socket), until :meth:`unwatch`."""
        self._watched[fd] = on_readable

    def unwatch(self, fd: int) -> None:
        self._watched.pop(fd, None)

    def wake_at(self, when: Optional[float], on_time: Optional[Callable[[], None]] = None) -> None:
        """Call ``on_time()`` in the racing thread once the monotonic clock
        reaches ``when`` (one timer per inbox; None cancels it)."""
        self._timer = None if when is None or on_time is None else (when, on_time)

    def timer(self) -> Optional[float]:
        """When the timer set with :meth:`wake_at` is due, if one is set."""
        return None if self._timer is None else self._timer[0]

    def run_timer(self, now: float) -> None:
        """Run the timer if it is due (the race calls this each turn)."""
        timer = self._timer
        if timer is not None and now >= timer[0]:
            self._timer = None
            timer[1]()

    def watchers(self) -> Dict[int, Callable[[], None]]:
        """What a selector must watch for this inbox: the wake-up socket for
        deliveries from threads, and the watched sockets."""
        watchers = dict(self._watched)
        if self.threads:
            watchers[self.fileno()] = self.drain
        return watchers

    def wait(self, timeout: Optional[float]) -> None:
        """Block until an answer is waiting or ``timeout`` passes (serving
        the watched sockets meanwhile)."""
        if self._watched:
            self._poll(timeout)
            return
        with self._lock:
            if self._answers:
                return
        got = self._arrived.acquire(True, -1 if timeout is None else timeout)
        if got:
            with self._lock:
                self._signalled = False  # held again: the next wait waits

    def _poll(self, timeout: Optional[float]) -> None:
        if self._empty():
            poller = select.poll()
            watchers = self.watchers()
            for fd in watchers:
                poller.register(fd, select.POLLIN)
            wait_ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
            for fd, _ in poller.poll(wait_ms):
                callback = watchers.get(fd)
                if callback is not None:
                    callback()

    def _empty(self) -> bool:
        with self._lock:
            return not self._answers

    def fileno(self) -> int:
        """A descriptor that becomes readable when an answer arrives."""
        with self._lock:
            if self._reader is None:
                self._reader, self._writer = socket.socketpair()
                self._reader.setblocking(False)
                self._writer.setblocking(False)
                if self._answers:
                    self._writer.send(b"\0")
            return self._reader.fileno()

    def drain(self) -> None:
        with self._lock:
            if self._reader is None:
                return
            try:
                while self._reader.recv(512):
                    pass
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._answers.clear()
            self._watched.clear()
            self._timer = None
            for sock in (self._reader, self._writer):
                if sock is not None:
                    sock.close()
            self._reader = self._writer = None


def _dedupe_key(info: AddrInfo) -> Tuple[Any, ...]:
    return (info[0], info[1], info[2], info[4])


class Candidates:
    """The addresses of one race, and whether the race may try one yet.

    Created with the addresses already known (``known``), or with none, in
    which case :meth:`start` looks the name up.  The race asks, each turn:
    :meth:`update` (take new answers), :attr:`ready` (may an attempt start?),
    :meth:`next` (the best untried address), :meth:`wake_time` (when the
    gate may open by itself), :attr:`pending` (are lookups outstanding?) and,
    when everything has failed, :meth:`resolution_error`.
    """

    def __init__(self, dial: Dial, order: Orderer, known: Optional[List[AddrInfo]]) -> None:
        self._dial = dial
        self._order = order
        self._trace = dial.trace
        self.inbox = Inbox()
        self._resolver: Optional[Resolver] = None
        self._pending: Set[int] = set()
        self._cancels: List[Callable[[], None]] = []
        self._untried: List[AddrInfo] = []
        self._attempted: List[int] = []  # families of the addresses handed out
        # every address resolved so far (deduplicated), in arrival order
        self._seen: Dict[Tuple[Any, ...], AddrInfo] = {}
        self._first_answer: Optional[float] = None
        self._gate_open = False
        self._dns_errors: Dict[int, BaseException] = {}
        # Positive answers not (yet) known to be for the name an AF_UNSPEC
        # lookup would have used, and those already in the race.
        self._held: Dict[int, Answer] = {}
        self._names: Dict[int, Optional[str]] = {}
        self._search: Optional[List[str]] = None  # the candidate names, once asked
        # When the last lookup answered, and the stdlib's order of every
        # address: the race makes sure it is never behind the stdlib's walk.
        self._resolved_at: Optional[float] = None
        self._stock: Optional[List[AddrInfo]] = None
        if known is not None:
            self._add(known)
            self._open_gate("known")
            self._resolved_at = dial.start

    # -- lookups -------------------------------------------------------------------

    def start(self, resolver: Resolver) -> None:
        """Send the per-family lookups, AAAA first (R1), all at once (R2)."""
        self._resolver = resolver
        attach = getattr(resolver, "attach", None)
        if attach is not None:
            # A resolver on the race's own thread: it delivers from there only.
            self.inbox.threads = False
            attach(self.inbox)
        for family in self._dial.families:
            self._lookup(family)

    def _lookup(self, family: int) -> None:
        assert self._resolver is not None
        dial = self._dial
        if self._trace is not None:
            self._trace(
                events.Query,
                family=family_name(family),
                resolver=getattr(self._resolver, "description", None),
            )
        self._pending.add(family)
        self._cancels.append(
            self._resolver.resolve(dial.host, dial.port, family, self.inbox.deliver)
        )

    @property
    def pending(self) -> bool:
        """Are lookups still outstanding?"""
        return bool(self._pending)

    def update(self, now: float) -> None:
        """Take the answers that arrived, and open the gate if it may open."""
        if self._pending:
            self.inbox.run_timer(now)
            answers = self.inbox.take()
            for answer in answers:
                self._take(answer)
            if answers:
                self._settle(now)
                if not self._pending:
                    self._resolved_at = now
        if not self._gate_open and self._untried:
            self._check_gate(now)

    def _take(self, answer: Answer) -> None:
        self._pending.discard(answer.family)
        trace = self._trace
        if trace is not None:
            if answer.error is not None:
                trace(events.DnsAnswer, family=family_name(answer.family), error=str(answer.error))
            else:
                trace(
                    events.DnsAnswer,
                    family=family_name(answer.family),
                    addresses=[address_of(info) for info in answer.infos],
                )
        if answer.error is not None:
            self._dns_errors[answer.family] = answer.error
        elif answer.family == socket.AF_UNSPEC:
            # The one-lookup fallback (see _settle): it replaces both families.
            self._held.clear()
            self._names[socket.AF_UNSPEC] = answer.name
            self._add(answer.infos)
        elif socket.AF_UNSPEC not in self._pending:
            self._held[answer.family] = answer

    # -- one name for both families ------------------------------------------------
    #
    # Each per-family getaddrinfo walks resolv.conf's search list on its own
    # and stops at the first candidate name that has a record *of its
    # family*; the stock AF_UNSPEC lookup stops at the first candidate that
    # has *any* record, for both families.  With "search lab.test
    # example.org", "mix" having only an A record as mix.lab.test and only an
    # AAAA record as mix.example.org, stock connects to mix.lab.test, and an
    # AAAA answer taken at face value would connect to another host.  The
    # canonical name of each answer (AI_CANONNAME) tells which candidate
    # answered; an answer is raced only when it is provably for the name an
    # AF_UNSPEC lookup would have used.

    def _settle(self, now: float) -> None:
        accepted: List[Answer] = []
        for family in list(self._held):
            verdict = self._belongs(self._held[family])
            if verdict is None:
                continue  # wait for the other family to answer
            answer = self._held.pop(family)
            if verdict == "unspec":
                self._held.clear()
                self._lookup(socket.AF_UNSPEC)
                return
            if verdict:
                accepted.append(answer)
        # Answers that arrived together are sorted in once (the sort is of
        # every untried address anyway: one sort gives the same order as two).
        fresh: List[AddrInfo] = []
        for answer in accepted:
            new = self._new(answer.infos)
            if new:
                self._names[answer.family] = answer.name
                fresh += new
        if fresh:
            self._sort_in(fresh)
            if self._first_answer is None:
                self._first_answer = now

    def _belongs(self, answer: Answer) -> Any:
        """True: race it; False: drop it (another name answered first in
        the search order); None: not known yet; "unspec": cannot tell, ask
        once for both families."""
        if answer.name is None:
            return True  # a resolver that does not say which name answered
        other = socket.AF_INET if answer.family == socket.AF_INET6 else socket.AF_INET6
        if other not in self._dial.families or other in self._dns_errors:
            return True
        names = self._search_names()
        if len(names) < 2:
            return True  # no search list applies: one name for every family
        position = _position(names, answer.name)
        if other in self._pending:
            # Safe before the other family answers only if no name comes
            # before this one in the search order.
            return True if position == 0 else None
        other_name = self._names.get(other)
        if other in self._held:
            other_name = self._held[other].name
        if other_name is None or _same_name(other_name, answer.name):
            return True
        other_position = _position(names, other_name)
        if position is None or other_position is None:
            return "unspec"
        return position < other_position

    def _search_names(self) -> List[str]:
        names = self._search
        if names is None:
            names = self._search = self._work_out_search_names()
        return names

    def _work_out_search_names(self) -> List[str]:
        host = self._dial.host
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if not isinstance(host, str):
            return []
        conf = self._dial.resolv_conf
        if conf is None:
            from .state import STATE

            conf = STATE.resolv_conf()
        return conf.candidates(host)

    # -- the untried addresses -----------------------------------------------------

    def _add(self, infos: List[AddrInfo]) -> None:
        new = self._new(infos)
        if new:
            self._sort_in(new)

    def _new(self, infos: List[AddrInfo]) -> List[AddrInfo]:
        """The addresses of ``infos`` not seen before (now seen)."""
        new = []
        for info in infos:
            key = _dedupe_key(info)
            if key not in self._seen:
                self._seen[key] = info
                new.append(info)
        return new

    def _sort_in(self, new: List[AddrInfo]) -> None:
        self._stock = None
        # R7/R24: newcomers are sorted together with the addresses not yet
        # tried, continuing the interleaving of those already handed out;
        # attempts already running are left alone (R22).
        self._untried = self._order(self._untried + new, self._attempted)
        if self._trace is not None:
            known, rules = self._order.describe(self._untried)
            if known:
                self._trace(events.HistoryKnown, known=known)
            self._trace(events.Sorted, order=[address_of(i) for i in self._untried], rules=rules)

    def close(self) -> None:
        """The race is over: stop listening (queued lookups are cancelled)."""
        for cancel in self._cancels:
            cancel()
        self._cancels.clear()
        self.inbox.close()

    # -- the gate ------------------------------------------------------------------

    def _check_gate(self, now: float) -> None:
        if not self._pending:
            # Every lookup has answered: nothing left to wait for (R6 when
            # the AAAA answer was negative).
            self._open_gate("all answered")
            return
        head = self._untried[0]
        if (
            head[0] == socket.AF_INET6
            and not self._known_broken(head)
            and self._order.beats_ipv4(head)
        ):
            self._open_gate("aaaa")  # R3: a usable, preferred IPv6 address: go
        elif self._first_answer is not None and now >= self._resolution_deadline():
            # R4: A came first and AAAA is late.  The same wait applies when
            # AAAA came first but history says its addresses just failed, or
            # the policy ranks them below IPv4 (see the module docstring).
            self._open_gate("resolution delay")

    def _resolution_deadline(self) -> float:
        assert self._first_answer is not None
        return self._first_answer + self._dial.config.resolution_delay

    def _open_gate(self, reason: str) -> None:
        self._gate_open = True
        if self._trace is not None and self._untried:
            self._trace(events.GateOpened, reason=reason)

    def _known_broken(self, info: AddrInfo) -> bool:
        history = self._dial.history
        return history is not None and (
            history.failed_recently(address_of(info), info[4][1])
            or history.dead_family(self._dial.host, info[0])
        )

    def wake_time(self) -> Optional[float]:
        """When the candidates need the racing thread back by themselves: the
        Resolution Delay opening the gate, or a resolver's timer."""
        times = []
        if not (self._gate_open or not self._untried or self._first_answer is None):
            times.append(self._resolution_deadline())
        if self._pending:
            timer = self.inbox.timer()
            if timer is not None:
                times.append(timer)
        return min(times) if times else None

    # -- for the race --------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """May an attempt start now?"""
        return self._gate_open and bool(self._untried)

    @property
    def exhausted(self) -> bool:
        """Nothing left to try, and nothing more coming."""
        return not self._untried and not self._pending

    def next(self) -> AddrInfo:
        """The best untried address; it is the race's from now on."""
        info = self._untried.pop(0)
        self._attempted.append(info[0])
        return info

    def take(self, info: AddrInfo) -> None:
        """Hand the untried ``info`` to the race out of turn (see
        ``Race._catch_up``)."""
        self._untried.remove(info)
        self._attempted.append(info[0])

    def stock_walk(self) -> Optional[Tuple[List[AddrInfo], float]]:
        """Every address, in the order the stdlib would try them, and when
        the stdlib's single lookup would have returned; None while lookups
        are pending (the stdlib would not have begun)."""
        if self._resolved_at is None or self._pending:
            return None
        if self._stock is None:
            self._stock = self._order.stock_order(list(self._seen.values()))
        return self._stock, self._resolved_at

    def resolution_error(self) -> Optional[BaseException]:
        """What to raise when the race ends without having tried anything
        because nothing resolved; None if something did."""
        if self._seen:
            return None
        # Both lookups failed.  The A lookup's error is the one AF_UNSPEC
        # would most often have reported.
        for family in (socket.AF_INET, socket.AF_UNSPEC, socket.AF_INET6):
            if family in self._dns_errors:
                return self._dns_errors[family]
        if self._dns_errors:
            return next(iter(self._dns_errors.values()))
        return OSError("getaddrinfo returns an empty list")


def _same_name(first: str, second: str) -> bool:
    return first.rstrip(".").lower() == second.rstrip(".").lower()


def _position(names: List[str], name: str) -> Optional[int]:
    """Where ``name`` is in the search order; None for a name that is not a
    candidate (a CNAME's target: which candidate led to it is unknown)."""
    for index, candidate in enumerate(names):
        if _same_name(candidate, name):
            return index
    return None
