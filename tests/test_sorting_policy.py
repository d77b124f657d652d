"""Tests for eyeshim.sorting.policy: the policy table, scopes, gai.conf, system().

Test names carry the requirement IDs of shared/rfc-checklist.md (T1, T3-T5
for the RFC 6724 table and scopes).
"""

from __future__ import annotations

import copy
import ipaddress
import os
import pickle
import re
import threading
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import pytest

from eyeshim.sorting import PolicyTable, sort_destinations
from eyeshim.sorting.policy import SCOPE_GLOBAL, GaiConfCache, Stamp, load_gai_conf

RFC = PolicyTable.rfc6724()


def order(pairs: Sequence[Tuple[str, Optional[str]]], **kwargs: Any) -> List[str]:
    return sort_destinations(pairs, **kwargs)


# ---------------------------------------------------------------------------
# T1, T3-T5: the policy table and scopes (T2, CommonPrefixLen, is in test_sorting_rfc6724)
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
    assert RFC.scope(address) == SCOPE_GLOBAL


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
def counting() -> Tuple[GaiConfCache, List[str]]:
    """A GaiConfCache of the test's own (the kind behind PolicyTable.system())
    and the paths it has read, in order."""
    loads: List[str] = []

    def load(path: str, base: Optional[PolicyTable]) -> Tuple[Stamp, PolicyTable]:
        loads.append(path)
        return load_gai_conf(path, base)

    return GaiConfCache(load=load), loads


def test_system_without_file_is_rfc6724(
    tmp_path: Path, counting: Tuple[GaiConfCache, List[str]]
) -> None:
    cache, loads = counting
    assert PolicyTable.system(tmp_path / "gai.conf") is PolicyTable.rfc6724()
    assert cache.get(tmp_path / "gai.conf") is RFC
    assert cache.get(tmp_path / "no" / "such" / "dir" / "gai.conf") is RFC
    assert loads == []


def test_system_reads_once_and_revalidates_by_stat(
    tmp_path: Path, counting: Tuple[GaiConfCache, List[str]]
) -> None:
    cache, loads = counting
    path = tmp_path / "gai.conf"
    path.write_text("precedence ::ffff:0:0/96 100\n")
    assert PolicyTable.system(path) is PolicyTable.system(str(path))  # the process-wide cache
    first = cache.get(path)
    assert first == PolicyTable.system(path)
    assert first.precedence("10.0.0.1") == 100 and first.origin == str(path)
    assert cache.get(path) is first
    assert cache.get(str(path)) is first
    assert len(loads) == 1

    # A different size is a different file.
    path.write_text("precedence ::ffff:0:0/96 20\n")
    second = cache.get(path)
    assert second.precedence("10.0.0.1") == 20
    assert len(loads) == 2

    # Same size, only the mtime tells.
    info = os.stat(path)
    path.write_text("precedence ::ffff:0:0/96 21\n")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert cache.get(path) is second  # stamp unchanged: cached
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    assert cache.get(path).precedence("10.0.0.1") == 21
    assert len(loads) == 3

    # Removed: back to the RFC table.
    path.unlink()
    assert cache.get(path) is RFC


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


def test_system_cache_is_thread_safe(
    tmp_path: Path, counting: Tuple[GaiConfCache, List[str]]
) -> None:
    cache, loads = counting
    path = tmp_path / "gai.conf"
    path.write_text("precedence ::ffff:0:0/96 100\n")
    results: List[PolicyTable] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(50):
            results.append(cache.get(path))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 400
    assert all(table is results[0] for table in results)
    assert loads == [str(path)]


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
