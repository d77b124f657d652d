"""The HTTPS integrations (patches/https_stdlib.py, patches/https_urllib3.py)
on loopback: a name with ::1 and 127.0.0.1, a TLS server per family.

Each stack is driven as users drive it (urlopen, HTTPSConnection, urllib3's
pool, requests, pip's vendored urllib3), stock and with eyeshim, and what
the stack does around the handshake (verification, hostname and
fingerprint checks, is_verified, warnings, errors) is compared with stock.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
import urllib.error
import urllib.request
import warnings
from typing import Any, Callable, Iterator, List

import pytest
from tlsservers import NAME, DualServer, needs_v6, resolve_name

import eyeshim
from eyeshim.config import DEFAULT_INTEGRATIONS, TLS_INTEGRATIONS
from eyeshim.connection import get_history
from eyeshim.patches import https_urllib3, integration_status

trustme = pytest.importorskip("trustme")
urllib3 = pytest.importorskip("urllib3")
requests = pytest.importorskip("requests")

pytestmark = needs_v6


def install() -> None:
    eyeshim.install(integrations=[*DEFAULT_INTEGRATIONS, *TLS_INTEGRATIONS])


@pytest.fixture(autouse=True)
def clean(monkeypatch: Any) -> Iterator[None]:
    resolve_name(monkeypatch)
    history = get_history()
    if history is not None:
        history.clear()
    yield
    eyeshim.uninstall()


@pytest.fixture
def ca(tmp_path: Any) -> Any:
    authority = trustme.CA()
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    authority.path = str(tmp_path / "ca.pem")
    return authority


@pytest.fixture
def serve(ca: Any) -> Iterator[Callable[..., DualServer]]:
    servers: List[DualServer] = []

    def start(six: str = "ok", four: str = "ok") -> DualServer:
        server = DualServer(ca, {socket.AF_INET6: six, socket.AF_INET: four})
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def timed(fetch: Callable[[], Any]) -> Any:
    begin = time.monotonic()
    result = fetch()
    return result, time.monotonic() - begin


# -- http.client and urllib.request -----------------------------------------------------


def test_urlopen_falls_back_when_the_ipv6_handshake_stalls(serve: Any, ca: Any) -> None:
    server = serve(six="silent")
    context = ssl.create_default_context(cafile=ca.path)
    url = f"https://{NAME}:{server.port}/"
    # Stock: TCP to ::1 works, the handshake waits out the timeout.
    with pytest.raises(urllib.error.URLError) as stock:
        urllib.request.urlopen(url, timeout=0.5, context=context)
    assert isinstance(stock.value.reason, socket.timeout)
    install()
    body, took = timed(lambda: urllib.request.urlopen(url, timeout=5, context=context).read())
    assert body == b"server=127.0.0.1\n"
    assert took < 2.0


def test_https_connection_keeps_its_own_checks(serve: Any, ca: Any) -> None:
    server = serve()
    install()
    import http.client

    context = ssl.create_default_context(cafile=ca.path)
    context.set_alpn_protocols(["http/1.1"])
    conn = http.client.HTTPSConnection(NAME, server.port, timeout=4, context=context)
    conn.connect()
    assert isinstance(conn.sock, ssl.SSLSocket) and conn.sock.gettimeout() == 4
    assert conn.sock.server_hostname == NAME
    assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"server=::1\n"
    conn.close()
    # A certificate for another name is refused as the stdlib refuses it.
    other = http.client.HTTPSConnection("localhost", server.port, timeout=4, context=context)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        other.request("GET", "/")


def test_bad_certificates_raise_what_stock_raises(serve: Any, ca: Any) -> None:
    server = serve(six="badcert", four="badcert")
    context = ssl.create_default_context(cafile=ca.path)
    url = f"https://{NAME}:{server.port}/"

    def error() -> Any:
        with pytest.raises(urllib.error.URLError) as raised:
            urllib.request.urlopen(url, timeout=5, context=context)
        reason = raised.value.reason
        return type(reason), reason.verify_code, reason.verify_message

    stock = error()
    install()
    assert error() == stock
    assert stock[0] is ssl.SSLCertVerificationError


def test_a_tunnel_goes_the_stdlib_way() -> None:
    import http.client

    from eyeshim.patches.https_stdlib import _why_not

    conn = http.client.HTTPSConnection("example.test", 443)
    assert _why_not(conn) is None
    conn.set_tunnel("origin.test", 443)
    assert _why_not(conn) == "through a proxy tunnel"
    replaced = http.client.HTTPSConnection("example.test", 443)
    replaced._create_connection = lambda *a, **k: None  # type: ignore[method-assign,assignment,return-value]
    assert "not socket.create_connection" in str(_why_not(replaced))


# -- urllib3 and requests ----------------------------------------------------------------


def test_urllib3_falls_back_and_keeps_its_checks(serve: Any, ca: Any) -> None:
    server = serve(six="silent")
    install()
    pool = urllib3.PoolManager(
        ca_certs=ca.path, retries=False, timeout=urllib3.Timeout(connect=5, read=5)
    )
    response, took = timed(lambda: pool.request("GET", f"https://{NAME}:{server.port}/"))
    assert response.data == b"server=127.0.0.1\n" and took < 2.0
    https = pool.connection_from_url(f"https://{NAME}:{server.port}/")
    conn = https._new_conn()
    conn.connect()
    assert conn.is_verified and conn.sock.getpeername()[0] == "127.0.0.1"
    conn.close()


def test_urllib3_fingerprint_and_hostname_checks_stay(serve: Any, ca: Any) -> None:
    server = serve()
    install()
    der = ssl.PEM_cert_to_DER_cert(
        ssl.get_server_certificate(("127.0.0.1", server.port), ca_certs=ca.path)
    )
    good = hashlib.sha256(der).hexdigest()
    pool = urllib3.HTTPSConnectionPool(
        NAME, server.port, cert_reqs="CERT_NONE", assert_fingerprint=good, retries=False
    )
    assert pool.request("GET", "/").data == b"server=::1\n"
    wrong = urllib3.HTTPSConnectionPool(
        NAME, server.port, cert_reqs="CERT_NONE", assert_fingerprint="00" * 32, retries=False
    )
    with pytest.raises(urllib3.exceptions.SSLError, match=r"[Ff]ingerprint"):
        wrong.request("GET", "/")
    mismatch = urllib3.HTTPSConnectionPool(
        NAME, server.port, ca_certs=ca.path, assert_hostname="other.test", retries=False
    )
    with pytest.raises(urllib3.exceptions.SSLError, match=r"other\.test"):
        mismatch.request("GET", "/")


def test_requests_verify_false_still_warns(serve: Any, ca: Any) -> None:
    server = serve(six="silent")
    install()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = requests.get(f"https://{NAME}:{server.port}/", verify=False, timeout=5)
    assert got.text == "server=127.0.0.1\n"
    assert any(w.category.__name__ == "InsecureRequestWarning" for w in caught)


def test_requests_errors_are_stocks(serve: Any, ca: Any) -> None:
    bad = serve(six="badcert", four="badcert")
    silent = serve(six="silent", four="silent")

    def errors() -> Any:
        out = []
        for server, timeout in ((bad, 5), (silent, 0.4)):
            with pytest.raises(requests.RequestException) as raised:
                requests.get(f"https://{NAME}:{server.port}/", verify=ca.path, timeout=timeout)
            out.append(type(raised.value))
        with pytest.raises(requests.RequestException) as refused:
            requests.get(f"https://{NAME}:1/", verify=ca.path, timeout=5)
        out.append(type(refused.value))
        return out

    stock = errors()
    assert stock == [
        requests.exceptions.SSLError,
        requests.exceptions.ReadTimeout,  # a handshake timeout is a read timeout there
        requests.exceptions.ConnectionError,
    ]
    install()
    assert errors() == stock


def test_urllib3_session_reuse_and_alpn(serve: Any, ca: Any) -> None:
    server = serve()
    install()
    pool = urllib3.HTTPSConnectionPool(NAME, server.port, ca_certs=ca.path, retries=False)
    conn = pool._new_conn()
    conn.connect()
    assert conn.sock.selected_alpn_protocol() in (None, "http/1.1")
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.close()


def test_pip_vendored_urllib3(serve: Any, ca: Any) -> None:
    vendored = pytest.importorskip("pip._vendor.urllib3")
    server = serve(six="silent")
    install()
    pool = vendored.PoolManager(ca_certs=ca.path, retries=False, timeout=5)
    response, took = timed(lambda: pool.request("GET", f"https://{NAME}:{server.port}/"))
    assert response.data == b"server=127.0.0.1\n" and took < 2.0
    assert integration_status()["pip-https"]["active"]


def test_an_unknown_urllib3_falls_back_to_tcp_and_says_so(
    serve: Any, ca: Any, monkeypatch: Any
) -> None:
    server = serve(six="silent")
    install()
    monkeypatch.setattr(urllib3, "__version__", "3.0.0")
    status = integration_status()["urllib3-https"]
    assert not status["active"] and "falls back to TCP racing" in status["why"]
    assert https_urllib3.version_problem("urllib3") is not None
    pool = urllib3.PoolManager(ca_certs=ca.path, retries=False, timeout=0.5)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):  # stock's: the handshake's
        pool.request("GET", f"https://{NAME}:{server.port}/")


def test_a_context_eyeshim_cannot_drive_ends_the_race_at_tcp(serve: Any, ca: Any) -> None:
    class Own(ssl.SSLContext):
        def wrap_socket(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            return super().wrap_socket(*args, **kwargs)

    server = serve()
    install()
    context = Own(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca.path)
    pool = urllib3.HTTPSConnectionPool(NAME, server.port, ssl_context=context, retries=False)
    assert pool.request("GET", "/").data == b"server=::1\n"


def test_an_unknown_python_falls_back_to_tcp_and_says_so(
    serve: Any, ca: Any, monkeypatch: Any
) -> None:
    from eyeshim.patches import https_stdlib

    server = serve(six="silent")
    install()
    import http.client

    assert integration_status()["https"]["active"]
    monkeypatch.setattr(https_stdlib, "KNOWN", ())
    status = integration_status()["https"]
    assert not status["active"] and "falls back to TCP racing" in status["why"]
    context = ssl.create_default_context(cafile=ca.path)
    conn = http.client.HTTPSConnection(NAME, server.port, timeout=0.5, context=context)
    with pytest.raises(socket.timeout):  # stock's handshake timeout, on ::1 (TCP raced)
        conn.connect()


def test_through_a_connect_proxy_the_race_stays_at_tcp(
    serve: Any, ca: Any, monkeypatch: Any
) -> None:
    from tlsservers import ConnectProxy

    server = serve()
    proxy = ConnectProxy()
    raced: List[Any] = []
    real = https_urllib3.later_for

    def later_for(*args: Any) -> Any:
        later = real(*args)
        if later is not None:
            raced.append(args)
        return later

    monkeypatch.setattr(https_urllib3, "later_for", later_for)
    install()
    try:
        manager = urllib3.ProxyManager(
            f"http://127.0.0.1:{proxy.port}", ca_certs=ca.path, retries=False, timeout=5
        )
        response = manager.request("GET", f"https://{NAME}:{server.port}/")
        assert response.data in (b"server=::1\n", b"server=127.0.0.1\n")
        assert proxy.tunnels == [f"{NAME}:{server.port}"]
        assert raced == []  # no TLS race: TCP to the proxy, then urllib3's own wrap
        import http.client

        context = ssl.create_default_context(cafile=ca.path)
        conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=5, context=context)
        conn.set_tunnel(NAME, server.port)
        conn.request("GET", "/")
        assert conn.getresponse().read() in (b"server=::1\n", b"server=127.0.0.1\n")
        conn.close()
        assert len(proxy.tunnels) == 2
    finally:
        proxy.close()
