"""Network lab for eyeshim: namespaces, impaired DNS/TCP and the stack-by-scenario matrix.

Nothing here is imported by the eyeshim package itself; it is test and documentation tooling.
"""
