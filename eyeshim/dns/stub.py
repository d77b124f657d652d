"""eyeshim's stub resolver: AAAA and A queries on the race's own selector.

No thread: the queries go out on non-blocking UDP sockets that the race's
inbox watches (``Inbox.watch``); replies are read, and timers fire, in the
racing thread (``Inbox.wake_at``).  Answers join the race through the inbox
exactly as threaded answers do.

It does what glibc's ``getaddrinfo`` does for a name that reaches DNS (glibc
``resolv/``: ``res_search``, ``res_query``, ``res_send``), so that the
addresses it returns are the ones the stock call would return:

* **Names**: ``ResolvConf.search_plan`` (``search``, ``ndots``, a final dot,
  ``no-tld-query``).  Each name is asked for both families at once, and the
  first name with *any* answer record (an answer count above zero in a
  NOERROR reply, glibc's test) wins for both families: ``AF_UNSPEC``
  semantics.  A name that fails with NXDOMAIN or NODATA, or whose servers
  all failed (SERVFAIL), moves the walk on; a timeout stops it, except that
  a name never tried as it is is still tried at the end; no server reachable
  at all stops everything.  The error of a failed walk is the as-is
  name's when it was tried first, else NODATA if any name had no data, else
  "try again" after a SERVFAIL, else the last one.
* **Servers**: in order (``rotate``: from a random one), ``attempts`` rounds;
  the wait for server ``n`` of ``N`` is ``timeout << n`` divided by ``N``
  (at least 1 s), as glibc computes it.  SERVFAIL, NOTIMP, REFUSED and a
  referral move on to the next server, unless the other family's reply
  already arrived; a lost reply when the other one arrived is asked for once
  more, then given up (glibc's single-request fallback); a truncated reply
  is asked again over TCP from the same server; a FORMERR to an EDNS query
  is asked again without EDNS.  ``single-request`` sends the second query
  after the first reply, ``single-request-reopen`` on a new socket;
  ``use-vc`` asks over TCP only; ``no-aaaa`` sends no AAAA query;
  ``trust-ad`` sets the AD bit; ``edns0`` advertises 1200 bytes.
* **Replies** are taken only from the server asked (connected sockets),
  with the query's ID and question; answers follow CNAME chains.

One deliberate difference, for speed: a TCP connection (truncation,
``use-vc``) is opened with a blocking ``connect()`` bounded by the server's
timeout, in the racing thread.  It is a connection to a server that just
answered over UDP, on the local network; the rest of that exchange is
non-blocking.

TTLs: each answer carries the smallest TTL of the records it used (a
negative answer: RFC 2308's SOA minimum), which the optional DNS cache
honours.  A lookup still running when its race ends is handed to the
process's :class:`StubState` for about a second when the cache is on: the
next lookup of the process reads whatever replies arrived meanwhile into
the cache (no thread waits for them); otherwise its sockets are closed.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from ..resolving import Answer
from . import wire
from .resolvconf import AS_IS_FIRST, ResolvConf

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Set, Tuple

    from ..addrinfo import AddrInfo, Host, Port
    from ..candidates import Inbox
    from ..resolving import AnswerCache, Deliver

__all__ = ["StubResolver", "StubState", "gai_error"]

# h_errno values (netdb.h)
HOST_NOT_FOUND, TRY_AGAIN, NO_RECOVERY, NO_DATA = 1, 2, 3, 4

_EAI_NODATA = getattr(socket, "EAI_NODATA", -5)
# What getaddrinfo reports for each h_errno, with glibc's messages.
_GAI = {
    HOST_NOT_FOUND: (socket.EAI_NONAME, "Name or service not known"),
    NO_DATA: (_EAI_NODATA, "No address associated with hostname"),
    TRY_AGAIN: (socket.EAI_AGAIN, "Temporary failure in name resolution"),
    NO_RECOVERY: (socket.EAI_FAIL, "Non-recoverable failure in name resolution"),
}

_QTYPE: Dict[int, int] = {socket.AF_INET6: wire.AAAA, socket.AF_INET: wire.A}
_FAMILY: Dict[int, int] = {wire.AAAA: socket.AF_INET6, wire.A: socket.AF_INET}
_EDNS_SIZE = 1200  # glibc's RESOLV_EDNS_BUFFER_SIZE
_NONBLOCK: int = getattr(socket, "SOCK_NONBLOCK", 0)
_RECV = 65535
_PORT = 53
#: How long a lookup its race no longer wants may still fill the cache.
LATE_REPLIES = 1.0

_WAITING, _ANSWERED, _FAILED = "waiting", "answered", "failed"


def gai_error(herrno: int) -> socket.gaierror:
    """The ``socket.gaierror`` getaddrinfo raises for a DNS failure."""
    code, message = _GAI.get(herrno, _GAI[NO_RECOVERY])
    return socket.gaierror(code, message)


class StubState:
    """The stub resolver's process-wide part (a piece of ``state.STATE``):
    lookups whose race has ended, kept briefly to fill the DNS cache, and
    every socket the resolver has open (a forked child closes its copies)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._late: List[Tuple[float, _Search]] = []
        self.sockets: Set[socket.socket] = set()

    def adopt(self, search: _Search, until: float) -> None:
        with self._lock:
            self._late.append((until, search))

    def pump(self, now: float) -> None:
        """Read the replies that reached lookups no race waits for any more."""
        if not self._late:
            return
        with self._lock:
            late, self._late = self._late, []
        keep = []
        for until, search in late:
            if now < until and not search.finished:
                search.pump(now)
            if now < until and not search.finished:
                keep.append((until, search))
            else:
                search.close()
        if keep:
            with self._lock:
                self._late.extend(keep)

    def after_fork(self) -> None:
        """In a forked child: close the copies of the parent's sockets."""
        self._lock = threading.Lock()
        self._late = []
        for sock in list(self.sockets):
            try:
                sock.close()
            except OSError:
                pass
        self.sockets = set()


class _Query:
    """One question on the wire for the current name."""

    __slots__ = ("edns", "id", "message", "qtype", "sent", "state")

    def __init__(self, qtype: int, edns: bool) -> None:
        self.qtype = qtype
        self.id = 0
        self.edns = edns
        self.state = _WAITING
        self.sent = False
        self.message: Optional[wire.Message] = None


class _Tcp:
    """A query asked again over TCP (truncation, use-vc)."""

    __slots__ = ("buffer", "query", "server", "sock")

    def __init__(self, sock: socket.socket, query: _Query, server: int) -> None:
        self.sock = sock
        self.query = query
        self.server = server
        self.buffer = bytearray()


class _Exchange:
    """Both queries for one name, over the servers, until replies arrive or
    every server and attempt is spent (glibc's ``res_send``)."""

    def __init__(self, search: _Search, name: str, qtypes: Tuple[int, ...]) -> None:
        self.search = search
        self.name = name.lower()
        self.wire_name = wire.encode_name(name)
        conf = search.conf
        flags = conf.flags
        self.queries = [_Query(qtype, "edns0" in flags) for qtype in qtypes]
        self.single = "single-request" in flags or "single-request-reopen" in flags
        self.reopen = "single-request-reopen" in flags
        self.tcp_only = "use-vc" in flags
        self.ad = "trust-ad" in flags
        count = len(conf.nameservers)
        # One random draw per name: the query IDs (kept across servers and
        # retries, as glibc keeps them) and, with rotate, the first server.
        chance = os.urandom(2 * len(qtypes) + 1)
        for index, query in enumerate(self.queries):
            query.id = int.from_bytes(chance[2 * index : 2 * index + 2], "big")
        start = 0
        if "rotate" in flags and count > 1:
            start = chance[-1] % count
        rounds = 1 if self.tcp_only else max(1, conf.attempts)
        self.plan = [(start + i) % count for _ in range(rounds) for i in range(count)]
        self.step = -1
        self.server = -1
        self.deadline: Optional[float] = None
        self.retried = False
        self.udp: Dict[int, socket.socket] = {}  # server index -> socket
        self.tcp: List[_Tcp] = []
        self.got_somewhere = False
        self.servfail = False
        self.done = False

    # -- servers -------------------------------------------------------------------

    def start(self) -> None:
        self._next_server()

    def _seconds(self, server: int) -> float:
        conf = self.search.conf
        seconds = conf.timeout << server
        if server > 0:
            seconds //= len(conf.nameservers)
        return float(max(1, seconds))

    def _next_server(self) -> None:
        while True:
            self.step += 1
            if self.step >= len(self.plan):
                self._finish()
                return
            self.server = self.plan[self.step]
            self.retried = False
            for query in self.queries:
                query.state, query.sent, query.message = _WAITING, False, None
            self.deadline = self.search.clock() + self._seconds(self.server)
            if self._send_all():
                return

    def _send_all(self) -> bool:
        """Send the waiting queries to the current server (one at a time
        with single-request); False if that server cannot be reached."""
        for query in self.queries:
            if query.state != _WAITING or query.sent:
                continue
            if not self._send(query):
                return False
            if self.single:
                break
        return True

    def _address(self, server: int) -> Tuple[Any, ...]:
        text = self.search.conf.nameservers[server]
        if ":" in text:
            address, _, scope = text.partition("%")
            scope_id = 0
            if scope:
                scope_id = int(scope) if scope.isdigit() else socket.if_nametoindex(scope)
            return (address, self.search.server_port, 0, scope_id)
        return (text, self.search.server_port)

    def _send(self, query: _Query) -> bool:
        payload = wire.build_query(
            query.id, self.wire_name, query.qtype, _EDNS_SIZE if query.edns else None, self.ad
        )
        query.sent = True
        if self.tcp_only:
            return self._send_tcp(query, payload)
        try:
            sock = self.udp.get(self.server)
            if sock is None:
                sock = self.search.open_socket(self._address(self.server), socket.SOCK_DGRAM)
                self.udp[self.server] = sock
                self.search.watch(sock, self._reader(sock))
            sock.send(payload)
        except OSError:
            return False
        return True

    def _send_tcp(self, query: _Query, payload: bytes) -> bool:
        address = self._address(self.server)
        try:
            sock = self.search.open_socket(
                address, socket.SOCK_STREAM, timeout=self._seconds(self.server)
            )
        except OSError:
            return False
        channel = _Tcp(sock, query, self.server)
        self.tcp.append(channel)
        try:
            sock.sendall(len(payload).to_bytes(2, "big") + payload)
        except OSError:
            return False
        self.search.watch(sock, lambda: self._tcp_readable(channel))
        return True

    # -- replies -------------------------------------------------------------------

    def _reader(self, sock: socket.socket) -> Callable[[], None]:
        return lambda: self._readable(sock)

    def _readable(self, sock: socket.socket) -> None:
        # One datagram per call: the poll is level-triggered, so a second
        # queued reply makes the socket readable again; trying a second read
        # at once would usually cost a failing system call.
        if self.done:
            return
        try:
            data = sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # ICMP port/host unreachable from this server: it failed.
            if sock is self.udp.get(self.server):
                self._next_server()
            return
        self._reply(data, via_tcp=False, server=self._server_of(sock))

    def _server_of(self, sock: socket.socket) -> int:
        for server, mine in self.udp.items():
            if mine is sock:
                return server
        return self.server

    def _tcp_readable(self, channel: _Tcp) -> None:
        if self.done:
            return
        try:
            data = channel.sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.search.unwatch(channel.sock)
            if channel.query.state == _WAITING and channel.server == self.server:
                self._next_server()
            return
        channel.buffer += data
        if len(channel.buffer) >= 2:
            size = int.from_bytes(channel.buffer[:2], "big")
            if len(channel.buffer) >= 2 + size:
                self.search.unwatch(channel.sock)
                self._reply(
                    bytes(channel.buffer[2 : 2 + size]), via_tcp=True, server=channel.server
                )

    def _reply(self, data: bytes, via_tcp: bool, server: int) -> None:
        try:
            message = wire.parse(data)
        except wire.WireError:
            return  # not a reply we can read: as glibc, keep waiting
        if not message.response:
            return
        query = next((q for q in self.queries if q.id == message.id), None)
        if (
            query is None
            or query.state != _WAITING
            or message.qname != self.name
            or message.qtype != query.qtype
            or message.qclass != wire.CLASS_IN
        ):
            return  # an old or foreign reply
        self.got_somewhere = True
        rcode = message.rcode
        if rcode == wire.FORMERR and query.edns:
            query.edns = False  # the server does not understand EDNS: ask without
            query.sent = False
            if not self._send(query):
                self._next_server()
            return
        referral = (
            rcode == wire.NOERROR
            and message.ancount == 0
            and not message.flags & (wire.AA | wire.RA)
            and not message.additional
        )
        if rcode in (wire.SERVFAIL, wire.NOTIMP, wire.REFUSED) or referral:
            query.state = _FAILED
            self.servfail = self.servfail or rcode == wire.SERVFAIL
        elif message.truncated and not via_tcp:
            payload = wire.build_query(
                query.id, self.wire_name, query.qtype, _EDNS_SIZE if query.edns else None, self.ad
            )
            if not self._send_tcp(query, payload):
                self._next_server()
            return
        else:
            query.state = _ANSWERED
            query.message = message
            self.search.answered(self, query)
        self._settle()

    def _settle(self) -> None:
        """After a reply: finish, ask the next server, or send the next query."""
        if self.done:
            return
        waiting = [q for q in self.queries if q.state == _WAITING]
        answered = any(q.state == _ANSWERED for q in self.queries)
        if not waiting:
            if answered:
                self._finish()
            else:
                self._next_server()  # every query failed here
            return
        if self.single and not any(q.sent for q in waiting):
            if self.reopen:
                sock = self.udp.pop(self.server, None)
                if sock is not None:
                    self.search.retire(sock)
            if not self._send(waiting[0]):
                self._next_server()

    # -- time ------------------------------------------------------------------------

    def timeout(self) -> None:
        if self.done:
            return
        if any(q.state == _ANSWERED for q in self.queries):
            if not self.retried:
                # One reply came and the other did not: ask for it once more
                # (glibc retries in single-request mode), then go without.
                self.retried = True
                self.deadline = self.search.clock() + self._seconds(self.server)
                for query in self.queries:
                    if query.state == _WAITING:
                        query.sent = False
                if not self._send_all():
                    self._finish()
                return
            self._finish()
            return
        self.got_somewhere = True
        self._next_server()

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.deadline = None
        self.search.exchanged(self)

    def close(self) -> None:
        self.done = True
        for sock in self.udp.values():
            self.search.retire(sock)
        for channel in self.tcp:
            self.search.retire(channel.sock)
        self.udp.clear()
        self.tcp.clear()

    # -- what came back --------------------------------------------------------------

    def replies(self) -> List[wire.Message]:
        """The replies, A first (glibc's order of the two answers)."""
        ordered = sorted(self.queries, key=lambda q: q.qtype != wire.A)
        return [q.message for q in ordered if q.message is not None]


def _extract(message: wire.Message, qtype: int) -> Tuple[List[str], Optional[int]]:
    """The addresses of type ``qtype`` for the question, following CNAMEs,
    and the smallest TTL of the records used."""
    names = {message.qname}
    current = message.qname
    ttl: Optional[int] = None
    for _ in range(16):
        step = next(
            (r for r in message.answers if r.rtype == wire.CNAME and r.name == current), None
        )
        if step is None:
            break
        current = str(step.data)
        names.add(current)
        ttl = step.ttl if ttl is None else min(ttl, step.ttl)
    addresses = []
    for record in message.answers:
        if record.rtype == qtype and record.rclass == wire.CLASS_IN and record.name in names:
            if record.data not in addresses:
                addresses.append(str(record.data))
            ttl = record.ttl if ttl is None else min(ttl, record.ttl)
    return addresses, ttl


def _negative_ttl(message: Optional[wire.Message]) -> Optional[int]:
    """RFC 2308 §5: the SOA's TTL, at most its MINIMUM field."""
    if message is None:
        return None
    for record in message.authority:
        if record.rtype == wire.SOA:
            minimum = record.data if isinstance(record.data, int) else record.ttl
            return min(record.ttl, minimum)
    return None


class _Search:
    """One name, both families, walked through the search list as
    ``res_search`` walks it."""

    def __init__(self, owner: StubResolver, name: str, port: int, keys: Dict[int, Any]) -> None:
        self.host = name
        self.conf = conf = owner.conf
        self.server_port = owner.server_port
        self.port = port
        self.families = families = owner.families
        self.state = owner.state
        self.cache = owner.cache
        self.keys = keys
        self.clock = owner.clock
        qtypes = [_QTYPE[f] for f in families]
        if "no-aaaa" in conf.flags:
            qtypes = [q for q in qtypes if q != wire.AAAA]
        self.qtypes = tuple(qtypes)
        self.plan = conf.search_plan(name)
        self.position = -1
        self.exchange: Optional[_Exchange] = None
        self.saved: Optional[int] = None
        self.got_nodata = False
        self.got_servfail = False
        self.herrno = HOST_NOT_FOUND
        self.last: Optional[wire.Message] = None
        self.winner: Optional[_Exchange] = None
        self.receivers: Dict[int, List[Deliver]] = {f: [] for f in families}
        self.results: Dict[int, Answer] = {}
        self.finished = False
        self.inbox: Optional[_Relay] = None
        self.watched: Dict[int, socket.socket] = {}
        self.callbacks: Dict[int, Callable[[], None]] = {}

    # -- sockets and the inbox --------------------------------------------------------

    def open_socket(
        self, address: Tuple[Any, ...], kind: int, timeout: Optional[float] = None
    ) -> socket.socket:
        family = socket.AF_INET6 if len(address) == 4 else socket.AF_INET
        # Non-blocking from the start where the flag exists (one system call less).
        sock = socket.socket(family, kind | (_NONBLOCK if kind == socket.SOCK_DGRAM else 0))
        self.state.sockets.add(sock)
        try:
            if kind == socket.SOCK_STREAM:
                sock.settimeout(timeout)
                sock.connect(address)
                sock.setblocking(False)
            else:
                if not _NONBLOCK:
                    sock.setblocking(False)
                sock.connect(address)
        except BaseException:
            self.retire(sock)
            raise
        return sock

    def watch(self, sock: socket.socket, on_readable: Callable[[], None]) -> None:
        fd = sock.fileno()
        self.watched[fd] = sock
        self.callbacks[fd] = on_readable
        if self.inbox is not None:
            self.inbox.watch(fd, on_readable)

    def unwatch(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if fd < 0:
            return
        self.watched.pop(fd, None)
        self.callbacks.pop(fd, None)
        if self.inbox is not None:
            self.inbox.unwatch(fd)

    def retire(self, sock: socket.socket) -> None:
        self.unwatch(sock)
        self.state.sockets.discard(sock)
        try:
            sock.close()
        except OSError:
            pass

    def attach(self, inbox: Optional[_Relay]) -> None:
        """Be served by ``inbox`` (None: by :meth:`StubState.pump`)."""
        old, self.inbox = self.inbox, inbox
        if old is not None:
            for fd in self.callbacks:
                old.unwatch(fd)
            old.wake_at(None)
        if inbox is not None:
            for fd, callback in self.callbacks.items():
                inbox.watch(fd, callback)

    # -- the walk ---------------------------------------------------------------------

    def start(self) -> None:
        if not self.qtypes:
            self._finish_all_nodata()
            return
        self._next_name()

    def _next_name(self) -> None:
        self.position += 1
        if self.position >= len(self.plan):
            self._fail()
            return
        name, _ = self.plan[self.position]
        try:
            self.exchange = _Exchange(self, name, self.qtypes)
        except (wire.WireError, UnicodeError):
            # Too long with this domain: glibc's NO_RECOVERY for this name.
            self.herrno = NO_RECOVERY
            self._after_failure("")
            return
        self.exchange.start()
        self._arm()

    def answered(self, exchange: _Exchange, query: _Query) -> None:
        """A reply arrived: if it has answer records, this name wins for both
        families, and its family's addresses can go to the race now."""
        message = query.message
        assert message is not None
        if message.rcode == wire.NOERROR and message.ancount > 0:
            self.winner = exchange
            self._deliver_from(exchange, only=_FAMILY.get(query.qtype))

    def exchanged(self, exchange: _Exchange) -> None:
        """Every reply for this name is in (or given up on)."""
        if self.winner is exchange:
            self._deliver_from(exchange, only=None)
            self._done()
            return
        replies = exchange.replies()
        kind = self.plan[self.position][1]
        if not replies:
            self.herrno = TRY_AGAIN
            if not exchange.got_somewhere:
                # No server could be reached at all (glibc: ECONNREFUSED).
                self._deliver_error(TRY_AGAIN, None)
                return
            self._after_failure(kind, servfail=exchange.servfail)
            return
        first, second = replies[0], replies[-1]
        code = first.rcode if first.rcode != wire.NOERROR else second.rcode
        if code == wire.NXDOMAIN:
            self.herrno = HOST_NOT_FOUND
        elif code == wire.NOERROR:
            self.herrno = NO_DATA
        else:
            self.herrno = NO_RECOVERY
        self.last = first if code == first.rcode else second
        self._after_failure(kind)

    def _after_failure(self, kind: str, servfail: bool = False) -> None:
        if kind == AS_IS_FIRST:
            self.saved = self.herrno
            self._next_name()
            return
        if self.herrno == NO_DATA:
            self.got_nodata = True
        elif self.herrno == TRY_AGAIN and servfail:
            self.got_servfail = True
        elif self.herrno != HOST_NOT_FOUND:
            # Anything else ends the search list; a name never tried as it
            # is still gets its turn.
            last = next(
                (
                    i
                    for i in range(self.position + 1, len(self.plan))
                    if self.plan[i][1] != "search"
                ),
                None,
            )
            if last is None:
                self._fail()
                return
            self.position = last - 1
        self._next_name()

    def _fail(self) -> None:
        herrno = self.herrno
        if self.saved is not None:
            herrno = self.saved
        elif self.got_nodata:
            herrno = NO_DATA
        elif self.got_servfail:
            herrno = TRY_AGAIN
        negative = _negative_ttl(self.last) if herrno in (HOST_NOT_FOUND, NO_DATA) else None
        self._deliver_error(herrno, negative)

    def _deliver_error(self, herrno: int, ttl: Optional[int]) -> None:
        for family in self.families:
            if family not in self.results:
                self._give(family, Answer(family, [], gai_error(herrno), None, ttl))
        self._done()

    def _finish_all_nodata(self) -> None:
        self._deliver_error(NO_DATA, None)

    def _deliver_from(self, exchange: _Exchange, only: Optional[int]) -> None:
        replies = {q.qtype: q for q in exchange.queries}
        for family in self.families:
            if family in self.results or (only is not None and family != only):
                continue
            query = replies.get(_QTYPE[family])
            if query is None:  # no-aaaa: never asked
                self._give(family, Answer(family, [], gai_error(NO_DATA)))
                continue
            if query.state == _WAITING and only is None and not exchange.done:
                continue
            message = query.message
            if message is None:
                self._give(family, Answer(family, [], gai_error(TRY_AGAIN)))
                continue
            addresses, ttl = _extract(message, query.qtype)
            if not addresses:
                ttl = _negative_ttl(message)
                self._give(family, Answer(family, [], gai_error(NO_DATA), None, ttl))
                continue
            self._give(
                family, Answer(family, _infos(family, addresses, self.port), None, None, ttl)
            )

    def _give(self, family: int, answer: Answer) -> None:
        self.results[family] = answer
        cache = self.cache
        if cache is not None and family in self.keys:
            cache.put(self.keys[family], answer)
        receivers, self.receivers[family] = self.receivers[family], []
        for deliver in receivers:
            deliver(Answer(answer.family, list(answer.infos), answer.error, None, answer.ttl))

    def _done(self) -> None:
        self.finished = True
        for family in self.families:
            if family not in self.results:
                self._give(family, Answer(family, [], gai_error(TRY_AGAIN)))
        self.close()

    def close(self) -> None:
        if self.exchange is not None:
            self.exchange.close()
        for sock in list(self.watched.values()):
            self.retire(sock)
        if self.inbox is not None:
            self.inbox.wake_at(None)

    # -- time -------------------------------------------------------------------------

    def _arm(self) -> None:
        if self.inbox is None or self.finished:
            return
        exchange = self.exchange
        when = exchange.deadline if exchange is not None and not exchange.done else None
        self.inbox.wake_at(when, self._on_time)

    def _on_time(self) -> None:
        exchange = self.exchange
        if exchange is None or exchange.done or exchange.deadline is None:
            return
        if self.clock() >= exchange.deadline:
            exchange.timeout()
        self._arm()

    def pump(self, now: float) -> None:
        """Without a race: read what arrived; a timeout ends the lookup."""
        for _ in range(len(self.qtypes) + 1):  # a read takes one reply
            for fd, callback in list(self.callbacks.items()):
                if not self.finished and fd in self.watched:
                    callback()
        exchange = self.exchange
        deadline = None if exchange is None else exchange.deadline
        if not self.finished and deadline is not None and now >= deadline:
            self.finished = True
            self.close()

    def after_event(self) -> None:
        self._arm()

    def fall_back(self, inbox: Optional[Inbox]) -> None:
        """An unexpected error in this module must not fail a connection:
        what is not answered yet is asked of getaddrinfo on a thread, as
        without the stub resolver."""
        from ..resolving import ThreadedResolver

        waiting = {f: list(r) for f, r in self.receivers.items() if r and f not in self.results}
        for family in self.receivers:
            self.receivers[family] = []
        self.finished = True
        try:
            self.close()
        except Exception:
            pass
        if inbox is not None:
            inbox.threads = True  # deliveries from a thread now: wake the racer
        threaded = ThreadedResolver()
        for family, delivers in waiting.items():
            for deliver in delivers:
                threaded.resolve(self.host, self.port, family, deliver)


def _infos(family: int, addresses: List[str], port: int) -> List[AddrInfo]:
    """Address records as getaddrinfo returns them for SOCK_STREAM."""
    kind = socket.SOCK_STREAM
    if family == socket.AF_INET6:
        return [(socket.AF_INET6, kind, socket.IPPROTO_TCP, "", (a, port, 0, 0)) for a in addresses]
    return [(socket.AF_INET, kind, socket.IPPROTO_TCP, "", (a, port)) for a in addresses]


class StubResolver:
    """The resolver of one race (``connection`` makes one per race when
    :func:`eyeshim.dns.choice` says the stub may answer for the name).

    Both families are looked up together, as one ``AF_UNSPEC`` call would:
    the first ``resolve()`` starts the lookup of every family in
    ``families``; each family's answer goes to the race as soon as it is
    known.  Answers carry ``name=None``: the walk already applied
    ``AF_UNSPEC``'s one-name rule, so the race may take them as they come.
    """

    description = "stub"

    def __init__(
        self,
        conf: ResolvConf,
        families: Tuple[int, ...],
        state: StubState,
        cache: Optional[AnswerCache] = None,
        stale: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        server_port: int = _PORT,
    ) -> None:
        #: what its lookups read (``server_port``: tests run servers on other ports)
        self.conf, self.families, self.state = conf, families, state
        self.cache, self.clock, self.server_port = cache, clock, server_port
        self._stale = stale
        self._inbox: Optional[Inbox] = None
        self._search: Optional[_Search] = None
        self._refresh: Optional[_Search] = None
        self._answers: Dict[int, Answer] = {}
        self._closed = False
        self._broken = False

    def attach(self, inbox: Inbox) -> None:
        """The race's inbox: its sockets are watched there."""
        self._inbox = inbox

    def resolve(self, host: Host, port: Port, family: int, deliver: Deliver) -> Callable[[], None]:
        if self._broken:
            return self._threaded(host, port, family, deliver)
        if self._search is None and not self._answers:
            try:
                self._begin(host, port)
            except Exception:
                # A bug here must not fail the connection: getaddrinfo, as
                # without the stub resolver.
                self._give_up()
                return self._threaded(host, port, family, deliver)
        cached = self._answers.get(family)
        if cached is not None:
            deliver(Answer(family, list(cached.infos), cached.error, None, cached.ttl))
        elif self._search is not None:
            search = self._search
            if family in search.results:
                answer = search.results[family]
                deliver(Answer(family, list(answer.infos), answer.error, None, answer.ttl))
            else:
                search.receivers.setdefault(family, []).append(deliver)
        return self.close

    def _give_up(self) -> None:
        self._broken = True
        search, self._search = self._search, None
        if search is not None:
            search.finished = True
            search.close()

    def _threaded(
        self, host: Host, port: Port, family: int, deliver: Deliver
    ) -> Callable[[], None]:
        from ..resolving import ThreadedResolver

        if self._inbox is not None:
            self._inbox.threads = True
        return ThreadedResolver().resolve(host, port, family, deliver)

    def _begin(self, host: Host, port: Port) -> None:
        if isinstance(host, bytes):
            name = host.decode("ascii")
        else:
            from . import idna

            encoded = idna(str(host))
            if encoded is None:
                raise UnicodeError(f"IDNA cannot encode {host!r}")
            name = encoded
        assert isinstance(port, int)
        now = self.clock()
        self.state.pump(now)
        keys: Dict[int, Any] = {}
        cache = self.cache
        if cache is not None:
            normalized = name.lower().rstrip(".")
            keys = {f: ("stub", normalized, port, self.families, f) for f in self.families}
            found = {f: cache.get_or_stale(keys[f], self._stale) for f in self.families}
            if all(answer is not None for answer, _ in found.values()):
                self._answers = {f: answer for f, (answer, _) in found.items() if answer}
                if any(stale for _, stale in found.values()):
                    # Served stale while one lookup refreshes the cache.
                    self._refresh = self._new_search(name, port, keys)
                    self._refresh.start()
                    self._refresh.after_event()
                return
        self._search = self._new_search(name, port, keys)
        self._search.start()
        self._search.after_event()

    def _new_search(self, name: str, port: int, keys: Dict[int, Any]) -> _Search:
        search = _Search(self, name, port, keys)
        inbox = self._inbox
        if inbox is not None:
            search.attach(_Relay(inbox, search))
        return search

    def close(self) -> None:
        """The race is over (called once per family; the first call counts)."""
        if self._closed:
            return
        self._closed = True
        for search in (self._search, self._refresh):
            if search is None or search.finished:
                continue
            for family in search.receivers:
                search.receivers[family] = []
            if self.cache is not None:
                # Its replies may still fill the cache: keep its sockets for a
                # moment, read by the next lookup of this process.
                search.attach(None)
                self.state.adopt(search, self.clock() + LATE_REPLIES)
            else:
                search.finished = True
                search.close()


class _Relay:
    """The inbox as one search sees it: every socket event and timer is
    followed by re-arming that search's timer."""

    __slots__ = ("_inbox", "_search")

    def __init__(self, inbox: Inbox, search: _Search) -> None:
        self._inbox = inbox
        self._search = search

    def watch(self, fd: int, on_readable: Callable[[], None]) -> None:
        search = self._search
        inbox = self._inbox

        def readable() -> None:
            try:
                on_readable()
                search.after_event()
            except Exception:
                search.fall_back(inbox)

        inbox.watch(fd, readable)

    def unwatch(self, fd: int) -> None:
        self._inbox.unwatch(fd)

    def wake_at(self, when: Optional[float], on_time: Optional[Callable[[], None]] = None) -> None:
        if on_time is None:
            self._inbox.wake_at(when)
            return
        search, inbox, callback = self._search, self._inbox, on_time

        def due() -> None:
            try:
                callback()
            except Exception:
                search.fall_back(inbox)

        self._inbox.wake_at(when, due)


def lookup(
    host: Host,
    port: int = 0,
    families: Tuple[int, ...] = (socket.AF_INET6, socket.AF_INET),
    conf: Optional[ResolvConf] = None,
    server_port: int = _PORT,
) -> Dict[int, Answer]:
    """Resolve ``host`` with the stub resolver alone, outside any race, and
    return each family's answer (diagnostics and tests: ``eyeshim probe``,
    the lab's comparison with getaddrinfo).  ``conf`` defaults to the
    system's resolv.conf."""
    from ..candidates import Inbox
    from ..state import STATE

    inbox = Inbox()
    inbox.threads = False  # everything happens in this thread
    resolver = StubResolver(
        conf if conf is not None else STATE.resolv_conf(),
        families,
        StubState(),
        server_port=server_port,
    )
    resolver.attach(inbox)
    answers: Dict[int, Answer] = {}
    try:
        for family in families:
            resolver.resolve(host, port, family, inbox.deliver)
        while True:
            inbox.run_timer(time.monotonic())
            for answer in inbox.take():
                answers[answer.family] = answer
            if len(answers) == len(families):
                return answers
            timer = inbox.timer()
            inbox.wait(None if timer is None else max(0.0, timer - time.monotonic()))
    finally:
        resolver.close()
        inbox.close()
