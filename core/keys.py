"""API keys: random secrets shown once, stored as SHA-256 hashes, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from datetime import timedelta

from sqlmodel import Session, select

from core.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from core.models import ApiKey, utcnow

SCOPES = ("read", "label", "export", "admin")
# What each scope grants (design.md): label and export include read; admin is everything.
GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "label": frozenset({"read", "label"}),
    "export": frozenset({"read", "export"}),
    "admin": frozenset(SCOPES),
}
_ALPHABET = string.ascii_letters + string.digits
# A wrong key still costs one hash comparison, so timing says nothing about which part was wrong.
_DUMMY_HASH = hashlib.sha256(b"undertow-no-such-key").hexdigest()


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(*, session: Session, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """Make a key; returns the row and the plaintext, which is never stored or shown again."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise InvalidInput(f"unknown scope(s) {unknown or scopes}; choose from {list(SCOPES)}")
    if not name.strip():
        raise InvalidInput("a key needs a name")
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    plaintext = f"ut_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name.strip(), prefix=prefix, key_hash=_hash(plaintext), scopes=sorted(scopes))
    session.add(row)
    session.flush()
    return row, plaintext


def authenticate(*, session: Session, key: str | None) -> ApiKey:
    """The active key row for ``key``, or Unauthorized; records when it was last used."""
    if not key:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    parts = key.split("_", 2)
    prefix = parts[1] if len(parts) == 3 and parts[0] == "ut" else ""
    row = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first() if prefix else None
    ok = hmac.compare_digest(row.key_hash if row else _DUMMY_HASH, _hash(key))
    if row is None or not ok or row.revoked_at is not None:
        raise Unauthorized("invalid or revoked API key")
    now = utcnow()
    # Record use at most once a minute: a write per request would serialize reads on SQLite.
    if row.last_used_at is None or now - row.last_used_at > timedelta(seconds=60):
        row.last_used_at = now
        session.add(row)
    return row


def grants(row: ApiKey, scope: str) -> bool:
    """Whether one of the key's scopes grants ``scope``."""
    return any(scope in GRANTS.get(s, frozenset()) for s in row.scopes)


def require(row: ApiKey, scope: str) -> None:
    """Raise Forbidden unless one of the key's scopes grants ``scope``."""
    if not grants(row, scope):
        raise Forbidden(f"this key lacks the '{scope}' scope (it has {row.scopes})")


def list_keys(*, session: Session) -> list[ApiKey]:
    """All keys, newest first (hashes only, never secrets)."""
    return list(session.exec(select(ApiKey).order_by(ApiKey.id.desc())))  # type: ignore[union-attr]


def revoke_key(*, session: Session, prefix: str) -> ApiKey:
    """Revoke the key with ``prefix``; revoking twice is a no-op."""
    row = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if row is None:
        raise NotFound(f"no key with prefix {prefix!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
    return row
