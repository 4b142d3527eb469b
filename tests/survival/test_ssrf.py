"""SSRF: webhook, Slack and SMTP targets on non-public addresses are refused unless allowed, also
behind a hostname, and a redirect is never followed to another address."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from trends.notify import (
    DeliveryError,
    RefusedTarget,
    check_literal_target,
    is_blocked_address,
    post_json,
    resolve_target,
    send_email,
)

pytestmark = pytest.mark.survival


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    # Only the rules test touches the database, and not in a dialect-specific way.
    from tests.conftest import _truncate

    _truncate(sqlite_url)
    return sqlite_url


BLOCKED = [
    "127.0.0.1",
    "127.255.0.9",
    "::1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "fe80::1",
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.0.1",
    "192.168.255.254",
    "fc00::1",
    "fd12:3456::1",
    "::ffff:127.0.0.1",  # IPv4-mapped IPv6
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:192.168.1.1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "0.0.0.0",
    "::",
    "100.64.0.1",  # carrier-grade NAT
    "224.0.0.1",
    "ff02::1",
    "255.255.255.255",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "172.32.0.1", "192.169.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("addr", BLOCKED)
def test_non_public_addresses_are_blocked(addr):
    assert is_blocked_address(ipaddress.ip_address(addr))
    url = f"https://[{addr}]/hook" if ":" in addr else f"https://{addr}/hook"
    with pytest.raises(RefusedTarget):
        check_literal_target(url, allow_private=False)
    check_literal_target(url, allow_private=True)  # the switch allows it


@pytest.mark.parametrize("addr", PUBLIC)
def test_public_addresses_pass(addr):
    assert not is_blocked_address(ipaddress.ip_address(addr))
    url = f"https://[{addr}]/hook" if ":" in addr else f"https://{addr}/hook"
    check_literal_target(url, allow_private=False)


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f.1", "017700000001", "127.1", "localhost", "api.localhost"]
)
def test_other_spellings_of_loopback_are_refused(host):
    with pytest.raises(RefusedTarget):
        check_literal_target(f"http://{host}/x", allow_private=False)
    if not host.endswith("localhost"):
        with pytest.raises(RefusedTarget):
            resolve_target(host, 80, allow_private=False)


@pytest.fixture
def fake_dns(monkeypatch) -> dict[str, list[str]]:
    """Names the (mocked) outside DNS answers with; other names go to the real resolver."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port, 0, 0) if ":" in a else (a, port),
                )
                for a in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []
    location = ""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).hits.append(self.path)
        if type(self).location:
            self.send_response(302)
            self.send_header("Location", type(self).location)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def _serve(host: str) -> tuple[http.server.ThreadingHTTPServer, type[_Recorder]]:
    handler = type("Recorder", (_Recorder,), {"hits": [], "location": ""})
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, handler


@pytest.fixture
def servers() -> Iterator[tuple]:
    first, first_h = _serve("127.0.0.1")
    second, second_h = _serve("127.0.0.2")
    yield (first, first_h), (second, second_h)
    for s in (first, second):
        s.shutdown()
        s.server_close()


def test_hostnames_resolving_to_private_addresses_are_refused(settings, fake_dns, servers):
    (first, hits), _ = servers
    port = first.server_address[1]
    for answer in (["127.0.0.1"], ["10.1.2.3"], ["::ffff:127.0.0.1"], ["8.8.8.8", "127.0.0.1"]):
        fake_dns["hooks.example.org"] = answer
        with pytest.raises(RefusedTarget, match="non-public"):
            post_json(f"http://hooks.example.org:{port}/hook", b"{}", {}, settings)
    assert hits.hits == []
    # Explicitly allowed, the same name reaches the local server.
    settings.alerts.allow_private_targets = True
    try:
        fake_dns["hooks.example.org"] = ["127.0.0.1"]
        assert post_json(f"http://hooks.example.org:{port}/hook", b"{}", {}, settings) == 200
    finally:
        settings.alerts.allow_private_targets = False
    assert hits.hits == ["/hook"]


def test_redirects_are_not_followed_to_another_address(settings, fake_dns, servers, monkeypatch):
    (first, first_h), (second, second_h) = servers
    # The first hop counts as public (as if allowed); the redirect's target does not.
    first_ip = ipaddress.ip_address("127.0.0.1")
    real = is_blocked_address
    monkeypatch.setattr(
        "trends.notify.is_blocked_address", lambda ip: False if ip == first_ip else real(ip)
    )
    fake_dns["hooks.example.org"] = ["127.0.0.1"]
    fake_dns["internal.example.org"] = ["127.0.0.2"]
    url = f"http://hooks.example.org:{first.server_address[1]}/hook"
    for location in (
        f"http://127.0.0.2:{second.server_address[1]}/steal",
        f"http://internal.example.org:{second.server_address[1]}/steal",
        f"http://hooks.example.org:{first.server_address[1]}/again",
    ):
        first_h.location = location
        with pytest.raises(DeliveryError, match="redirects are not followed"):
            post_json(url, b"{}", {}, settings)
    assert first_h.hits == ["/hook"] * 3 and second_h.hits == []
    # Asked for directly, the second address is refused before any connection.
    with pytest.raises(RefusedTarget):
        post_json(f"http://internal.example.org:{second.server_address[1]}/x", b"{}", {}, settings)
    assert second_h.hits == []


def test_smtp_host_on_a_private_address_is_refused(settings, fake_dns, monkeypatch):
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["To"], msg["From"], msg["Subject"] = "a@example.org", "b@example.org", "x"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    monkeypatch.setattr(settings.smtp, "port", listener.getsockname()[1])
    fake_dns["smtp.example.org"] = ["192.168.1.5"]
    try:
        for host in ("127.0.0.1", "localhost", "::ffff:127.0.0.1", "smtp.example.org"):
            monkeypatch.setattr(settings.smtp, "host", host)
            with pytest.raises(RefusedTarget):
                send_email(msg, settings)
        with pytest.raises(socket.timeout):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()


def test_rules_with_private_targets_are_refused_when_saved(settings, session):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.keys import create_key

    _, key = create_key(session=session, name="a", scopes=["admin"])
    session.commit()
    with TestClient(create_app(settings)) as c:
        for url in (
            "http://127.0.0.1/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/x",
            "http://2130706433/x",
            "https://localhost/x",
            "http://[fd00::1]/x",
        ):
            for channel in (
                {"type": "webhook", "url": url, "secret": "s" * 20},
                {"type": "slack", "url": url},
            ):
                r = c.post(
                    "/v1/alert-rules",
                    json={"name": "r", "theme": "refusal_complaint", "channels": [channel]},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert r.status_code == 422, (url, r.text)
                assert "channels.0.url" in r.text
        r = c.get("/v1/alert-rules", headers={"Authorization": f"Bearer {key}"})
        assert r.json()["items"] == []


def test_a_second_dns_answer_cannot_redirect_a_send(settings, fake_dns, monkeypatch):
    """DNS rebinding: the name is checked on one answer, the connection must use that answer."""
    from email.message import EmailMessage

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    # 127.0.0.2 stands in for a public address (nothing listens there); 127.0.0.1 is internal.
    checked = ipaddress.ip_address("127.0.0.2")
    real = is_blocked_address
    monkeypatch.setattr(
        "trends.notify.is_blocked_address", lambda ip: False if ip == checked else real(ip)
    )
    # First answer for the check, every later one points inside.
    answers: list[list[str]] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.example.org":
            fake_dns[host] = answers.pop(0) if answers else ["127.0.0.1"]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(settings.smtp, "host", "rebind.example.org")
    monkeypatch.setattr(settings.smtp, "port", port)
    monkeypatch.setattr(settings.smtp, "timeout_s", 2.0)
    msg = EmailMessage()
    msg["To"], msg["From"], msg["Subject"] = "a@example.org", "b@example.org", "x"
    try:
        answers[:] = [["127.0.0.2"]]
        with pytest.raises(OSError):  # refused at 127.0.0.2, the address that was checked
            send_email(msg, settings)
        answers[:] = [["127.0.0.2"]]
        with pytest.raises(httpx.ConnectError):
            post_json(f"http://rebind.example.org:{port}/hook", b"{}", {}, settings)
        with pytest.raises(socket.timeout):
            listener.accept()  # the internal address never saw a connection
    finally:
        listener.close()
