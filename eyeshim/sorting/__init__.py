"""RFC 6724 destination address selection, for RFC 8305 §4.

Where each part of RFC 6724 lives:

* :mod:`.policy`: §2.1 the policy table and §3 scopes, configured by glibc's
  ``gai.conf``: :class:`PolicyTable`, its RFC 6724 and glibc built-in tables.
* :mod:`.rfc6724`: §2.2 CommonPrefixLen and §6 the destination rules:
  :func:`sort_destinations`, :func:`deciding_rule`.
* :mod:`.sources`: Source(D), which the §6 rules compare with D, asked of
  the kernel: :func:`find_source`.  The one module here that opens (UDP)
  sockets; nothing in this package resolves a name.

Interleaving the families afterwards is RFC 8305 §4, not RFC 6724: it lives
in :mod:`eyeshim.ordering`, and ``from eyeshim.sorting import interleave``
loads it on first use (``ordering`` imports this package, so importing it
here would be circular).  ``__all__`` is the package's API; the modules'
other public names are for eyeshim's own modules and tests.
"""

from __future__ import annotations

from .policy import (
    DEFAULT_GAI_CONF,
    SCOPE_ADMIN_LOCAL,
    SCOPE_GLOBAL,
    SCOPE_INTERFACE_LOCAL,
    SCOPE_LINK_LOCAL,
    SCOPE_ORGANIZATION_LOCAL,
    SCOPE_SITE_LOCAL,
    AddressLike,
    IPAddress,
    PolicyTable,
)
from .rfc6724 import RULES, common_prefix_len, deciding_rule, sort_destinations
from .sources import find_source

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..ordering import interleave

__all__ = [
    "DEFAULT_GAI_CONF",
    "RULES",
    "SCOPE_ADMIN_LOCAL",
    "SCOPE_GLOBAL",
    "SCOPE_INTERFACE_LOCAL",
    "SCOPE_LINK_LOCAL",
    "SCOPE_ORGANIZATION_LOCAL",
    "SCOPE_SITE_LOCAL",
    "AddressLike",
    "IPAddress",
    "PolicyTable",
    "common_prefix_len",
    "deciding_rule",
    "find_source",
    "interleave",
    "sort_destinations",
]


def __getattr__(name: str) -> object:
    if name == "interleave":
        from ..ordering import interleave

        globals()["interleave"] = interleave  # later look-ups skip this function
        return interleave
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
