"""TLS through the race: an attempt succeeds when its handshake completes.

A race that ends at the TCP handshake cannot help when TCP works and TLS
does not: a path MTU black hole that eats the server's certificate flight
(larger than 1280 bytes), or a middlebox that accepts TCP and never passes
TLS on.  The caller then waits out its whole timeout in the handshake,
exactly as without eyeshim.  The Happy Eyeballs v3 draft therefore lets a
client that runs TLS over TCP count an attempt as done only when its TLS
handshake is, and wait for the handshake before it cancels the others.

Here that is a stage of each attempt, kept out of ``racing.py``: the
:class:`TlsConnector` runs, after each TCP connection, a non-blocking
handshake on the race's own ``poll()`` (``do_handshake()`` until it stops
asking to read or write) with what the caller would have used for it, a
:class:`TlsSpec` (its ``ssl.SSLContext`` and ``server_hostname``).  The
race sees the stage through one marker (``racing.HANDSHAKING``) and:

* bounds each handshake by the caller's timeout **from the moment TCP
  completed**: the stdlib bounds ``connect()`` by the socket timeout, then
  the whole handshake by the same timeout from its start (``_ssl.c`` keeps
  one deadline across the handshake's waits), so an attempt may take up to
  twice the timeout, as in the stdlib; a handshake that runs out fails
  with the stdlib's ``socket.timeout("The handshake operation timed out")``
  (the stdlib's message also names the line of ``_ssl.c``);
* starts the next attempt, once an attempt's TCP connection completed,
  after the time its handshake should need (:func:`handshake_delay`, from
  the TCP time just measured) rather than at the Connection Attempt Delay;
  never aborts a handshake because another attempt starts;
* returns the winner as the ``SSLSocket`` the caller would have made
  (``context.wrap_socket(sock, server_hostname=...)``), blocking with the
  caller's timeout; closes every loser;
* raises, when every attempt failed, what the stdlib would: its walk stops
  at the first address (in getaddrinfo's order) whose TCP connect works
  and raises that address's handshake error, so a certificate error stays
  a certificate error; only when no TCP connect worked is it a connect
  error as without TLS.

Integrations that build the context after connecting (urllib3) use
:class:`Later`: the race stops at the first TCP connection and hands that
socket back, keeping every other attempt; when the stack has built its
context and calls its wrap function, :meth:`Later.finish` runs the
handshakes and returns the winner in that call.  Connect errors then come
out where the stack expects connect errors, and handshake errors where it
expects handshake errors.
"""

from __future__ import annotations

import ssl

from .racing import _READABLE, _WRITABLE, HANDSHAKING, Attempt, SocketConnector

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Any, Callable, List, Optional, Tuple

    Done = List[Tuple[Attempt, Optional[OSError]]]

__all__ = ["Later", "TlsConnector", "TlsSpec", "handshake_delay", "usable_context"]

#: Round trips a full handshake needs: two for TLS 1.2, one for TLS 1.3.
HANDSHAKE_ROUND_TRIPS = 2
#: Each round trip gets the margin RFC 6298 gives a first RTT sample before
#: it presumes a loss (SRTT + 4 * RTTVAR with RTTVAR = RTT / 2): 3 RTTs.
ROUND_TRIP_MARGIN = 3.0


def handshake_delay(rtt: float, lo: float, hi: float) -> float:
    """How long to let a handshake run, after a TCP connect that took
    ``rtt``, before the next attempt starts: the time its round trips
    should need with a retransmission's margin, clamped to the
    configured attempt delays (``lo``..``hi``)."""
    return min(max(HANDSHAKE_ROUND_TRIPS * ROUND_TRIP_MARGIN * rtt, lo), hi)


def usable_context(context: Any) -> bool:
    """Whether eyeshim can run ``context``'s handshakes itself, non-blocking:
    an ``ssl.SSLContext`` whose ``wrap_socket`` is the stdlib's, or
    truststore's (pip's default since 24.2) where it verifies in its socket
    class's ``do_handshake``, so a handshake started later is verified as
    one started at once.  Any other context (a ``wrap_socket`` of its own,
    pyOpenSSL's) is left to the stack: the race ends at TCP."""
    if not isinstance(context, ssl.SSLContext):
        return False
    kind = type(context)
    if getattr(kind, "wrap_socket", None) is ssl.SSLContext.wrap_socket:
        return True
    inner = getattr(context, "_ctx", None)
    return kind.__module__.endswith("truststore._api") and (
        getattr(getattr(inner, "sslsocket_class", None), "__name__", "") == "TruststoreSSLSocket"
    )


class TlsSpec:
    """What the caller would use for the handshake: the context and the
    name to send (SNI) and check the certificate against, and a session to
    resume, as ``SSLContext.wrap_socket`` takes them."""

    __slots__ = ("context", "server_hostname", "session")
    deferred = False

    def __init__(
        self,
        context: ssl.SSLContext,
        server_hostname: Optional[str] = None,
        session: Optional[ssl.SSLSession] = None,
    ) -> None:
        self.context = context
        self.server_hostname = server_hostname
        self.session = session

    handshake_delay = staticmethod(handshake_delay)

    def wrap(self, sock: socket.socket) -> ssl.SSLSocket:
        """``sock`` wrapped for a non-blocking handshake (not started)."""
        return self.context.wrap_socket(
            sock,
            server_hostname=self.server_hostname,
            do_handshake_on_connect=False,
            session=self.session,
        )

    def wrap_blocking(self, sock: socket.socket) -> ssl.SSLSocket:
        """What the caller would do without eyeshim: wrap ``sock`` with a
        blocking handshake bounded by its timeout."""
        return self.context.wrap_socket(
            sock, server_hostname=self.server_hostname, session=self.session
        )

    def __repr__(self) -> str:
        return f"TlsSpec({self.context!r}, server_hostname={self.server_hostname!r})"


class Later:
    """``connect(..., tls=Later())``: the handshakes follow later.

    The race stops at its first TCP connection and ``connect`` returns that
    socket, keeping every other attempt running.  Then exactly one of:

    * :meth:`finish` with the :class:`TlsSpec` the caller built: every
      attempt connected so far starts its handshake, the race goes on, and
      the winner comes back as an ``SSLSocket`` (the returned socket, if it
      lost, is closed);
    * :meth:`abandon`: the returned socket wins, as in a race without TLS.

    A ``Later`` whose race had nothing to race (a single address) has
    nothing waiting: :attr:`waiting` is False and the caller wraps the
    socket itself, as it would without eyeshim.
    """

    __slots__ = ("_abandon", "_finish", "sock")
    deferred = True

    handshake_delay = staticmethod(handshake_delay)

    def __init__(self) -> None:
        self.sock: Optional[socket.socket] = None
        self._finish: Optional[Callable[[TlsSpec], ssl.SSLSocket]] = None
        self._abandon: Optional[Callable[[], None]] = None

    def wait_for(
        self,
        sock: socket.socket,
        finish: Callable[[TlsSpec], ssl.SSLSocket],
        abandon: Callable[[], None],
    ) -> None:
        """(The engine) ``sock`` was returned; these end its race."""
        self.sock, self._finish, self._abandon = sock, finish, abandon

    @property
    def waiting(self) -> bool:
        return self._finish is not None

    def finish(self, tls: TlsSpec) -> ssl.SSLSocket:
        finish = self._finish
        if finish is None:
            raise RuntimeError("no race is waiting for its TLS context")
        self._finish = self._abandon = None
        return finish(tls)

    def abandon(self) -> None:
        abandon = self._abandon
        self._finish = self._abandon = None
        if abandon is not None:
            abandon()


class TlsConnector(SocketConnector):
    """Real sockets, and after each TCP connection a non-blocking handshake
    on the same ``poll()``, watching for reading or writing as the handshake
    asks.  With ``tls=None`` (``Later``) connected attempts wait for
    :meth:`start_tls`."""

    def __init__(
        self,
        tls: Optional[TlsSpec],
        source_address: Optional[Tuple[Any, ...]] = None,
        prepare_socket: Optional[Callable[[socket.socket], None]] = None,
    ) -> None:
        super().__init__(source_address, prepare_socket)
        self.tls = tls
        # Connected inside connect() (reported by the next wait()).
        self._ready: List[Attempt] = []
        # Connected, waiting for start_tls().
        self._awaiting: List[Attempt] = []

    def connect(self, attempt: Attempt) -> bool:
        if super().connect(attempt):
            self._ready.append(attempt)
        return False  # never connected at once: a handshake follows

    def wait(self, timeout: Optional[float], inbox: Any) -> Done:
        if self._ready:
            ready, self._ready = self._ready, []
            done: Done = []
            for attempt in ready:
                self._tcp_done(attempt, done)
            return done
        return super().wait(timeout, inbox)

    def _progress(self, fd: int, attempt: Attempt, done: Done) -> None:
        if isinstance(attempt.handle, ssl.SSLSocket):
            self._step(fd, attempt, done)
            return
        super()._progress(fd, attempt, done)
        if done[-1][1] is None:
            done.pop()
            self._tcp_done(attempt, done)

    def _tcp_done(self, attempt: Attempt, done: Done) -> None:
        done.append((attempt, HANDSHAKING))
        if self.tls is None:
            self._awaiting.append(attempt)
        else:
            self._begin(attempt, self.tls, done)

    def start_tls(self, tls: TlsSpec) -> Done:
        """Begin the handshakes of the attempts connected so far; each is
        reported with HANDSHAKING (or its error)."""
        self.tls = tls
        awaiting, self._awaiting = self._awaiting, []
        done: Done = []
        for attempt in awaiting:
            if id(attempt) in self._open:
                done.append((attempt, HANDSHAKING))
                self._begin(attempt, tls, done)
        return done

    def _begin(self, attempt: Attempt, tls: TlsSpec, done: Done) -> None:
        sock = attempt.handle
        try:
            # A Later race's first socket went to the caller with its
            # timeout in the meantime.
            sock.setblocking(False)
            attempt.handle = tls.wrap(sock)
        except OSError as exc:
            done.append((attempt, exc))
            return
        self._step(attempt.handle.fileno(), attempt, done)

    def _step(self, fd: int, attempt: Attempt, done: Done) -> None:
        try:
            attempt.handle.do_handshake()
        except ssl.SSLWantReadError:
            self._rewatch(fd, attempt, _READABLE)
            return
        except ssl.SSLWantWriteError:
            self._rewatch(fd, attempt, _WRITABLE)
            return
        except OSError as exc:  # certificate, protocol, reset, EOF
            self._unwatch(fd)
            done.append((attempt, exc))
            return
        self._unwatch(fd)
        done.append((attempt, None))

    def _rewatch(self, fd: int, attempt: Attempt, events: int) -> None:
        if fd in self._watched:
            self._poller.modify(fd, events)
            self._watched[fd] = attempt
        else:
            self._watch(fd, attempt, events)

    def discard(self, attempt: Attempt) -> None:
        if attempt in self._awaiting:
            self._awaiting.remove(attempt)
        super().discard(attempt)

    def close(self) -> None:
        self._ready = []
        self._awaiting = []
        super().close()
