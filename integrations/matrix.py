"""The scenario x client x stack matrix, stock next to eyeshim, run in the lab.

::

    python -m integrations.matrix --out docs/matrix.md [--json results.json] [--quick] [--check]

Every cell is a separate python process in a client namespace (:mod:`integrations.cell`), so
each sees its namespace's routes, resolv.conf and gai.conf, and eyeshim's patches never leak from
one cell to another. ``--check`` turns the table into a CI gate (see :func:`check`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from integrations.cell import CONNECTIONS, HTTPS_ONLY, MODES, STACKS
from integrations.lab import REPO_ROOT, RESOLV_CONF, Lab, LabError, LabUnavailable
from integrations.scenarios import (
    BROKEN,
    SCENARIOS,
    SEARCH,
    UNREACHABLE,
    Scenario,
    apply_tls_impairments,
    matrix_zone,
)
from integrations.topology import CLIENTS, short_address

# RFC 8305's recommended Connection Attempt Delay, and how much slack the check allows on top
# of it for process scheduling on a loaded 2-core machine.
ATTEMPT_DELAY = 0.25
CONNECT_MARGIN = 0.5
# "Slower than stock beyond noise": both ran the same scenario, eyeshim took > 1.5x + 100 ms.
SLOWER_FACTOR = 1.5
SLOWER_SLACK = 0.1
# pip runs its resolver in the cell (hundreds of ms of CPU): with 8 cells at a time on 2 cores
# the same pip run varies by a few hundred ms.
STACK_SLACK = {"pip": 0.5}
DEFAULT_TIMEOUT = 5.0
# Measured on the 2-core machine (docs/lab.md): up to 10 cells at once keep connect times of
# the fast cells within a few ms of a serial run; beyond that Python start-up (CPU bound)
# starts to overlap the timed part.
DEFAULT_CONCURRENCY = 8

FULL_CLIENTS = ("ds", "v4", "nr", "d6", "dsg")
QUICK_CLIENTS = ("ds", "v4", "dsg")

_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
# requests (and pip's copy) prefer these to a session's own CA file: the HTTPS cells trust the
# lab's CA, given explicitly.
_CA_VARS = {"requests_ca_bundle", "curl_ca_bundle"}


@dataclass(frozen=True)
class Cell:
    scenario: Scenario
    client: str
    stack: str
    mode: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.scenario.key, self.client, self.stack, self.mode)

    def slow_first(self) -> int:
        # Start the cells likely to run into timeouts first, so they overlap the many fast ones.
        slow = any(a in BROKEN for a in (*self.scenario.a, *self.scenario.aaaa))
        return 0 if (slow or self.scenario.impair) and self.mode == "stock" else 1


def build_cells(
    clients: tuple[str, ...],
    stacks: tuple[str, ...],
    modes: tuple[str, ...],
    scenarios: tuple[Scenario, ...] = SCENARIOS,
) -> list[Cell]:
    cells = [
        Cell(scenario, client, stack, mode)
        for scenario in scenarios
        for client in scenario.clients
        if client in clients
        for stack in stacks
        if stack not in HTTPS_ONLY or scenario.scheme == "https"
        for mode in modes
    ]
    return sorted(cells, key=lambda c: c.slow_first())


def _cell_env() -> dict[str, str]:
    # The lab is not reachable through any proxy; drop proxy settings from the environment.
    return {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS | _CA_VARS}


def run_cell(lab: Lab, cell: Cell, timeout: float) -> dict[str, Any]:
    https = (
        ["--scheme", "https", "--ca", str(lab.tls_ca)] if cell.scenario.scheme == "https" else []
    )
    argv = lab.exec_argv(
        cell.client,
        [
            # Start-up and imports at low priority; the cell raises itself for the timed part.
            "nice",
            "-n",
            "10",
            sys.executable,
            "-m",
            "integrations.cell",
            "--stack",
            cell.stack,
            "--mode",
            cell.mode,
            "--host",
            cell.scenario.host,
            "--timeout",
            str(cell.scenario.timeout or timeout),
            *https,
        ],
    )
    base = {"scenario": cell.scenario.key, "client": cell.client}
    try:
        env = _cell_env()
        if cell.mode == "eyeshim":
            env.update(cell.scenario.env)
        proc = subprocess.run(
            argv,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=(cell.scenario.timeout or timeout) * 4 + 20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {
            **base,
            "stack": cell.stack,
            "mode": cell.mode,
            "outcome": "error",
            "error": "hung",
            "elapsed": None,
            "detail": "cell process did not finish",
        }
    lines = proc.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {
            **base,
            "stack": cell.stack,
            "mode": cell.mode,
            "outcome": "error",
            "error": "crash",
            "elapsed": None,
            "detail": proc.stderr.strip()[-500:],
        }
    return {**base, **result}


def run_matrix(
    lab: Lab, cells: list[Cell], *, concurrency: int, timeout: float, progress: bool = True
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(run_cell, lab, cell, timeout) for cell in cells]
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            results.append(future.result())
            if progress and (done % 25 == 0 or done == len(futures)):
                print(f"  {done}/{len(futures)} cells", file=sys.stderr, flush=True)
    dead = [label for label, alive in lab.alive().items() if not alive]
    if dead:
        raise LabError(f"lab servers died during the run: {dead}; results are not valid")
    order = {cell.key: i for i, cell in enumerate(sorted(cells, key=_table_order))}
    results.sort(key=lambda r: order.get((r["scenario"], r["client"], r["stack"], r["mode"]), 0))
    return results


def _table_order(cell: Cell) -> tuple[int, int, int, int]:
    return (
        FULL_CLIENTS.index(cell.client),
        [s.key for s in SCENARIOS].index(cell.scenario.key),
        STACKS.index(cell.stack),
        MODES.index(cell.mode),
    )


# ---------------------------------------------------------------------------------------------
# Check


def check(
    results: list[dict[str, Any]],
    slower_factor: float = SLOWER_FACTOR,
    slower_slack: float = SLOWER_SLACK,
) -> list[str]:
    """Problems that make ``--check`` fail, one line each (empty: pass).

    - eyeshim could not run (not installed / no ``install``);
    - eyeshim failed although some address was reachable for that client;
    - eyeshim connected later than the best case + attempt delay + margin (the best case is 0,
      or the DNS delay of the fastest family with a working address);
    - eyeshim slower than stock by more than ``SLOWER_FACTOR`` x + ``SLOWER_SLACK`` where both
      had the same outcome (both connected, or both failed).

    HTTPS scenarios add the stack's own time on the healthy HTTPS row (``t0``, stock) to the
    best case: the handshake, and for pip its resolver and two requests.
    """
    by_key = {(r["scenario"], r["client"], r["stack"], r["mode"]): r for r in results}
    scenarios = {s.key: s for s in SCENARIOS}
    problems = []
    for (skey, client, stack, mode), eye in sorted(by_key.items()):
        if mode != "eyeshim":
            continue
        where = f"{skey}/{client}/{stack}"
        if eye["outcome"] == "skip":
            problems.append(f"{where}: eyeshim not run: {eye.get('error')}")
            continue
        scenario = scenarios[skey]
        best = scenario.best_case(client)
        if best is not None and scenario.min_time:
            # A slow path costs its round trips on every connection the stack makes.
            best += scenario.min_time * (CONNECTIONS.get(stack, 1) - 1)
        healthy = by_key.get(("t0", client, stack, "stock"))
        if best is not None and scenario.scheme == "https" and healthy is not None:
            best += healthy.get("elapsed") or 0.0
        elapsed = eye.get("elapsed")
        if best is not None:
            if eye["outcome"] != "ok":
                problems.append(
                    f"{where}: eyeshim failed ({eye.get('error')}) but "
                    f"{', '.join(scenario.working(client))} works"
                )
                continue
            if eye.get("winner") not in scenario.working(client):
                problems.append(
                    f"{where}: eyeshim connected to {eye.get('winner')}, not to the name's "
                    f"{', '.join(scenario.working(client))} (another host)"
                )
                continue
            bound = best + ATTEMPT_DELAY + CONNECT_MARGIN
            if elapsed is not None and elapsed > bound:
                problems.append(f"{where}: eyeshim took {elapsed:.3f} s > {bound:.2f} s")
        stock = by_key.get((skey, client, stack, "stock"))
        if stock and stock["outcome"] == eye["outcome"] and stock.get("elapsed") is not None:
            limit = stock["elapsed"] * slower_factor + slower_slack + STACK_SLACK.get(stack, 0.0)
            if elapsed is not None and elapsed > limit:
                problems.append(
                    f"{where}: eyeshim {elapsed:.3f} s vs stock "
                    f"{stock['elapsed']:.3f} s (limit {limit:.3f} s)"
                )
    return problems


# ---------------------------------------------------------------------------------------------
# Markdown


def _fmt_time(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _fmt_cell(result: Optional[dict[str, Any]]) -> str:
    if result is None:
        return ""
    if result["outcome"] == "skip":
        return "n/a"
    if result["outcome"] == "ok":
        winner = short_address(result.get("winner") or "?")
        return f"✓ {winner} {_fmt_time(result.get('elapsed'))}"
    return f"✗ {result.get('error')} {_fmt_time(result.get('elapsed'))}"


def _versions() -> dict[str, str]:
    out = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "glibc": " ".join(platform.libc_ver()),
    }
    for package in ("urllib3", "requests", "eyeshim"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    if out["eyeshim"] == "not installed":
        # Cells import eyeshim from the repository root; importing it here does not install it.
        try:
            import eyeshim

            out["eyeshim"] = f"{getattr(eyeshim, '__version__', '?')} (source tree)"
        except ImportError:
            pass
    return out


def render_markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    by_key = {(r["scenario"], r["client"], r["stack"], r["mode"]): r for r in results}
    stacks = [s for s in STACKS if any(r["stack"] == s for r in results)]
    clients = [c for c in FULL_CLIENTS if any(r["client"] == c for r in results)]
    v = meta["versions"]
    out = [
        "# Happy Eyeballs matrix: stock Python stacks vs eyeshim",
        "",
        "Generated by `python -m integrations.matrix --out docs/matrix.md"
        + (" --quick" if meta.get("quick") else "")
        + "` from a real run in the network lab "
        "(docs/lab.md); do not edit by hand.",
        "",
        f"- Run: {v['date']}; kernel {v['kernel']}; Python {v['python']}; {v['glibc']}; "
        f"urllib3 {v['urllib3']}; requests {v['requests']}; eyeshim {v['eyeshim']}.",
        f"- {meta['cells']} cells, {meta['concurrency']} at a time, "
        f"{meta['duration']:.0f} s in all; client timeout {meta['timeout']:g} s (as in the seed).",
        "",
        "## Lab set-up",
        "",
        "- Topology: one server namespace with a bridge holding the seed's addresses "
        "(10.64.78.33-35, 2002:a40:4c07:1::faf1/faf2/aaa1) plus 2001:db8:c::1 as IPv6 gateway; "
        "one namespace per client variant, each joined to the bridge by its own veth pair "
        "(created inside the namespaces: nothing is routed from the host).",
        "- Broken addresses (marked ✗): "
        + ", ".join(short_address(a) for a in BROKEN)
        + " — the server's nftables input chain drops TCP SYNs to them (a named set), so "
        "connects time out, like the seed's iptables DROP.",
        "- DNS: a dnslib server inside the lab, bound to 10.64.78.53, serving `example.org` "
        "with one name per scenario (`s1`...`s7`, `d1`...`d5`, `g3`, `g4`). Impairments are per "
        "name and per record type: a delay (the reply waits on a timer, other replies do not), "
        "a drop (no reply), or SERVFAIL. Clients use glibc with "
        "`options timeout:1 attempts:2`.",
        "- Each cell is a fresh python process in the client namespace: `stock` uses the stack "
        "as shipped, `eyeshim` calls `eyeshim.install()` first. The time is measured in that "
        "process from the request call until the body is read (name resolution + connect + "
        "one tiny HTTP exchange; interpreter start-up excluded). The winner is the server "
        "address named in the response body. urllib3 runs with `retries=False` (one attempt, "
        "like requests' default adapter).",
        "- HTTPS rows (`t0`-`t5`, dual-stack client): HTTPS on port 443 with a lab CA the cells "
        "trust; IPv6 addresses in the client's own 2001:db8 prefix (preferred over IPv4, as on "
        "most hosts): `::1280✗mtu` drops packets larger than 1280 bytes both ways (nftables, no "
        "ICMP: TCP connects, the certificate never arrives), `::5✗tls` accepts TCP and never "
        "answers the ClientHello, `::300+300ms` holds every packet 300 ms (NFQUEUE); `t4` "
        "presents a certificate from a CA nobody trusts. The `pip` column runs `pip download` "
        "of the lab index's one package (two HTTPS connections, `--retries 0`) in the cell's "
        "process. eyeshim's default integrations race them through the TLS handshake.",
        "- `✓ .34 3 ms`: connected to 10.64.78.34 after 3 ms. `✗ timeout 5.00 s`: the error "
        "and when it was raised (`dns`: name resolution failed; `EADDRNOTAVAIL`/`ENETUNREACH`: "
        "no IPv6 on that client; `certificate`: the TLS certificate was refused). `n/a`: "
        "eyeshim mode could not run "
        "(`eyeshim.install` unavailable).",
        "",
    ]
    for client in clients:
        spec = CLIENTS[client]
        out += [f"## {spec.title} — namespace `{client}`", ""]
        header = ["#", "scenario", "DNS answer", "reachable"]
        for stack in stacks:
            header += [f"{stack} stock", f"{stack} eyeshim"]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        for scenario in SCENARIOS:
            if not any(k[0] == scenario.key and k[1] == client for k in by_key):
                continue
            working = " ".join(short_address(a) for a in scenario.working(client)) or "none"
            row = [scenario.key, scenario.title, scenario.answer_text(), working]
            for stack in stacks:
                for mode in MODES:
                    row.append(_fmt_cell(by_key.get((scenario.key, client, stack, mode))))
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    problems = meta.get("problems")
    factor, slack = meta.get("slower", (SLOWER_FACTOR, SLOWER_SLACK))
    if problems is not None:
        out += ["## Check", ""]
        if problems:
            out += [f"{len(problems)} problem(s) under the `--check` rules:", ""]
            out += [f"- {p}" for p in problems[:60]]
            if len(problems) > 60:
                out.append(f"- ... and {len(problems) - 60} more")
        else:
            out.append("All `--check` rules pass.")
        out += [
            "",
            f"Rules: eyeshim must connect whenever an address is reachable; within the best "
            f"case + {ATTEMPT_DELAY} s attempt delay + {CONNECT_MARGIN} s margin; and never be "
            f"slower than stock x {factor:g} + {slack * 1000:.0f} ms with the same outcome.",
            "",
        ]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Command line


def _summary(results: list[dict[str, Any]]) -> str:
    ok = [r for r in results if r["outcome"] == "ok"]
    fast = [r["elapsed"] for r in ok if r.get("elapsed") is not None and r["elapsed"] < 0.2]
    median = statistics.median(fast) * 1000 if fast else float("nan")
    counts = {o: sum(r["outcome"] == o for r in results) for o in ("ok", "error", "skip")}
    return f"{counts}; median of fast ok cells {median:.1f} ms"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integrations.matrix", description=__doc__)
    parser.add_argument("--out", type=Path, help="write the markdown table here")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument(
        "--quick", action="store_true", help=f"clients {', '.join(QUICK_CLIENTS)} only (CI)"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if eyeshim misbehaves")
    parser.add_argument("--clients", help="comma-separated client roles")
    parser.add_argument("--stacks", help=f"comma-separated subset of {','.join(STACKS)}")
    parser.add_argument("--modes", help="stock,eyeshim (default both)")
    parser.add_argument("--scenarios", help="comma-separated scenario keys (s1,d3,...)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("--name", default="matrix", help="lab name")
    parser.add_argument(
        "--slower-factor",
        type=float,
        default=SLOWER_FACTOR,
        help="check: eyeshim may take stock time x this ...",
    )
    parser.add_argument(
        "--slower-slack", type=float, default=SLOWER_SLACK, help="check: ... plus this many seconds"
    )
    args = parser.parse_args(argv)

    clients = (
        tuple(args.clients.split(","))
        if args.clients
        else (QUICK_CLIENTS if args.quick else FULL_CLIENTS)
    )
    stacks = tuple(args.stacks.split(",")) if args.stacks else STACKS
    modes = tuple(args.modes.split(",")) if args.modes else MODES
    scenarios = SCENARIOS
    if args.scenarios:
        wanted = set(args.scenarios.split(","))
        scenarios = tuple(s for s in SCENARIOS if s.key in wanted)
    for name, chosen, known in (
        ("client", clients, CLIENTS),
        ("stack", stacks, STACKS),
        ("mode", modes, MODES),
    ):
        bad = [c for c in chosen if c not in known]
        if bad:
            parser.error(f"unknown {name}(s): {bad}")
    cells = build_cells(clients, stacks, modes, scenarios)
    if not cells:
        parser.error("no cells selected")

    start = time.perf_counter()
    try:
        tls = any(cell.scenario.scheme == "https" for cell in cells)
        with Lab(args.name, clients=clients, zone=matrix_zone(), broken=BROKEN, tls=tls) as lab:
            lab.break_address(*UNREACHABLE, how="unreach")
            for role in clients:
                if CLIENTS[role].nameserver is None:
                    lab.set_etc(role, "resolv.conf", RESOLV_CONF + f"search {' '.join(SEARCH)}\n")
            if tls:
                apply_tls_impairments(lab)
            print(
                f"lab up in {lab.timings['up'] * 1000:.0f} ms; running {len(cells)} cells, "
                f"{args.concurrency} at a time",
                file=sys.stderr,
                flush=True,
            )
            results = run_matrix(lab, cells, concurrency=args.concurrency, timeout=args.timeout)
    except LabUnavailable as exc:
        print(f"matrix: lab unavailable: {exc.reason}", file=sys.stderr)
        return 2
    duration = time.perf_counter() - start
    print(f"matrix: {len(cells)} cells in {duration:.1f} s: {_summary(results)}", file=sys.stderr)

    problems = check(results, args.slower_factor, args.slower_slack) if "eyeshim" in modes else None
    meta = {
        "versions": _versions(),
        "cells": len(cells),
        "concurrency": args.concurrency,
        "duration": duration,
        "timeout": args.timeout,
        "quick": args.quick,
        "problems": problems,
        "slower": (args.slower_factor, args.slower_slack),
    }
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render_markdown(results, meta))
        print(f"matrix: wrote {args.out}", file=sys.stderr)
    if args.check:
        if "eyeshim" not in modes:
            print("matrix --check: needs eyeshim mode", file=sys.stderr)
            return 1
        assert problems is not None
        for problem in problems:
            print(f"CHECK FAIL {problem}", file=sys.stderr)
        print(f"matrix --check: {len(problems)} problem(s)", file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
