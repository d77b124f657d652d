"""``python -m eyeshim demo``: the problem and the fix, side by side, offline.

How the demo builds a broken address, without root and without a network:

* a TCP listener on ``[::1]:PORT`` with a backlog of 0, and one connection
  made to it and never accepted.  Its accept queue is now full, and Linux
  silently drops every further SYN to it: ``connect()`` hangs, exactly as
  it does when a firewall or a broken route eats IPv6 packets;
* a normal TCP listener on ``127.0.0.1:PORT`` that accepts;
* a made-up name, ``dual-stack.eyeshim.invalid``, that resolves to
  ``::1`` and ``127.0.0.1``.  For the demo only, ``socket.getaddrinfo`` is
  wrapped to answer that one name (every other name goes to the real
  resolver); both the stock function and eyeshim resolve through it.

Without IPv6 on loopback, ``127.0.0.2`` (loopback too, on Linux) plays the
broken address, and the name is ``two-addresses.eyeshim.invalid``: two IPv4
addresses are not dual-stack, and the demo does not say they are.  The
demo's races use a private history (``STATE.private_history()``): what they
teach about loopback must not reach the process's history, nor a history
file shared with other processes.

Then the same name is connected to three times: with the stock
``socket.create_connection`` (which tries ``::1`` first, as RFC 6724 says,
and waits out its whole timeout), and twice with eyeshim (the first race
falls back to IPv4 after the 250 ms attempt delay; the second one uses what
the first learnt and connects at once).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from typing import Any, Callable, Iterator, List, Optional, TextIO, Tuple

__all__ = ["main", "run_demo"]

DEMO_NAME = "dual-stack.eyeshim.invalid"
#: The name when loopback has no IPv6 and two IPv4 addresses stand in.
IPV4_ONLY_NAME = "two-addresses.eyeshim.invalid"
_getaddrinfo = socket.getaddrinfo  # the real one, whatever is patched later


def _ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


class BrokenAndWorking:
    """A SYN-dropping address and a working one, on the same port."""

    def __init__(self) -> None:
        self.sockets: List[socket.socket] = []
        self.broken_family = socket.AF_INET6 if _ipv6_loopback_works() else socket.AF_INET
        # Without IPv6, 127.0.0.2 (also loopback on Linux) plays the broken one.
        self.broken_host = "::1" if self.broken_family == socket.AF_INET6 else "127.0.0.2"
        self.working_host = "127.0.0.1"
        self.port = 0

    @property
    def dual_stack(self) -> bool:
        """Are the two addresses of two families (IPv6 on loopback works)?"""
        return self.broken_family == socket.AF_INET6

    @property
    def name(self) -> str:
        """The made-up name that resolves to both addresses."""
        return DEMO_NAME if self.dual_stack else IPV4_ONLY_NAME

    def describe(self) -> str:
        """What the name resolves to, in a sentence."""
        if self.dual_stack:
            return f"{self.name} resolves to {self.broken_host} and {self.working_host}"
        return (
            f"{self.name} resolves to {self.broken_host} and {self.working_host} (no IPv6 "
            "on loopback here: two IPv4 addresses play the broken and the working one)"
        )

    def __enter__(self) -> BrokenAndWorking:
        try:
            for _ in range(20):
                try:
                    self._open()
                    return self
                except OSError:
                    self.close()  # the port was taken for one family: retry
            raise OSError("could not find a free port on both loopback addresses")
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        broken = socket.socket(self.broken_family, socket.SOCK_STREAM)
        self.sockets.append(broken)
        broken.bind((self.broken_host, 0))
        broken.listen(0)
        self.port = broken.getsockname()[1]
        filler = socket.create_connection((self.broken_host, self.port), timeout=2)
        self.sockets.append(filler)  # never accepted: the queue is now full
        working = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sockets.append(working)
        working.bind((self.working_host, self.port))
        working.listen(64)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def answers(self, port: Any, family: int) -> List[Tuple[Any, ...]]:
        out: List[Tuple[Any, ...]] = []
        for fam, host in ((self.broken_family, self.broken_host), (socket.AF_INET, "127.0.0.1")):
            if family in (0, fam):
                out.extend(
                    _getaddrinfo(host, port, fam, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
                )
        return out


@contextlib.contextmanager
def demo_name_resolves_to(lab: BrokenAndWorking) -> Iterator[None]:
    """Answer ``lab.name`` (and DEMO_NAME, which code written for a
    dual-stack loopback uses) from ``lab``; every other name goes to the
    resolver."""
    real = socket.getaddrinfo
    names = {lab.name, DEMO_NAME}

    def getaddrinfo(
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        if host in names:
            if flags & socket.AI_NUMERICHOST:
                # A name is not a literal: say so, as the real function does.
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return lab.answers(port, family)
        return real(host, port, family, type, proto, flags)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = real


def _stock() -> Callable[..., socket.socket]:
    """The stdlib's ``socket.create_connection``, even where eyeshim (or
    another wrapper) patched it: in an enabled environment or under
    ``eyeshim run`` the demo must still show what stock does."""
    function: Any = socket.create_connection
    while hasattr(function, "__wrapped__"):
        function = function.__wrapped__
    return function  # type: ignore[no-any-return]


def _timed(func: Callable[[], socket.socket]) -> Tuple[float, Optional[str], Optional[str]]:
    start = time.perf_counter()
    try:
        sock = func()
    except OSError as exc:
        return time.perf_counter() - start, None, f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - start
    with sock:
        peer = sock.getpeername()[0]
    return elapsed, peer, None


def run_demo(timeout: float = 3.0, out: Optional[TextIO] = None) -> int:
    from ..connection import connect
    from ..state import STATE

    stream = sys.stdout if out is None else out

    def say(text: str = "") -> None:
        print(text, file=stream, flush=True)

    with BrokenAndWorking() as lab, demo_name_resolves_to(lab), STATE.private_history():
        target = (lab.name, lab.port)
        broken = f"[{lab.broken_host}]" if ":" in lab.broken_host else lab.broken_host
        say(f"{lab.describe()}, port {lab.port}.")
        say(
            f"  {broken}:{lab.port} silently drops SYNs: a listen(0) socket whose accept"
            " queue is held full by one never-accepted connection."
        )
        say(f"  {lab.working_host}:{lab.port} accepts normally.  Timeout: {timeout:g} s.")
        say()
        rows = []
        say("stock socket.create_connection ...")
        rows.append(
            (
                "stock socket.create_connection",
                *_timed(lambda: _stock()(target, timeout=timeout)),
            )
        )
        say("eyeshim.create_connection ...")
        rows.append(
            ("eyeshim, first connection", *_timed(lambda: connect(target, timeout=timeout)))
        )
        rows.append(("eyeshim, again (history)", *_timed(lambda: connect(target, timeout=timeout))))
        say()
        width = max(len(r[0]) for r in rows)
        for name, elapsed, peer, error in rows:
            outcome = f"connected to {peer}" if peer else error
            say(f"  {name:<{width}}  {elapsed * 1000:8.1f} ms  {outcome}")
        say()
        stock_time, stock_peer = rows[0][1], rows[0][2]
        first_time, first_peer = rows[1][1], rows[1][2]
        if stock_peer is None or stock_time >= timeout * 0.9:
            say(f"stock tried {lab.broken_host} first and waited out its {timeout:g} s timeout.")
        if first_peer == lab.working_host and first_time > 0:
            say(
                f"eyeshim started {lab.working_host} after the attempt delay and connected "
                f"{stock_time / first_time:.0f}x sooner; the next connection skipped the "
                "broken address entirely."
            )
        ok = rows[1][2] == lab.working_host and rows[2][2] == lab.working_host
        return 0 if ok else 1


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    from . import prog
    from .options import duration

    parser = argparse.ArgumentParser(
        prog=prog("demo"),
        description="Show stock create_connection against eyeshim on a broken-IPv6 name.",
    )
    parser.add_argument(
        "--timeout",
        type=duration,
        default=3.0,
        metavar="S",
        help="timeout of each connection attempt: 3, 3s or 500ms (default 3 s)",
    )
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    return run_demo(args.timeout)


if __name__ == "__main__":  # pragma: no cover
    from . import entry

    sys.exit(entry(main, sys.argv[1:], "demo"))
