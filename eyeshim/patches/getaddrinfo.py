"""Opt-in: ``socket.getaddrinfo`` answers re-sorted for Happy Eyeballs.

Some libraries loop over ``getaddrinfo`` themselves instead of calling
``create_connection``: redis-py, pymongo, paramiko, amqp, websocket-client.
eyeshim cannot race for them, but it can hand them a better list: RFC 6724
order with the policy eyeshim uses, addresses that failed recently (in this
process's history) at the back, and the families interleaved, so that the
second address they try is of the other family.

Only ``AF_UNSPEC`` lookups for stream (or unspecified) sockets of names are
touched; everything else, and any lookup eyeshim makes itself (always for
one family), passes straight through.  Off by default because it changes
the order a library sees, which a library may have its own ideas about.
"""

from __future__ import annotations

import sys

from ._common import AttributePatch, step_aside

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Tuple


def _handler(below: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    result = below(*args, **kwargs)
    if len(result) < 2 or step_aside() is not None:
        return result
    socket = sys.modules["socket"]
    family = args[2] if len(args) > 2 else kwargs.get("family", 0)
    type_ = args[3] if len(args) > 3 else kwargs.get("type", 0)
    if family != socket.AF_UNSPEC or type_ not in (0, socket.SOCK_STREAM):
        return result
    from ..config import get_config
    from ..ordering import Orderer
    from ..state import STATE

    config = get_config()
    order = Orderer(
        STATE.policy_table(config.policy), STATE.history(config), config.first_address_family_count
    )
    # Keep every entry (other socket types included) but order by the stream
    # entries' addresses: the first occurrence of an address sets its rank.
    ranked = order([info for info in result if info[0] in (socket.AF_INET, socket.AF_INET6)])
    rank: Dict[Any, int] = {}
    for position, info in enumerate(ranked):
        rank.setdefault(info[4], position)
    return sorted(result, key=lambda info: rank.get(info[4], len(rank)))


def make(name: str) -> AttributePatch:
    # The handler calls what it wraps, whatever it is: a foreign wrapper of
    # getaddrinfo beneath eyeshim still sees every lookup.
    return AttributePatch("socket", "getaddrinfo", _handler, replaces=False)
