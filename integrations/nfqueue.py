"""Latency without netem: hold queued SYNs in userspace and accept them after a delay.

iptables sends chosen packets to NFQUEUE; this daemon binds the queue over raw netlink
(NETLINK_NETFILTER, standard library only, so no compiler or libnetfilter-queue is needed), reads
each packet's destination address, looks up the configured delay and issues the ACCEPT verdict
from a timer. Verdicts are never slept on per packet, so parallel connects are delayed in
parallel, not serialised.

The queue is bound without ``--queue-bypass``: if this daemon dies, queued SYNs are dropped, so a
broken setup shows up as a broken address rather than as a silent "no delay".

Run by the lab inside the server namespace::

    python -m integrations.nfqueue --queue 0 --config DIR/latency.json --ready-fd N
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
from pathlib import Path
from typing import Iterator, Optional

from integrations.procutil import die_with_parent
from integrations.scheduler import Scheduler

__all__ = ["NetfilterQueue", "read_delays"]

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQNL_COPY_PACKET = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_PAYLOAD = 10
NF_ACCEPT = 1
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
NFNETLINK_V0 = 0
# Only the IP header is needed to find the destination; copying less keeps netlink traffic small.
COPY_RANGE = 64

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid (host byte order)
_NFGENMSG = struct.Struct("!BBH")  # family, version, res_id (queue number, big endian)
_NLATTR = struct.Struct("=HH")


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, payload: bytes) -> bytes:
    raw = _NLATTR.pack(_NLATTR.size + len(payload), kind) + payload
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def _attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + _NLATTR.size <= len(data):
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < _NLATTR.size:
            return
        # The top bits flag nesting/byte order; the attribute number is the rest.
        yield kind & 0x3FFF, data[offset + _NLATTR.size : offset + length]
        offset += _align(length)


def destination(packet: bytes) -> Optional[str]:
    """The destination address of a raw IPv4 or IPv6 packet."""
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4 and len(packet) >= 20:
        return str(ipaddress.IPv4Address(packet[16:20]))
    if version == 6 and len(packet) >= 40:
        return str(ipaddress.IPv6Address(packet[24:40]))
    return None


class NetfilterQueue:
    """One bound NFQUEUE queue over a raw netlink socket."""

    def __init__(self, queue: int) -> None:
        self.queue = queue
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        # Room for bursts of queued packets while the timer thread holds them.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self._seq = 0
        self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)))
        self._config(_attr(NFQA_CFG_PARAMS, struct.pack("!IB", COPY_RANGE, NFQNL_COPY_PACKET)))

    def _message(self, msg_type: int, flags: int, body: bytes) -> tuple[bytes, int]:
        self._seq += 1
        payload = _NFGENMSG.pack(socket.AF_UNSPEC, NFNETLINK_V0, self.queue) + body
        header = _NLMSGHDR.pack(
            _NLMSGHDR.size + len(payload),
            (NFNL_SUBSYS_QUEUE << 8) | msg_type,
            NLM_F_REQUEST | flags,
            self._seq,
            0,
        )
        return header + payload, self._seq

    def _config(self, body: bytes) -> None:
        message, seq = self._message(NFQNL_MSG_CONFIG, NLM_F_ACK, body)
        self.sock.send(message)
        # Wait for the kernel's ack so a failed bind (module missing, queue taken) is an error
        # at start-up rather than silently dropped SYNs later.
        while True:
            data = self.sock.recv(65536)
            for msg_type, msg_seq, payload in self._split(data):
                if msg_type == NLMSG_ERROR and msg_seq == seq:
                    (error,) = struct.unpack_from("=i", payload)
                    if error:
                        raise OSError(-error, f"NFQUEUE config failed: {os.strerror(-error)}")
                    return

    @staticmethod
    def _split(data: bytes) -> Iterator[tuple[int, int, bytes]]:
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, msg_type, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size:
                return
            yield msg_type, seq, data[offset + _NLMSGHDR.size : offset + length]
            offset += _align(length)

    def packets(self) -> Iterator[tuple[int, bytes]]:
        """Yield (packet id, packet bytes) forever."""
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError as exc:
                # ENOBUFS: the kernel dropped messages; those packets are lost to the queue and
                # the sender retransmits. Keep going rather than die.
                print(f"nfqueue: recv: {exc}", file=sys.stderr, flush=True)
                continue
            for msg_type, _seq, payload in self._split(data):
                if msg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET):
                    continue
                packet_id: Optional[int] = None
                packet = b""
                for kind, value in _attrs(payload[_NFGENMSG.size :]):
                    if kind == NFQA_PACKET_HDR:
                        (packet_id,) = struct.unpack_from("!I", value)
                    elif kind == NFQA_PAYLOAD:
                        packet = value
                if packet_id is not None:
                    yield packet_id, packet

    def accept(self, packet_id: int) -> None:
        body = _attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))
        message, _ = self._message(NFQNL_MSG_VERDICT, 0, body)
        self.sock.send(message)


class _Delays:
    """Per-destination delays from the lab's JSON file, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: Optional[tuple[int, int, int]] = None
        self.delays: dict[str, float] = {}

    def get(self, address: Optional[str]) -> float:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return 0.0
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._key:
            self.delays = read_delays(self.path)
            self._key = key
        return self.delays.get(address or "", 0.0)


def read_delays(path: Path) -> dict[str, float]:
    """``{"10.64.78.34": 200}`` (milliseconds) -> ``{"10.64.78.34": 0.2}`` with canonical keys."""
    raw = json.loads(path.read_text())
    return {str(ipaddress.ip_address(k)): float(v) / 1000.0 for k, v in raw.items()}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--ready-fd", type=int, default=-1)
    parser.add_argument("--parent", type=int, default=0)
    args = parser.parse_args(argv)
    if args.parent:
        die_with_parent(args.parent)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    # Verdicts are timed; keep them ahead of busy client processes (see servers.py).
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, -15)

    queue = NetfilterQueue(args.queue)
    delays = _Delays(args.config)
    scheduler = Scheduler("nfqueue-verdicts")
    if args.ready_fd >= 0:
        os.write(args.ready_fd, b"ready\n")
        os.close(args.ready_fd)
    for packet_id, packet in queue.packets():
        delay = delays.get(destination(packet))

        def verdict(pid: int = packet_id) -> None:
            queue.accept(pid)

        scheduler.call_later(delay, verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
