"""Auth under attack: every route refuses missing, revoked and wrong-scope keys; keys stay out of
logs; comparisons are constant-time; the dashboard's cookies and CSRF hold against another site."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.dashboard.auth import LOGIN_COOKIE, SESSION_COOKIE
from core.errors import Unauthorized
from core.keys import GRANTS, SCOPES, authenticate
from core.logging import configure_logging, get_logger
from core.models import AlertRule, ApiKey, Label, ReleaseEvent
from tests.survival.hostile import bearer, fill, iter_routes, make_client

pytestmark = pytest.mark.survival

# Routes anyone may call: health, metrics, the API description, the sign-in form, static files.
PUBLIC = {
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/healthz",
    "/readyz",
    "/metrics",
    "/",
    "/ui/login",
    "/ui/static",
}


@pytest.fixture
def db_url(postgresql_url: str) -> str:
    # Auth does not depend on the dialect: PostgreSQL only keeps this module quick.
    from tests.conftest import _truncate

    _truncate(postgresql_url)
    return postgresql_url


@pytest.fixture
def client(settings, session) -> Iterator:
    with make_client(settings, session) as c:
        yield c


def _is_problem(r) -> bool:
    body = r.json()
    return r.headers["content-type"].startswith("application/problem+json") and {
        "type",
        "title",
        "status",
        "detail",
    } <= set(body)


def test_every_route_is_public_by_name_or_needs_a_key_or_a_session(client):
    routes = list(iter_routes(client.app))
    assert len(routes) > 30
    for r in routes:
        if r.path in PUBLIC:
            continue
        assert r.scope or r.session, f"{sorted(r.methods)} {r.path} needs no key and is not PUBLIC"
    # Enumeration really found the API's scoped routes and the dashboard's pages.
    assert {r.scope for r in routes} >= {"read", "label", "export", "admin"}
    assert sum(r.session for r in routes) >= 10


def test_api_routes_refuse_missing_revoked_and_wrong_scope_keys(client, session):
    keys = client.keys
    before = {
        t: session.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
        for t in (ReleaseEvent, AlertRule, Label)
    }
    tried = 0
    for r in iter_routes(client.app):
        if not r.scope:
            continue
        for method in sorted(r.methods - {"HEAD"}):
            url = fill(r.path, str(client.post_ids[0]))
            body: dict | None = {} if method in ("POST", "PUT", "PATCH") else None
            refused = {
                "missing": {},
                "empty bearer": {"Authorization": "Bearer "},
                "other scheme": {"Authorization": f"Basic {keys['admin']}"},
                "revoked": bearer(keys["revoked"]),
                "unknown prefix": bearer("ut_AAAAAAAA_" + "x" * 43),
                "right prefix, wrong secret": bearer(keys["admin"][:12] + "y" * 43),
                "no prefix": bearer("z" * 40),
            }
            for why, headers in refused.items():
                resp = client.request(method, url, headers=headers, json=body)
                assert resp.status_code == 401, (method, url, why, resp.status_code)
                assert _is_problem(resp), (method, url, why)
            # A key in the query string is never read.
            resp = client.request(method, f"{url}?api_key={keys['admin']}", json=body)
            assert resp.status_code == 401
            for scope in SCOPES:
                if r.scope in GRANTS[scope]:
                    continue
                resp = client.request(method, url, headers=bearer(keys[scope]), json=body)
                assert resp.status_code == 403, (method, url, scope, resp.status_code)
                assert _is_problem(resp) and r.scope in resp.json()["detail"]
            tried += 1
    assert tried >= 20
    # Nothing was written by a refused request.
    for t, n in before.items():
        assert session.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() == n


def _login(client, key: str):
    form = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return client.post("/ui/login", data={"key": key, "csrf": token, "next": "/ui/posts"})


def test_dashboard_pages_refuse_no_session_and_a_revoked_key(client, session):
    pages = [r for r in iter_routes(client.app) if r.session]

    def check_refused():
        for r in pages:
            for method in r.methods - {"HEAD"}:
                url = fill(r.path, str(client.post_ids[0]))
                if "{theme}" in r.path:
                    url = r.path.replace("{theme}", "refusal_complaint")
                resp = client.request(method, url, data={"csrf": "x"} if method == "POST" else None)
                if method == "GET":
                    assert resp.status_code == 303, (url, resp.status_code)
                    assert resp.headers["location"].startswith("/ui/login")
                else:
                    assert resp.status_code in (401, 403), (url, resp.status_code)

    check_refused()
    assert _login(client, client.keys["label"]).status_code == 303
    assert client.get("/ui/posts").status_code == 200
    session.execute(
        sa.update(ApiKey).where(ApiKey.name == "label").values(revoked_at=sa.func.now())
    )
    session.commit()
    check_refused()  # the cookie is still sent, but its key is revoked


def test_a_revoked_key_cannot_sign_in(client):
    r = _login(client, client.keys["revoked"])
    assert r.status_code == 401 and SESSION_COOKIE not in r.headers.get("set-cookie", "")


@pytest.fixture
def debug_logging(settings) -> Iterator[None]:
    configure_logging(level="DEBUG")
    yield
    configure_logging(level=settings.log_level, json=settings.log_json)


def test_keys_never_reach_the_logs(client, session, capsys, caplog, debug_logging):
    caplog.set_level(logging.DEBUG)
    keys = client.keys
    pid = client.post_ids[0]
    secrets_ = [keys[s] for s in (*SCOPES, "revoked")]
    secrets_.append(keys["admin"][:12] + "y" * 43)
    for key in secrets_:
        for url in ("/v1/posts", "/v1/exports?format=csv", f"/v1/posts/{pid}", "/v1/nope"):
            client.get(url, headers=bearer(key))
        client.put(f"/v1/posts/{pid}/labels", json={"themes": ["nope"]}, headers=bearer(key))
        client.get("/v1/posts?theme=%00", headers=bearer(key))  # an error that logs
        client.cookies.clear()
        _login(client, key)
    # A log call that is handed a key by mistake, in a field, nested, or in an exception.
    log = get_logger("survival")
    log.info("auth.debug", authorization=f"Bearer {keys['admin']}", header=keys["read"])
    log.info("auth.nested", seen={"keys": [keys["label"]]})
    try:
        raise ValueError(f"bad key {keys['export']}")
    except ValueError:
        log.exception("auth.failed")
    logging.getLogger("survival.stdlib").warning("stdlib saw %s", keys["admin"])
    out = capsys.readouterr()
    text = out.out + out.err + caplog.text
    assert "HTTP Request" in text and "auth.failed" in text  # the capture saw the requests
    for key in secrets_:
        assert key not in text
        assert key.split("_", 2)[-1] not in text
        assert hashlib.sha256(key.encode()).hexdigest() not in text
    # Only hashes are stored.
    stored = " ".join(str(v) for row in session.execute(sa.select(ApiKey)).all() for v in row)
    assert not any(k in stored for k in secrets_)


def test_key_lookup_is_by_prefix_and_compared_in_constant_time(client, session, monkeypatch):
    import core.keys

    calls: list[tuple[str, str]] = []
    real = core.keys.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(core.keys.hmac, "compare_digest", spy)
    statements: list[str] = []
    engine = session.get_bind()
    listen = lambda conn, cur, stmt, params, ctx, many: statements.append(f"{stmt} {params}")  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        good = client.keys["read"]
        for key in (good, good[:12] + "q" * 43, "ut_ZZZZZZZZ_" + "q" * 43, "not-a-key"):
            with contextlib.suppress(Unauthorized):
                authenticate(session=session, key=key)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    # Each attempt costs exactly one constant-time comparison of SHA-256 digests, even when
    # the prefix is unknown or malformed.
    assert len(calls) == 4
    assert all(len(a) == len(b) == 64 for a, b in calls)
    # The database is asked for the prefix, never handed the secret or its hash.
    sql = " ".join(statements)
    assert good.split("_", 2)[2] not in sql
    assert hashlib.sha256(good.encode()).hexdigest() not in sql


def test_session_signature_is_checked_in_constant_time(client, monkeypatch):
    import api.dashboard.auth as auth_mod

    assert _login(client, client.keys["read"]).status_code == 303
    calls: list[int] = []
    real = auth_mod.hmac.compare_digest

    def spy(a, b):
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(auth_mod.hmac, "compare_digest", spy)
    assert client.get("/ui/posts").status_code == 200
    assert calls


def test_cookie_flags(client):
    r = _login(client, client.keys["read"])
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert "Path=/" in cookie and "Max-Age=" in cookie
    login_cookie = client.get("/ui/login").headers["set-cookie"]
    assert LOGIN_COOKIE in login_cookie
    assert "HttpOnly" in login_cookie and "SameSite=strict" in login_cookie
    # Over HTTPS, or when the public URL is https (TLS ends at a proxy), the cookie is Secure.
    settings = client.app.state.settings
    https = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    assert "Secure" in _login(https, client.keys["read"]).headers["set-cookie"]
    proxied = create_app(settings.model_copy(update={"public_url": "https://undertow.example"}))
    with TestClient(proxied, follow_redirects=False) as c:
        assert "Secure" in _login(c, client.keys["read"]).headers["set-cookie"]


def _label_count(session, pid: int) -> int:
    session.expire_all()
    return int(
        session.execute(
            sa.select(sa.func.count()).select_from(Label).where(Label.post_id == pid)
        ).scalar_one()
    )


def test_cross_site_form_posts_are_refused(client, session):
    pid = client.post_ids[0]
    assert _login(client, client.keys["label"]).status_code == 303
    page = client.get(f"/ui/posts/{pid}").text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    evil = {"Origin": "https://evil.example", "Referer": "https://evil.example/x"}
    # What a page on another site can send: the browser's cookies, but not our token.
    for form in (
        {"themes": ["safety_support"]},
        {"themes": ["safety_support"], "csrf": ""},
        {"themes": ["safety_support"], "csrf": "0" * 64},
        {"themes": ["safety_support"], "csrf": token[:-1] + ("0" if token[-1] != "0" else "1")},
    ):
        r = client.post(f"/ui/posts/{pid}/labels", data=form, headers=evil)
        assert r.status_code == 403, form
        assert r.headers["content-type"].startswith("text/html")
    for url in ("/ui/logout", "/ui/alerts/1/acknowledge"):
        assert client.post(url, data={"csrf": "0" * 64}, headers=evil).status_code == 403
    assert _label_count(session, pid) == 0
    # Another session's token is not this session's.
    other = TestClient(client.app, follow_redirects=False)
    assert _login(other, client.keys["label"]).status_code == 303
    other_token = re.search(
        r'name="csrf" value="([^"]+)"', other.get(f"/ui/posts/{pid}").text
    ).group(1)
    assert other_token != token
    r = client.post(f"/ui/posts/{pid}/labels", data={"csrf": other_token, "themes": []})
    assert r.status_code == 403 and _label_count(session, pid) == 0
    # The page's own token works (so the refusals above were about the token).
    r = client.post(f"/ui/posts/{pid}/labels", data={"csrf": token, "themes": ["safety_support"]})
    assert r.status_code == 303 and _label_count(session, pid) == 1


def test_cross_site_sign_in_is_refused(client):
    # Login CSRF: another site posts its own key to sign the victim in as the attacker.
    r = client.post(
        "/ui/login",
        data={"key": client.keys["admin"], "csrf": "forged", "next": "/ui/"},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and SESSION_COOKIE not in r.headers.get("set-cookie", "")
    client.cookies.set(LOGIN_COOKIE, "a" * 32)
    r = client.post("/ui/login", data={"key": client.keys["admin"], "csrf": "b" * 32})
    assert r.status_code == 403 and SESSION_COOKIE not in r.headers.get("set-cookie", "")


def test_pages_forbid_framing_and_inline_script(client):
    assert _login(client, client.keys["read"]).status_code == 303
    for url in ("/ui/", "/ui/posts", "/ui/login"):
        csp = client.get(url).headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1]
