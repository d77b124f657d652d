"""Run inside a client namespace: resolve names with glibc and with eyeshim's stub resolver,
connect to each with the stdlib and with eyeshim, and print one JSON object.

    python -m integrations.dnsdiff NAME [NAME...] [--port 80] [--timeout 3]

Per name: ``glibc`` (one ``AF_UNSPEC`` getaddrinfo, as socket.create_connection makes it,
split per family, or its error code), ``stub`` (the same from eyeshim's stub resolver, with
the error eyeshim would raise when nothing resolved), ``choice`` (which resolver eyeshim's
own connect uses, and why), and the peer address each connect reached (``stock``,
``eyeshim``, without history: each name is compared on its own). The namespace's
/etc/resolv.conf, hosts and nsswitch.conf are the lab's (``ip netns exec`` bind-mounts
them), so both resolvers read the same configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from typing import Any, Optional

_NAMES = {socket.AF_INET: "inet", socket.AF_INET6: "inet6"}


def _split(infos: list[Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"inet": [], "inet6": []}
    for info in infos:
        out[_NAMES[info[0]]].append(info[4][0])
    return {family: sorted(set(addresses)) for family, addresses in out.items()}


def _glibc(name: str, port: int) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        infos = socket.getaddrinfo(name, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return {"error": exc.errno, "elapsed": time.perf_counter() - start, **_split([])}
    return {"error": None, "elapsed": time.perf_counter() - start, **_split(infos)}


def _stub(name: str, port: int) -> dict[str, Any]:
    from eyeshim.dns.stub import lookup

    start = time.perf_counter()
    answers = lookup(name, port)
    elapsed = time.perf_counter() - start
    infos = [info for answer in answers.values() for info in answer.infos]
    error: Optional[int] = None
    if not infos:
        # What eyeshim raises when nothing resolved: the A lookup's error
        # (candidates.Candidates.resolution_error).
        failed = answers.get(socket.AF_INET) or answers.get(socket.AF_INET6)
        error = getattr(failed.error, "errno", None) if failed is not None else None
    return {"error": error, "elapsed": elapsed, **_split(infos)}


def _connect(make: Any, name: str, port: int, timeout: float) -> Optional[str]:
    try:
        sock = make((name, port), timeout)
    except OSError as exc:
        return f"error {getattr(exc, 'errno', None)}"
    try:
        return str(sock.getpeername()[0])
    finally:
        sock.close()


def compare(name: str, port: int, timeout: float) -> dict[str, Any]:
    from eyeshim import events
    from eyeshim.connection import connect
    from eyeshim.dns import choice

    def eyeshim_connect(address: tuple[str, int], timeout: float) -> socket.socket:
        # No history: what an earlier name's race learnt (an attempt overtaken on a
        # loaded machine counts as failed) must not reorder this one's addresses.
        return connect(address, timeout, history=None)

    with events.recording() as recorded:
        eyeshim_peer = _connect(eyeshim_connect, name, port, timeout)
    used = sorted({str(e.resolver) for e in recorded if e.kind == "query"})  # type: ignore[attr-defined]
    return {
        "name": name,
        "glibc": _glibc(name, port),
        "stub": _stub(name, port),
        "choice": str(choice(name)),
        "used": used or ["known addresses (literal or hosts file)"],
        "stock": _connect(socket.create_connection, name, port, timeout),
        "eyeshim": eyeshim_peer,
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="+")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set before any lookup (LOCALDOMAIN, RES_OPTIONS: glibc and eyeshim read them)",
    )
    args = parser.parse_args(argv)
    for item in args.env:
        name, _, value = item.partition("=")
        os.environ[name] = value
    print(json.dumps({"results": [compare(n, args.port, args.timeout) for n in args.names]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
