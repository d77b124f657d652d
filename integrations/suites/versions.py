"""What the suite gate runs: every pinned version, in one place.

Each pytest suite is a release of a stack taken from its sdist on PyPI (the sdists of urllib3
and requests ship their test directories and urllib3's ``dummyserver`` package), checked
against the sha256 below, and run in its own virtual environment. The environment gets:

* the release itself, from PyPI (the wheel of the same version: the same code as the sdist's
  ``src/``, which the tests never import because of the src layout);
* the suite's own test dependencies, named in ``requirements`` and pinned to exact versions by
  ``constraints/<suite>.txt`` (``pip freeze`` of a working environment; rewrite it with
  ``python -m integrations.suites --freeze``);
* eyeshim from this checkout (editable) and pytest-timeout, which the harness adds.

Bumping a version: change it (and the sha256, which ``--freeze`` prints) here, then run
``python -m integrations.suites --freeze`` and the gate, and update docs/suites.md.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CONSTRAINTS_DIR",
    "CPYTHON_TESTS",
    "SUITES",
    "CPythonTests",
    "PytestSuite",
]

CONSTRAINTS_DIR = Path(__file__).resolve().parent / "constraints"


@dataclass(frozen=True)
class PytestSuite:
    """One stack's own pytest suite, run from its sdist."""

    name: str  # the suite's name on the command line and in the table
    project: str  # the PyPI project whose sdist holds the tests
    version: str
    sdist_sha256: str
    paths: tuple[str, ...]  # what pytest is given, relative to the unpacked sdist
    requirements: tuple[str, ...]  # test dependencies (versions come from the constraints)
    # (node id, why): tests left out of both runs, with the reason printed in the log.
    deselect: tuple[tuple[str, str], ...] = ()
    # About how long one run takes on the 2-core machine: longest suites are started first.
    seconds: int = 60
    # The sdist's own pins of its test dependencies (uv.lock, or a requirements file), which
    # --freeze starts from; "" for none (the newest releases then).
    lock: str = ""

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"

    @property
    def constraints(self) -> Path:
        return CONSTRAINTS_DIR / f"{self.name}.txt"

    @property
    def label(self) -> str:
        return f"{self.project} {self.version}"


@dataclass(frozen=True)
class CPythonTests:
    """Modules of CPython's own test package (``python -m test``), run with the interpreter
    that runs the harness. They need no download, only the ``test`` package, which Debian's
    python3 leaves out (package libpython3.X-testsuite) and pyenv/python.org builds include."""

    name: str
    modules: tuple[str, ...]

    @property
    def version(self) -> str:
        return ".".join(map(str, sys.version_info[:3]))

    @property
    def label(self) -> str:
        return f"CPython {self.version}"


URLLIB3_2 = PytestSuite(
    name="urllib3-2",
    project="urllib3",
    version="2.8.0",
    sdist_sha256="63bf2ead4c879426ebf22ef2a781eeb4aa3b4ae798a0435506f8687fd5bb9b63",
    paths=("test/with_dummyserver",),
    lock="uv.lock",
    seconds=80,
    # The sdist's pyproject.toml, dependency group "test", plus what test/conftest.py imports
    # (trustme, from group "dev"); versions as in the sdist's uv.lock where PyPI has them.
    requirements=(
        "anyio[trio]",
        "h2",
        "httpx",
        "hypercorn",
        "pysocks",
        "pytest",
        "pytest-socket",
        "pytest-timeout",
        "quart",
        "quart-trio",
        "trio",
        "trustme",
        "cryptography",
        "idna",
    ),
)

URLLIB3_1 = PytestSuite(
    name="urllib3-1.26",
    project="urllib3",
    version="1.26.20",
    sdist_sha256="40c2dc0c681e47eb8f90e7e27bf6ff7df2e677421fd46756da1161c39ca70d32",
    paths=("test/with_dummyserver",),
    lock="dev-requirements.txt",
    seconds=70,
    deselect=(
        (
            "test/with_dummyserver/test_socketlevel.py::TestSSL::"
            "test_requesting_large_resources_via_ssl",
            "pushes 2-4 GiB through TLS (about 55 s of CPU a run); nothing about connecting",
        ),
    ),
    # The sdist's dev-requirements.txt for Python >= 3.8, less coverage and the App Engine
    # helpers; trustme from PyPI instead of a git commit.
    requirements=(
        "mock",
        "tornado",
        "PySocks",
        "pytest",
        "pytest-timeout",
        "pytest-freezegun",
        "flaky",
        "trustme",
        "cryptography",
        "python-dateutil",
    ),
)

REQUESTS = PytestSuite(
    name="requests",
    project="requests",
    version="2.34.2",
    sdist_sha256="f288924cae4e29463698d6d60bc6a4da69c89185ad1e0bcc4104f584e960b9ed",
    paths=("tests",),
    seconds=90,
    # The sdist's dependency group "test" (less pytest-cov and pytest-xdist), run against the
    # urllib3 release of URLLIB3_2.
    requirements=(
        f"urllib3=={URLLIB3_2.version}",
        "requests[socks]",
        "pytest",
        "pytest-httpbin",
        "httpbin",
        "pytest-mock",
        "pytest-timeout",
        "trustme",
    ),
)

SUITES: tuple[PytestSuite, ...] = (URLLIB3_2, URLLIB3_1, REQUESTS)

# Every module here opens client connections through socket.create_connection (directly or
# through http.client, smtplib, ftplib, poplib, imaplib, telnetlib, xmlrpc, logging's
# SocketHandler/HTTPHandler/SMTPHandler) to servers on loopback. test_socket is left out: one of
# its set-ups hangs stock in gVisor sandboxes (docs/suites.md).
CPYTHON_TESTS = CPythonTests(
    name="cpython",
    modules=(
        "test_httplib",
        "test_urllib2_localnet",
        "test_logging",
        "test_smtplib",
        "test_ftplib",
        "test_poplib",
        "test_imaplib",
        "test_telnetlib",
        "test_xmlrpc",
        "test_docxmlrpc",
    ),
)
