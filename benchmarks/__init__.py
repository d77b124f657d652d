"""eyeshim's benchmarks: ``python -m benchmarks run`` (see docs/performance.md).

Layout: ``__main__`` (the command), ``harness`` (workers, rounds, result
records), ``contenders`` and ``worker`` (what runs in the measuring
processes), ``scenarios/`` (one module per scenario, registered in
``scenarios/__init__.py``), ``servers``, ``fakedns``, ``dnsserver``, ``labsupport``,
``envs``, ``machine``, ``stats``, ``report`` and ``svgchart``.
"""
