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
  implement (:meth:`ResolvConf.stub_problems`).

The order in which glibc's ``res_search`` tries names
(:meth:`ResolvConf.search_plan`): with at least ``ndots`` dots (or a final
dot) the name as it is first; then, unless it ends with a dot, the name in
each search domain (a domain ``.`` is the name as it is, in that place);
then the name as it is if it was not tried yet, except a single label under
``no-tld-query``.
"""

from __future__ import annotations

import os
import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Mapping, Optional, Tuple

__all__ = ["AS_IS_FIRST", "AS_IS_LAST", "DEFAULT_PATH", "SEARCH", "ResolvConf", "load", "parse"]

#: What each name of :meth:`ResolvConf.search_plan` is to glibc's search.
AS_IS_FIRST, SEARCH, AS_IS_LAST = "as-is first", "search", "as-is last"

DEFAULT_PATH = "/etc/resolv.conf"
MAXNS = 3
_LIMITS = {"ndots": 15, "timeout": 30, "attempts": 5}
# Options glibc knows that take no value, and what they mean here.
# eyeshim's stub resolver implements these; the other flags make it step
# aside (``inet6``, ``no-check-names``, ``no-reload`` change what or when
# glibc answers in ways not reproduced here).
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


STUB_FLAGS = _FLAGS - {"inet6", "no-check-names", "no-reload"}


class ResolvConf:
    """The resolver configuration, as parsed."""

    __slots__ = (
        "_problems",
        "attempts",
        "domains",
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
        #: the search list as glibc walks it: ``search`` with "" for the root
        self.domains: List[str] = []
        self.ndots = 1
        self.timeout = 5
        self.attempts = 2
        #: options without a value that were set (``rotate``, ``edns0``, ...)
        self.flags: set[str] = set()
        #: lines or options glibc would ignore or that are not understood here
        self.unknown: List[str] = []
        #: where it came from, for messages
        self.origin = ""
        self._problems: Optional[List[str]] = None

    def candidates(self, name: str) -> List[str]:
        """The names glibc's resolver tries for ``name``, in order (without
        the trailing dot); see :meth:`search_plan`."""
        return [candidate for candidate, _ in self.search_plan(name)]

    def search_plan(self, name: str) -> List[Tuple[str, str]]:
        """``[(name, kind), ...]``: the names ``res_search`` tries for
        ``name``, in order, each with its part in the search
        (:data:`AS_IS_FIRST`, :data:`SEARCH`, :data:`AS_IS_LAST`), which
        decides what the search does when that name fails."""
        dots = name.count(".")
        trailing = name.endswith(".")
        bare = name.rstrip(".")
        plan: List[Tuple[str, str]] = []
        seen = set()
        if dots >= self.ndots or trailing:
            plan.append((bare, AS_IS_FIRST))
            seen.add(bare.lower())
            if trailing:
                return plan
        root = False
        for domain in self.domains:
            candidate = f"{bare}.{domain}" if domain else bare
            root = root or not domain
            if candidate.lower() not in seen:
                seen.add(candidate.lower())
                plan.append((candidate, SEARCH))
        searched = bool(self.domains)
        tried = any(kind == AS_IS_FIRST for _, kind in plan)
        if (dots or not searched or "no-tld-query" not in self.flags) and not (tried or root):
            plan.append((bare, AS_IS_LAST))
        return plan

    def stub_problems(self) -> List[str]:
        """Why eyeshim's stub resolver cannot answer as glibc would with this
        configuration (nothing: it can).  Worked out once per parse."""
        if self._problems is None:
            self._problems = self._stub_problems()
        return list(self._problems)

    def _stub_problems(self) -> List[str]:
        problems = list(self.unknown)
        for flag in sorted(self.flags - STUB_FLAGS):
            problems.append(f"options {flag}")
        for server in self.nameservers:
            address = server.partition("%")[0]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            try:
                socket.inet_pton(family, address)
            except (OSError, ValueError):
                problems.append(f"nameserver {server}")
        return problems

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
    # "." (the root) stays in the walk as "": that place tries the name as it is.
    conf.domains = [domain.rstrip(".") for domain in search]
    conf.search = [domain for domain in conf.domains if domain]
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
