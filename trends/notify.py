"""Alert channels: Slack-compatible webhook, signed JSON webhook, email over SMTP.

A delivery is one alert sent through one of its rule's channels. Every attempt is a Delivery
row; an alert that reached a channel once is never sent there again. Targets that resolve to
loopback, private, link-local, multicast or unspecified addresses are refused unless
``alerts.allow_private_targets`` is set (SSRF), and redirects are never followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import smtplib
import socket
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from pydantic import BaseModel, Field, TypeAdapter, field_validator
from sqlmodel import Session, select

from core.db import is_postgres
from core.logging import get_logger
from core.models import Alert, AlertRule, Delivery, utcnow
from core.sealing import UNSEALABLE
from core.settings import Settings

log = get_logger(__name__)

SIGNATURE_HEADER = "X-Undertow-Signature"
TIMESTAMP_HEADER = "X-Undertow-Timestamp"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300
TERMINAL = ("sent", "failed", "refused")


# --- channel specs -------------------------------------------------------------------------


def _check_url(v: str) -> str:
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("credentials in the URL are not allowed")
    return v


class SlackChannel(BaseModel):
    """A Slack-compatible incoming webhook: a text summary with a link."""

    model_config = {"extra": "forbid"}

    type: Literal["slack"]
    url: str = Field(max_length=2000)

    _url = field_validator("url")(_check_url)


class WebhookChannel(BaseModel):
    """A generic JSON webhook signed with HMAC-SHA256 (``secret`` or ``alerts.webhook_secret``)."""

    model_config = {"extra": "forbid"}

    type: Literal["webhook"]
    url: str = Field(max_length=2000)
    secret: str | None = Field(default=None, min_length=16, max_length=256)

    _url = field_validator("url")(_check_url)


class EmailChannel(BaseModel):
    """Email to these addresses through the configured SMTP server."""

    model_config = {"extra": "forbid"}

    type: Literal["email"]
    to: list[Annotated[str, Field(pattern=r"^[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+$")]] = Field(
        min_length=1, max_length=20
    )


Channel = Annotated[SlackChannel | WebhookChannel | EmailChannel, Field(discriminator="type")]
CHANNELS: TypeAdapter[list[Channel]] = TypeAdapter(list[Channel])


def channel_key(channel: dict[str, Any]) -> str:
    """A stable id of a channel within a rule (its settings, without the secret)."""
    public = {k: v for k, v in sorted(channel.items()) if k != "secret"}
    return hashlib.sha256(json.dumps(public, sort_keys=True).encode()).hexdigest()[:16]


def redacted_target(channel: dict[str, Any]) -> str:
    """Where a channel sends, safe to log and show: a URL's scheme and host only."""
    if channel.get(UNSEALABLE):
        return "(sealed under another key)"
    if channel.get("type") == "email":
        return ",".join(channel.get("to", []))
    parts = urlsplit(str(channel.get("url", "")))
    # Slack-style webhook URLs carry their secret in the path.
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/..."


def public_channel(channel: dict[str, Any], *, reveal: bool) -> dict[str, Any]:
    """A channel as the API shows it: secrets never, URLs only to admins."""
    out = {k: v for k, v in channel.items() if k != "secret"}
    out["key"] = channel_key(channel)
    if channel.get("type") == "webhook":
        out["signed_with"] = "channel secret" if channel.get("secret") else "alerts.webhook_secret"
    if not reveal and "url" in out:
        out["url"] = redacted_target(channel)
    return out


# --- errors ---------------------------------------------------------------------------------


class DeliveryError(Exception):
    """A delivery that will not succeed by trying again (4xx, bad config)."""


class RefusedTarget(DeliveryError):
    """The target resolves to an address we may not send to."""


class TransientDeliveryError(Exception):
    """A failure that may pass: 5xx, 429, 408, DNS or connection trouble."""


# Named transient errors: everything else is a permanent failure, logged and not retried.
TRANSIENT: tuple[type[BaseException], ...] = (
    TransientDeliveryError,
    httpx.TransportError,
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    ConnectionError,
    TimeoutError,
    socket.timeout,
)


# --- SSRF -----------------------------------------------------------------------------------


def is_blocked_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for loopback, private, link-local, multicast, unspecified and reserved addresses."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address inside IPv6 (mapped, 6to4, Teredo) is judged as that IPv4 address.
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            return is_blocked_address(inner) or not ip.is_global
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or not ip.is_global
    )


def resolve_target(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Addresses of ``host``; RefusedTarget if any of them is not a public address."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise TransientDeliveryError(f"cannot resolve {host}: {e.strerror}") from e
    addrs: list[str] = []
    for info in infos:
        addr = str(info[4][0]).split("%", 1)[0]
        if addr not in addrs:
            addrs.append(addr)
    if not allow_private:
        for addr in addrs:
            if is_blocked_address(ipaddress.ip_address(addr)):
                raise RefusedTarget(
                    f"{host} resolves to {addr}, a non-public address; set "
                    "alerts.allow_private_targets to allow it"
                )
    return addrs


def check_literal_target(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host is a non-public IP literal or localhost (checked when saved)."""
    host = (urlsplit(url).hostname or "").lower()
    if allow_private:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise RefusedTarget(f"{host} is a loopback host; set alerts.allow_private_targets")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            # Forms resolvers still read as IPv4: 2130706433, 0x7f.1, 017700000001, 127.1.
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return
    if is_blocked_address(ip):
        raise RefusedTarget(f"{host} is a non-public address; set alerts.allow_private_targets")


# --- signatures -----------------------------------------------------------------------------


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 over ``timestamp + "." + body``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify_signature(
    secret: str,
    *,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """What a receiver does: a fresh timestamp and a matching signature (constant time)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    expected = sign(secret, ts, body)
    return any(hmac.compare_digest(expected, s.strip()) for s in signature.split(","))


# --- messages -------------------------------------------------------------------------------


def alert_link(alert: Alert, settings: Settings) -> str:
    """Where a reader finds the alert."""
    base = getattr(settings, "public_url", "") or f"http://{settings.api_host}:{settings.api_port}"
    return f"{base.rstrip('/')}/v1/alerts/{alert.id}"


def alert_payload(alert: Alert, rule: AlertRule, settings: Settings) -> dict[str, Any]:
    """The JSON body of a webhook (and the facts every channel shows)."""
    return {
        "event": "alert.opened",
        "alert": {
            "id": alert.id,
            "status": alert.status,
            "opened_at": alert.opened_at.isoformat(),
            "window_start": alert.window_start.isoformat(),
            "window_end": alert.window_end.isoformat(),
            "observed": alert.observed,
            "expected": round(alert.expected, 3),
            "tail_p": alert.tail_p,
            "score": round(alert.score, 3),
            "threshold": round(alert.threshold, 3),
            "summary": alert.details.get("summary"),
            "examples": alert.details.get("examples", []),
        },
        "rule": {
            "id": rule.id,
            "name": rule.name,
            "theme": rule.theme,
            "product": rule.product,
            "platform": rule.platform,
            "metric": rule.metric,
            "granularity": rule.granularity,
        },
        "link": alert_link(alert, settings),
    }


def summary_text(alert: Alert, rule: AlertRule) -> str:
    """One line a person reads first."""
    return str(
        alert.details.get("summary")
        or f"{rule.theme} spike: {alert.observed:g} posts vs {alert.expected:.1f} expected"
    )


def slack_escape(text: str) -> str:
    """Text safe in Slack mrkdwn: no links, mentions (``<!channel>``) or markup from its content."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(alert: Alert, rule: AlertRule, settings: Settings) -> str:
    """A Slack mrkdwn message: summary, rule, link and two examples."""
    lines = [
        f":rotating_light: *{slack_escape(summary_text(alert, rule))}*",
        f"rule `{slack_escape(rule.name)}` · p={alert.tail_p:.2g} · "
        f"<{alert_link(alert, settings)}|alert #{alert.id}>",
    ]
    for ex in alert.details.get("examples", [])[:2]:
        text = " ".join(str(ex.get("text", ""))[:200].split())  # one quoted line each
        lines.append(f"> {slack_escape(text)}")
    return "\n".join(lines)


def email_message(alert: Alert, rule: AlertRule, settings: Settings, to: list[str]) -> EmailMessage:
    """A plain-text email for an alert."""
    msg = EmailMessage()
    msg["Subject"] = f"[Undertow] {summary_text(alert, rule)}"
    msg["From"] = settings.smtp.from_addr
    msg["To"] = ", ".join(to)
    body = [
        summary_text(alert, rule),
        "",
        f"Rule: {rule.name} (theme {rule.theme}, product {rule.product or 'any'}, "
        f"platform {rule.platform or 'any'})",
        f"Window: {alert.window_start.isoformat()} to {alert.window_end.isoformat()}",
        f"Observed {alert.observed:g}, expected {alert.expected:.2f}, tail probability {alert.tail_p:.3g}",
        f"Link: {alert_link(alert, settings)}",
        "",
        "Examples:",
    ]
    for ex in alert.details.get("examples", []):
        body.append(f"- [{ex.get('id')}] {str(ex.get('text', ''))[:280]}")
    msg.set_content("\n".join(body))
    return msg


# --- transports -----------------------------------------------------------------------------


def post_json(url: str, body: bytes, headers: dict[str, str], settings: Settings) -> int:
    """POST ``body`` to ``url`` after the SSRF check, never following redirects; returns status."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    allow = settings.alerts.allow_private_targets
    addrs = resolve_target(parts.hostname or "", port, allow_private=allow)
    target = httpx.URL(url)
    extensions: dict[str, Any] = {}
    headers = {
        "Content-Type": "application/json",
        "User-Agent": settings.http_user_agent,
        **headers,
    }
    if not allow:
        # Connect to the address we checked, so a second DNS answer cannot point elsewhere.
        headers["Host"] = target.netloc.decode("ascii")
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
        target = target.copy_with(host=addrs[0])
    with httpx.Client(timeout=settings.alerts.webhook_timeout_s, follow_redirects=False) as client:
        resp = client.post(target, content=body, headers=headers, extensions=extensions)
    status = resp.status_code
    if status in (408, 425, 429) or status >= 500:
        raise TransientDeliveryError(f"HTTP {status}")
    if 300 <= status < 400:
        raise DeliveryError(f"HTTP {status}: redirects are not followed")
    if status >= 400:
        raise DeliveryError(f"HTTP {status}")
    return status


class _PinnedSMTP(smtplib.SMTP):
    """SMTP to an address checked beforehand; STARTTLS still verifies the configured name."""

    def __init__(self, address: str | None, *args: Any, **kwargs: Any) -> None:
        self._address = address  # set before SMTP.__init__ connects
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        if self._address is None:
            return super()._get_socket(host, port, timeout)  # type: ignore[misc,no-any-return]
        return socket.create_connection((self._address, port), timeout, self.source_address)


def send_email(msg: EmailMessage, settings: Settings) -> str:
    """Send through the configured SMTP server (STARTTLS and login when configured)."""
    smtp = settings.smtp
    if not smtp.host:
        raise DeliveryError("smtp.host is not configured")
    allow = settings.alerts.allow_private_targets
    addrs = resolve_target(smtp.host, smtp.port, allow_private=allow)
    # Connect to the address that was checked, so a second DNS answer cannot point elsewhere.
    pinned = None if allow else addrs[0]
    try:
        with _PinnedSMTP(pinned, smtp.host, smtp.port, timeout=smtp.timeout_s) as conn:
            if smtp.starttls:
                conn.starttls()
            if smtp.user:
                conn.login(smtp.user, smtp.password.get_secret_value())
            conn.send_message(msg)
    except smtplib.SMTPResponseException as e:
        # 4xx replies are temporary by SMTP's own definition; 5xx are not.
        if 400 <= e.smtp_code < 500:
            raise TransientDeliveryError(f"SMTP {e.smtp_code}") from e
        raise DeliveryError(f"SMTP {e.smtp_code}") from e
    except smtplib.SMTPRecipientsRefused as e:
        raise DeliveryError("SMTP refused every recipient") from e
    return "250"


def send(alert: Alert, rule: AlertRule, channel: dict[str, Any], settings: Settings) -> str:
    """Send one alert through one channel; returns a short response note."""
    kind = channel.get("type")
    if channel.get(UNSEALABLE):
        raise DeliveryError(f"channel cannot be unsealed: {channel[UNSEALABLE]}")
    if kind == "slack":
        body = json.dumps({"text": slack_text(alert, rule, settings)}).encode()
        return f"HTTP {post_json(str(channel['url']), body, {}, settings)}"
    if kind == "webhook":
        secret = channel.get("secret") or settings.alerts.webhook_secret.get_secret_value()
        if not secret:
            raise DeliveryError(
                "no signing secret: set the channel's secret or alerts.webhook_secret"
            )
        body = json.dumps(alert_payload(alert, rule, settings), sort_keys=True).encode()
        ts = str(int(time.time()))
        headers = {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, ts, body)}
        return f"HTTP {post_json(str(channel['url']), body, headers, settings)}"
    if kind == "email":
        return f"SMTP {send_email(email_message(alert, rule, settings, list(channel['to'])), settings)}"
    raise DeliveryError(f"unknown channel type {kind!r}")


# --- delivery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one delivery call did; ``retry`` says the task should try again later."""

    status: str  # sent | retrying | failed | refused | skipped
    attempt: int = 0
    detail: str = ""

    @property
    def retry(self) -> bool:
        """Whether a later attempt may succeed."""
        return self.status == "retrying"


def backoff_s(attempt: int, settings: Settings) -> float:
    """Exponential backoff with jitter for the next try after ``attempt`` failed."""
    cap = min(settings.alerts.retry_max_s, settings.alerts.retry_base_s * 2 ** (attempt - 1))
    return cap / 2 + random.uniform(0, cap / 2)


def _lock(session: Session, alert_id: int, key: str) -> None:
    """Two workers holding the same (alert, channel) must not both send: the second waits here
    until the first has committed its delivery, then finds it. Held until the caller commits."""
    if is_postgres(session):
        name = f"delivery:{alert_id}:{key}"
        lock = int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
    else:
        # SQLite has one write lock per database: take it with a write that changes nothing,
        # as the transaction's first statement (so its snapshot starts after the other commit).
        # Other writers wait for this send (webhook and SMTP timeouts are below busy_timeout).
        session.execute(
            sa.text("UPDATE alert SET observed = observed WHERE id = :id"), {"id": alert_id}
        )


def deliver(*, session: Session, alert_id: int, key: str, settings: Settings) -> Outcome:
    """Send alert ``alert_id`` through its rule's channel ``key`` once; the caller commits."""
    _lock(session, alert_id, key)
    alert = session.get(Alert, alert_id)
    rule = session.get(AlertRule, alert.rule_id) if alert else None
    if alert is None or rule is None:
        log.info("alerts.deliver_missing", alert_id=alert_id)
        return Outcome("skipped", detail="no such alert")
    channel = next((c for c in rule.channels if channel_key(c) == key), None)
    if channel is None:
        log.info("alerts.deliver_no_channel", alert_id=alert_id, channel_key=key)
        return Outcome("skipped", detail="channel no longer on the rule")
    past = list(
        session.exec(
            select(Delivery).where(Delivery.alert_id == alert_id, Delivery.channel_key == key)
        )
    )
    if any(d.status in TERMINAL for d in past):
        log.info("alerts.already_delivered", alert_id=alert_id, channel_key=key)
        return Outcome("skipped", attempt=len(past), detail="already delivered")
    attempt = len(past) + 1
    target = redacted_target(channel)
    try:
        note = send(alert, rule, channel, settings)
        status = "sent"
    except RefusedTarget as e:
        status, note = "refused", str(e)
    except TRANSIENT as e:
        last = attempt >= settings.alerts.max_attempts
        status = "failed" if last else "retrying"
        note = f"{type(e).__name__}: {e}"[:500] + (" (giving up)" if last else "")
    except (DeliveryError, smtplib.SMTPException, OSError) as e:
        status, note = "failed", f"{type(e).__name__}: {e}"[:500]
    session.add(
        Delivery(
            alert_id=alert_id,
            channel=str(channel.get("type")),
            channel_key=key,
            target=target,
            attempt=attempt,
            status=status,
            response=note,
            created_at=utcnow(),
        )
    )
    log.info(
        "alerts.delivery",
        alert_id=alert_id,
        channel=channel.get("type"),
        target=target,
        attempt=attempt,
        status=status,
        note=note,
    )
    return Outcome(status, attempt=attempt, detail=note)
