"""Small measurements run inside a client namespace, printing one JSON object.

The lab runs these as separate processes (``ip netns exec NS python -m integrations.probe ...``)
so they see the namespace's routes and its /etc/netns resolv.conf, hosts and gai.conf. Times are
taken inside the process, so interpreter start-up is not part of them.

    python -m integrations.probe gai HOST [--family unspec|inet|inet6] [--addrconfig]
    python -m integrations.probe connect ADDRESS [--port 80] [--timeout 2]
    python -m integrations.probe get URL [--timeout 5]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
import urllib.request
from typing import Any, Optional

_FAMILIES = {"unspec": socket.AF_UNSPEC, "inet": socket.AF_INET, "inet6": socket.AF_INET6}


def _error(exc: BaseException) -> str:
    errno = getattr(exc, "errno", None)
    return f"{type(exc).__name__}({errno})" if errno is not None else type(exc).__name__


def gai(host: str, family: str, addrconfig: bool, port: int) -> dict[str, Any]:
    flags = socket.AI_ADDRCONFIG if addrconfig else 0
    start = time.perf_counter()
    try:
        infos = socket.getaddrinfo(host, port, _FAMILIES[family], socket.SOCK_STREAM, 0, flags)
    except OSError as exc:
        return {"elapsed": time.perf_counter() - start, "addresses": [], "error": _error(exc)}
    elapsed = time.perf_counter() - start
    return {"elapsed": elapsed, "addresses": [i[4][0] for i in infos], "error": None}


def connect(address: str, port: int, timeout: float) -> dict[str, Any]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    start = time.perf_counter()
    try:
        sock.connect((address, port))
    except OSError as exc:
        return {"elapsed": time.perf_counter() - start, "ok": False, "error": _error(exc)}
    finally:
        elapsed = time.perf_counter() - start
        sock.close()
    return {"elapsed": elapsed, "ok": True, "error": None}


def get(url: str, timeout: float) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read().decode()
    except OSError as exc:
        return {"elapsed": time.perf_counter() - start, "body": None, "error": _error(exc)}
    return {"elapsed": time.perf_counter() - start, "body": body, "error": None}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_gai = sub.add_parser("gai")
    p_gai.add_argument("host")
    p_gai.add_argument("--family", choices=sorted(_FAMILIES), default="unspec")
    p_gai.add_argument("--addrconfig", action="store_true")
    p_gai.add_argument("--port", type=int, default=80)
    p_conn = sub.add_parser("connect")
    p_conn.add_argument("address")
    p_conn.add_argument("--port", type=int, default=80)
    p_conn.add_argument("--timeout", type=float, default=2.0)
    p_get = sub.add_parser("get")
    p_get.add_argument("url")
    p_get.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.cmd == "gai":
        result = gai(args.host, args.family, args.addrconfig, args.port)
    elif args.cmd == "connect":
        result = connect(args.address, args.port, args.timeout)
    else:
        result = get(args.url, args.timeout)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
