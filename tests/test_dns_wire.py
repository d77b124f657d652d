"""eyeshim.dns.wire: the DNS codec.  Property tests: it never fails on arbitrary bytes with
anything but WireError, and what it builds it reads back; dnslib cross-checks it."""

from __future__ import annotations

import socket
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eyeshim.dns import wire

LABEL = st.text(alphabet=string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=20)
NAME = st.lists(LABEL, min_size=1, max_size=5).map(".".join)
IPV4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: "%d.%d.%d.%d" % t)  # noqa: UP031
IPV6 = st.binary(min_size=16, max_size=16).map(lambda b: socket.inet_ntop(socket.AF_INET6, b))


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=600))
def test_parse_never_fails_with_anything_but_wire_error(data: bytes) -> None:
    try:
        wire.parse(data)
    except wire.WireError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=12, max_size=200), st.integers(0, 11))
def test_parse_survives_garbage_after_a_plausible_header(data: bytes, cut: int) -> None:
    # Counts that promise more than there is, pointers anywhere.
    header = bytes([0, 1, 0x81, 0x80, 0, 1, 0, 3, 0, 1, 0, 1])
    try:
        wire.parse(header[:12] + data[cut:])
    except wire.WireError:
        pass


@given(st.integers(0, 0xFFFF), NAME, st.sampled_from([wire.A, wire.AAAA]), st.booleans())
def test_a_query_reads_back(qid: int, name: str, qtype: int, edns: bool) -> None:
    message = wire.parse(
        wire.build_query(qid, wire.encode_name(name), qtype, 1200 if edns else None)
    )
    assert (message.id, message.qname, message.qtype, message.qclass) == (
        qid,
        name,
        qtype,
        wire.CLASS_IN,
    )
    assert not message.response
    assert len(message.additional) == (1 if edns else 0)


@given(
    NAME,
    st.lists(IPV4, max_size=4),
    st.lists(IPV6, max_size=4),
    st.integers(0, 2**31 - 1),
    st.sampled_from([wire.NOERROR, wire.NXDOMAIN, wire.SERVFAIL]),
)
def test_a_response_reads_back(
    name: str, fours: list[str], sixes: list[str], ttl: int, rcode: int
) -> None:
    answers = [wire.Record(name, wire.A, wire.CLASS_IN, ttl, a) for a in fours]
    answers += [wire.Record(name, wire.AAAA, wire.CLASS_IN, ttl, a) for a in sixes]
    answers.insert(0, wire.Record("alias." + name, wire.CNAME, wire.CLASS_IN, ttl, name))
    soa = [wire.Record(name, wire.SOA, wire.CLASS_IN, ttl, 42)]
    data = wire.build_response(7, "alias." + name, wire.A, rcode, answers, soa)
    message = wire.parse(data)
    assert message.response and message.rcode == rcode and message.id == 7
    assert message.answers == answers
    assert message.authority == soa
    assert message.ancount == len(answers)


def test_names_are_checked_when_encoded() -> None:
    assert wire.encode_name("a.b.") == b"\x01a\x01b\x00"
    assert wire.encode_name("") == b"\x00"
    for bad in ("a..b", "x" * 64 + ".org", ".".join(["x" * 60] * 5)):
        with pytest.raises(wire.WireError):
            wire.encode_name(bad)


def test_compression_pointers_must_point_backwards() -> None:
    header = bytes([0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0])
    loop = header + b"\xc0\x0c" + b"\x00\x01\x00\x01"  # points at itself
    with pytest.raises(wire.WireError):
        wire.parse(loop)


def test_what_dnslib_builds_with_compression_is_read() -> None:
    dnslib = pytest.importorskip("dnslib")
    query = dnslib.DNSRecord.question("www.Example.org", "AAAA")
    reply = query.reply()
    reply.add_answer(
        dnslib.RR(
            "www.example.org", dnslib.QTYPE.CNAME, rdata=dnslib.CNAME("h.example.org"), ttl=30
        )
    )
    reply.add_answer(
        dnslib.RR("h.example.org", dnslib.QTYPE.AAAA, rdata=dnslib.AAAA("2001:db8::1"), ttl=20)
    )
    reply.add_auth(
        dnslib.RR(
            "example.org",
            dnslib.QTYPE.SOA,
            ttl=50,
            rdata=dnslib.SOA("ns.example.org", "h.example.org", (1, 2, 3, 4, 15)),
        )
    )
    message = wire.parse(reply.pack())
    assert message.qname == "www.example.org"  # lower case
    assert [(r.name, r.rtype, r.ttl, r.data) for r in message.answers] == [
        ("www.example.org", wire.CNAME, 30, "h.example.org"),
        ("h.example.org", wire.AAAA, 20, "2001:db8::1"),
    ]
    assert message.authority[0].data == 15  # the SOA's MINIMUM
    # And dnslib reads what this codec builds.
    ours = wire.build_query(5, wire.encode_name("a.example.org"), wire.AAAA, 1200, ad=True)
    parsed = dnslib.DNSRecord.parse(ours)
    assert str(parsed.q.qname) == "a.example.org." and parsed.q.qtype == wire.AAAA
    assert parsed.header.rd == 1 and parsed.header.ad == 1


def test_importing_the_codec_is_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import time; t = time.perf_counter(); import eyeshim.dns.wire; "
        "print(time.perf_counter() - t)"
    )
    elapsed = float(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert elapsed < 0.1  # about 1 ms here; the bound is for busy machines
