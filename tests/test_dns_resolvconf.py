"""eyeshim.dns.resolvconf: glibc's search order, and what the stub resolver cannot honour."""

from __future__ import annotations

import pytest

from eyeshim.dns.resolvconf import AS_IS_FIRST, AS_IS_LAST, SEARCH, parse


def conf(text: str, **environ: str) -> object:
    return parse(text, environ=environ, hostname="host")


@pytest.mark.parametrize(
    ("text", "name", "plan"),
    [
        ("search a b", "x", [("x.a", SEARCH), ("x.b", SEARCH), ("x", AS_IS_LAST)]),
        ("search a b", "x.y", [("x.y", AS_IS_FIRST), ("x.y.a", SEARCH), ("x.y.b", SEARCH)]),
        ("search a b", "x.y.", [("x.y", AS_IS_FIRST)]),
        (
            "search a b\noptions ndots:5",
            "x.y",
            [("x.y.a", SEARCH), ("x.y.b", SEARCH), ("x.y", AS_IS_LAST)],
        ),
        ("search a . b", "x", [("x.a", SEARCH), ("x", SEARCH), ("x.b", SEARCH)]),
        ("search a\noptions no-tld-query", "x", [("x.a", SEARCH)]),
        ("options no-tld-query", "x", [("x", AS_IS_LAST)]),
        ("", "x", [("x", AS_IS_LAST)]),
    ],
)
def test_search_plan_is_glibcs(text: str, name: str, plan: list[tuple[str, str]]) -> None:
    assert parse(text, environ={}, hostname="host").search_plan(name) == plan


def test_localdomain_replaces_the_list_and_res_options_adds() -> None:
    parsed = parse(
        "search a\noptions ndots:2",
        environ={"LOCALDOMAIN": "c d", "RES_OPTIONS": "ndots:1 rotate"},
        hostname="host",
    )
    assert parsed.search == ["c", "d"] and parsed.ndots == 1 and "rotate" in parsed.flags


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("options inet6", "options inet6"),
        ("options no-reload", "options no-reload"),
        ("options frobnicate", "frobnicate"),
        ("sortlist 10.0.0.0/8", "sortlist"),
        ("lookup file bind", "lookup"),
        ("nameserver not-an-address", "nameserver not-an-address"),
    ],
)
def test_what_the_stub_cannot_honour(text: str, problem: str) -> None:
    problems = parse(text, environ={}, hostname="host").stub_problems()
    assert any(problem in p for p in problems), problems


def test_what_the_stub_honours() -> None:
    text = (
        "nameserver 10.0.0.1\nnameserver fe80::1%lo\nsearch a b\n"
        "options ndots:2 timeout:1 attempts:3 rotate edns0 single-request "
        "single-request-reopen no-aaaa use-vc trust-ad no-tld-query\n"
    )
    assert parse(text, environ={}, hostname="host").stub_problems() == []
