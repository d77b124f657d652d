"""Tests for eyeshim.ordering (RFC 8305 §4).

Test names carry the requirement IDs of shared/rfc-checklist.md (R13 for
interleaving).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import subprocess
import sys
from typing import Any, List, Tuple

import pytest

from eyeshim import ordering, sorting
from eyeshim.ordering import interleave

# Orderer tests go in their own section(s) below this one.


# ---------------------------------------------------------------------------
# R13: interleaving (ordering.interleave, formerly sorting.interleave)
# ---------------------------------------------------------------------------

V6 = ["2001:db8::a", "2001:db8::b", "2001:db8::c"]
V4 = ["192.0.2.1", "192.0.2.2"]


def test_r13_interleave_fafc1() -> None:
    a6, b6, c6 = V6
    a4, b4 = V4
    assert interleave([a6, b6, c6, a4, b4]) == [a6, a4, b6, b4, c6]
    assert interleave([a6, b6, c6, a4, b4], 1) == [a6, a4, b6, b4, c6]


def test_r13_interleave_fafc2() -> None:
    a6, b6, c6 = V6
    a4, b4 = V4
    assert interleave([a6, b6, c6, a4, b4], 2) == [a6, b6, a4, c6, b4]


def test_r13_interleave_large_fafc_and_ipv4_first() -> None:
    a6, b6, c6 = V6
    a4, b4 = V4
    assert interleave([a6, b6, c6, a4, b4], 5) == [a6, b6, c6, a4, b4]
    # The first family is whichever sorted first, not IPv6 by fiat.
    assert interleave([a4, b4, a6, b6, c6]) == [a4, a6, b4, b6, c6]
    assert interleave([a4, a6, b4, b6, c6], 2) == [a4, b4, a6, b6, c6]


def test_r13_interleave_single_family_and_empty() -> None:
    assert interleave(V6) == V6
    assert interleave(V4, 3) == V4
    assert interleave([]) == []
    assert interleave(iter([])) == []


def test_r13_interleave_returns_same_objects_and_accepts_ipaddress() -> None:
    items = [ipaddress.ip_address(x) for x in V6 + V4]
    result = interleave(items)
    assert [id(x) for x in result] == [id(items[i]) for i in (0, 3, 1, 4, 2)]
    mixed: List[Any] = [V6[0], ipaddress.IPv4Address(V4[0]), "fe80::1%eth0"]
    assert interleave(mixed) == [V6[0], mixed[1], "fe80::1%eth0"]


def test_r13_interleave_getaddrinfo_tuples_with_family_callable() -> None:
    def info(family: int, host: str) -> Tuple[Any, ...]:
        return (family, socket.SOCK_STREAM, 6, "", (host, 443))

    infos = [info(socket.AF_INET6, h) for h in V6] + [info(socket.AF_INET, h) for h in V4]
    result = interleave(infos, 2, family=lambda i: i[0])
    assert [i[4][0] for i in result] == [V6[0], V6[1], V4[0], V6[2], V4[1]]
    assert all(any(r is i for i in infos) for r in result)
    with pytest.raises(TypeError, match="family="):
        interleave(infos)


def test_r13_interleave_more_than_two_families_round_robin() -> None:
    items = ["a1", "a2", "a3", "b1", "c1", "c2"]
    assert interleave(items, family=lambda s: s[0]) == ["a1", "b1", "c1", "a2", "c2", "a3"]


def test_r13_interleave_rejects_bad_count_and_bad_addresses() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        interleave(V6, 0)
    with pytest.raises(ValueError):
        interleave(V6, -2)
    with pytest.raises(TypeError):
        interleave(V6, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape("'localhost'")):
        interleave(["localhost"])


def test_interleave_still_imports_from_sorting() -> None:
    assert sorting.interleave is ordering.interleave is interleave
    # In a fresh interpreter, before anything imported eyeshim.ordering: the
    # package loads it on first use (importing it eagerly would be circular).
    code = (
        "import sys\n"
        "from eyeshim.sorting import *\n"
        "import eyeshim.sorting as s\n"
        "from eyeshim.sorting import interleave\n"
        "assert interleave is sys.modules['eyeshim.ordering'].interleave\n"
        "assert all(hasattr(s, name) for name in s.__all__)\n"
        "print(interleave(['192.0.2.1', '2001:db8::1', '192.0.2.2']))\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "['192.0.2.1', '2001:db8::1', '192.0.2.2']"
    with pytest.raises(AttributeError, match="no_such_name"):
        sorting.no_such_name  # noqa: B018
