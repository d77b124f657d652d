"""``/etc/resolv.conf`` as glibc's stub resolver reads it.

What the system resolver does with a name depends on this file: which
servers it asks, and above all which *names* it asks for.  A name with fewer
dots than ``ndots`` is tried with each ``search`` domain appended before it
is tried as it is; one with at least ``ndots`` dots is tried as it is first.
Two lookups that walk this list separately (one per address family) can stop
at different names, so whoever merges per-family answers must know the list
(see ``candidates.py``); a resolver of eyeshim's own must walk it exactly as
glibc does.

Read like glibc (``resolv/res_init.c``):

* ``nameserver`` lines, at most three (``MAXNS``); none means the local host;
* ``domain`` and ``search``: the last one in the file wins; ``domain d`` is
  the search list ``[d]``; neither means the domain part of the host name;
  ``LOCALDOMAIN`` (space-separated) replaces the list;
* ``options``: ``ndots:n`` (at most 15), ``timeout:n`` (at most 30),
  ``attempts:n`` (at most 5), ``rotate``, ``edns0``, ``single-request``,
  ``single-request-reopen``, ``no-aaaa``, ``use-vc``, ``trust-ad``,
  ``no-tld-query``, ``inet6`` ...; ``RES_OPTIONS`` is read after the file;
* ``#`` and ``;`` start comments; unknown directives are ignored by glibc
  and recorded here in :attr:`ResolvConf.unknown`, so that a resolver which
  must be faithful can step aside when the file says something it does not
  implement.
"""

from __future__ import annotations

import os
import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Mapping, Optional, Tuple

__all__ = ["DEFAULT_PATH", "ResolvConf", "load", "parse"]

DEFAULT_PATH = "/etc/resolv.conf"
MAXNS = 3
_LIMITS = {"ndots": 15, "timeout": 30, "attempts": 5}
# Options glibc knows that take no value, and what they mean here.
_FLAGS = frozenset(
    {
        "rotate",
        "edns0",
        "single-request",
        "single-request-reopen",
        "no-aaaa",
        "use-vc",
        "trust-ad",
        "no-tld-query",
        "no-check-names",
        "no-reload",
        "inet6",
        "ip6-bytestring",
        "ip6-dotint",
        "no-ip6-dotint",
        "debug",
    }
)


class ResolvConf:
    """The resolver configuration, as parsed."""

    __slots__ = (
        "attempts",
        "flags",
        "nameservers",
        "ndots",
        "origin",
        "search",
        "timeout",
        "unknown",
    )

    def __init__(self) -> None:
        self.nameservers: List[str] = []
        self.search: List[str] = []
        self.ndots = 1
        self.timeout = 5
        self.attempts = 2
        #: options without a value that were set (``rotate``, ``edns0``, ...)
        self.flags: set[str] = set()
        #: lines or options glibc would ignore or that are not understood here
        self.unknown: List[str] = []
        #: where it came from, for messages
        self.origin = ""

    def candidates(self, name: str) -> List[str]:
        """The names glibc's resolver tries for ``name``, in order (without
        the trailing dot).

        An absolute name (trailing dot) is only itself.  Otherwise a name
        with at least ``ndots`` dots is tried as it is first, then with each
        search domain; one with fewer dots with each search domain first,
        then as it is.  A single-label name is not tried as it is when
        ``no-tld-query`` is set.
        """
        if name.endswith("."):
            return [name.rstrip(".")]
        dots = name.count(".")
        expanded = [f"{name}.{domain}" for domain in self.search]
        if dots >= self.ndots:
            return [name, *(n for n in expanded if n != name)]
        as_is = [] if (dots == 0 and "no-tld-query" in self.flags) else [name]
        return [*expanded, *as_is]

    def __repr__(self) -> str:
        return (
            f"ResolvConf(nameservers={self.nameservers!r}, search={self.search!r}, "
            f"ndots={self.ndots}, timeout={self.timeout}, attempts={self.attempts}, "
            f"flags={sorted(self.flags)!r}, unknown={self.unknown!r})"
        )


def _apply_options(conf: ResolvConf, words: List[str], where: str) -> None:
    for word in words:
        name, _, value = word.partition(":")
        if name in _LIMITS and value:
            try:
                number = int(value)
            except ValueError:
                conf.unknown.append(f"{where}: options {word}")
                continue
            setattr(conf, name, max(0, min(number, _LIMITS[name])))
        elif name in _FLAGS and not value:
            conf.flags.add(name)
        else:
            conf.unknown.append(f"{where}: options {word}")


def parse(
    text: str,
    environ: Optional[Mapping[str, str]] = None,
    hostname: Optional[str] = None,
    origin: str = DEFAULT_PATH,
) -> ResolvConf:
    """Parse resolv.conf ``text`` (plus ``LOCALDOMAIN`` and ``RES_OPTIONS``
    from ``environ``; ``hostname`` supplies the default domain)."""
    env = os.environ if environ is None else environ
    conf = ResolvConf()
    conf.origin = origin
    search: Optional[List[str]] = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        keyword, *args = line.split()
        where = f"{origin}:{number}"
        if keyword == "nameserver":
            if args and len(conf.nameservers) < MAXNS:
                conf.nameservers.append(args[0])
        elif keyword == "domain":
            search = args[:1]
        elif keyword == "search":
            search = list(args)
        elif keyword == "options":
            _apply_options(conf, args, where)
        elif keyword == "sortlist":
            conf.unknown.append(f"{where}: sortlist")  # only gethostbyname uses it
        else:
            conf.unknown.append(f"{where}: {keyword}")
    if search is None:
        name = hostname if hostname is not None else socket.gethostname()
        _, dot, domain = name.partition(".")
        search = [domain] if dot and domain else []
    local = env.get("LOCALDOMAIN")
    if local is not None:
        search = local.split()
    conf.search = [domain.rstrip(".") for domain in search if domain.rstrip(".")]
    options = env.get("RES_OPTIONS")
    if options:
        _apply_options(conf, options.split(), "RES_OPTIONS")
    if not conf.nameservers:
        conf.nameservers = ["127.0.0.1"]
    return conf


def load(
    path: str = DEFAULT_PATH, environ: Optional[Mapping[str, str]] = None
) -> Tuple[Optional[Tuple[int, int, int]], ResolvConf]:
    """``(stamp, conf)`` for the file at ``path``; the stamp (mtime, size,
    inode) is None when the file is missing (glibc then asks the local host
    with the default options)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            info = os.fstat(fh.fileno())
            text = fh.read()
    except OSError:
        return None, parse("", environ, origin=path)
    return (info.st_mtime_ns, info.st_size, info.st_ino), parse(text, environ, origin=path)
