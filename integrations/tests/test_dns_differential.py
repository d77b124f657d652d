"""The gate for eyeshim's stub resolver (issue 13, item 3): in a lab namespace, for every case,
the addresses it returns per family equal what glibc's getaddrinfo returns in the same
namespace (or both fail with the same error), and a connect with eyeshim reaches the same host
as one with the stdlib.

Each resolv.conf variant runs ``integrations.dnsdiff`` once in the dual-stack client namespace,
which compares glibc and the stub name by name; the zone holds one name per case. Needs root
and namespaces (skipped otherwise, with the reason).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import pytest

from integrations.conftest import lab_name
from integrations.dnszone import Impairment, Zone
from integrations.lab import HOSTS, Lab, LabUnavailable

pytestmark = pytest.mark.lab

V4 = ("10.64.78.33", "10.64.78.34", "10.64.78.35")
V6 = ("2002:a40:4c07:1::faf1", "2002:a40:4c07:1::faf2", "2002:a40:4c07:1::aaa1")
DEAD_SERVER = "10.64.78.99"  # on the lab's subnet, owned by nobody: queries to it are lost
SERVER = "10.64.78.53"


def _zone() -> Zone:
    zone = Zone(domains=["lab.test"], negative_ttl=30)
    zone.set("four", a=[V4[0]])
    zone.set("six", aaaa=[V6[0]])
    zone.set("both", a=[V4[1], V4[2]], aaaa=[V6[1], V6[0]])
    zone.set("alias1", cname="alias2")
    zone.set("alias2", cname="both")
    zone.set("dangling", cname="nothere")
    zone.set("nodata")
    serve_fail = Impairment(servfail=True)
    zone.set("sfail", a=[V4[0]], aaaa=[V6[0]], impair={"A": serve_fail, "AAAA": serve_fail})
    zone.set("sfail6", a=[V4[0]], aaaa=[V6[0]], impair={"AAAA": serve_fail})
    truncate = Impairment(truncate=True)
    zone.set("trunc", a=[V4[2]], aaaa=[V6[2]], impair={"A": truncate, "AAAA": truncate})
    zone.set("drop6", a=[V4[1]], aaaa=[V6[1]], impair={"AAAA": Impairment(drop=True)})
    # The search-list case: A only in lab.test, AAAA only in example.org.
    zone.set("mix.lab.test.", a=[V4[0]])
    zone.set("mix", aaaa=[V6[0]])
    zone.set("only6.lab.test.", aaaa=[V6[2]])
    zone.set("only6", a=[V4[2]])
    zone.set("xn--bcher-kva", a=[V4[1]], aaaa=[V6[1]])  # bücher.example.org
    zone.set("hostsname", a=[V4[2]])  # the hosts file says V4[1]
    zone.set("kube.svc.lab.test.", a=[V4[0]], aaaa=[V6[0]])
    return zone


# name -> why it is here (item 3's list)
CASES_PLAIN = {
    "four.example.org": "A only",
    "six.example.org": "AAAA only",
    "both.example.org": "both families, several addresses",
    "alias1.example.org": "a CNAME chain",
    "dangling.example.org": "a CNAME to a name that does not exist",
    "missing.example.org": "NXDOMAIN",
    "nodata.example.org": "NODATA",
    "sfail.example.org": "SERVFAIL for both",
    "sfail6.example.org": "SERVFAIL for AAAA only",
    "trunc.example.org": "truncated over UDP: TCP",
    "drop6.example.org": "AAAA never answered",
    "outside.test": "a server that refuses (not its zone)",
    "bücher.example.org": "IDNA",
    "hostsname": "a hosts-file entry (DNS has another address)",
    "both.example.org.": "absolute name",
}
CASES_SEARCH = {
    "mix": "one candidate has only A, another only AAAA",
    "only6": "the first candidate has only AAAA",
    "both": "short name through the search list",
    "both.example.org": "dotted name",
    "kube.svc": "two labels",
    "missing": "NXDOMAIN everywhere",
    "nodata": "NODATA in one candidate",
}
CASES_DEAD = {"both.example.org": "first nameserver dead", "four.example.org": "first dead"}

# resolv.conf variants; a third element: environment variables for the comparing process.
VARIANTS: dict[str, tuple[Any, ...]] = {
    "plain": (f"nameserver {SERVER}\noptions timeout:1 attempts:2\n", CASES_PLAIN),
    "search ndots:1": (
        f"nameserver {SERVER}\nsearch lab.test example.org\noptions ndots:1 timeout:1\n",
        CASES_SEARCH,
    ),
    "search ndots:5 (Kubernetes)": (
        f"nameserver {SERVER}\nsearch svc.lab.test lab.test example.org\n"
        "options ndots:5 timeout:1 attempts:2\n",
        CASES_SEARCH,
    ),
    "first nameserver dead": (
        f"nameserver {DEAD_SERVER}\nnameserver {SERVER}\noptions timeout:1 attempts:2\n",
        CASES_DEAD,
    ),
    "options": (
        f"nameserver {SERVER}\noptions rotate edns0 single-request-reopen trust-ad timeout:1\n",
        {"both.example.org": "options", "trunc.example.org": "options + TCP"},
    ),
    "LOCALDOMAIN and RES_OPTIONS": (
        f"nameserver {SERVER}\nsearch nowhere.test\noptions timeout:1\n",
        {"mix": "search list from LOCALDOMAIN", "kube.svc": "ndots from RES_OPTIONS"},
        {"LOCALDOMAIN": "svc.lab.test lab.test example.org", "RES_OPTIONS": "ndots:5 attempts:1"},
    ),
    "options use-vc no-aaaa": (
        f"nameserver {SERVER}\noptions use-vc no-aaaa single-request timeout:1\n",
        {"both.example.org": "TCP only, no AAAA", "six.example.org": "no AAAA: nothing"},
    ),
}


@pytest.fixture(scope="module")
def dnslab() -> Iterator[Lab]:
    try:
        lab = Lab(lab_name("dd"), clients=("ds",), zone=_zone()).up()
    except LabUnavailable as exc:
        pytest.skip(f"lab unavailable: {exc.reason}")
    lab.set_etc("ds", "hosts", HOSTS + f"{V4[1]} hostsname\n")
    try:
        yield lab
    finally:
        lab.down()


def _run(
    lab: Lab, resolv_conf: str, names: list[str], env: Optional[dict[str, str]] = None
) -> list[dict[str, Any]]:
    lab.set_etc("ds", "resolv.conf", resolv_conf)
    extra = [f"--env={name}={value}" for name, value in (env or {}).items()]
    try:
        result = lab.python_json(
            "ds", ["-m", "integrations.dnsdiff", *names, "--timeout", "3", *extra], timeout=240
        )
    finally:
        lab.set_etc("ds", "resolv.conf", None)
    rows: list[dict[str, Any]] = result["results"]
    return rows


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_stub_resolver_answers_as_glibc_does(dnslab: Lab, variant: str) -> None:
    resolv_conf, cases, *env = VARIANTS[variant]
    rows = _run(dnslab, resolv_conf, list(cases), env[0] if env else None)
    problems = []
    for row in rows:
        name, glibc, stub = row["name"], row["glibc"], row["stub"]
        why = cases[name]
        if name != "hostsname" and not row["choice"].startswith("stub"):
            problems.append(f"{name} ({why}): eyeshim would not use the stub: {row['choice']}")
        # The hosts-file name is answered before any resolver (the stub is not asked).
        if name != "hostsname":
            for family in ("inet", "inet6"):
                if glibc[family] != stub[family]:
                    problems.append(
                        f"{name} ({why}) {family}: glibc {glibc[family]}, stub {stub[family]}"
                    )
            if glibc["error"] != stub["error"]:
                problems.append(
                    f"{name} ({why}): glibc error {glibc['error']}, stub {stub['error']}"
                )
        if row["stock"] != row["eyeshim"]:
            problems.append(
                f"{name} ({why}): stock reached {row['stock']}, eyeshim {row['eyeshim']} "
                f"(resolver {row['used']})"
            )
    assert not problems, "\n".join(problems)
