"""The ``hosts:`` line of ``/etc/nsswitch.conf``: may eyeshim's own resolver
stand in for ``getaddrinfo``, and for which names?

``getaddrinfo`` asks the services of that line in order.  eyeshim's resolver
implements two of them: ``files`` (the caller answers names of the hosts
file with the stock call before any resolver is asked) and ``dns``.  Any
other service might answer a name differently, so its presence sends every
name to ``getaddrinfo`` -- with two exceptions whose reach is a known set
of names:

* ``mdns4_minimal``, ``mdns6_minimal``, ``mdns_minimal`` (nss-mdns, with or
  without ``[NOTFOUND=return]``) answer only names under ``.local``; other
  names pass on to the next service.  ``.local`` names go to getaddrinfo.
* ``myhostname`` (systemd) answers the host's own name, ``localhost`` and
  names under it, and ``_gateway``/``_outbound``-style names.  Those go to
  getaddrinfo.

An action item (``[NOTFOUND=return]`` and the like) after ``files`` could
stop the walk before DNS, so it makes the line unsupported; after ``dns``
it only decides whether later services are asked, and those are either
``files`` (whose names never reach the resolver) or one of the exceptions
above.  No file, no ``hosts:`` line, or two of them: unsupported (glibc's
built-in default is not worth guessing at).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

__all__ = ["DEFAULT_PATH", "HostsLine", "load", "parse"]

DEFAULT_PATH = "/etc/nsswitch.conf"

_MDNS_MINIMAL = frozenset({"mdns_minimal", "mdns4_minimal", "mdns6_minimal"})
_MDNS_ACTIONS = frozenset({"", "[notfound=return]"})


class HostsLine:
    """What the ``hosts:`` line allows.

    ``supported`` is False when some service is not one eyeshim implements
    (``reason`` says which); otherwise ``local_names`` and ``own_names``
    say whether ``.local`` names and the host's own names must still go to
    getaddrinfo.
    """

    __slots__ = ("local_names", "origin", "own_names", "reason", "services", "supported")

    def __init__(self) -> None:
        self.services: List[str] = []
        self.supported = False
        self.reason = ""
        self.local_names = False
        self.own_names = False
        self.origin = DEFAULT_PATH

    def __repr__(self) -> str:
        return (
            f"HostsLine({' '.join(self.services)!r}, supported={self.supported}, "
            f"reason={self.reason!r})"
        )


def _words(line: str) -> List[Tuple[str, str]]:
    """``[(service, action items), ...]`` of one database line's sources."""
    out: List[Tuple[str, str]] = []
    rest = line
    while rest.strip():
        rest = rest.strip()
        if rest.startswith("["):
            close = rest.find("]")
            if close < 0:
                raise ValueError("unclosed [")
            action = " ".join(rest[: close + 1].lower().split())
            if not out:
                raise ValueError("an action before any service")
            service, before = out[-1]
            out[-1] = (service, f"{before} {action}".strip())
            rest = rest[close + 1 :]
        else:
            word, _, rest = rest.partition(" ")
            if "[" in word:
                word, _, tail = word.partition("[")
                rest = "[" + tail + " " + rest
            out.append((word.strip().lower(), ""))
    return out


def parse(text: str, origin: str = DEFAULT_PATH) -> HostsLine:
    """Read the ``hosts:`` line of an nsswitch.conf ``text``."""
    result = HostsLine()
    result.origin = origin
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        database, colon, sources = line.partition(":")
        if colon and database.strip() == "hosts":
            lines.append(sources.replace("\t", " "))
    if not lines:
        result.reason = f"{origin} has no hosts: line"
        return result
    if len(lines) > 1:
        result.reason = f"{origin} has more than one hosts: line"
        return result
    try:
        words = _words(lines[0])
    except ValueError as exc:
        result.reason = f"{origin}: hosts: line not understood ({exc})"
        return result
    result.services = [service for service, _ in words]
    seen_dns = False
    for service, action in words:
        if service == "dns":
            seen_dns = True
        elif service == "files":
            if action and not seen_dns:
                result.reason = f"{origin}: hosts: 'files {action}' may stop before DNS"
                return result
        elif service in _MDNS_MINIMAL and action in _MDNS_ACTIONS:
            result.local_names = True
        elif service == "myhostname" and (not action or seen_dns):
            result.own_names = True
        else:
            shown = f"{service} {action}".strip()
            result.reason = f"{origin}: hosts: uses {shown!r}, which eyeshim does not implement"
            return result
    if not seen_dns:
        result.reason = f"{origin}: hosts: does not use dns"
        return result
    result.supported = True
    return result


def load(path: str = DEFAULT_PATH) -> Tuple[Optional[Tuple[int, int, int]], HostsLine]:
    """``(stamp, line)`` for the file at ``path`` (stamp None: no file)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            info = os.fstat(fh.fileno())
            text = fh.read()
    except OSError:
        result = HostsLine()
        result.origin = path
        result.reason = f"no {path}"
        return None, result
    return (info.st_mtime_ns, info.st_size, info.st_ino), parse(text, path)
