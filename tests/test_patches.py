"""install()/uninstall() with real client stacks against a broken-IPv6 name.

The name resolves to ::1 (drops SYNs: a full accept queue) and 127.0.0.1
(serves HTTP).  Stock stacks wait out their timeout on ::1; shimmed ones
fall back after the attempt delay.  Bounds are generous: a stock call must
take most of its timeout, a shimmed one well under half of it.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from typing import Any, Callable, Iterator

import pytest
from loopback import Site, broken_ipv6_site

import eyeshim
from eyeshim import patches
from eyeshim.cli.demo import DEMO_NAME
from eyeshim.connection import get_history

TIMEOUT = 1.5

requests = pytest.importorskip("requests")
urllib3 = pytest.importorskip("urllib3")


@pytest.fixture(autouse=True)
def clean_state() -> Iterator[None]:
    """Every test starts and ends uninstalled with an empty history, and
    with the stock functions in place even when a test failed half-way."""
    import urllib3.util.connection as u3

    patches.uninstall()
    history = get_history()
    if history is not None:
        history.clear()
    stock = (socket.create_connection, ssl.create_connection, u3.create_connection)
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patches.uninstall()
    socket.create_connection, ssl.create_connection, u3.create_connection = stock


@pytest.fixture
def site() -> Iterator[Site]:
    with broken_ipv6_site() as served:
        yield served


def get_http_client(site: Site) -> str:
    conn = http.client.HTTPConnection(DEMO_NAME, site.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def get_urllib(site: Site) -> str:
    with urllib.request.urlopen(site.url, timeout=TIMEOUT) as response:
        return str(response.read().decode())


def get_urllib3(site: Site) -> str:
    pool = urllib3.PoolManager(retries=False, timeout=TIMEOUT)
    try:
        return str(pool.request("GET", site.url).data.decode())
    finally:
        pool.clear()


def get_requests(site: Site) -> str:
    with requests.Session() as session:
        return str(session.get(site.url, timeout=TIMEOUT).text)


def get_httpx(site: Site) -> str:
    httpx = pytest.importorskip("httpx")
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        return str(client.get(site.url).text)


STACKS = {
    "http.client": get_http_client,
    "urllib.request": get_urllib,
    "urllib3": get_urllib3,
    "requests": get_requests,
    "httpx": get_httpx,
}


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    start = time.monotonic()
    try:
        result = func()
    except Exception as exc:
        result = exc
    return time.monotonic() - start, result


@pytest.mark.parametrize("stack", list(STACKS))
def test_stock_waits_out_the_timeout_and_shimmed_falls_back(stack: str, site: Site) -> None:
    get = STACKS[stack]
    stock_time, _ = timed(lambda: get(site))
    # Stock tries ::1 first and waits for (most of) its timeout there.
    assert stock_time >= TIMEOUT * 0.9
    eyeshim.install()
    shim_time, body = timed(lambda: get(site))
    assert body == "hello from 127.0.0.1"
    assert shim_time < TIMEOUT / 2
    # The loser was remembered: the next connection goes straight to IPv4.
    history = get_history()
    assert history is not None and history.failed_recently(site.lab.broken_host)


def test_install_uninstall_restore_identity() -> None:
    import ssl as ssl_module

    import urllib3.util.connection as u3

    originals = (socket.create_connection, ssl_module.create_connection, u3.create_connection)
    eyeshim.install()
    assert eyeshim.is_installed()
    assert socket.create_connection is not originals[0]
    assert socket.create_connection.__wrapped__ is originals[0]  # type: ignore[attr-defined]
    assert u3.create_connection is not originals[2]
    eyeshim.install()  # idempotent: still one layer
    assert socket.create_connection.__wrapped__ is originals[0]  # type: ignore[attr-defined]
    eyeshim.uninstall()
    assert not eyeshim.is_installed()
    assert (
        socket.create_connection,
        ssl_module.create_connection,
        u3.create_connection,
    ) == originals
    assert socket.create_connection is originals[0]


def test_installed_context_manager_and_integration_selection() -> None:
    original = socket.create_connection
    with eyeshim.installed(integrations=["urllib3"]):
        assert socket.create_connection is original
        assert set(eyeshim.installed_integrations()) == {"urllib3"}
        with eyeshim.installed(integrations=["socket", "urllib3"]):
            assert socket.create_connection is not original
        assert socket.create_connection is original  # the outer state is back
        assert set(eyeshim.installed_integrations()) == {"urllib3"}
    assert not eyeshim.is_installed()
    with pytest.raises(ValueError, match="unknown integration"):
        eyeshim.install(integrations=["sockets"])
    with pytest.raises(TypeError):
        eyeshim.install(integrations="socket")
    assert not eyeshim.is_installed()


def test_install_passes_config() -> None:
    eyeshim.install(connection_attempt_delay=0.3)
    assert eyeshim.get_config().connection_attempt_delay == 0.3
    eyeshim.uninstall()
    assert eyeshim.get_config().connection_attempt_delay == 0.25


def test_concurrent_install_makes_one_layer() -> None:
    original = socket.create_connection
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        eyeshim.install()

    threads = [threading.Thread(target=go) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert socket.create_connection.__wrapped__ is original  # type: ignore[attr-defined]
    eyeshim.uninstall()
    assert socket.create_connection is original


def test_third_party_replacement_is_left_alone_with_a_warning() -> None:
    eyeshim.install(integrations=["socket"])

    def theirs(*args: Any, **kw: Any) -> Any:
        raise AssertionError("not called")

    ours = socket.create_connection
    socket.create_connection = theirs
    try:
        assert eyeshim.installed_integrations()["socket"] == "replaced by a third party"
        with pytest.warns(RuntimeWarning, match="replaced by someone else"):
            eyeshim.uninstall()
        assert socket.create_connection is theirs
    finally:
        socket.create_connection = ours.__wrapped__  # type: ignore[attr-defined]


def test_urllib3_imported_after_install_is_covered() -> None:
    code = (
        "import eyeshim, sys; eyeshim.install(); "
        "assert 'urllib3' not in sys.modules; "
        "import urllib3.util.connection as c; "
        "print(c.create_connection.__wrapped__.__module__, "
        "eyeshim.installed_integrations()['urllib3'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["urllib3.util.connection", "patched"]


def test_uninstall_before_import_leaves_the_late_module_alone() -> None:
    code = (
        "import eyeshim, sys; eyeshim.install(); eyeshim.uninstall(); "
        "import urllib3.util.connection as c; print(type(c.create_connection).__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["function"]


def test_tls_over_the_shimmed_socket_verifies_the_hostname(tmp_path: Any) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(DEMO_NAME).configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    eyeshim.install()
    with broken_ipv6_site(tls=server_context) as tls_site:
        assert requests.get(tls_site.url, verify=str(ca_file), timeout=5).text.startswith("hello")
        context = ssl.create_default_context(cafile=str(ca_file))
        with urllib.request.urlopen(tls_site.url, context=context, timeout=5) as response:
            assert response.status == 200
    # A certificate for another name must still be rejected.
    wrong = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("other.example").configure_cert(wrong)
    with broken_ipv6_site(tls=wrong) as tls_site, pytest.raises(requests.exceptions.SSLError):
        requests.get(tls_site.url, verify=str(ca_file), timeout=5)


def test_responses_mocks_still_intercept() -> None:
    responses = pytest.importorskip("responses")
    eyeshim.install()
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, "http://mocked.invalid/x", body="mocked")
        assert requests.get("http://mocked.invalid/x", timeout=1).text == "mocked"


def test_urllib3_forced_ipv4_through_allowed_gai_family(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib3.util.connection as u3

    monkeypatch.setattr(u3, "allowed_gai_family", lambda: socket.AF_INET)
    eyeshim.install()
    seen: list = []
    real = socket.getaddrinfo

    def spy(
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        if host == DEMO_NAME and not flags & socket.AI_NUMERICHOST:
            seen.append(family)
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    assert get_urllib3(site) == "hello from 127.0.0.1"
    assert seen == [socket.AF_INET]


def test_urllib3_semantics_kept(site: Site) -> None:
    import urllib3.util.connection as u3

    eyeshim.install()
    options = [
        (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    ]
    with u3.create_connection((f"[{'127.0.0.1'}]", site.port), socket_options=options) as sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        assert sock.gettimeout() == socket.getdefaulttimeout()  # urllib3's sentinel
    with pytest.raises(urllib3.exceptions.LocationParseError):
        u3.create_connection(("a" * 64 + ".example", 80))


def test_urllib3_errors_map_to_urllib3_exceptions(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    eyeshim.install()
    real = socket.getaddrinfo

    def no_such_name(host: Any, *args: Any, **kw: Any) -> Any:
        if host == "no-such-name.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    pool = urllib3.PoolManager(retries=False)
    # urllib3 2.x has NameResolutionError; 1.26 reports it as NewConnectionError.
    unresolved = getattr(
        urllib3.exceptions, "NameResolutionError", urllib3.exceptions.NewConnectionError
    )
    with pytest.raises(unresolved):
        pool.request("GET", "http://no-such-name.invalid/", timeout=2)
    with pytest.raises(urllib3.exceptions.ConnectTimeoutError):
        pool.request("GET", f"http://[{site.lab.broken_host}]:{site.port}/", timeout=0.5)
    site.lab.sockets[0].close()  # ::1 now refuses
    with pytest.raises(urllib3.exceptions.NewConnectionError):
        pool.request("GET", f"http://[{site.lab.broken_host}]:{site.port}/", timeout=2)


def test_steps_aside_when_socket_is_monkey_patched(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    class GreenSocket(socket.socket):
        """Stands in for gevent's or eventlet's socket class."""

    GreenSocket.__module__ = "fake_green_library"
    eyeshim.install()
    calls: list = []
    from eyeshim.patches import stdlib

    real = stdlib._create_connection
    monkeypatch.setattr(
        stdlib, "_create_connection", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    with socket.create_connection(("127.0.0.1", site.port), timeout=2) as sock:
        assert type(sock) is socket.socket
    assert len(calls) == 1  # the spy sees engine calls...
    monkeypatch.setattr(socket, "socket", GreenSocket)
    assert str(patches.step_aside()).startswith("socket.socket is fake_green_library.")
    with socket.create_connection(("127.0.0.1", site.port), timeout=2) as sock:
        assert isinstance(sock, GreenSocket)  # the stock function made it
    assert len(calls) == 1  # ...and saw none while the socket class was foreign


def test_getaddrinfo_resort_is_opt_in_and_uses_history(site: Site) -> None:
    eyeshim.install()
    assert socket.getaddrinfo(DEMO_NAME, site.port, 0, socket.SOCK_STREAM)[0][4][0] == "::1"
    eyeshim.install(integrations=["socket", "urllib3", "getaddrinfo"])
    # Nothing known yet: RFC 6724 order, IPv6 first.
    first = socket.getaddrinfo(DEMO_NAME, site.port, 0, socket.SOCK_STREAM)
    assert [info[4][0] for info in first] == ["::1", "127.0.0.1"]
    # A race learns that ::1 is broken...
    socket.create_connection((DEMO_NAME, site.port), timeout=3).close()
    # ...and a library that walks getaddrinfo itself now tries IPv4 first.
    again = socket.getaddrinfo(DEMO_NAME, site.port, 0, socket.SOCK_STREAM)
    assert [info[4][0] for info in again] == ["127.0.0.1", "::1"]
    # Single-family lookups (eyeshim's own) are passed through untouched.
    assert len(socket.getaddrinfo(DEMO_NAME, site.port, socket.AF_INET6)) >= 1
    eyeshim.uninstall()  # before the fixture puts its own getaddrinfo back


def test_install_from_env() -> None:
    assert patches.install_from_env(
        {"EYESHIM_DISABLE": "pip,urllib3,https", "EYESHIM_CONNECTION_ATTEMPT_DELAY": "300ms"}
    )
    assert set(eyeshim.installed_integrations()) == {"socket"}
    assert eyeshim.get_config().connection_attempt_delay == pytest.approx(0.3)
    with pytest.raises(ValueError, match="EYESHIM_INTEGRATIONS"):
        patches.install_from_env({"EYESHIM_INTEGRATIONS": "socket,bogus"})
    assert not patches.install_from_env({"EYESHIM_INTEGRATIONS": ""})


def test_patched_function_keeps_introspection() -> None:
    import inspect

    before = inspect.signature(socket.create_connection)
    eyeshim.install()
    assert inspect.signature(socket.create_connection) == before
    assert socket.create_connection.__name__ == "create_connection"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eyeshim.uninstall()


# -- coexistence with other wrappers of the same function (issue 11, item 11) ------


class Foreign:
    """Another library's wrapper of ``module.attribute`` (an APM, a tracer):
    ``kind`` is how it is made, as real ones are.

    * "wrapt": ``wrapt.FunctionWrapper``, undone as OpenTelemetry's
      ``unwrap`` does (the attribute gets the proxy's ``__wrapped__``);
    * "closure": a plain function made with ``functools.wraps`` that calls
      the function it saved in its closure, undone by putting that back;
    * "attribute": a plain function made with ``functools.wraps`` that
      calls a function saved elsewhere (here on this object), so nothing
      can re-point it.
    """

    def __init__(self, kind: str, module: Any, attribute: str = "create_connection") -> None:
        self.kind, self.module, self.attribute = kind, module, attribute
        self.calls = 0
        self.undo: Callable[[], None] = lambda: None

    def install(self) -> None:
        module, attribute = self.module, self.attribute
        real = getattr(module, attribute)
        if self.kind == "wrapt":
            wrapt = pytest.importorskip("wrapt")

            def spy(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                self.calls += 1
                return wrapped(*args, **kwargs)

            setattr(module, attribute, wrapt.FunctionWrapper(real, spy))

            def undo() -> None:
                setattr(module, attribute, getattr(module, attribute).__wrapped__)

        elif self.kind == "closure":
            import functools

            @functools.wraps(real)
            def traced(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                return real(*args, **kwargs)

            setattr(module, attribute, traced)

            def undo() -> None:
                setattr(module, attribute, real)

        else:
            import functools

            self.original = real

            @functools.wraps(real)
            def traced(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                return self.original(*args, **kwargs)

            setattr(module, attribute, traced)

            def undo() -> None:
                setattr(module, attribute, self.original)

        self.undo = undo

    def uninstall(self) -> None:
        self.undo()


@pytest.fixture
def server() -> Iterator[int]:
    """A loopback port that accepts (and closes) connections."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                listener.accept()[0].close()
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


@pytest.fixture
def races(monkeypatch: pytest.MonkeyPatch) -> list:
    """Each call that reached eyeshim's engine through the socket integration."""
    from eyeshim.patches import stdlib

    seen: list = []
    real = stdlib._create_connection
    monkeypatch.setattr(
        stdlib, "_create_connection", lambda *a, **k: seen.append(a) or real(*a, **k)
    )
    return seen


def _connect_three(port: int) -> None:
    for _ in range(3):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.parametrize("kind", ["wrapt", "closure", "attribute"])
@pytest.mark.parametrize("installed_first", ["theirs", "ours"])
@pytest.mark.parametrize("uninstalled_first", ["theirs", "ours"])
def test_foreign_wrapper_sees_every_call_in_every_order(
    kind: str, installed_first: str, uninstalled_first: str, server: int, races: list
) -> None:
    stock = socket.create_connection
    foreign = Foreign(kind, socket)
    steps = {
        "theirs": (foreign.install, foreign.uninstall),
        "ours": (lambda: eyeshim.install(integrations=["socket"]), eyeshim.uninstall),
    }
    second = "ours" if installed_first == "theirs" else "theirs"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "replaced by someone else" in any order
        steps[installed_first][0]()
        steps[second][0]()
        _connect_three(server)
        assert foreign.calls == 3  # theirs stays in the call path...
        status = eyeshim.integration_status()["socket"]
        if kind == "attribute" and installed_first == "theirs":
            # ...but eyeshim cannot get beneath a wrapper it cannot re-point:
            # it hands that wrapper every call and says so.
            assert races == []
            assert status["active"] is False and "cannot get beneath" in status["why"]
        else:
            assert len(races) == 3  # ...and eyeshim races beneath it
            assert status["active"] is True, status
            assert any(
                describe_foreign in w
                for w in status["wrappers"]
                for describe_foreign in ("traced", "create_connection")
            )

        del races[:]
        steps[uninstalled_first][1]()
        _connect_three(server)
        if uninstalled_first == "ours":
            assert races == []  # no eyeshim behaviour left...
            assert foreign.calls == 6  # ...and theirs still sees every call
        else:
            assert foreign.calls == 3  # theirs is gone
        other = "theirs" if uninstalled_first == "ours" else "ours"
        steps[other][1]()
        del races[:]
        _connect_three(server)
    assert races == [] and foreign.calls in (3, 6)
    assert not eyeshim.is_installed()
    # The stock function again, or (a foreign wrapper that could not be
    # re-pointed put back eyeshim's function) a pass-through to it.
    assert socket.create_connection is stock or socket.create_connection.__wrapped__ is stock
    eyeshim.install(integrations=["socket"])  # and eyeshim can come back, one layer
    _connect_three(server)
    assert len(races) == 3
    eyeshim.uninstall()
    assert socket.create_connection is stock or socket.create_connection.__wrapped__ is stock
    socket.create_connection = stock


@pytest.mark.parametrize("kind", ["wrapt", "closure"])
def test_foreign_wrapper_of_urllib3_keeps_seeing_calls(
    kind: str, server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib3.util.connection as u3

    from eyeshim.patches import urllib3 as shim

    stock = u3.create_connection
    seen: list = []
    real = shim._call
    monkeypatch.setattr(shim, "_call", lambda *a, **k: seen.append(a) or real(*a, **k))
    foreign = Foreign(kind, u3)
    foreign.install()
    eyeshim.install(integrations=["urllib3"])
    pool = urllib3.PoolManager(retries=False)
    with pytest.raises(urllib3.exceptions.ProtocolError):  # the server closes at once
        pool.request("GET", f"http://127.0.0.1:{server}/", timeout=5)
    assert foreign.calls == 1 and len(seen) == 1
    eyeshim.uninstall()
    assert u3.create_connection.__wrapped__ is stock  # theirs, over the stock function
    foreign.uninstall()
    assert u3.create_connection is stock


def test_integration_status_tells_installed_from_active(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    eyeshim.install(integrations=["socket", "urllib3"])
    status = eyeshim.integration_status()
    assert status["socket"] == {"state": "patched", "active": True, "why": None, "wrappers": []}
    assert status["urllib3"]["active"] is True  # urllib3 is imported by this module
    # gevent's monkey-patching, as eyeshim sees it (gevent itself is not needed).
    monkey = types.ModuleType("gevent.monkey")
    monkey.is_module_patched = lambda name: name == "socket"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gevent.monkey", monkey)
    assert eyeshim.is_installed()
    stepped = eyeshim.integration_status()
    assert stepped["socket"]["active"] is False
    assert stepped["socket"]["why"] == "gevent monkey-patched socket"
    assert stepped["urllib3"]["state"] == "patched"
