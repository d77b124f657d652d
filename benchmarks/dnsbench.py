"""P1 on a resolved name through a real DNS server: eyeshim's stub resolver against stock.

Issue 13, item 6: a connect to a name that needs DNS, with a real DNS server answering A and
AAAA, timed back to back in one process for each contender, in interleaved rounds:

* ``stock``: ``socket.create_connection`` (one AF_UNSPEC getaddrinfo, then connect);
* ``eyeshim``: ``eyeshim.create_connection`` with the default ``resolver=auto`` (the stub
  resolver on the race's selector);
* ``eyeshim (system)``: the same with ``resolver=system`` (getaddrinfo on threads, as before
  issue 13).

Two places::

    python -m benchmarks.dnsbench loopback   # a DNS server on a loopback address; root
    python -m benchmarks.dnsbench lab        # the lab: DNS and servers in the server namespace

``loopback`` starts the lab's DNS server on a free 127.x.y.z:53 and an accept-and-close server
on ::1 and 127.0.0.1, then measures in a private mount namespace (``unshare -m``) whose
/etc/resolv.conf names that DNS server, so glibc and the stub ask the same server. ``lab``
runs the measuring process in the lab's dual-stack client. Both print one table and a JSON
line; the benchmarks helper can adopt the ``measure`` part as a scenario later.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

NAME = "dual.example.org"
REPO = Path(__file__).resolve().parent.parent


def _contenders() -> dict[str, Callable[[tuple[str, int], float], socket.socket]]:
    import eyeshim
    from eyeshim.config import Config
    from eyeshim.connection import connect

    system = Config(resolver="system")

    def eyeshim_system(address: tuple[str, int], timeout: float) -> socket.socket:
        return connect(address, timeout, config=system)

    return {
        "stock": socket.create_connection,
        "eyeshim": eyeshim.create_connection,
        "eyeshim (system)": eyeshim_system,
    }


def measure(name: str, port: int, rounds: int, batch: int) -> dict[str, Any]:
    """Median connect latency per contender (interleaved rounds), in this process."""
    from eyeshim.dns import choice

    contenders = _contenders()
    times: dict[str, list[float]] = {label: [] for label in contenders}
    peers: dict[str, str] = {}
    for label, make in contenders.items():  # warm up: imports, first lookups, history
        for _ in range(5):
            with make((name, port), 5) as sock:
                peers[label] = str(sock.getpeername()[0])
    threads_after: dict[str, int] = {}
    order = list(contenders)
    for _ in range(rounds):
        random.shuffle(order)
        for label in order:
            make = contenders[label]
            samples = times[label]
            for _ in range(batch):
                start = time.perf_counter()
                sock = make((name, port), 5)
                samples.append(time.perf_counter() - start)
                sock.close()
            threads_after[label] = threading.active_count()
    medians = {label: statistics.median(samples) for label, samples in times.items()}
    stock = medians["stock"]
    return {
        "name": name,
        "resolver": str(choice(name)),
        "connects": rounds * batch,
        "median_us": {label: value * 1e6 for label, value in medians.items()},
        "ratio": {label: value / stock for label, value in medians.items()},
        "peer": peers,
        "threads_after": threads_after,
    }


_FIRST = (
    "import sys, time\n"
    "start = time.perf_counter()\n"
    "import socket\n"
    "if sys.argv[1] == 'stock':\n"
    "    connect = socket.create_connection\n"
    "else:\n"
    "    import eyeshim\n"
    "    if sys.argv[1] == 'eyeshim (system)':\n"
    "        eyeshim.set_config(eyeshim.Config(resolver='system'))\n"
    "    connect = eyeshim.create_connection\n"
    "connect((sys.argv[2], int(sys.argv[3])), 5).close()\n"
    "print(time.perf_counter() - start)\n"
)


def first_connect(name: str, port: int, runs: int) -> dict[str, float]:
    """Median time, in a fresh interpreter, from before ``import socket`` (and eyeshim) to
    the end of the first connect: the zero-cost issue's first-connect figure (bytecode
    compiled beforehand, as an installed package has it)."""
    import compileall

    compileall.compile_dir(str(REPO / "eyeshim"), quiet=1)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    samples: dict[str, list[float]] = {"stock": [], "eyeshim": [], "eyeshim (system)": []}
    for _ in range(runs):
        for label in samples:
            out = subprocess.run(
                [sys.executable, "-c", _FIRST, label, name, str(port)],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            samples[label].append(float(out.stdout.strip()))
    return {label: statistics.median(values) * 1e3 for label, values in samples.items()}


def _table(where: str, result: dict[str, Any]) -> str:
    lines = [
        f"{where}: {result['name']} through a DNS server ({result.get('server', 'lab')}), "
        f"{result['connects']} connects each",
        f"  eyeshim's resolver: {result['resolver']}",
    ]
    for label, value in result["median_us"].items():
        lines.append(
            f"  {label:<18} median {value:8.1f} us  {result['ratio'][label]:5.2f}x stock"
            f"  peer {result['peer'][label]}"
        )
    first = result.get("first_connect_ms")
    if first:
        lines.append(
            f"  first connect in a fresh interpreter (imports included): stock "
            f"{first['stock']:.1f} ms, eyeshim {first['eyeshim']:.1f} ms "
            f"(+{first['eyeshim'] - first['stock']:.1f} ms), eyeshim (system) "
            f"{first['eyeshim (system)']:.1f} ms"
        )
    return "\n".join(lines)


def _accept_server(port_file: Path) -> subprocess.Popen[bytes]:
    """Accept-and-close on ::1 and 127.0.0.1 (one port), in its own process."""
    code = (
        "import socket, sys, threading\n"
        "six = socket.socket(socket.AF_INET6); six.setsockopt(socket.IPPROTO_IPV6, "
        "socket.IPV6_V6ONLY, 1); six.bind(('::1', 0)); six.listen(4096)\n"
        "port = six.getsockname()[1]\n"
        "four = socket.socket(); four.bind(('127.0.0.1', port)); four.listen(4096)\n"
        "open(sys.argv[1], 'w').write(str(port))\n"
        "def serve(s):\n"
        "    while True:\n"
        "        c, _ = s.accept(); c.close()\n"
        "threading.Thread(target=serve, args=(four,), daemon=True).start()\n"
        "serve(six)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(port_file)])


def _dns_server(zone_path: Path, address: str) -> subprocess.Popen[bytes]:
    code = (
        "import sys\nfrom pathlib import Path\nfrom integrations.servers import DNSServer\n"
        "server = DNSServer(Path(sys.argv[1]), [sys.argv[2]], port=53)\n"
        "open(sys.argv[3], 'w').write('ready')\nserver.serve_forever()\n"
    )
    ready = zone_path.with_suffix(".ready")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(zone_path), address, str(ready)], cwd=REPO
    )
    _wait_for(ready, proc)
    return proc


def _wait_for(path: Path, proc: subprocess.Popen[bytes], bound: float = 15.0) -> str:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        if proc.poll() is not None:
            raise RuntimeError(f"helper process exited with {proc.returncode}")
        time.sleep(0.02)
    raise RuntimeError("helper process not ready")


def _dnsmasq(address: str) -> Optional[subprocess.Popen[bytes]]:
    """dnsmasq answering NAME from its own table (a DNS server in C: the lab's server is
    Python and takes a few hundred microseconds per query), or None when not installed."""
    program = shutil.which("dnsmasq") or (
        "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None
    )
    if program is None:
        return None
    proc = subprocess.Popen(
        [
            program,
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            f"--listen-address={address}",
            "--port=53",
            "--local-ttl=60",
            f"--host-record={NAME},127.0.0.1,::1",
            "--pid-file=",
            "--user=root",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # ready when it answers
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.settimeout(0.2)
                probe.sendto(_QUERY, (address, 53))
                probe.recv(512)
                return proc
        except OSError:
            if proc.poll() is not None:
                return None
    proc.terminate()
    return None


# A query for NAME, A record (what the readiness check sends).
_QUERY = (
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    + b"".join(bytes([len(label)]) + label.encode() for label in NAME.split("."))
    + b"\x00\x00\x01\x00\x01"
)


def loopback(rounds: int, batch: int, server: str = "dnsmasq", first: int = 15) -> dict[str, Any]:
    from integrations.dnszone import Zone

    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.53"
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        zone = Zone(ttl=60)
        zone.set(NAME.split(".")[0], a=["127.0.0.1"], aaaa=["::1"])
        zone.write(folder / "zone.json")
        resolv = folder / "resolv.conf"
        resolv.write_text(f"nameserver {address}\noptions timeout:1 attempts:2\n")
        dns = _dnsmasq(address) if server == "dnsmasq" else None
        if dns is None:
            server = "lab"
            dns = _dns_server(folder / "zone.json", address)
        accept = _accept_server(folder / "port")
        try:
            port = int(_wait_for(folder / "port", accept))
            inner = (
                f"mount --bind {resolv} /etc/resolv.conf && exec {sys.executable} -m "
                f"benchmarks.dnsbench measure --name {NAME} --port {port} "
                f"--rounds {rounds} --batch {batch} --first {first}"
            )
            out = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
        finally:
            for proc in (dns, accept):
                proc.terminate()
                proc.wait(5)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["server"] = server
    return result


def lab(rounds: int, batch: int, first: int = 15) -> dict[str, Any]:
    from integrations.lab import Lab

    with Lab(f"db{os.getpid()}"[:16], clients=("ds",)) as running:
        running.set_name(NAME.split(".")[0], a=["10.64.78.34"], aaaa=["2001:db8:c::1"])
        result: Any = running.python_json(
            "ds",
            [
                "-m",
                "benchmarks.dnsbench",
                "measure",
                "--name",
                NAME,
                "--port",
                "80",
                "--rounds",
                str(rounds),
                "--batch",
                str(batch),
                "--first",
                str(first),
            ],
            timeout=900,
        )
    assert isinstance(result, dict)
    return result


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dnsbench", description=__doc__)
    parser.add_argument("where", choices=["loopback", "lab", "measure"])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--name", default=NAME)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument(
        "--first",
        type=int,
        default=15,
        metavar="N",
        help="also time the first connect in N fresh interpreters per contender (0: no)",
    )
    parser.add_argument(
        "--server",
        choices=["dnsmasq", "lab"],
        default="dnsmasq",
        help="loopback: the DNS server (dnsmasq when installed, else the lab's Python server)",
    )
    args = parser.parse_args(argv)
    if args.where == "measure":
        result = measure(args.name, args.port, args.rounds, args.batch)
        if args.first:
            result["first_connect_ms"] = first_connect(args.name, args.port, args.first)
        print(json.dumps(result))
        return 0
    if args.where == "loopback":
        result = loopback(args.rounds, args.batch, args.server, args.first)
    else:
        result = lab(args.rounds, args.batch, args.first)
    print(_table(args.where, result))
    print(json.dumps({"where": args.where, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
