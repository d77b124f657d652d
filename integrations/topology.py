"""Addresses and namespaces of the lab (the seed article's test matrix, plus client variants).

::

                         eyl-NAME-srv  (bridge br0)
        10.64.78.33 .34 .35 .53/24   2002:a40:4c07:1::faf1 ::faf2 ::aaa1 ::53/64
        2001:db8:c::1 (IPv6 gateway) 2001:db8:c::53/64
              |            |            |            |            |
           eyl-NAME-ds  eyl-NAME-v4  eyl-NAME-nr  eyl-NAME-d6  eyl-NAME-dsg
           dual-stack   IPv4-only    IPv6 link-   6to4 source  dual-stack +
           2001:db8:c:: (IPv6        local only,  2002:a40:... gai.conf
           ::101        disabled)    no route     ::104        override

With ``nat64=True`` the lab adds a NAT64 gateway (``eyl-NAME-nat64``, tayga over TUN,
10.64.78.64 / 2001:db8:c::64 on the same bridge) and an IPv6-only client (``eyl-NAME-v6``,
2001:db8:c::106, no IPv4 at all, default route via the gateway, resolver = the DNS64 listener
2001:db8:c::64:53). IPv4 addresses are reached as ``2001:db8:64::/96`` + IPv4 (RFC 6052); see
docs/lab.md for why this is a network-specific prefix and not 64:ff9b::/96.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Optional

__all__ = [
    "CLIENTS",
    "DISCOVERY_NAME",
    "DISCOVERY_V4",
    "DNS64_V6",
    "DNS_V4",
    "DNS_V6",
    "GAI_PREFER_6TO4",
    "GW_V6",
    "NAT64_CLIENTS",
    "NAT64_GW_V4",
    "NAT64_GW_V6",
    "NAT64_POOL",
    "NAT64_PREFIX",
    "NAT64_ROLE",
    "NAT64_STATIC_MAP",
    "NAT64_TAYGA_V4",
    "SERVER_V4",
    "SERVER_V6",
    "TLS_V6",
    "TLS_V6_MTU",
    "TLS_V6_OK",
    "TLS_V6_SILENT",
    "TLS_V6_SLOW",
    "ClientSpec",
    "nat64_address",
    "short_address",
]

# The seed's server addresses. Which of them are "broken" is decided per run (matrix: .33, .35,
# ::faf2 and ::aaa1, exactly the addresses the seed's iptables DROPped).
# .36 answers every connection with an ICMP host-unreachable (the matrix's "u" scenarios).
SERVER_V4 = ("10.64.78.33", "10.64.78.34", "10.64.78.35", "10.64.78.36")
SERVER_V6 = ("2002:a40:4c07:1::faf1", "2002:a40:4c07:1::faf2", "2002:a40:4c07:1::aaa1")
# HTTPS (port 443) scenarios: IPv6 addresses in the dual-stack client's own 2001:db8 prefix, so
# glibc (and RFC 6724) prefer them to IPv4 there, as on most dual-stack hosts; each has one TLS
# impairment (the matrix's "t" scenarios).
TLS_V6_OK = "2001:db8:c::443"
TLS_V6_MTU = "2001:db8:c::1280"  # packets larger than 1280 bytes dropped, both ways
TLS_V6_SILENT = "2001:db8:c::5"  # accepts TCP, never answers the ClientHello
TLS_V6_SLOW = "2001:db8:c::300"  # every packet to it held 300 ms
TLS_V6 = (TLS_V6_OK, TLS_V6_MTU, TLS_V6_SILENT, TLS_V6_SLOW)
DNS_V4 = "10.64.78.53"
DNS_V6 = "2001:db8:c::53"
# A global-looking (documentation) prefix: a client whose only IPv6 source is here gets RFC
# 3484/6724 label mismatches against 6to4 destinations, as most real dual-stack hosts would.
GW_V6 = "2001:db8:c::1"
SERVER_PREFIX4 = 24
SERVER_PREFIX6 = 64
# All server-side addresses, with prefix lengths, as put on the server bridge.
SERVER_ADDRESSES = (
    *(f"{a}/{SERVER_PREFIX4}" for a in (*SERVER_V4, DNS_V4)),
    *(f"{a}/{SERVER_PREFIX6}" for a in (*SERVER_V6, "2002:a40:4c07:1::53", *TLS_V6)),
    f"{GW_V6}/{SERVER_PREFIX6}",
    f"{DNS_V6}/{SERVER_PREFIX6}",
)

# glibc keeps RFC 3484's precedence (IPv4 10 < 6to4 30) but, from a 2001:db8 source, the label
# rule puts IPv4 first. Giving 6to4 the same label as ::/0 leaves precedence to decide, so 6to4
# then sorts before IPv4: a visible, testable effect of a per-namespace gai.conf.
GAI_PREFER_6TO4 = "label 2002::/16 1\n"


@dataclass(frozen=True)
class ClientSpec:
    role: str  # namespace suffix, also the interface suffix
    title: str
    ipv4: str  # with prefix length
    ipv6_mode: str  # "global" (address + default route), "onlink", "linklocal" or "none"
    ipv6: Optional[str] = None  # with prefix length, for "global"/"onlink"
    gai_conf: Optional[str] = None
    # Added for the NAT64 client; the defaults keep the original clients as they were.
    ipv6_gateway: Optional[str] = None  # default route for "global" (None: GW_V6)
    nameserver: Optional[str] = None  # resolv.conf nameserver (None: DNS_V4)

    @property
    def has_ipv6_route(self) -> bool:
        return self.ipv6_mode in ("global", "onlink")

    @property
    def has_ipv4(self) -> bool:
        """False for the IPv6-only client (no IPv4 address, no IPv4 route)."""
        return bool(self.ipv4)


CLIENTS: dict[str, ClientSpec] = {
    c.role: c
    for c in (
        ClientSpec(
            "ds", "dual-stack (2001:db8:c::101)", "10.64.78.101/24", "global", "2001:db8:c::101/64"
        ),
        ClientSpec("v4", "IPv4-only (IPv6 disabled)", "10.64.78.102/24", "none"),
        ClientSpec("nr", "IPv6 without route (link-local only)", "10.64.78.103/24", "linklocal"),
        ClientSpec(
            "d6",
            "dual-stack, 6to4 source (2002:a40:4c07:1::104)",
            "10.64.78.104/24",
            "onlink",
            "2002:a40:4c07:1::104/64",
        ),
        ClientSpec(
            "dsg",
            "dual-stack + gai.conf `label 2002::/16 1`",
            "10.64.78.105/24",
            "global",
            "2001:db8:c::105/64",
            GAI_PREFER_6TO4,
        ),
    )
}


# NAT64 / DNS64 (opt-in: ``Lab(..., nat64=True)``).
#
# Prefix: a network-specific prefix (RFC 6052 §2.3), not the Well-Known Prefix 64:ff9b::/96.
# The lab's IPv4 servers are RFC 1918 addresses (10.64.78.x), and RFC 6052 §3.1 forbids the WKP
# for non-global IPv4; Debian's tayga (0.9.2) enforces that by dropping such packets and has no
# switch to turn it off. 2001:db8:64::/96 is inside the documentation range the lab already uses.
NAT64_PREFIX = "2001:db8:64::/96"
# tayga's dynamic pool: IPv4 source addresses it hands to IPv6 clients (the server sees these).
NAT64_POOL = "10.64.79.0/24"
NAT64_TAYGA_V4 = "10.64.79.1"  # tayga's own IPv4 address (ICMP errors, ping), taken from the pool
# Static tayga mappings, so the IPv4 servers always see the same source for the IPv6-only
# client (any other IPv6 source gets a dynamic pool address).
NAT64_STATIC_MAP = (("10.64.79.106", "2001:db8:c::106"),)
NAT64_ROLE = "nat64"  # namespace eyl-NAME-nat64: the gateway that runs tayga
NAT64_GW_V4 = "10.64.78.64"  # the gateway on the server bridge
NAT64_GW_V6 = "2001:db8:c::64"
# The DNS64 resolver: the lab's DNS server, on an extra address where it synthesizes AAAA records
# and answers ipv4only.arpa. The plain listeners (10.64.78.53, 2001:db8:c::53) are unchanged.
DNS64_V6 = "2001:db8:c::64:53"
# RFC 7050: prefix discovery asks for AAAA ipv4only.arpa; its A records are these two.
DISCOVERY_NAME = "ipv4only.arpa"
DISCOVERY_V4 = ("192.0.0.170", "192.0.0.171")


def nat64_address(ipv4: str, prefix: str = NAT64_PREFIX) -> str:
    """The IPv4-embedded IPv6 address of ``ipv4`` under ``prefix`` (RFC 6052 §2.2; lengths 32,
    40, 48, 56, 64, 96): ``nat64_address("10.64.78.34")`` -> ``2001:db8:64::a40:4e22``."""
    network = ipaddress.IPv6Network(prefix)
    length = network.prefixlen
    if length not in (32, 40, 48, 56, 64, 96):
        raise ValueError(f"NAT64 prefix length must be 32/40/48/56/64/96, not {length}")
    out = bytearray(network.network_address.packed)
    # The IPv4 bytes follow the prefix, skipping byte 8 (bits 64-71, the "u" octet, zero).
    positions = [i for i in range(length // 8, 16) if i != 8][:4]
    for position, byte in zip(positions, ipaddress.IPv4Address(ipv4).packed):
        out[position] = byte
    return str(ipaddress.IPv6Address(bytes(out)))


# Not part of CLIENTS: the default lab, the matrix and the scenarios do not know this client.
NAT64_CLIENTS: dict[str, ClientSpec] = {
    "v6": ClientSpec(
        "v6",
        "IPv6-only behind NAT64/DNS64 (2001:db8:c::106)",
        "",
        "global",
        "2001:db8:c::106/64",
        ipv6_gateway=NAT64_GW_V6,
        nameserver=DNS64_V6,
    ),
}


def short_address(address: str) -> str:
    """Compact label for tables: ``10.64.78.34`` -> ``.34``, ``2002:a40:4c07:1::faf1`` ->
    ``::faf1``."""
    if address.startswith("10.64.78."):
        return address[len("10.64.78") :]
    if address.startswith("2002:a40:4c07:1::"):
        return address[len("2002:a40:4c07:1") :]
    if address.startswith("2001:db8:c::"):
        return address[len("2001:db8:c") :]
    return address
