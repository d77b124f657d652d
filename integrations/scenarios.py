"""The matrix's scenarios: the seed article's seven DNS answers, DNS impairments, gai.conf.

Each scenario has its own name in ``example.org`` (``s1`` ... ``s7``, ``d1`` ... ``d5``, ``g3``,
``g4``) so all of them live in one zone and matrix cells can run concurrently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from integrations.dnszone import Impairment, Zone
from integrations.topology import (
    CLIENTS,
    TLS_V6_MTU,
    TLS_V6_OK,
    TLS_V6_SILENT,
    TLS_V6_SLOW,
    short_address,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from integrations.lab import Lab

__all__ = [
    "BROKEN",
    "SCENARIOS",
    "SEARCH",
    "TLS_BROKEN",
    "UNREACHABLE",
    "Scenario",
    "apply_tls_impairments",
    "matrix_zone",
]

V4_OK = "10.64.78.34"
V4_BROKEN_A = "10.64.78.33"
V4_BROKEN_B = "10.64.78.35"
V6_OK = "2002:a40:4c07:1::faf1"
V6_BROKEN_A = "2002:a40:4c07:1::faf2"
V6_BROKEN_B = "2002:a40:4c07:1::aaa1"
# Answers every connection with an ICMP host-unreachable, as a router on the path would.
V4_UNREACHABLE = "10.64.78.36"

# Broken like in the seed: SYNs to these are dropped, so connects just time out.
BROKEN = (V4_BROKEN_A, V4_BROKEN_B, V6_BROKEN_A, V6_BROKEN_B)
UNREACHABLE = (V4_UNREACHABLE,)
# HTTPS: TCP connects, the TLS handshake never completes (a path MTU black hole eating the
# server's certificate flight; a middlebox that never passes the ClientHello on).
TLS_BROKEN = (TLS_V6_MTU, TLS_V6_SILENT)
# HTTPS: every packet to it held 300 ms (NFQUEUE): a slow path whose handshake still works.
TLS_SLOW_MS = 300
TLS_MARKS = {TLS_V6_MTU: "✗mtu", TLS_V6_SILENT: "✗tls", TLS_V6_SLOW: f"+{TLS_SLOW_MS}ms"}

# Where each kind of scenario runs: the seed's two clients, plus (full runs) the other variants.
SEED_CLIENTS = ("v4", "ds", "nr", "d6")
GAI_CLIENTS = ("dsg",)


@dataclass(frozen=True)
class Scenario:
    key: str  # DNS label: <key>.example.org
    title: str
    a: tuple[str, ...]
    aaaa: tuple[str, ...]
    impair: dict[str, Impairment] = field(default_factory=dict)
    clients: tuple[str, ...] = SEED_CLIENTS
    group: str = "seed"
    #: the connect timeout of this scenario's cells (None: the matrix's)
    timeout: float | None = None
    #: the name the cells connect to, when it is not ``<key>.example.org``
    name: str | None = None
    #: zone entries besides ``host``'s: (name, A, AAAA); a name without a dot is in example.org
    decoys: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()
    #: extra environment of the eyeshim cells (e.g. EYESHIM_RESOLVER)
    env: tuple[tuple[str, str], ...] = ()
    #: "https": the cells fetch https://HOST/ (the "t" scenarios; pip runs there too)
    scheme: str = "http"
    #: every address presents a certificate the client does not trust
    bad_certificate: bool = False
    #: seconds a perfect client needs on the fastest working path beyond DNS (slow paths)
    min_time: float = 0.0

    @property
    def host(self) -> str:
        return self.name or f"{self.key}.example.org"

    def answer_text(self) -> str:
        """The DNS answer as the matrix prints it, broken addresses marked with ✗."""
        parts = []
        for address in (*self.a, *self.aaaa):
            mark = "✗" if address in BROKEN else "⊘" if address in UNREACHABLE else ""
            if self.scheme == "https":
                mark += TLS_MARKS.get(address, "")
            parts.append(f"{short_address(address)}{mark}")
        text = " ".join(parts) or "(none)"
        if self.bad_certificate:
            text += "; untrusted certificate"
        for rtype, imp in self.impair.items():
            if imp.drop:
                text += f"; {rtype} lost"
            elif imp.servfail:
                text += f"; {rtype} SERVFAIL"
            elif imp.delay_ms:
                text += f"; {rtype} +{imp.delay_ms:.0f} ms"
        return text

    def working(self, role: str) -> list[str]:
        """Addresses the client ``role`` could connect to, given its IPv6 and the impairments
        (lost or SERVFAIL answers do not count)."""
        spec = CLIENTS[role]
        out: list[str] = []
        for rtype, addresses in (("A", self.a), ("AAAA", self.aaaa)):
            imp = self.impair.get(rtype, Impairment())
            if imp.drop or imp.servfail:
                continue
            if rtype == "AAAA" and not spec.has_ipv6_route:
                continue
            out.extend(a for a in addresses if a not in BROKEN and a not in UNREACHABLE)
        if self.scheme == "https":
            if self.bad_certificate:
                return []
            out = [a for a in out if a not in TLS_BROKEN]
        return out

    def best_case(self, role: str) -> float | None:
        """Seconds a perfect client needs before it can connect (the fastest DNS answer that
        leads to a working address), or None if nothing works."""
        delays = []
        for rtype, addresses in (("A", self.a), ("AAAA", self.aaaa)):
            if any(a in self.working(role) for a in addresses):
                delays.append(self.impair.get(rtype, Impairment()).delay_ms / 1000.0)
        return min(delays) + self.min_time if delays else None


_BOTH = ((V4_OK,), (V6_OK,))

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("s1", "one IPv4", (V4_OK,), ()),
    Scenario("s2", "one IPv6", (), (V6_OK,)),
    Scenario("s3", "IPv4 + IPv6", (V4_OK,), (V6_OK,)),
    Scenario("s4", "IPv4 + broken IPv6", (V4_OK,), (V6_BROKEN_A,)),
    Scenario("s5", "broken IPv4 + IPv6", (V4_BROKEN_B,), (V6_OK,)),
    Scenario("s6", "IPv4 + two IPv6, one broken", (V4_OK,), (V6_BROKEN_B, V6_OK)),
    Scenario("s7", "two IPv4, one broken + IPv6", (V4_BROKEN_A, V4_OK), (V6_OK,)),
    Scenario("d1", "AAAA 300 ms late", *_BOTH, {"AAAA": Impairment(delay_ms=300)}, group="dns"),
    Scenario("d2", "A 300 ms late", *_BOTH, {"A": Impairment(delay_ms=300)}, group="dns"),
    Scenario("d3", "AAAA lost", *_BOTH, {"AAAA": Impairment(drop=True)}, group="dns"),
    Scenario("d4", "A lost", *_BOTH, {"A": Impairment(drop=True)}, group="dns"),
    Scenario("d5", "AAAA SERVFAIL", *_BOTH, {"AAAA": Impairment(servfail=True)}, group="dns"),
    # DNS slower than the connect timeout: the timeout bounds each connect, as in the
    # stdlib, not name resolution (stock connects at about 1.5 s).
    Scenario(
        "d6",
        "A and AAAA 1.5 s late, timeout 1 s",
        *_BOTH,
        {"AAAA": Impairment(delay_ms=1500), "A": Impairment(delay_ms=1500)},
        group="dns",
        timeout=1.0,
    ),
    # resolv.conf "search lab.test example.org" (every client has it, see SEARCH): "mix" has
    # only an A record as mix.lab.test and only an AAAA record as mix.example.org.  Stock's
    # one AF_UNSPEC lookup stops at mix.lab.test; per-family lookups that walk the list on
    # their own would reach the other host over IPv6.  Once with eyeshim's own resolver,
    # once with getaddrinfo on threads (EYESHIM_RESOLVER=system).
    Scenario(
        "n1",
        "search list: A in the 1st domain, AAAA in the 2nd",
        (V4_OK,),
        (),
        group="search",
        name="mix",
        decoys=(("mix.lab.test.", (V4_OK,), ()), ("mix", (), (V6_OK,))),
    ),
    Scenario(
        "n2",
        "the same, EYESHIM_RESOLVER=system",
        (V4_OK,),
        (),
        group="search",
        name="mix",
        decoys=(("mix.lab.test.", (V4_OK,), ()), ("mix", (), (V6_OK,))),
        env=(("EYESHIM_RESOLVER", "system"),),
    ),
    # A router's ICMP host-unreachable on a host that has IPv4: fails as fast as stock
    # (no NAT64 discovery: this host can route IPv4), or falls back to IPv6 at once.
    Scenario("u1", "IPv4 host-unreachable only", (V4_UNREACHABLE,), (), group="unreachable"),
    Scenario(
        "u2", "IPv4 host-unreachable + IPv6", (V4_UNREACHABLE,), (V6_OK,), group="unreachable"
    ),
    Scenario(
        "g3",
        "IPv4 + IPv6, gai.conf prefers 6to4",
        (V4_OK,),
        (V6_OK,),
        clients=GAI_CLIENTS,
        group="gai",
    ),
    Scenario(
        "g4",
        "IPv4 + broken IPv6, gai.conf prefers 6to4",
        (V4_OK,),
        (V6_BROKEN_A,),
        clients=GAI_CLIENTS,
        group="gai",
    ),
)


#: The search list every matrix client has in its resolv.conf.  The other scenarios' names
#: have more dots than ndots (1), so they are tried as they are first and never see it.
SEARCH = ("lab.test", "example.org")

_HTTPS = ("ds",)
_V4_V6 = ((V4_OK,), (TLS_V6_OK,))

SCENARIOS += (
    # HTTPS: TCP works and the TLS handshake does not (or is slow). Run on the dual-stack client,
    # where the IPv6 address (in its own 2001:db8 prefix) is preferred, as on most hosts.
    Scenario("t0", "HTTPS, IPv4 + IPv6", *_V4_V6, clients=_HTTPS, group="tls", scheme="https"),
    Scenario(
        "t1",
        "HTTPS, IPv6 drops packets > 1280 bytes",
        (V4_OK,),
        (TLS_V6_MTU,),
        clients=_HTTPS,
        group="tls",
        scheme="https",
    ),
    Scenario(
        "t2",
        "HTTPS, IPv6 accepts TCP, never answers TLS",
        (V4_OK,),
        (TLS_V6_SILENT,),
        clients=_HTTPS,
        group="tls",
        scheme="https",
    ),
    Scenario(
        "t3",
        f"HTTPS, IPv6 {TLS_SLOW_MS} ms slower (TLS too), IPv4 fine",
        (V4_OK,),
        (TLS_V6_SLOW,),
        clients=_HTTPS,
        group="tls",
        scheme="https",
    ),
    Scenario(
        "t4",
        "HTTPS, certificate fails verification on both",
        *_V4_V6,
        clients=_HTTPS,
        group="tls",
        scheme="https",
        bad_certificate=True,
    ),
    # The slow handshake is the only way: it must not be aborted when IPv4 is tried. A perfect
    # client needs three round trips of 300 ms (TCP, TLS, the request).
    Scenario(
        "t5",
        f"HTTPS, IPv6 {TLS_SLOW_MS} ms slower (TLS too), IPv4 broken",
        (V4_BROKEN_A,),
        (TLS_V6_SLOW,),
        clients=_HTTPS,
        group="tls",
        scheme="https",
        min_time=3 * TLS_SLOW_MS / 1000,
    ),
)


def apply_tls_impairments(lab: Lab) -> None:
    """Set up the "t" scenarios' impairments in a lab started with ``tls=True``."""
    lab.break_address(TLS_V6_MTU, how="mtu")
    lab.silence_tls(TLS_V6_SILENT)
    lab.set_latency(TLS_V6_SLOW, TLS_SLOW_MS, every_packet=True)
    lab.set_bad_certificate(*(s.host for s in SCENARIOS if s.bad_certificate))


def matrix_zone() -> Zone:
    zone = Zone(domains=[SEARCH[0]])
    for scenario in SCENARIOS:
        if scenario.decoys:
            for name, a, aaaa in scenario.decoys:
                zone.set(name, list(a), list(aaaa))
        else:
            zone.set(scenario.key, list(scenario.a), list(scenario.aaaa), dict(scenario.impair))
    return zone
