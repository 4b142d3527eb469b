"""Alert channel targets sealed at rest: AES-256-GCM under a key from the settings.

A Slack-style webhook URL is its own credential, and a generic webhook's signing secret is one
too; a database dump or backup must not hand them out. `AlertRule.channels` is stored through
`SealedChannels`, which seals each channel's ``url`` and ``secret`` on the way in and opens them
on the way out, so the rest of the code sees plain channels.

The key is `secrets_key`, or where that is empty one derived from `session_secret` (which
production requires), so a deployment is sealed without new settings; set `secrets_key` to
rotate `session_secret` on its own. A sealed value names its key by a short id: under another
key it is not guessed at but reported (`Unsealable`), and a delivery through it fails with that
message instead of sending. Values written before sealing (plain text) are read as they are and
sealed by migration 0007.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import Any

import sqlalchemy as sa

PREFIX = "sealed:v1:"
SEALED_FIELDS = ("url", "secret")
_LABEL = b"undertow/channel-sealing/v1"
UNSEALABLE = "unsealable"  # set on a channel whose fields could not be opened, with the reason


class Unsealable(ValueError):
    """A sealed value that this key cannot open (another key, or altered bytes)."""


def current_key() -> bytes:
    """The sealing key of this process's settings."""
    from core.settings import get_settings

    s = get_settings()
    return derive_key(s.secrets_key.get_secret_value(), s.session_secret.get_secret_value())


def derive_key(secrets_key: str, session_secret: str) -> bytes:
    """32 bytes from `secrets_key`, else from `session_secret` (a labelled HMAC, so the session
    secret itself is never the cipher key)."""
    if secrets_key:
        return hmac.new(secrets_key.encode(), _LABEL, hashlib.sha256).digest()
    return hmac.new(session_secret.encode(), _LABEL + b"/session", hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """A short public name of a key (not enough of it to help guess the key)."""
    return hashlib.sha256(b"key-id\0" + key).hexdigest()[:8]


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(text: str, *, key: bytes) -> str:
    """``sealed:v1:<key id>:<base64url(nonce + ciphertext + tag)>``; a fresh nonce every time."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kid = key_id(key)
    nonce = os.urandom(12)
    box = AESGCM(key).encrypt(nonce, text.encode("utf-8"), f"{PREFIX}{kid}".encode())
    return f"{PREFIX}{kid}:{base64.urlsafe_b64encode(nonce + box).decode('ascii')}"


def unseal(value: str, *, key: bytes) -> str:
    """The plain text of a sealed value; a value that is not sealed is returned as it is."""
    if not is_sealed(value):
        return value
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kid, _, blob = value[len(PREFIX) :].partition(":")
    mine = key_id(key)
    if kid != mine:
        raise Unsealable(
            f"sealed under key {kid}, but this key is {mine}: were secrets_key or "
            "session_secret changed? Restore the old one, or set the channel again"
        )
    try:
        raw = base64.urlsafe_b64decode(blob.encode("ascii"))
        text = AESGCM(key).decrypt(raw[:12], raw[12:], f"{PREFIX}{kid}".encode())
    except (InvalidTag, binascii.Error, ValueError) as e:
        raise Unsealable("the sealed value was altered or cut short") from e
    return text.decode("utf-8")


def seal_channels(channels: list[dict[str, Any]] | None, *, key: bytes) -> list[dict[str, Any]]:
    """The channels with every ``url`` and ``secret`` sealed (sealed ones are left as they are)."""
    out = []
    for channel in channels or []:
        c = {k: v for k, v in channel.items() if k != UNSEALABLE}
        for f in SEALED_FIELDS:
            if isinstance(c.get(f), str) and not is_sealed(c[f]):
                c[f] = seal(c[f], key=key)
        out.append(c)
    return out


def unseal_channels(channels: list[dict[str, Any]] | None, *, key: bytes) -> list[dict[str, Any]]:
    """The channels opened; one that cannot be opened keeps its sealed fields and says why under
    ``unsealable``, so a rule still loads and only its deliveries fail."""
    out = []
    for channel in channels or []:
        c = dict(channel)
        for f in SEALED_FIELDS:
            if is_sealed(c.get(f)):
                try:
                    c[f] = unseal(c[f], key=key)
                except Unsealable as e:
                    c[UNSEALABLE] = str(e)
        out.append(c)
    return out


class SealedChannels(sa.TypeDecorator[list[dict[str, Any]]]):
    """A JSON list of channels whose ``url`` and ``secret`` are sealed in the database."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(sa.JSON())

    def process_bind_param(
        self, value: list[dict[str, Any]] | None, dialect: sa.Dialect
    ) -> list[dict[str, Any]] | None:
        return None if value is None else seal_channels(value, key=current_key())

    def process_result_value(
        self, value: list[dict[str, Any]] | None, dialect: sa.Dialect
    ) -> list[dict[str, Any]] | None:
        return None if value is None else unseal_channels(value, key=current_key())
