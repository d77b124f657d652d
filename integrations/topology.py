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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = [
    "CLIENTS",
    "DNS_V4",
    "DNS_V6",
    "GAI_PREFER_6TO4",
    "GW_V6",
    "SERVER_V4",
    "SERVER_V6",
    "ClientSpec",
    "short_address",
]

# The seed's server addresses. Which of them are "broken" is decided per run (matrix: .33, .35,
# ::faf2 and ::aaa1, exactly the addresses the seed's iptables DROPped).
SERVER_V4 = ("10.64.78.33", "10.64.78.34", "10.64.78.35")
SERVER_V6 = ("2002:a40:4c07:1::faf1", "2002:a40:4c07:1::faf2", "2002:a40:4c07:1::aaa1")
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
    *(f"{a}/{SERVER_PREFIX6}" for a in (*SERVER_V6, "2002:a40:4c07:1::53")),
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

    @property
    def has_ipv6_route(self) -> bool:
        return self.ipv6_mode in ("global", "onlink")


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


def short_address(address: str) -> str:
    """Compact label for tables: ``10.64.78.34`` -> ``.34``, ``2002:a40:4c07:1::faf1`` ->
    ``::faf1``."""
    if address.startswith("10.64.78."):
        return address[len("10.64.78") :]
    if address.startswith("2002:a40:4c07:1::"):
        return address[len("2002:a40:4c07:1") :]
    return address
