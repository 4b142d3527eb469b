"""Dashboard sign-in: an API key becomes a signed session cookie; forms carry CSRF tokens.

The cookie holds the key's id, an expiry and a random nonce, signed with HMAC-SHA256 under
``session_secret``; never the key itself. Every request re-reads the key row, so revoking the
key ends its sessions at once. The CSRF token is an HMAC of the session's nonce (bound to the
session); the sign-in form, which has no session yet, uses a double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from fastapi import Request, Response
from sqlmodel import Session

from core.keys import grants
from core.models import ApiKey
from core.settings import Settings

SESSION_COOKIE = "undertow_session"
LOGIN_COOKIE = "undertow_login_csrf"


class LoginRequired(Exception):
    """No valid session: the page redirects to the sign-in form."""


class CsrfFailed(Exception):
    """A POST without the right CSRF token: refused with 403."""


@dataclass(frozen=True)
class DashboardUser:
    key: ApiKey
    nonce: str
    csrf: str

    def can(self, scope: str) -> bool:
        """Whether one of the key's scopes grants ``scope``."""
        return grants(self.key, scope)


def _secret(settings: Settings) -> bytes:
    return settings.session_secret.get_secret_value().encode("utf-8")


def _sign(settings: Settings, message: str) -> str:
    return hmac.new(_secret(settings), message.encode("utf-8"), hashlib.sha256).hexdigest()


def csrf_for(settings: Settings, nonce: str) -> str:
    """The CSRF token of the session with ``nonce``."""
    return _sign(settings, f"csrf|{nonce}")


def issue_session(response: Response, *, settings: Settings, key: ApiKey, secure: bool) -> None:
    """Set the session cookie for ``key`` (HttpOnly, SameSite=Lax, Secure over HTTPS)."""
    expires = int(time.time()) + settings.session_max_age_s
    payload = f"{key.id}.{expires}.{secrets.token_urlsafe(16)}"
    response.set_cookie(
        SESSION_COOKIE,
        f"{payload}.{_sign(settings, 'session|' + payload)}",
        max_age=settings.session_max_age_s,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def clear_session(response: Response) -> None:
    """Drop the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def current_user(request: Request, session: Session) -> DashboardUser:
    """The signed-in key, or LoginRequired (bad signature, expired, revoked or missing)."""
    settings: Settings = request.app.state.settings
    raw = request.cookies.get(SESSION_COOKIE, "")
    parts = raw.split(".")
    if len(parts) != 4:
        raise LoginRequired
    key_id, expires, nonce, sig = parts
    payload = f"{key_id}.{expires}.{nonce}"
    if not hmac.compare_digest(sig, _sign(settings, "session|" + payload)):
        raise LoginRequired
    if not expires.isdigit() or int(expires) < time.time() or not key_id.isdigit():
        raise LoginRequired
    key = session.get(ApiKey, int(key_id))
    if key is None or key.revoked_at is not None:
        raise LoginRequired
    return DashboardUser(key=key, nonce=nonce, csrf=csrf_for(settings, nonce))


def check_csrf(user: DashboardUser, token: str | None) -> None:
    """Raise CsrfFailed unless ``token`` is this session's CSRF token."""
    if not token or not hmac.compare_digest(token, user.csrf):
        raise CsrfFailed


def login_token(request: Request) -> str:
    """The sign-in form's double-submit token (reuses the cookie when present)."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def check_login_csrf(request: Request, token: str | None) -> None:
    """The sign-in form's token must equal its cookie (a cross-site page can read neither)."""
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not cookie or not token or not hmac.compare_digest(cookie, token):
        raise CsrfFailed
