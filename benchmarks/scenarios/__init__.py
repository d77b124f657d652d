"""The scenarios, in report order.  Each module has ``run(ctx, result)``; it
raises :class:`benchmarks.harness.Skip` when the machine cannot run it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from benchmarks.harness import Context, ScenarioResult

__all__ = ["SCENARIOS", "Scenario"]


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    module: str  # imported when the scenario runs, so --only loads nothing else

    def runner(self) -> Callable[[Context, ScenarioResult], None]:
        import importlib

        module = importlib.import_module(f"benchmarks.scenarios.{self.module}")
        run: Callable[[Context, ScenarioResult], None] = module.run
        return run


SCENARIOS = [
    Scenario("P1", "Happy path on loopback: what eyeshim costs", "p1_happy"),
    Scenario("P2", "Preferred family broken (SYN dropped), in the lab", "p2_broken"),
    Scenario("P3", "AAAA answered 300 ms late, A at once, in the lab", "p3_slow_aaaa"),
    Scenario("P4", "32 threads of requests against a loopback server", "p4_threads"),
    Scenario(
        "P5",
        "Interpreter start-up, first connect and memory with the sitecustomize drop-in",
        "p5_startup",
    ),
    Scenario("P6", "HTTPS requests on loopback: what racing through TLS costs", "p6_https"),
    Scenario("S", "How cost grows with the number of addresses", "scaling"),
]
