"""The suite gate: the stacks' own test suites, run stock and with eyeshim installed.

``python -m integrations.suites --check`` runs urllib3's ``test/with_dummyserver`` (a 2.x
release and 1.26), requests' ``tests`` and a few of CPython's test modules, each twice (stock,
and with ``eyeshim.install()`` active before the suite's first import), every run in a
loopback-only network namespace, and fails on any test that passes stock and fails with
eyeshim (after one rerun in both modes). See docs/suites.md.

Modules: :mod:`.versions` (every pinned version), :mod:`.envs` (sdists and venvs),
:mod:`.netns` (the namespaces), :mod:`.plugin` (the pytest plugin), :mod:`.gate` (jobs),
:mod:`.results` (outcomes, comparison, tables), :mod:`.cli` (the command line).
"""
