"""Tests for eyeshim.sorting.rfc6724: the RFC 6724 §6 destination rules.

Test names carry the requirement IDs of shared/rfc-checklist.md (T2, T6, T7
for RFC 6724, R9-R11 for RFC 8305 §4's use of it).
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest

from eyeshim.sorting import (
    AddressLike,
    PolicyTable,
    common_prefix_len,
    deciding_rule,
    sort_destinations,
)

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
# T2: CommonPrefixLen
# ---------------------------------------------------------------------------


def test_t2_common_prefix_len_is_capped_at_64() -> None:
    cpl = common_prefix_len
    v6 = ipaddress.IPv6Address
    assert cpl(v6("fe80::1"), v6("fe80::2")) == 64  # the RFC's own example
    assert cpl(v6("2001:db8:1::2"), v6("2001:db8:1::1")) == 64
    assert cpl(v6("2001:db8:3f44::2"), v6("2001:db8:3ffe::1")) == 40
    assert cpl(v6("2001:db8::1"), v6("2001:db8::1")) == 64
    assert cpl(v6("::"), v6("8000::")) == 0


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
    candidates: List[Tuple[AddressLike, AddressLike]] = [
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
            cx = common_prefix_len(ipaddress.IPv6Address(sx), dx)
            cy = common_prefix_len(ipaddress.IPv6Address(sy), dy)
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
# deciding_rule: which rule put one destination ahead of another (the probe
# shows it); each rule on a pair it decides (RFC 6724 §10.2 examples)
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# deciding_rule: each rule on a pair it decides (RFC 6724 §10.2 examples)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first, second, rule",
    [
        # A destination with no source loses to one with a source.
        (("198.51.100.1", "198.51.100.2"), ("2001:db8:1::1", None), "rule 1: avoid unusable"),
        # §10.2 example 2: only IPv4 has a source of matching scope.
        (
            ("198.51.100.121", "198.51.100.117"),
            ("2001:db8:1::1", "fe80::1"),
            "rule 2: matching scope",
        ),
        # §10.2 example 8: the 6to4 destination matches the 6to4 source's label.
        (
            ("2002:c633:6401::1", "2002:c633:6401::2"),
            ("2001:db8:1::1", "2002:c633:6401::2"),
            "rule 5: matching label",
        ),
        # §10.2 example 3: native IPv6 (40) over IPv4 (35).
        (("2001:db8:1::1", "2001:db8:1::2"), ("10.1.2.3", "10.1.2.4"), "rule 6: higher precedence"),
        # §10.2 example 4: link-local before global.
        (("fe80::1", "fe80::2"), ("2001:db8:1::1", "2001:db8:1::2"), "rule 8: smaller scope"),
        # §10.2 example 7: the longer common prefix.
        (
            ("2001:db8:1::1", "2001:db8:1::2"),
            ("2001:db8:3ffe::1", "2001:db8:3f44::2"),
            "rule 9: longest matching prefix",
        ),
        # Two IPv4 servers of one network: nothing tells them apart (no rule 9).
        (("10.1.0.5", "10.2.0.9"), ("10.2.0.5", "10.2.0.9"), "rule 10: DNS order"),
    ],
)
def test_deciding_rule_names_the_rule_of_each_rfc_example(
    first: Tuple[str, Optional[str]], second: Tuple[str, Optional[str]], rule: str
) -> None:
    # Given in the "wrong" order, the rule puts them right; rule 10 keeps
    # the input order by definition, in both directions.
    if rule == "rule 10: DNS order":
        assert sort_destinations([second, first]) == [second[0], first[0]]
        assert deciding_rule(second, first) == rule
    else:
        assert sort_destinations([second, first]) == [first[0], second[0]]
    assert deciding_rule(first, second) == rule
    # The other way round no rule applies: the sort cannot produce it.
    if rule != "rule 10: DNS order":
        with pytest.raises(ValueError, match=re.escape(rule)):
            deciding_rule(second, first)


def test_deciding_rule_hooks_unusable_and_history() -> None:
    fast, slow = ("192.0.2.1", "192.0.2.9"), ("192.0.2.2", "192.0.2.9")
    rtt = {fast[0]: 1, slow[0]: 2}
    assert deciding_rule(fast, slow, history_key=rtt.__getitem__) == "history"
    broken = ("2001:db8:1::1", "2001:db8:1::2")
    failed = {broken[0]}
    assert deciding_rule(fast, broken, unusable=failed.__contains__) == "rule 1: avoid unusable"
    # History sits below rule 8 and above rule 9.
    near, far = ("2001:db8:1:2::1", "2001:db8:1:2::9"), ("2001:db8:ff::1", "2001:db8:1:2::9")
    rank = {near[0]: 2, far[0]: 1}
    assert deciding_rule(far, near, history_key=rank.__getitem__) == "history"
    assert deciding_rule(near, far) == "rule 9: longest matching prefix"
    # A custom table is honoured: IPv4 above native IPv6.
    table = PolicyTable(precedence=[("::ffff:0:0/96", 50)])
    assert deciding_rule(fast, near, table) == "rule 6: higher precedence"


def _rule_values(
    table: PolicyTable,
    dest: Any,
    src: Optional[str],
    unusable: Callable[[Any], bool],
    history_key: Callable[[Any], Any],
) -> List[Tuple[str, Any]]:
    """Each rule's value for one candidate, smaller is better: written
    independently of the sort's own key, from the RFC's wording."""
    address = ipaddress.ip_address(dest)
    source = None if src is None else ipaddress.ip_address(src)
    return [
        ("rule 1: avoid unusable", source is None or unusable(dest)),
        ("rule 2: matching scope", source is None or table.scope(source) != table.scope(address)),
        ("rule 5: matching label", source is None or table.label(source) != table.label(address)),
        ("rule 6: higher precedence", -table.precedence(address)),
        ("rule 8: smaller scope", table.scope(address)),
        ("history", history_key(dest)),
    ]


@pytest.mark.parametrize("seed", range(60))
def test_deciding_rule_is_consistent_with_the_sort(seed: int) -> None:
    rng = random.Random(seed)
    table = rng.choice([RFC, PolicyTable(precedence=[("::ffff:0:0/96", 40)])])
    pool6 = ["2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:ff::1", "2002:c633:6401::1"]
    pool6 += ["fe80::1", "64:ff9b::1", "fd00::1", "2001:db8:1:2::7"]
    pool4 = ["192.0.2.1", "192.0.2.77", "10.1.0.5", "10.2.0.5", "169.254.1.1"]
    sources6 = ["2001:db8:1:2::9", "2002:c633:6401::2", "fe80::9", None]
    sources4 = ["10.2.0.9", "169.254.9.9", None]
    pairs: List[Tuple[str, Optional[str]]] = []
    size = rng.randint(2, 10)
    while len(pairs) < size:
        if rng.random() < 0.5:
            dest, src = rng.choice(pool6), rng.choice(sources6)
        else:
            dest, src = rng.choice(pool4), rng.choice(sources4)
        if all(dest != d for d, _ in pairs):  # one source per destination
            pairs.append((dest, src))
    source_of = dict(pairs)
    failed = {dest for dest, _ in pairs if rng.random() < 0.2}
    ranks = {dest: rng.choice([0, 0, 1, 2]) for dest, _ in pairs}
    hooks: Dict[str, Any] = rng.choice(
        [{}, {"unusable": failed.__contains__}, {"history_key": ranks.__getitem__}]
    )
    unusable = hooks.get("unusable", lambda d: False)
    history_key = hooks.get("history_key", lambda d: 0)

    ordered = sort_destinations(pairs, table, **hooks)
    for a, b in zip(ordered, ordered[1:]):
        pa, pb = (a, source_of[a]), (b, source_of[b])
        rule = deciding_rule(pa, pb, table, **hooks)  # never raises for sorted neighbours
        va = _rule_values(table, a, source_of[a], unusable, history_key)
        vb = _rule_values(table, b, source_of[b], unusable, history_key)
        names = [name for name, _ in va]
        if rule in names:
            at = names.index(rule)
            assert [v for _, v in va[:at]] == [v for _, v in vb[:at]], (a, b, rule)
            assert va[at][1] < vb[at][1], (a, b, rule)  # it really decides, a's way
            continue
        assert [v for _, v in va] == [v for _, v in vb], (a, b, rule)  # tied on the key
        ia, ib = ipaddress.ip_address(a), ipaddress.ip_address(b)
        sa, sb = source_of[a], source_of[b]
        both_v6 = ia.version == ib.version == 6 and sa is not None and sb is not None
        if rule == "rule 9: longest matching prefix":
            assert both_v6
            ca = common_prefix_len(ipaddress.IPv6Address(sa), ia)  # type: ignore[arg-type]
            cb = common_prefix_len(ipaddress.IPv6Address(sb), ib)  # type: ignore[arg-type]
            assert ca > cb
        else:
            assert rule == "rule 10: DNS order", rule
