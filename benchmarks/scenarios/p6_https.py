"""P6: an HTTPS request on loopback, stock vs eyeshim racing through TLS.

What the TLS stage costs where nothing is broken: a request with
``http.client`` (the ``https`` integration: the whole connect is one race
through the handshake) and with ``requests`` (``urllib3-https``: the race
stops at the first TCP connection and finishes in urllib3's own wrap), each
on a new connection, to :mod:`benchmarks.tls_bench`'s TLS server in its own
process.  Two destinations: ``localhost`` from the hosts file (one address:
eyeshim connects and wraps exactly as the stdlib does) and a name answered
with ``::1`` and ``127.0.0.1`` (:mod:`benchmarks.fakedns`, in both workers),
which goes through the resolver and the race, TLS stage included.

The contenders are worker processes of the same interpreter: stock, eyeshim
with the TLS integrations, and eyeshim without them (the race ends at TCP and
the stack wraps the winner itself), which isolates what the TLS stage costs;
rounds alternate between them.
"""

from __future__ import annotations

from typing import Callable

from benchmarks.harness import Case, Context, ScenarioResult, Worker, interleave, ratio_target
from benchmarks.tls_bench import DUAL_NAME, TlsServerProcess

LIMIT = 1.10
STACKS = ("http.client", "requests")


def run(ctx: Context, result: ScenarioResult) -> None:
    rounds = ctx.pick(12, 5, 2)
    batch = ctx.pick(60, 30, 3)
    python = ctx.envs.main
    workers = {
        "stock": Worker(python, (), ctx.tmp, module="benchmarks.tls_bench"),
        "eyeshim": Worker(
            python, (), ctx.tmp, module="benchmarks.tls_bench", env={"BENCH_TLS_MODE": "eyeshim"}
        ),
        # The same without the TLS stage: what the TCP race alone costs here.
        "eyeshim (TCP racing only)": Worker(
            python,
            (),
            ctx.tmp,
            module="benchmarks.tls_bench",
            env={"BENCH_TLS_MODE": "eyeshim-tcp"},
        ),
    }
    for worker in workers.values():
        ctx.on_close(worker.close)
        worker.request({"op": "fake_names", "table": {DUAL_NAME: ["::1", "127.0.0.1"]}})
    result.setup = [
        f"{rounds} rounds; per round and contender {batch} HTTPS GET requests back to back, "
        "each on a new connection (the server answers `Connection: close`), timed from the "
        "request call to the end of the body.",
        "Server: TLS 1.3 (trustme certificate, ECDSA) on 127.0.0.1 and [::1], one port, a "
        "thread per connection, in its own process.",
        f"{DUAL_NAME} is answered with ::1 then 127.0.0.1 by benchmarks/fakedns.py in both "
        "workers; localhost comes from /etc/hosts.",
        "eyeshim: `eyeshim.install()` with the default integrations and the TLS ones "
        "(http.client through `https`, requests through `urllib3` + `urllib3-https`).",
    ]
    with TlsServerProcess(python, str(ctx.tmp)) as server:
        for host in ("localhost", DUAL_NAME):
            for stack in STACKS:
                label = f"{stack} to {host}"
                ctx.log(f"P6 {label}")
                latency = result.case(f"{label}: HTTPS request latency", "latency", "ms")

                _measure(workers, server, stack, host, rounds, batch, latency)
                result.targets.append(
                    ratio_target(
                        latency,
                        "stock",
                        LIMIT,
                        f"{label}: eyeshim median HTTPS request <= {LIMIT:.2f}x stock",
                        "a name goes through eyeshim's resolver: two per-family lookups on "
                        "threads started per call (P1's resolved-name case, "
                        "hundreds of microseconds), which a loopback request of a few "
                        "milliseconds makes visible; the TLS stage itself costs what the "
                        "'eyeshim (TCP racing only)' row shows against eyeshim",
                    )
                )
                stage = latency.ratio("eyeshim (TCP racing only)")
                if stage is not None:
                    result.notes.append(
                        f"{label}: racing through TLS takes {stage:.2f}x the time of the same "
                        "request with the race ending at TCP (the stack wrapping the winner "
                        "itself): what the TLS stage costs."
                    )


def _measure(
    workers: dict[str, Worker],
    server: TlsServerProcess,
    stack: str,
    host: str,
    rounds: int,
    batch: int,
    latency: Case,
) -> None:
    def step_for(name: str) -> Callable[[int], None]:
        def step(r: int) -> None:
            request = {"op": "https", "stack": stack, "host": host, "port": server.port}
            reply = workers[name].request({**request, "ca": server.ca, "n": batch})
            latency.add_batch(r, name, reply)

        return step

    interleave(rounds, {name: step_for(name) for name in workers})
