"""eyeshim.dns.nsswitch: which hosts: lines the stub resolver may serve, and for which names."""

from __future__ import annotations

import pytest

from eyeshim.dns.nsswitch import load, parse


@pytest.mark.parametrize(
    ("line", "local", "own"),
    [
        ("hosts: files dns", False, False),
        ("hosts:          files dns", False, False),
        ("hosts: dns files", False, False),
        ("hosts: files mdns4_minimal [NOTFOUND=return] dns", True, False),
        ("hosts: files mdns4_minimal [NOTFOUND=return] dns myhostname", True, True),
        ("hosts: files dns myhostname", False, True),
        ("hosts: files myhostname dns", False, True),
        ("hosts: files dns [!UNAVAIL=return] myhostname", False, True),
        ("hosts:\tfiles\tdns", False, False),
    ],
)
def test_lines_the_stub_can_serve(line: str, local: bool, own: bool) -> None:
    parsed = parse(f"passwd: files\n# hosts: resolve\n{line}\nnetworks: files\n")
    assert parsed.supported, parsed.reason
    assert (parsed.local_names, parsed.own_names) == (local, own)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("hosts: files resolve [!UNAVAIL=return] dns", "resolve"),
        ("hosts: files mdns4 dns", "mdns4"),
        ("hosts: files [NOTFOUND=return] dns", "may stop before DNS"),
        ("hosts: files myhostname [NOTFOUND=return] dns", "myhostname"),
        ("hosts: files", "does not use dns"),
        ("hosts: files wins dns", "wins"),
        ("passwd: files", "no hosts: line"),
        ("hosts: files dns\nhosts: dns", "more than one"),
        ("hosts: files [NOTFOUND=return dns", "not understood"),
    ],
)
def test_lines_that_send_every_name_to_getaddrinfo(text: str, why: str) -> None:
    parsed = parse(text)
    assert not parsed.supported
    assert why in parsed.reason


def test_a_missing_file_is_unsupported(tmp_path: object) -> None:
    stamp, line = load("/nonexistent/nsswitch.conf")
    assert stamp is None and not line.supported and "no /nonexistent" in line.reason
