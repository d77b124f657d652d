"""The lab's DNS zone: records plus per-name, per-type impairments, and how to answer a query.

The zone lives in a JSON file that the lab writes (atomically, by rename) and the DNS server
re-reads whenever the file changes, so tests can change answers and impairments at runtime
without a control protocol.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from integrations.topology import DISCOVERY_NAME, DISCOVERY_V4, nat64_address

if TYPE_CHECKING:
    from dnslib import RR  # type: ignore[import-untyped]

# dnslib is imported where answers are built, not here: the lab, the matrix and the pytest
# conftest import this module for the Zone model, and must work (and skip with a reason) on a
# machine without dnslib.

__all__ = ["Answer", "Impairment", "NameEntry", "Zone", "answer_query"]

ORIGIN = "example.org"
# Families the lab serves records for; other types get NODATA.
_RTYPES = ("A", "AAAA")


@dataclass
class Impairment:
    """What the server does to replies of one type for one name."""

    delay_ms: float = 0.0  # hold the reply this long (on a timer; other replies are not held)
    drop: bool = False  # never reply: the resolver times out and retries
    servfail: bool = False  # reply SERVFAIL instead of the records
    truncate: bool = False  # over UDP: an empty reply with TC set (the records come over TCP)

    def is_default(self) -> bool:
        return self == Impairment()


@dataclass
class NameEntry:
    A: list[str] = field(default_factory=list)
    AAAA: list[str] = field(default_factory=list)
    impair: dict[str, Impairment] = field(default_factory=dict)
    # An alias: every query for the name is answered with a CNAME to this name (absolute, or
    # relative to the origin) followed by what the target has (chains are followed).
    cname: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "A": list(self.A),
            "AAAA": list(self.AAAA),
            "impair": {t: asdict(i) for t, i in self.impair.items() if not i.is_default()},
        }
        if self.cname is not None:
            data["cname"] = self.cname
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NameEntry:
        return cls(
            A=list(data.get("A", [])),
            AAAA=list(data.get("AAAA", [])),
            impair={t.upper(): Impairment(**i) for t, i in data.get("impair", {}).items()},
            cname=data.get("cname"),
        )


def fqdn(name: str, origin: str = ORIGIN) -> str:
    """``s1`` -> ``s1.example.org``; names under the origin and names with a final dot
    (``mix.lab.test.``) are absolute; lower case, no final dot."""
    absolute = name.endswith(".")
    name = name.rstrip(".").lower()
    if absolute or name == origin or name.endswith("." + origin):
        return name
    return f"{name}.{origin}" if name else origin


@dataclass
class Zone:
    origin: str = ORIGIN
    ttl: int = 60
    names: dict[str, NameEntry] = field(default_factory=dict)
    # Other domains the server answers for (search-list tests need names in two domains);
    # their negative answers carry the origin's SOA.
    domains: list[str] = field(default_factory=list)
    # The SOA's MINIMUM field: how long resolvers may cache a negative answer (RFC 2308).
    negative_ttl: int = 60

    def set(
        self,
        name: str,
        a: Optional[list[str]] = None,
        aaaa: Optional[list[str]] = None,
        impair: Optional[dict[str, Impairment]] = None,
        cname: Optional[str] = None,
    ) -> str:
        key = fqdn(name, self.origin)
        self.names[key] = NameEntry(
            A=list(a or []), AAAA=list(aaaa or []), impair=impair or {}, cname=cname
        )
        return key

    def serves(self, qname: str) -> bool:
        return any(qname == d or qname.endswith("." + d) for d in (self.origin, *self.domains))

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "ttl": self.ttl,
            "names": {k: v.to_json() for k, v in self.names.items()},
            "domains": list(self.domains),
            "negative_ttl": self.negative_ttl,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Zone:
        return cls(
            origin=data.get("origin", ORIGIN),
            ttl=int(data.get("ttl", 60)),
            names={k: NameEntry.from_json(v) for k, v in data.get("names", {}).items()},
            domains=list(data.get("domains", [])),
            negative_ttl=int(data.get("negative_ttl", 60)),
        )

    def write(self, path: Path) -> None:
        # Write-then-rename so the server never reads a half-written file; the new inode also
        # tells the server to reload even if mtimes collide.
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True))
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> Zone:
        return cls.from_json(json.loads(path.read_text()))


@dataclass
class Answer:
    """A planned reply: ``payload is None`` means stay silent."""

    payload: Optional[bytes]
    delay_s: float = 0.0


def _soa(zone: Zone) -> RR:
    from dnslib import QTYPE, RR, SOA

    # The SOA in the authority section is what makes NXDOMAIN/NODATA negative answers proper
    # (RFC 2308); glibc accepts them either way but real servers always send it.
    return RR(
        zone.origin + ".",
        QTYPE.SOA,
        ttl=zone.ttl,
        rdata=SOA(
            "ns." + zone.origin + ".",
            "hostmaster." + zone.origin + ".",
            (2024010101, 7200, 3600, 1209600, zone.negative_ttl),
        ),
    )


def answer_query(
    zone: Zone, data: bytes, dns64_prefix: Optional[str] = None, tcp: bool = False
) -> Answer:
    """Decide the reply to one DNS query message (``tcp``: it came over TCP, where a
    ``truncate`` impairment does not apply).

    With ``dns64_prefix`` (a query that arrived on the DNS64 listener) the server also acts as
    a DNS64 resolver (RFC 6147, RFC 7050): ``ipv4only.arpa`` has the A records 192.0.0.170 and
    .171 and their synthesized AAAA records, and an AAAA query for a zone name that has A
    records but no AAAA records is answered with AAAA records synthesized from the A records.
    Impairments are those of the queried type (``zone.names["ipv4only.arpa"]`` may hold some
    for discovery); an A impairment does not delay a synthesized AAAA.  A name with a
    ``cname`` is answered with the CNAME and then what its target has, as a recursive server
    does (the chain is followed within the zone; a target the zone does not have makes the
    reply NXDOMAIN, with the CNAMEs).
    """
    from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, A, DNSRecord

    try:
        request = DNSRecord.parse(data)
    except Exception:  # dnslib raises several types on garbage; garbage gets no answer
        return Answer(None)
    reply = request.reply(ra=1, aa=1)
    if not request.questions:
        reply.header.rcode = RCODE.FORMERR
        return Answer(reply.pack())
    question = request.q
    qname = str(question.qname).rstrip(".").lower()
    qtype = QTYPE.get(question.qtype, str(question.qtype))

    discovery = dns64_prefix is not None and qname == DISCOVERY_NAME
    if not (zone.serves(qname) or discovery):
        reply.header.rcode = RCODE.REFUSED
        return Answer(reply.pack())

    entry = zone.names.get(qname)
    impairment = entry.impair.get(qtype, Impairment()) if entry else Impairment()
    if impairment.drop:
        return Answer(None)
    delay = impairment.delay_ms / 1000.0
    if impairment.servfail:
        reply.header.rcode = RCODE.SERVFAIL
        return Answer(reply.pack(), delay)
    if impairment.truncate and not tcp:
        reply.header.tc = 1
        return Answer(reply.pack(), delay)

    # Follow CNAMEs within the zone (at most 8), answering with each link.
    owner = qname
    for _ in range(8):
        if entry is None or entry.cname is None:
            break
        target = fqdn(entry.cname, zone.origin)
        reply.add_answer(RR(owner + ".", QTYPE.CNAME, ttl=zone.ttl, rdata=CNAME(target + ".")))
        owner, entry = target, zone.names.get(target)

    if discovery:
        assert dns64_prefix is not None
        entry = NameEntry(
            A=list(DISCOVERY_V4), AAAA=[nat64_address(a, dns64_prefix) for a in DISCOVERY_V4]
        )
    elif dns64_prefix is not None and entry is not None and entry.A and not entry.AAAA:
        entry = NameEntry(
            A=entry.A, AAAA=[nat64_address(a, dns64_prefix) for a in entry.A], impair=entry.impair
        )

    if entry is None and owner != zone.origin:
        reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(_soa(zone))
        return Answer(reply.pack(), delay)

    if qtype == "SOA" and owner == zone.origin:
        reply.add_answer(_soa(zone))
        return Answer(reply.pack(), delay)

    records: list[str] = []
    if entry is not None and qtype in _RTYPES:
        records = entry.A if qtype == "A" else entry.AAAA
    for address in records:
        rdata = A(address) if qtype == "A" else AAAA(address)
        reply.add_answer(RR(owner + ".", getattr(QTYPE, qtype), ttl=zone.ttl, rdata=rdata))
    if not records and not discovery:
        reply.add_auth(_soa(zone))  # NODATA: NOERROR, no address records, SOA
    return Answer(reply.pack(), delay)
