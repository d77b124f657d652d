"""A small DNS server for the loopback rungs: ``python -m benchmarks.dnsserver``.

It answers A and AAAA queries for one zone over UDP on the addresses it is
given (the loopback addresses of the benchmark's DNS namespace, see
:mod:`benchmarks.labsupport`), the way a local caching server (a resolver
stub like systemd-resolved's, dnsmasq, unbound) answers a name it has in its
cache: at once.  The replies are the lab's (:func:`integrations.dnszone.
answer_query`, built with dnslib); each distinct question is built once and
its bytes kept, so a repeated query costs a dictionary look-up and a
``sendto`` (the query ID is copied in), not a dnslib round trip: the server's
own time must not hide the clients' differences.

Protocol: prints ``{"ready": true}`` once bound; every line ``stats`` on
standard input is answered with ``{"queries": N, "by_type": {...}}`` (so a
scenario can check that a client really asked the server); it exits when
standard input closes, so it never outlives the benchmark that started it.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Optional

__all__ = ["main"]

_QTYPES = {1: "A", 28: "AAAA"}


def _qtype(query: bytes) -> str:
    """The question's type, read from the wire (after the name's labels)."""
    index = 12
    while index < len(query) and query[index]:
        index += query[index] + 1
    if index + 3 > len(query):
        return "?"
    number = int.from_bytes(query[index + 1 : index + 3], "big")
    return _QTYPES.get(number, str(number))


def serve(zone_path: Path, addresses: list[str], port: int) -> None:
    from integrations.dnszone import Zone, answer_query

    zone = Zone.read(zone_path)
    selector = selectors.DefaultSelector()
    sockets: list[socket.socket] = []
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        # glibc drops replies from another source address than it asked:
        # bound to the specific address, as the lab's server is.
        sock.bind((address, port))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, len(sockets))
        sockets.append(sock)
    counts: Counter[str] = Counter()
    replies: dict[bytes, Optional[bytes]] = {}
    lock = threading.Lock()

    def commands() -> None:
        for line in sys.stdin:
            if line.strip() == "stats":
                with lock:
                    report = {"queries": sum(counts.values()), "by_type": dict(counts)}
                print(json.dumps(report), flush=True)
        os._exit(0)  # standard input closed: the benchmark is gone

    print(json.dumps({"ready": True}), flush=True)
    threading.Thread(target=commands, daemon=True).start()
    while True:
        for key, _ in selector.select():
            sock = sockets[key.data]
            try:
                data, peer = sock.recvfrom(4096)
            except BlockingIOError:
                continue
            if len(data) < 12:
                continue
            question = data[2:]
            reply = replies.get(question)
            if reply is None and question not in replies:
                reply = replies[question] = answer_query(zone, data).payload
            with lock:
                counts[_qtype(data)] += 1
            if reply is not None:
                try:
                    sock.sendto(data[:2] + reply[2:], peer)
                except OSError:
                    pass  # the client is gone; a resolver would retry


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dnsserver")
    parser.add_argument("--zone", type=Path, required=True, help="a zone.json (dnszone.Zone)")
    parser.add_argument("--listen", action="append", required=True, help="address to serve on")
    parser.add_argument("--port", type=int, default=53)
    args = parser.parse_args(argv)
    serve(args.zone, args.listen, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
