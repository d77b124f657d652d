"""Tests for eyeshim.sorting: RFC 6724 destination sorting, gai.conf, interleaving.

Test names carry the requirement IDs of shared/rfc-checklist.md (T1-T7 for
RFC 6724, R9-R14 for RFC 8305 §4).
"""

from __future__ import annotations

import copy
import ipaddress
import itertools
import os
import pickle
import random
import re
import socket
import threading
from pathlib import Path
from typing import Any, ClassVar, List, Optional, Sequence, Tuple

import pytest

from eyeshim import sorting
from eyeshim.sorting import PolicyTable, find_source, interleave, sort_destinations

RFC = PolicyTable.rfc6724()


def order(pairs: Sequence[Tuple[str, Optional[str]]], **kwargs: Any) -> List[str]:
    return sort_destinations(pairs, **kwargs)


def both_ways(
    pairs: Sequence[Tuple[str, Optional[str]]], expected: List[str], **kwargs: Any
) -> None:
    """The result must not depend on the input order (i.e. not be rule 10's doing)."""
    assert order(pairs, **kwargs) == expected
    assert order(list(reversed(pairs)), **kwargs) == expected


# ---------------------------------------------------------------------------
# T1-T5: the policy table and scopes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "precedence", "label"),
    [
        ("::1", 50, 0),
        ("2001:db8::1", 40, 1),  # ::/0
        ("::ffff:192.0.2.1", 35, 4),
        ("2002:c000:204::1", 30, 2),  # 6to4
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", 5, 5),  # Teredo
        ("fd00::1", 3, 13),  # ULA
        ("::192.0.2.1", 1, 3),  # IPv4-compatible
        ("fec0::1", 1, 11),
        ("3ffe::1", 1, 12),
        ("64:ff9b::192.0.2.33", 40, 1),  # NAT64 has no row of its own
    ],
)
def test_t1_default_policy_table(address: str, precedence: int, label: int) -> None:
    assert RFC.precedence(address) == precedence
    assert RFC.label(address) == label
    assert RFC.precedence(ipaddress.ip_address(address)) == precedence


def test_t1_default_table_rows_are_exactly_rfc6724() -> None:
    rows = {str(net): value for net, value in RFC.precedence_table}
    assert rows == {
        "::1/128": 50,
        "::/0": 40,
        "::ffff:0:0/96": 35,
        "2002::/16": 30,
        "2001::/32": 5,
        "fc00::/7": 3,
        "::/96": 1,
        "fec0::/10": 1,
        "3ffe::/16": 1,
    }
    labels = {str(net): value for net, value in RFC.label_table}
    assert labels["fc00::/7"] == 13 and labels["3ffe::/16"] == 12 and len(labels) == 9
    # Most specific first: the order the table is searched in.
    lengths = [net.prefixlen for net, _ in RFC.precedence_table]
    assert lengths == sorted(lengths, reverse=True)


def test_t1_longest_prefix_match_wins_over_shorter_rows() -> None:
    table = PolicyTable(precedence=[("2001:db8::/32", 10), ("2001:db8:1::/48", 20)])
    assert table.precedence("2001:db8:1::1") == 20
    assert table.precedence("2001:db8:2::1") == 10
    assert table.precedence("2001:db9::1") == 40  # implicit ::/0


def test_t2_common_prefix_len_is_capped_at_64() -> None:
    cpl = sorting._common_prefix_len
    v6 = ipaddress.IPv6Address
    assert cpl(v6("fe80::1"), v6("fe80::2")) == 64  # the RFC's own example
    assert cpl(v6("2001:db8:1::2"), v6("2001:db8:1::1")) == 64
    assert cpl(v6("2001:db8:3f44::2"), v6("2001:db8:3ffe::1")) == 40
    assert cpl(v6("2001:db8::1"), v6("2001:db8::1")) == 64
    assert cpl(v6("::"), v6("8000::")) == 0


@pytest.mark.parametrize(
    ("address", "precedence", "label", "scope"),
    [
        ("192.0.2.1", 35, 4, 14),
        ("10.1.2.3", 35, 4, 14),  # RFC 1918 is global in RFC 6724
        ("192.168.1.1", 35, 4, 14),
        ("172.16.0.1", 35, 4, 14),
        ("169.254.13.78", 35, 4, 2),
        ("127.0.0.1", 35, 4, 2),
        ("127.255.255.254", 35, 4, 2),
    ],
)
def test_t3_ipv4_is_looked_up_as_ipv4_mapped(
    address: str, precedence: int, label: int, scope: int
) -> None:
    assert RFC.precedence(address) == precedence
    assert RFC.label(address) == label
    assert RFC.scope(address) == scope
    assert RFC.scope(ipaddress.IPv4Address(address)) == scope


def test_t3_ipv4_lookup_follows_the_mapped_rows_of_a_custom_table() -> None:
    table = PolicyTable(precedence=[("::ffff:10.0.0.0/104", 7)], label=[("::ffff:0:0/96", 99)])
    assert table.precedence("10.9.9.9") == 7
    assert table.precedence("11.0.0.1") == 40
    assert table.label("11.0.0.1") == 99


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:127.0.0.1",  # IPv4-mapped, even of a link-local IPv4
        "::ffff:169.254.1.1",
        "::192.0.2.1",  # IPv4-compatible
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "64:ff9b::a9fe:101",  # NAT64 of 169.254.1.1
        "64:ff9b::192.0.2.33",
    ],
)
def test_t4_embedded_ipv4_formats_have_global_scope(address: str) -> None:
    assert RFC.scope(address) == sorting.SCOPE_GLOBAL


@pytest.mark.parametrize(
    ("address", "scope"),
    [
        ("ff01::1", 1),
        ("ff02::1", 2),
        ("ff04::1", 4),
        ("ff05::1:3", 5),
        ("ff08::1", 8),
        ("ff0e::1", 14),
        ("ff1e::1", 14),  # flags don't matter
        ("fe80::1", 2),
        ("febf:ffff::1", 2),  # still fe80::/10
        ("fe80::1%eth0", 2),
        ("::1", 2),
        ("fec0::1", 5),
        ("fc00::1", 14),  # ULAs are global scope
        ("fd12:3456::1", 14),
        ("2001:db8::1", 14),
        ("::", 14),
    ],
)
def test_t5_ipv6_scopes(address: str, scope: int) -> None:
    assert RFC.scope(address) == scope


def test_lookups_reject_bad_addresses() -> None:
    with pytest.raises(ValueError, match=re.escape("'not-an-ip'")):
        RFC.precedence("not-an-ip")
    with pytest.raises(TypeError):
        RFC.label(12345)  # type: ignore[arg-type]


def test_policy_table_is_immutable_hashable_and_value_comparable() -> None:
    table = PolicyTable.rfc6724()
    assert table is PolicyTable.rfc6724()
    with pytest.raises(AttributeError):
        table.reload = True
    with pytest.raises(AttributeError):
        del table.origin
    assert PolicyTable() == table
    assert hash(PolicyTable()) == hash(table)
    assert PolicyTable(precedence=[("::ffff:0:0/96", 100)]) != table
    assert {table: 1}[PolicyTable(origin="elsewhere")] == 1  # origin is not policy
    assert PolicyTable.from_gai_conf("") == table


def test_policy_table_survives_pickle_copy_and_deepcopy() -> None:
    table = PolicyTable.from_gai_conf("reload yes\nprecedence ::ffff:0:0/96 100\nbogus\n")
    clone = pickle.loads(pickle.dumps(table))
    assert clone == table
    assert clone.warnings == table.warnings and clone.origin == table.origin
    assert clone.precedence("10.0.0.1") == 100
    assert copy.copy(table) is table
    assert copy.deepcopy(table) is table


def test_policy_table_constructor_validates_rows() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        PolicyTable(label=[("2002::/16", 1), ("2002::/16", 2)])
    with pytest.raises(ValueError, match="between 0 and"):
        PolicyTable(precedence=[("::/0", -1)])
    with pytest.raises(TypeError):
        PolicyTable(precedence=[("::/0", "40")])  # type: ignore[list-item]
    table = PolicyTable(
        precedence=[(ipaddress.IPv6Network("2001:db8::/32"), 1)],
        scopev4=[(ipaddress.IPv4Network("10.0.0.0/8"), 5)],
    )
    assert table.precedence("2001:db8::5") == 1
    assert table.scope("10.1.1.1") == 5
    assert table.scope("127.0.0.1") == 14  # scopev4 was replaced, not merged


def test_policy_table_repr_is_readable() -> None:
    text = repr(RFC)
    assert text.startswith("PolicyTable(origin='RFC 6724'")
    assert "'::ffff:0:0/96': 35" in text
    assert "'169.254.0.0/16': 2" in text
    assert "reload=False" in text and "warnings=0" in text


# ---------------------------------------------------------------------------
# T6: the rules, against every example of RFC 6724 §10.2
# ---------------------------------------------------------------------------


def test_t6_rfc_example1_prefer_matching_scope() -> None:
    # Sources 2001:db8:1::2 / fe80::1 / 169.254.13.78 -> the IPv4 destination
    # is reached from a link-local source.
    both_ways(
        [("2001:db8:1::1", "2001:db8:1::2"), ("198.51.100.121", "169.254.13.78")],
        ["2001:db8:1::1", "198.51.100.121"],
    )


def test_t6_rfc_example2_prefer_matching_scope() -> None:
    both_ways(
        [("2001:db8:1::1", "fe80::1"), ("198.51.100.121", "198.51.100.117")],
        ["198.51.100.121", "2001:db8:1::1"],
    )


def test_t6_rfc_example3_prefer_higher_precedence() -> None:
    both_ways(
        [("2001:db8:1::1", "2001:db8:1::2"), ("10.1.2.3", "10.1.2.4")],
        ["2001:db8:1::1", "10.1.2.3"],
    )


def test_t6_rfc_example4_prefer_smaller_scope() -> None:
    both_ways(
        [("2001:db8:1::1", "2001:db8:1::2"), ("fe80::1", "fe80::2")],
        ["fe80::1", "2001:db8:1::1"],
    )


def test_t6_rfc_example5_prefer_home_address_is_not_observable() -> None:
    # RFC: 2001:db8:1::1 (src 2001:db8:3::1, a home address) before fe80::1
    # (src fe80::2, a care-of address), by rule 4.  Python cannot see Mobile
    # IPv6 home addresses, so rule 8 (smaller scope) decides instead.
    pairs = [("2001:db8:1::1", "2001:db8:3::1"), ("fe80::1", "fe80::2")]
    both_ways(pairs, ["fe80::1", "2001:db8:1::1"])


def test_t6_rfc_example6_avoid_deprecated_is_not_observable() -> None:
    # RFC: 2001:db8:1::1 (src 2001:db8:1::2) before fe80::1 (src fe80::2,
    # deprecated), by rule 3.  Address lifetimes are not visible to Python,
    # so rule 8 decides instead.
    pairs = [("2001:db8:1::1", "2001:db8:1::2"), ("fe80::1", "fe80::2")]
    both_ways(pairs, ["fe80::1", "2001:db8:1::1"])


def test_t6_rfc_example7_longest_matching_prefix() -> None:
    both_ways(
        [("2001:db8:1::1", "2001:db8:1::2"), ("2001:db8:3ffe::1", "2001:db8:3f44::2")],
        ["2001:db8:1::1", "2001:db8:3ffe::1"],
    )


def test_t6_rfc_example8_prefer_matching_label() -> None:
    # Only a 6to4 source: it matches the 6to4 destination's label (2), not
    # the native one's (1), which outranks the native one's precedence.
    both_ways(
        [("2002:c633:6401::1", "2002:c633:6401::2"), ("2001:db8:1::1", "2002:c633:6401::2")],
        ["2002:c633:6401::1", "2001:db8:1::1"],
    )


def test_t6_rfc_example9_prefer_higher_precedence() -> None:
    both_ways(
        [("2002:c633:6401::1", "2002:c633:6401::2"), ("2001:db8:1::1", "2001:db8:1::2")],
        ["2001:db8:1::1", "2002:c633:6401::1"],
    )


def test_t6_rule1_avoid_destinations_without_source() -> None:
    both_ways(
        [("2001:db8:1::1", None), ("198.51.100.121", "198.51.100.117")],
        ["198.51.100.121", "2001:db8:1::1"],
    )
    # Two sourceless destinations still obey the rules that need no source.
    both_ways([("10.0.0.1", None), ("2001:db8::1", None)], ["2001:db8::1", "10.0.0.1"])


def test_t6_rule1_beats_everything_after_it() -> None:
    # ::1 has the highest precedence and the smallest scope, but no source.
    both_ways([("::1", None), ("192.0.2.1", "192.0.2.2")], ["192.0.2.1", "::1"])


def test_t6_rule2_prefer_matching_scope() -> None:
    both_ways(
        [("fec0::1", "fec0::2"), ("2001:db8::1", "fec0::2")],
        ["fec0::1", "2001:db8::1"],
    )


def test_t6_rule5_prefer_matching_label_over_precedence() -> None:
    # Teredo (precedence 5) with a Teredo source beats native with a Teredo source.
    teredo_src = "2001:0:4136:e378:8000:63bf:3fff:fdd2"
    both_ways(
        [("2001:db8::1", teredo_src), ("2001:0:4136:e378:8000:63bf:3fff:1", teredo_src)],
        ["2001:0:4136:e378:8000:63bf:3fff:1", "2001:db8::1"],
    )


def test_t6_rule6_prefer_higher_precedence_nat64_over_ipv4() -> None:
    # On an IPv6-only network with DNS64, the synthesized address wins.
    both_ways(
        [("198.51.100.121", "192.0.2.9"), ("64:ff9b::c633:6479", "2001:db8:1::2")],
        ["64:ff9b::c633:6479", "198.51.100.121"],
    )


def test_t6_rule9_applies_between_ipv6_destinations() -> None:
    src = "2001:db8:1:2::9"
    both_ways(
        [("2001:db8:ff::1", src), ("2001:db8:1:3::1", src), ("2001:db8:1:2::1", src)],
        ["2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:ff::1"],
    )


def test_t6_rule9_cap_at_64_leaves_same_subnet_hosts_in_input_order() -> None:
    # CommonPrefixLen 126 and 65 both count as 64: a tie, so rule 10 decides.
    pairs = [("2001:db8:1::8000:0:0:1", "2001:db8:1::2"), ("2001:db8:1::1", "2001:db8:1::2")]
    assert order(pairs) == [p[0] for p in pairs]
    assert order(pairs[::-1]) == [p[0] for p in pairs[::-1]]


def test_t6_rule10_stable_order_and_same_objects() -> None:
    a = ipaddress.IPv6Address("2001:db8::1")
    b = ipaddress.IPv6Address("2001:db8::1")  # equal but not identical
    c = "2001:db8::1"
    d = ipaddress.IPv4Address("192.0.2.1")
    pairs: List[Tuple[Any, str]] = [
        (d, "192.0.2.2"),
        (a, "2001:db8::9"),
        (b, "2001:db8::9"),
        (c, "2001:db8::9"),
    ]
    result: List[Any] = sort_destinations(pairs)
    assert [id(x) for x in result] == [id(a), id(b), id(c), id(d)]


def test_t6_sort_accepts_mixed_input_types_and_zones() -> None:
    candidates: List[Tuple[sorting.AddressLike, sorting.AddressLike]] = [
        ("2001:db8::1", ipaddress.IPv6Address("2001:db8::2")),
        (ipaddress.IPv6Address("fe80::1%eth0"), "fe80::2"),
        ("fe80::3%2", "fe80::2%2"),
    ]
    result = sort_destinations(candidates)
    assert [str(x) for x in result] == ["fe80::1%eth0", "fe80::3%2", "2001:db8::1"]


def test_t6_empty_input() -> None:
    assert sort_destinations([]) == []


# ---------------------------------------------------------------------------
# T7: rule 9 is not applied to IPv4 (DNS round-robin survives)
# ---------------------------------------------------------------------------


def test_t7_rule9_not_applied_to_ipv4() -> None:
    # 10.2.0.5 shares 16 more bits with the source than 10.1.0.5 does; a
    # glibc-style rule 9 would always put it first.  Ours keeps DNS order.
    pairs = [("10.1.0.5", "10.2.0.9"), ("10.2.0.5", "10.2.0.9")]
    assert order(pairs) == ["10.1.0.5", "10.2.0.5"]
    assert order(pairs[::-1]) == ["10.2.0.5", "10.1.0.5"]


def test_t7_round_robin_of_public_ipv4_servers_is_kept_in_every_rotation() -> None:
    servers = ["54.83.193.112", "184.72.238.214", "184.72.241.187"]
    for shift in range(3):
        rotated = servers[shift:] + servers[:shift]
        assert order([(s, "10.0.0.2") for s in rotated]) == rotated


def test_t7_mixed_tie_group_keeps_family_slots_and_sorts_ipv6_by_prefix() -> None:
    # Equal precedence for IPv4 and IPv6 makes the two families tie on rules
    # 1-8, the case where "rule 9 only between IPv6" is not transitive.
    table = PolicyTable(precedence=[("::ffff:0:0/96", 40)])
    src6 = "2001:db8:1:2::9"
    c = ("2001:db8:ff::1", src6)  # CommonPrefixLen 40
    b = ("192.0.2.1", "192.0.2.2")
    a = ("2001:db8:1:2::1", src6)  # CommonPrefixLen 64
    assert order([c, b, a], policy=table) == [a[0], b[0], c[0]]
    assert order([b, c, a], policy=table) == [b[0], a[0], c[0]]
    assert order([c, a, b], policy=table) == [a[0], c[0], b[0]]


def _sort_keys(table: PolicyTable, dest: Any, src: Optional[str]) -> Tuple[Any, ...]:
    if src is None:
        return (True, True, True, -table.precedence(dest), table.scope(dest))
    return (
        False,
        table.scope(dest) != table.scope(src),
        table.label(dest) != table.label(src),
        -table.precedence(dest),
        table.scope(dest),
    )


@pytest.mark.parametrize("seed", range(40))
def test_t6_t7_sorted_output_satisfies_every_pairwise_rule(seed: int) -> None:
    rng = random.Random(seed)
    table = rng.choice([RFC, PolicyTable(precedence=[("::ffff:0:0/96", 40)])])
    pool6 = [
        "2001:db8:1:2::1",
        "2001:db8:1:3::1",
        "2001:db8:ff::1",
        "2002:c633:6401::1",
        "fe80::1",
        "64:ff9b::1",
        "fd00::1",
    ]
    pool4 = ["192.0.2.1", "192.0.2.77", "10.1.0.5", "10.2.0.5", "169.254.1.1"]
    sources6: List[Optional[str]] = ["2001:db8:1:2::9", "2002:c633:6401::2", "fe80::9", None]
    sources4: List[Optional[str]] = ["10.2.0.9", "169.254.9.9", None]
    pairs: List[Tuple[Any, Optional[str]]] = []
    for _ in range(rng.randint(2, 10)):
        # A fresh object per pair, so identity tells duplicates apart.
        if rng.random() < 0.5:
            pairs.append((ipaddress.ip_address(rng.choice(pool6)), rng.choice(sources6)))
        else:
            pairs.append((ipaddress.ip_address(rng.choice(pool4)), rng.choice(sources4)))
    result = sort_destinations(pairs, table)
    positions = [next(i for i, p in enumerate(pairs) if p[0] is dest) for dest in result]
    assert sorted(positions) == list(range(len(pairs)))  # a permutation
    assert sort_destinations([pairs[i] for i in positions], table) == result  # idempotent
    for x, y in itertools.combinations(positions, 2):  # x is placed before y
        kx, ky = _sort_keys(table, *pairs[x]), _sort_keys(table, *pairs[y])
        assert kx <= ky  # rules 1, 2, 5, 6, 8
        if kx != ky:
            continue
        (dx, sx), (dy, sy) = pairs[x], pairs[y]
        if dx.version == 6 and dy.version == 6 and sx is not None and sy is not None:
            cx = sorting._common_prefix_len(ipaddress.IPv6Address(sx), dx)
            cy = sorting._common_prefix_len(ipaddress.IPv6Address(sy), dy)
            assert cx >= cy  # rule 9
            if cx == cy:
                assert x < y  # rule 10
        elif dx.version == 4 and dy.version == 4:
            assert x < y  # no rule 9 for IPv4: input order


# ---------------------------------------------------------------------------
# Hooks: unusable (rule 1) and history (R10/R11, between rules 8 and 9)
# ---------------------------------------------------------------------------


def test_t6_rule1_unusable_hook_sorts_known_unreachable_last() -> None:
    seen: List[object] = []
    failed = ipaddress.IPv6Address("2001:db8:1::1")

    def unusable(dest: object) -> bool:
        seen.append(dest)
        return dest is failed

    pairs: List[Tuple[Any, Optional[str]]] = [
        (failed, "2001:db8:1::2"),
        ("198.51.100.121", "198.51.100.117"),
        ("2001:db8:2::1", None),
    ]
    result = sort_destinations(pairs, unusable=unusable)
    assert result[0] == "198.51.100.121"
    # Both unusable ones follow; among them the later rules still apply
    # (rule 2: the failed one has a matching-scope source).
    assert result[1] is failed and result[2] == "2001:db8:2::1"
    assert any(x is failed for x in seen) and len(seen) == 3  # once each, original objects


def test_r10_history_key_sits_between_rule8_and_rule9() -> None:
    src = "2001:db8:1:2::9"
    near, far = "2001:db8:1:2::1", "2001:db8:ff::1"
    rtt = {near: 0.200, far: 0.010}
    # History beats rule 9: the faster server goes first despite a shorter prefix.
    assert order([(near, src), (far, src)], history_key=rtt.__getitem__) == [far, near]
    # ...but not rule 8: link-local stays ahead of a faster global address.
    rtt2 = {"fe80::1": 0.5, near: 0.001}
    pairs = [(near, src), ("fe80::1", "fe80::9")]
    assert order(pairs, history_key=rtt2.__getitem__) == ["fe80::1", near]
    # ...nor rule 6: a fast IPv4 address stays behind IPv6 (precedence 40 > 35).
    rtt3 = {near: 0.5, "192.0.2.1": 0.001}
    pairs = [("192.0.2.1", "192.0.2.2"), (near, src)]
    assert order(pairs, history_key=rtt3.__getitem__) == [near, "192.0.2.1"]


def test_r11_history_key_tuples_and_ipv4_ties() -> None:
    used = {"192.0.2.3"}
    key = lambda d: (0 if d in used else 1,)  # noqa: E731
    pairs = [("192.0.2.1", "10.0.0.2"), ("192.0.2.3", "10.0.0.2"), ("192.0.2.2", "10.0.0.2")]
    assert order(pairs, history_key=key) == ["192.0.2.3", "192.0.2.1", "192.0.2.2"]


def test_r9_custom_policy_prefers_ipv4() -> None:
    # RFC 6724 §10.3: giving ::ffff:0:0/96 a higher precedence prefers IPv4.
    prefer4 = PolicyTable(precedence=[("::ffff:0:0/96", 100)])
    pairs = [("2001:db8:1::1", "2001:db8:1::2"), ("10.1.2.3", "10.1.2.4")]
    assert order(pairs) == ["2001:db8:1::1", "10.1.2.3"]
    assert order(pairs, policy=prefer4) == ["10.1.2.3", "2001:db8:1::1"]


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_bad_destination_string_names_it() -> None:
    with pytest.raises(ValueError, match=re.escape("'www.example.com'")):
        sort_destinations([("www.example.com", None)])
    with pytest.raises(ValueError, match=re.escape("'10.0.0.256'")):
        sort_destinations([("10.0.0.1", "10.0.0.256")])


def test_source_of_another_family_is_rejected() -> None:
    with pytest.raises(ValueError, match=re.escape("IPv6 but destination '192.0.2.1' is IPv4")):
        sort_destinations([("192.0.2.1", "2001:db8::1")])
    with pytest.raises(ValueError, match="is IPv4 but destination"):
        sort_destinations([("2001:db8::1", "192.0.2.2")])


def test_ipv4_mapped_source_counts_as_ipv4() -> None:
    # A dual-stack socket reports an IPv4 source as ::ffff:a.b.c.d.
    pairs = [("198.51.100.121", "::ffff:169.254.13.78"), ("2001:db8:1::1", "2001:db8:1::2")]
    assert order(pairs) == ["2001:db8:1::1", "198.51.100.121"]
    pairs = [("198.51.100.121", "::ffff:198.51.100.117"), ("2001:db8:1::1", "fe80::1")]
    assert order(pairs) == ["198.51.100.121", "2001:db8:1::1"]
    # And an IPv4-mapped destination may come with a plain IPv4 source.
    assert order([("::ffff:192.0.2.1", "192.0.2.2")]) == ["::ffff:192.0.2.1"]


def test_bad_types_and_shapes() -> None:
    with pytest.raises(TypeError, match="pair"):
        sort_destinations(["192.0.2.1"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        sort_destinations([(3232235521, None)])  # type: ignore[type-var]


# ---------------------------------------------------------------------------
# gai.conf (checklist C)
# ---------------------------------------------------------------------------

# The directive lines of the gai.conf quoted in seed article 000 (Debian's
# file with its examples uncommented, the precedence of ::ffff:0:0/96 already
# changed to 35).  Its scopev4 block appears twice.
SEED_GAI_CONF = """\
# Configuration for getaddrinfo(3).
label ::1/128       0
label ::/0          1
label 2002::/16     2
label ::/96         3
label ::ffff:0:0/96 4
label fec0::/10     5
label fc00::/7      6
label 2001:0::/32   7
label ::ffff:7f00:0001/128 8
#    This default differs from the tables given in RFC 3484 ...
precedence  ::1/128       50
precedence  ::/0          40
precedence  2002::/16     30
precedence ::/96          20
precedence ::ffff:0:0/96  35
#
#precedence ::ffff:0:0/96  100
scopev4 ::ffff:169.254.0.0/112  2
scopev4 ::ffff:127.0.0.0/104    2
scopev4 ::ffff:0.0.0.0/96       14
#
scopev4 ::ffff:169.254.0.0/112  2
scopev4 ::ffff:127.0.0.0/104    2
scopev4 ::ffff:0.0.0.0/96       14
"""

# glibc's built-in (RFC 3484) precedence table, written out.
GLIBC_PRECEDENCE = """\
precedence ::1/128       50
precedence ::/0          40
precedence 2002::/16     30
precedence ::/96         20
precedence ::ffff:0:0/96 10
"""

# From the seed article's test setup: a 6to4 server and an IPv4 server.
SIX_TO_FOUR = ("2002:a40:4c07:1::faf1", "2002:a40:4c07:1::1")
NATIVE_V4 = ("10.64.78.34", "10.64.78.1")


def test_gai_conf_seed_file_replaces_tables_and_flags_duplicates() -> None:
    table = PolicyTable.from_gai_conf(SEED_GAI_CONF, origin="seed")
    labels = {str(net): value for net, value in table.label_table}
    assert len(labels) == 9 and labels["fc00::/7"] == 6 and labels["::ffff:7f00:1/128"] == 8
    assert table.label("127.0.0.1") == 8 and table.label("fd00::1") == 6
    assert table.precedence("2001:0:1::1") == 40  # Teredo row gone from precedence
    assert table.precedence("10.0.0.1") == 35
    assert table.scope("169.254.1.1") == 2 and table.scope("10.0.0.1") == 14
    assert len(table.warnings) == 3
    assert all("duplicate scopev4" in w for w in table.warnings)
    assert "seed: line 23:" in table.warnings[0] and "line 19 is used" in table.warnings[0]
    with pytest.raises(ValueError, match="line 23"):
        PolicyTable.from_gai_conf(SEED_GAI_CONF, strict=True)


def test_gai_conf_seed_precedence_10_vs_35_flips_6to4_and_ipv4() -> None:
    pairs = [NATIVE_V4, SIX_TO_FOUR]
    glibc = PolicyTable.from_gai_conf(GLIBC_PRECEDENCE)
    # glibc's RFC 3484 default: 6to4 (30) beats native IPv4 (10).
    assert order(pairs, policy=glibc) == [SIX_TO_FOUR[0], NATIVE_V4[0]]
    # The seed's fix, precedence ::ffff:0:0/96 35: native IPv4 first.
    fixed = PolicyTable.from_gai_conf(GLIBC_PRECEDENCE.replace("/96 10", "/96 35"))
    assert fixed.precedence("10.64.78.34") == 35
    assert order(pairs, policy=fixed) == [NATIVE_V4[0], SIX_TO_FOUR[0]]
    # The RFC 6724 table already says so.
    assert order(pairs) == [NATIVE_V4[0], SIX_TO_FOUR[0]]


def test_gai_conf_label_2002_as_1_flips_the_order() -> None:
    # A host with a native IPv6 source only: the 6to4 destination's label (2)
    # does not match it (1), so rule 5 puts IPv4 first.
    pairs = [NATIVE_V4, (SIX_TO_FOUR[0], "2001:db8::2")]
    base = PolicyTable.from_gai_conf(GLIBC_PRECEDENCE)
    assert order(pairs, policy=base) == [NATIVE_V4[0], SIX_TO_FOUR[0]]
    # "label 2002::/16 1" replaces the label table: ::/0 -> 1 is implicit,
    # so every address (IPv4 too) now has label 1, rule 5 ties, and rule 6
    # (30 > 10) puts 6to4 first.
    relabeled = PolicyTable.from_gai_conf(GLIBC_PRECEDENCE + "label 2002::/16 1\n")
    assert relabeled.label("10.64.78.34") == 1
    assert order(pairs, policy=relabeled) == [SIX_TO_FOUR[0], NATIVE_V4[0]]
    # With RFC 6724 precedences the same label line does not flip anything.
    assert order(pairs, policy=PolicyTable.from_gai_conf("label 2002::/16 1")) == [
        NATIVE_V4[0],
        SIX_TO_FOUR[0],
    ]


def test_gai_conf_replacement_is_per_table_and_adds_implicit_catch_all() -> None:
    table = PolicyTable.from_gai_conf("precedence ::ffff:0:0/96 100\n")
    assert {str(n): v for n, v in table.precedence_table} == {"::ffff:0:0/96": 100, "::/0": 40}
    assert table.precedence("::1") == 40  # the ::1 row was replaced away
    assert table.label_table == RFC.label_table  # not mentioned: RFC 6724 default
    assert table.scopev4_table == RFC.scopev4_table
    labels = PolicyTable.from_gai_conf("label 2002::/16 7")
    assert {str(n): v for n, v in labels.label_table} == {"2002::/16": 7, "::/0": 1}
    assert labels.precedence_table == RFC.precedence_table


def test_gai_conf_explicit_catch_all_is_respected() -> None:
    table = PolicyTable.from_gai_conf("precedence ::/0 10\nlabel ::/0 9\n")
    assert table.precedence("2001:db8::1") == 10 and table.precedence("10.0.0.1") == 10
    assert table.label("fd00::1") == 9
    assert len(table.precedence_table) == 1


def test_gai_conf_scopev4_forms_and_replacement() -> None:
    mapped = PolicyTable.from_gai_conf("scopev4 ::ffff:10.0.0.0/104 5\n")
    plain = PolicyTable.from_gai_conf("scopev4 10.0.0.0/8 5\n")
    assert mapped == plain
    assert plain.scope("10.1.2.3") == 5
    assert plain.scope("127.0.0.1") == 14  # 127/8 row replaced away
    assert plain.scope("192.0.2.1") == 14  # implicit default
    host = PolicyTable.from_gai_conf("scopev4 ::ffff:192.0.2.7 8\nscopev4 192.0.2.8 9")
    assert host.scope("192.0.2.7") == 8 and host.scope("192.0.2.8") == 9
    assert host.scope("192.0.2.9") == 14
    everything = PolicyTable.from_gai_conf("scopev4 ::ffff:0.0.0.0/96 5")
    assert everything.scope("127.0.0.1") == 5 and len(everything.scopev4_table) == 1


def test_gai_conf_comments_blank_lines_whitespace_and_reload() -> None:
    text = "\n  # comment\n\treload\tyes  # trailing comment\n\nprecedence ::1/128 5 # x\n"
    table = PolicyTable.from_gai_conf(text)
    assert table.reload is True
    assert table.warnings == ()
    assert table.precedence("::1") == 5
    assert PolicyTable.from_gai_conf("reload no").reload is False
    assert PolicyTable.from_gai_conf("").reload is False


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("sortlist 10.0.0.0/8", "unknown directive 'sortlist'"),
        ("Label ::1/128 0", "unknown directive 'Label'"),
        ("label ::1/128", "expected 'label <mask> <value>'"),
        ("precedence", "expected 'precedence <mask> <value>'"),
        ("label 2002::zz/16 2", "is not an IPv6 address"),
        ("label 10.0.0.0/8 2", "is not an IPv6 address"),
        ("label fe80::%eth0/64 2", "zone"),
        ("precedence ::/129 1", "prefix length 129 is out of range"),
        ("precedence ::/x 1", "prefix length 'x' is not a whole number"),
        ("precedence ::/-1 1", "is not a whole number"),
        ("precedence ::/0 high", "value 'high' is not a whole number"),
        ("precedence ::/0 4.5", "value '4.5' is not a whole number"),
        ("label ::/0 -1", "value '-1' is not a whole number"),
        ("label ::/0 2147483648", "out of range"),
        ("scopev4 ::ffff:10.0.0.0/95 5", "out of range (96-128)"),
        ("scopev4 10.0.0.0/33 5", "prefix length 33 is out of range"),
        ("scopev4 2001:db8::/32 5", "must be IPv4-mapped"),
        ("scopev4 10.0.0.300/8 5", "is not an IPv4 address"),
        ("scopev4 10.0.0.0/8", "expected 'scopev4 <mask> <value>'"),
        ("reload maybe", "reload takes 'yes' or 'no'"),
        ("reload", "expected 'reload yes|no'"),
    ],
)
def test_gai_conf_malformed_lines_lenient_and_strict(line: str, reason: str) -> None:
    text = f"precedence ::ffff:0:0/96 100\n\n{line}\nlabel 2002::/16 7\n"
    table = PolicyTable.from_gai_conf(text)
    # The bad line is skipped; the good ones around it still apply.
    assert len(table.warnings) == 1
    assert "line 3:" in table.warnings[0] and reason in table.warnings[0]
    assert repr(line) in table.warnings[0]
    assert table.precedence("10.0.0.1") == 100
    assert table.label("2002::1") == 7
    with pytest.raises(ValueError) as info:
        PolicyTable.from_gai_conf(text, strict=True, origin="/etc/gai.conf")
    assert str(info.value).startswith("/etc/gai.conf: line 3: ")
    assert reason in str(info.value) and repr(line) in str(info.value)


def test_gai_conf_only_bad_lines_keep_the_default_table() -> None:
    # Like glibc: replacement needs at least one line that was accepted.
    table = PolicyTable.from_gai_conf("precedence ::/0 x\nprecedence nonsense 1\n")
    assert table.precedence_table == RFC.precedence_table
    assert len(table.warnings) == 2 and table == RFC


def test_gai_conf_trailing_text_is_ignored_with_a_warning() -> None:
    table = PolicyTable.from_gai_conf("precedence ::ffff:0:0/96 100 extra words\n")
    assert table.precedence("192.0.2.1") == 100
    assert "ignored trailing text 'extra words'" in table.warnings[0]
    with pytest.raises(ValueError, match="line 1: ignored trailing text"):
        PolicyTable.from_gai_conf("precedence ::ffff:0:0/96 100 extra\n", strict=True)


def test_gai_conf_first_of_duplicate_rows_wins() -> None:
    table = PolicyTable.from_gai_conf(
        "precedence ::ffff:0:0/96 35\nprecedence ::ffff:0.0.0.0/96 100\n"
    )
    assert table.precedence("10.0.0.1") == 35
    assert "duplicate precedence ::ffff:0:0/96; line 1 is used" in table.warnings[0]


def test_gai_conf_host_bits_in_a_mask_are_ignored() -> None:
    table = PolicyTable.from_gai_conf("precedence 2002::1/16 3\n")
    assert table.precedence("2002:ffff::1") == 3 and table.warnings == ()


def test_gai_conf_round_trip() -> None:
    for table in (RFC, PolicyTable.from_gai_conf(SEED_GAI_CONF + "reload yes")):
        text = table.to_gai_conf()
        again = PolicyTable.from_gai_conf(text, strict=True)
        assert again == table


def test_from_file(tmp_path: Path) -> None:
    path = tmp_path / "gai.conf"
    path.write_text("precedence ::ffff:0:0/96 100\nbogus line\n")
    table = PolicyTable.from_file(path)
    assert table.precedence("10.0.0.1") == 100
    assert table.origin == str(path)
    assert table.warnings[0].startswith(f"{path}: line 2: unknown directive 'bogus'")
    with pytest.raises(ValueError, match="line 2"):
        PolicyTable.from_file(str(path), strict=True)
    with pytest.raises(FileNotFoundError):
        PolicyTable.from_file(tmp_path / "missing.conf")


# ---------------------------------------------------------------------------
# PolicyTable.system() and its cache
# ---------------------------------------------------------------------------


@pytest.fixture
def load_counter(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    calls: List[str] = []
    real = sorting._load_system_file

    def counting(path: str, base: Any = None) -> Any:
        calls.append(path)
        return real(path, base)

    monkeypatch.setattr(sorting, "_load_system_file", counting)
    return calls


def test_system_without_file_is_rfc6724(tmp_path: Path, load_counter: List[str]) -> None:
    table = PolicyTable.system(tmp_path / "gai.conf")
    assert table is PolicyTable.rfc6724()
    assert PolicyTable.system(tmp_path / "no" / "such" / "dir" / "gai.conf") is RFC
    assert load_counter == []


def test_system_reads_once_and_revalidates_by_stat(tmp_path: Path, load_counter: List[str]) -> None:
    path = tmp_path / "gai.conf"
    path.write_text("precedence ::ffff:0:0/96 100\n")
    first = PolicyTable.system(path)
    assert first.precedence("10.0.0.1") == 100 and first.origin == str(path)
    assert PolicyTable.system(path) is first
    assert PolicyTable.system(str(path)) is first
    assert len(load_counter) == 1

    # A different size is a different file.
    path.write_text("precedence ::ffff:0:0/96 20\n")
    second = PolicyTable.system(path)
    assert second.precedence("10.0.0.1") == 20
    assert len(load_counter) == 2

    # Same size, only the mtime tells.
    info = os.stat(path)
    path.write_text("precedence ::ffff:0:0/96 21\n")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert PolicyTable.system(path) is second  # stamp unchanged: cached
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    assert PolicyTable.system(path).precedence("10.0.0.1") == 21
    assert len(load_counter) == 3

    # Removed: back to the RFC table.
    path.unlink()
    assert PolicyTable.system(path) is RFC


def test_system_unreadable_file_falls_back_with_a_warning(tmp_path: Path) -> None:
    directory = tmp_path / "gai.conf"
    directory.mkdir()
    table = PolicyTable.system(directory)
    assert table == RFC
    assert len(table.warnings) == 1 and "cannot read" in table.warnings[0]


def test_system_is_lenient(tmp_path: Path) -> None:
    path = tmp_path / "gai.conf"
    path.write_text("label 2002::/16 1\nnonsense\n")
    table = PolicyTable.system(path)
    assert table.label("2002::1") == 1 and len(table.warnings) == 1


def test_system_cache_is_thread_safe(tmp_path: Path, load_counter: List[str]) -> None:
    path = tmp_path / "gai.conf"
    path.write_text("precedence ::ffff:0:0/96 100\n")
    results: List[PolicyTable] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(50):
            results.append(PolicyTable.system(path))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 400
    assert all(table is results[0] for table in results)
    assert load_counter == [str(path)]


# ---------------------------------------------------------------------------
# R13: interleaving
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


# ---------------------------------------------------------------------------
# R14: source address discovery
# ---------------------------------------------------------------------------


def _ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_r14_find_source_ipv4_loopback() -> None:
    assert find_source("127.0.0.1") == ipaddress.IPv4Address("127.0.0.1")
    assert find_source(ipaddress.IPv4Address("127.0.0.1"), port=443) == ipaddress.IPv4Address(
        "127.0.0.1"
    )


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="IPv6 loopback unavailable")
def test_r14_find_source_ipv6_loopback() -> None:
    assert find_source("::1") == ipaddress.IPv6Address("::1")


def test_r14_find_source_sends_no_packet() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.setblocking(False)
        port = server.getsockname()[1]
        assert find_source("127.0.0.1", port) == ipaddress.IPv4Address("127.0.0.1")
        with pytest.raises(BlockingIOError):
            server.recv(1)


def test_r14_find_source_unroutable_is_none() -> None:
    # A link-local destination without a zone cannot be routed (and without
    # IPv6 there is no socket at all): None either way.
    assert find_source("fe80::1") is None
    # An interface name that does not exist.
    assert find_source("fe80::1%no-such-if0") is None


def test_r14_find_source_bad_input() -> None:
    with pytest.raises(ValueError, match=re.escape("'example.com'")):
        find_source("example.com")
    with pytest.raises(ValueError, match="port"):
        find_source("127.0.0.1", port=70000)


class FakeSocket:
    """Stands in for socket.socket to observe what find_source does."""

    instances: ClassVar[List[FakeSocket]] = []
    next_error: ClassVar[Optional[OSError]] = None
    next_local: ClassVar[Tuple[Any, ...]] = ("fe80::2%eth0", 40000, 0, 2)

    def __init__(self, family: int, kind: int) -> None:
        self.family = family
        self.kind = kind
        self.connected: Optional[Tuple[Any, ...]] = None
        self.closed = False
        FakeSocket.instances.append(self)

    def __enter__(self) -> FakeSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True

    def connect(self, address: Tuple[Any, ...]) -> None:
        self.connected = address
        if FakeSocket.next_error is not None:
            raise FakeSocket.next_error

    def getsockname(self) -> Tuple[Any, ...]:
        return FakeSocket.next_local


@pytest.fixture
def fake_socket(monkeypatch: pytest.MonkeyPatch) -> type:
    FakeSocket.instances = []
    FakeSocket.next_error = None
    FakeSocket.next_local = ("fe80::2%eth0", 40000, 0, 2)
    monkeypatch.setattr(socket, "socket", FakeSocket)
    return FakeSocket


def test_r14_find_source_passes_the_zone_as_scope_id(fake_socket: type) -> None:
    assert find_source("fe80::1%2", port=80) == ipaddress.IPv6Address("fe80::2")
    sock = FakeSocket.instances[-1]
    assert sock.family == socket.AF_INET6 and sock.kind == socket.SOCK_DGRAM
    assert sock.connected == ("fe80::1", 80, 0, 2)
    assert sock.closed


def test_r14_find_source_resolves_interface_names(fake_socket: type) -> None:
    index = socket.if_nametoindex("lo")
    result = find_source("fe80::1%lo")
    assert FakeSocket.instances[-1].connected == ("fe80::1", 9, 0, index)
    # The zone is stripped from the result (ipaddress counts it in equality).
    assert result == ipaddress.IPv6Address("fe80::2") and result.scope_id is None  # type: ignore[union-attr]


def test_r14_find_source_closes_the_socket_on_error(fake_socket: type) -> None:
    FakeSocket.next_error = OSError(101, "Network is unreachable")
    assert find_source("192.0.2.1") is None
    sock = FakeSocket.instances[-1]
    assert sock.family == socket.AF_INET and sock.connected == ("192.0.2.1", 9)
    assert sock.closed


def test_r14_find_source_unspecified_result_is_none(fake_socket: type) -> None:
    FakeSocket.next_local = ("0.0.0.0", 0)
    assert find_source("192.0.2.1") is None


def test_r14_find_source_family_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ipv6(family: int, kind: int) -> Any:
        raise OSError(97, "Address family not supported by protocol")

    monkeypatch.setattr(socket, "socket", no_ipv6)
    assert find_source("2001:db8::1") is None


# -- glibc's built-in table as the base of a gai.conf (what "auto" uses) --------


def test_glibc_builtin_table_values() -> None:
    glibc = PolicyTable.glibc()
    assert glibc is PolicyTable.glibc()
    assert glibc.precedence("192.0.2.1") == 10  # RFC 3484: IPv4 below 6to4
    assert glibc.precedence("2002:c000:201::1") == 30
    assert glibc.precedence("2001:db8::1") == 40
    assert glibc.precedence("::1") == 50
    assert glibc.label("fd00::1") == 6  # ULA has its own label in glibc
    assert glibc.label("2001:0:5ef5:79fd::1") == 7  # Teredo
    assert glibc.label("fec0::1") == 5


def test_t6_glibc_base_puts_6to4_before_ipv4_like_getaddrinfo() -> None:
    # A 6to4 host (source 2002:...) choosing between 6to4 and IPv4: both
    # labels match, so precedence decides: glibc 30 > 10, RFC 6724 30 < 35.
    candidates = [
        ("10.64.78.34", "10.64.78.104"),
        ("2002:a40:4c07:1::faf1", "2002:a40:4c07:1::104"),
    ]
    assert sort_destinations(candidates, PolicyTable.glibc())[0] == "2002:a40:4c07:1::faf1"
    assert sort_destinations(candidates, PolicyTable.rfc6724())[0] == "10.64.78.34"


def test_gai_conf_base_fills_only_unmentioned_tables() -> None:
    commented = "# precedence ::ffff:0:0/96  100\n#label 2002::/16 1\n"
    assert PolicyTable.from_gai_conf(commented, base=PolicyTable.glibc()) == PolicyTable.glibc()
    assert PolicyTable.from_gai_conf(commented) == PolicyTable.rfc6724()
    # A precedence line replaces glibc's precedence table; its labels stay.
    table = PolicyTable.from_gai_conf("precedence ::ffff:0:0/96 100\n", base=PolicyTable.glibc())
    assert table.precedence("192.0.2.1") == 100
    assert table.precedence("2002::1") == 40  # only the implicit ::/0 row is left
    assert table.label("fd00::1") == 6  # glibc's label table kept


def test_system_with_glibc_base(tmp_path: Path) -> None:
    path = tmp_path / "gai.conf"
    path.write_text("# all commented out, as Debian ships it\n")
    assert PolicyTable.system(path, base=PolicyTable.glibc()) == PolicyTable.glibc()
    assert PolicyTable.system(path) == PolicyTable.rfc6724()  # cached separately
    assert PolicyTable.system(tmp_path / "missing", base=PolicyTable.glibc()) is RFC
