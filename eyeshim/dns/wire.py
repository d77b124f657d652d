"""DNS messages, as much of them as a stub resolver needs.

Queries (RFC 1035 §4.1, with an optional EDNS(0) OPT record, RFC 6891) and
responses whose answers are A, AAAA (RFC 3596) and CNAME records, with the
SOA record of a negative answer (RFC 2308); every other record is kept as
raw bytes.  Names are compared case-insensitively, so they are handed out
in lower case, without the final dot.

Why a codec of our own and not a library: the resolver is on the path of a
first connection, which may cost at most 15 ms over stock.  Measured with
``python -X importtime`` in a fresh interpreter on the project's machines:
``import dns.message`` (dnspython 2.9) 270-425 ms, ``import dnslib`` about
50 ms, this module about 1 ms (it imports only ``struct``).  The lab's DNS
server and the tests still use dnslib, which also cross-checks this codec.

:func:`parse` never raises anything but :class:`WireError` on arbitrary
bytes (a property test feeds it garbage), and never loops: compression
pointers must point backwards.
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Sequence, Tuple

__all__ = [
    "AAAA",
    "CLASS_IN",
    "CNAME",
    "SOA",
    "A",
    "Message",
    "Record",
    "WireError",
    "build_query",
    "build_response",
    "encode_name",
    "parse",
]

# Record types and classes.
A, NS, CNAME, SOA, AAAA, OPT = 1, 2, 5, 6, 28, 41
CLASS_IN = 1
# Response codes.
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5

# Header flags.
QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
AD = 0x0020

_HEADER = struct.Struct("!HHHHHH")
_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_QUESTION = struct.Struct("!HH")
_SOA_NUMBERS = struct.Struct("!IIIII")
MAX_NAME = 255  # octets on the wire
_MAX_LABEL = 63


class WireError(ValueError):
    """Bytes that are not a DNS message this codec understands."""


def encode_name(name: str) -> bytes:
    """``name`` (ASCII, optional final dot) in wire format.  WireError for an
    empty label, a label over 63 octets or a name over 255."""
    text = name[:-1] if name.endswith(".") else name
    out = bytearray()
    if text:
        for label in text.split("."):
            raw = label.encode("ascii")
            if not raw or len(raw) > _MAX_LABEL:
                raise WireError(f"bad label in {name!r}")
            out.append(len(raw))
            out += raw
    out.append(0)
    if len(out) > MAX_NAME:
        raise WireError(f"name too long: {name!r}")
    return bytes(out)


def build_query(
    qid: int, name: bytes, qtype: int, edns: Optional[int] = None, ad: bool = False
) -> bytes:
    """A recursive query for ``name`` (wire format) and ``qtype``; with
    ``edns`` an OPT record advertising that UDP payload size."""
    flags = RD | (AD if ad else 0)
    parts = [
        _HEADER.pack(qid, flags, 1, 0, 0, 1 if edns else 0),
        name,
        _QUESTION.pack(qtype, CLASS_IN),
    ]
    if edns:
        parts.append(b"\0" + _FIXED.pack(OPT, edns, 0, 0))
    return b"".join(parts)


class Record:
    """One resource record: ``data`` is the address text (A, AAAA), the
    target name (CNAME), the SOA's MINIMUM field (SOA), else the raw rdata."""

    __slots__ = ("data", "name", "rclass", "rtype", "ttl")

    def __init__(self, name: str, rtype: int, rclass: int, ttl: int, data: object) -> None:
        self.name = name
        self.rtype = rtype
        self.rclass = rclass
        self.ttl = ttl
        self.data = data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> Tuple[object, ...]:
        return (self.name, self.rtype, self.rclass, self.ttl, self.data)

    def __repr__(self) -> str:
        return f"Record({self.name!r}, {self.rtype}, ttl={self.ttl}, {self.data!r})"


class Message:
    """A parsed message: the header, the first question, the records."""

    __slots__ = (
        "additional",
        "ancount",
        "answers",
        "authority",
        "flags",
        "id",
        "qclass",
        "qname",
        "qtype",
        "rcode",
    )

    def __init__(self) -> None:
        self.id = 0
        self.flags = 0
        self.rcode = 0
        #: the header's answer count (glibc decides on it, not on the records)
        self.ancount = 0
        self.qname: Optional[str] = None
        self.qtype = 0
        self.qclass = 0
        self.answers: List[Record] = []
        self.authority: List[Record] = []
        self.additional: List[Record] = []

    @property
    def truncated(self) -> bool:
        return bool(self.flags & TC)

    @property
    def response(self) -> bool:
        return bool(self.flags & QR)

    def __repr__(self) -> str:
        return (
            f"Message(id={self.id}, rcode={self.rcode}, flags={self.flags:#x}, "
            f"q={self.qname!r}/{self.qtype}, answers={self.answers!r}, "
            f"authority={self.authority!r})"
        )


def _read_name(data: bytes, offset: int) -> Tuple[str, int]:
    """The name at ``offset`` and the offset after it (compression followed:
    pointers must point strictly backwards, so there is no loop)."""
    labels: List[str] = []
    end = -1
    length = 0
    limit = offset
    while True:
        if offset >= len(data):
            raise WireError("name runs past the end")
        size = data[offset]
        if size & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise WireError("truncated compression pointer")
            target = ((size & 0x3F) << 8) | data[offset + 1]
            if end < 0:
                end = offset + 2
            if target >= limit:
                raise WireError("compression pointer does not point backwards")
            offset = limit = target
            continue
        if size & 0xC0:
            raise WireError("unknown label type")
        offset += 1
        if size == 0:
            break
        if offset + size > len(data):
            raise WireError("label runs past the end")
        raw = data[offset : offset + size].lower()
        length += size + 1
        if length > MAX_NAME:
            raise WireError("name too long")
        label = raw.decode("latin-1")
        if "." in label or "\\" in label:
            label = label.replace("\\", "\\\\").replace(".", "\\.")
        labels.append(label)
        offset += size
    return ".".join(labels), (end if end >= 0 else offset)


def _read_record(data: bytes, offset: int) -> Tuple[Record, int]:
    name, offset = _read_name(data, offset)
    if offset + _FIXED.size > len(data):
        raise WireError("record header runs past the end")
    rtype, rclass, ttl, rdlength = _FIXED.unpack_from(data, offset)
    offset += _FIXED.size
    end = offset + rdlength
    if end > len(data):
        raise WireError("rdata runs past the end")
    value: object
    if rtype == A and rclass == CLASS_IN:
        if rdlength != 4:
            raise WireError("A record of the wrong length")
        value = "%d.%d.%d.%d" % tuple(data[offset:end])  # noqa: UP031 - fastest
    elif rtype == AAAA and rclass == CLASS_IN:
        if rdlength != 16:
            raise WireError("AAAA record of the wrong length")
        value = _ntop6(data[offset:end])
    elif rtype == CNAME:
        value, after = _read_name(data, offset)
        if after != end:
            raise WireError("CNAME rdata length mismatch")
    elif rtype == SOA:
        _, after = _read_name(data, offset)
        _, after = _read_name(data, after)
        if after + _SOA_NUMBERS.size != end:
            raise WireError("SOA rdata length mismatch")
        value = _SOA_NUMBERS.unpack_from(data, after)[4]
    else:
        value = bytes(data[offset:end])
    # RFC 2181 §8: a TTL with the top bit set is read as zero.
    return Record(name, rtype, rclass, ttl if ttl < 0x80000000 else 0, value), end


def _ntop6(raw: bytes) -> str:
    # socket.inet_ntop gives the canonical (RFC 5952) text, which is what
    # getaddrinfo reports; imported here so that parsing stays importable
    # without the socket module in tools that do not need it.
    import socket

    return socket.inet_ntop(socket.AF_INET6, raw)


def parse(data: bytes) -> Message:
    """Parse one DNS message; WireError for anything malformed."""
    if len(data) < _HEADER.size:
        raise WireError("shorter than a header")
    message = Message()
    message.id, message.flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    message.rcode = message.flags & 0xF
    message.ancount = ancount
    offset = _HEADER.size
    for index in range(qdcount):
        name, offset = _read_name(data, offset)
        if offset + _QUESTION.size > len(data):
            raise WireError("question runs past the end")
        qtype, qclass = _QUESTION.unpack_from(data, offset)
        offset += _QUESTION.size
        if index == 0:
            message.qname, message.qtype, message.qclass = name, qtype, qclass
    for count, section in (
        (ancount, message.answers),
        (nscount, message.authority),
        (arcount, message.additional),
    ):
        for _ in range(count):
            record, offset = _read_record(data, offset)
            section.append(record)
    return message


def _encode_rdata(record: Record) -> bytes:
    if record.rtype == A:
        return bytes(int(part) for part in str(record.data).split("."))
    if record.rtype == AAAA:
        import socket

        return socket.inet_pton(socket.AF_INET6, str(record.data))
    if record.rtype == CNAME:
        return encode_name(str(record.data))
    if record.rtype == SOA:
        minimum = int(record.data)  # type: ignore[call-overload]
        return b"\0\0" + _SOA_NUMBERS.pack(1, 3600, 600, 86400, minimum)
    assert isinstance(record.data, bytes)
    return record.data


def build_response(
    qid: int,
    qname: str,
    qtype: int,
    rcode: int = NOERROR,
    answers: Sequence[Record] = (),
    authority: Sequence[Record] = (),
    flags: int = QR | RD | RA,
) -> bytes:
    """A response (no name compression): for tests and small servers."""
    parts = [
        _HEADER.pack(qid, flags | rcode, 1, len(answers), len(authority), 0),
        encode_name(qname),
        _QUESTION.pack(qtype, CLASS_IN),
    ]
    for record in (*answers, *authority):
        rdata = _encode_rdata(record)
        parts.append(encode_name(record.name))
        parts.append(_FIXED.pack(record.rtype, record.rclass, record.ttl, len(rdata)))
        parts.append(rdata)
    return b"".join(parts)
