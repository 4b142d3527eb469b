"""SQLModel tables: the data model of design.md. Migrations (core/migrations) create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from core.sealing import SealedChannels

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which stores naive text) as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _ts(**kw: Any) -> Any:
    return sa.Column(UTCDateTime(), **kw)


def _json(**kw: Any) -> Any:
    return sa.Column(JSONType, **kw)


class Source(SQLModel, table=True):
    """A configured source with its cursor and health."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(64), unique=True, nullable=False))
    kind: str = Field(max_length=32)
    config: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    cursor: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    last_run_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_success_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_error_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    consecutive_failures: int = 0
    posts_collected: int = 0
    quarantined: int = 0
    # When a failing source may run again (backoff); None means it may run now.
    next_run_after: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Post(SQLModel, table=True):
    """One public post, upserted on (platform, external_id)."""

    __table_args__ = (
        sa.UniqueConstraint("platform", "external_id", name="uq_post_platform_external_id"),
        sa.Index("ix_post_created_at", "created_at"),
        sa.Index("ix_post_thread", "platform", "root_external_id"),
        sa.Index("ix_post_parent", "platform", "parent_external_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    external_id: str = Field(max_length=512)
    url: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    title: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    text_hash: str = Field(max_length=64)
    lang: str | None = Field(default=None, max_length=16)
    author_handle: str | None = Field(default=None, max_length=256)
    author_key: str | None = Field(default=None, max_length=64, index=True)
    parent_external_id: str | None = Field(default=None, max_length=512)
    root_external_id: str | None = Field(default=None, max_length=512)
    engagement: dict[str, int] = Field(default_factory=dict, sa_column=_json(nullable=False))
    raw: Any = Field(default=None, sa_column=_json(nullable=True))
    source: str = Field(max_length=64)
    query: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    collected_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    deleted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # When classification was last requested; the sweep re-enqueues stale requests.
    classify_requested_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # The classification and human label in force (newest for the current text).
    classification_id: int | None = Field(default=None, index=True)
    label_id: int | None = Field(default=None)


class Classification(SQLModel, table=True):
    """A model's labels for one text of one post; exactly one per (post, model, text)."""

    __table_args__ = (
        sa.UniqueConstraint(
            "post_id", "model_version", "text_hash", name="uq_classification_post_model_text"
        ),
        sa.Index("ix_classification_model", "model_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("post.id", ondelete="CASCADE"), nullable=False
        )
    )
    model_version: str = Field(max_length=128)
    text_hash: str = Field(max_length=64)
    themes: list[str] = Field(default_factory=list, sa_column=_json(nullable=False))
    scores: dict[str, float] = Field(default_factory=dict, sa_column=_json(nullable=False))
    products: list[str] = Field(default_factory=list, sa_column=_json(nullable=False))
    targets: dict[str, str] = Field(default_factory=dict, sa_column=_json(nullable=False))
    evidence: dict[str, list[str]] = Field(default_factory=dict, sa_column=_json(nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class PostTag(SQLModel, table=True):
    """The labels in force for a post (human over model), one row per theme or product, for filters."""

    __tablename__ = "post_tag"
    __table_args__ = (sa.Index("ix_post_tag_kind_value", "kind", "value"),)

    post_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("post.id", ondelete="CASCADE"), primary_key=True
        )
    )
    kind: str = Field(sa_column=sa.Column(sa.String(8), primary_key=True))  # "theme" | "product"
    value: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))


class Label(SQLModel, table=True):
    """A human correction; the newest one for a post overrides the model everywhere."""

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("post.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    themes: list[str] = Field(default_factory=list, sa_column=_json(nullable=False))
    products: list[str] | None = Field(default=None, sa_column=_json(nullable=True))
    # The text the reviewer saw; a label on an earlier text stays, marked by this hash.
    text_hash: str = Field(max_length=64)
    author: str = Field(max_length=128)
    note: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class Rollup(SQLModel, table=True):
    """Posts per hour bucket x platform x product x theme; product/theme "*" are the totals."""

    __table_args__ = (
        sa.UniqueConstraint("bucket", "platform", "product", "theme", name="uq_rollup_key"),
        sa.Index("ix_rollup_theme_bucket", "theme", "bucket"),
    )

    id: int | None = Field(default=None, primary_key=True)
    bucket: datetime = Field(sa_column=_ts(nullable=False))
    platform: str = Field(max_length=32)
    product: str = Field(max_length=32)
    theme: str = Field(max_length=64)
    count: int = 0


class DirtyBucket(SQLModel, table=True):
    """An hour bucket whose rollups must be recomputed (written with the change that dirtied it)."""

    __tablename__ = "dirty_bucket"

    bucket: datetime = Field(sa_column=_ts(primary_key=True))
    marked_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class Quarantine(SQLModel, table=True):
    """A malformed item or response, kept raw with the reason; once per (source, payload)."""

    __table_args__ = (
        sa.UniqueConstraint("source", "payload_hash", name="uq_quarantine_source_payload"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=64, index=True)
    payload_hash: str = Field(max_length=64)
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    payload: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class ApiKey(SQLModel, table=True):
    """An API key: only its SHA-256 hash is stored; the prefix finds it."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    prefix: str = Field(sa_column=sa.Column(sa.String(16), unique=True, nullable=False))
    key_hash: str = Field(max_length=64)
    scopes: list[str] = Field(default_factory=list, sa_column=_json(nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ReleaseEvent(SQLModel, table=True):
    """A model launch: product, date, title."""

    __tablename__ = "release_event"

    id: int | None = Field(default=None, primary_key=True)
    product: str = Field(max_length=32)
    date: datetime = Field(sa_column=_ts(nullable=False))
    title: str = Field(max_length=256)


class AlertRule(SQLModel, table=True):
    """What to watch for spikes and where to send alerts."""

    __tablename__ = "alert_rule"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(128), unique=True, nullable=False))
    theme: str = Field(max_length=64)
    product: str | None = Field(default=None, max_length=32)
    platform: str | None = Field(default=None, max_length=32)
    granularity: str = Field(default="hour", max_length=16)
    budget: float = 1.0
    threshold: float | None = None
    min_count: int = 5
    cooldown_hours: int = 12
    # Webhook URLs and signing secrets are sealed at rest (core/sealing.py).
    channels: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(SealedChannels, nullable=False)
    )
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    # "count" tests the theme's posts; "share" tests them relative to the product's total volume.
    metric: str = Field(default="count", max_length=16)
    calibrated_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    updated_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # Digest of the history last backfilled (trends.alerts._backfill): the same history and
    # parameters are not backtested again; null: not yet.
    backfill_digest: str | None = Field(default=None, max_length=64)


class Alert(SQLModel, table=True):
    """One incident of a rule: why it opened, and its lifecycle."""

    __table_args__ = (sa.Index("ix_alert_rule_status", "rule_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    rule_id: int = Field(
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey("alert_rule.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    status: str = Field(default="open", max_length=16)
    opened_at: datetime = Field(sa_column=_ts(nullable=False))
    window_start: datetime = Field(sa_column=_ts(nullable=False))
    window_end: datetime = Field(sa_column=_ts(nullable=False))
    observed: float = 0
    expected: float = 0
    tail_p: float = 1.0
    score: float = 0.0
    threshold: float = 0.0
    details: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    acknowledged_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    resolved_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Delivery(SQLModel, table=True):
    """One attempt to deliver an alert or report through a channel."""

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("alert.id", ondelete="CASCADE"), nullable=True, index=True
        ),
    )
    channel: str = Field(max_length=32)
    # Which of the rule's channels (a hash of its settings), so a retry finds its earlier attempts.
    channel_key: str = Field(default="", max_length=32, index=True)
    target: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    attempt: int = 1
    status: str = Field(max_length=16)
    response: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class SourceOutage(SQLModel, table=True):
    """A window in which a source was failing: its hours are coverage gaps, not drops or spikes."""

    __tablename__ = "source_outage"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=64, index=True)
    # Coverage is known good up to here (the last success before the first failure).
    started_at: datetime = Field(sa_column=_ts(nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class RollupVersion(SQLModel, table=True):
    """Posts per hour x platform x model version in force, kept with the rollups: a series
    reads where the model version changed from these rows instead of scanning its posts."""

    __tablename__ = "rollup_version"

    bucket: datetime = Field(sa_column=_ts(primary_key=True))
    platform: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    model_version: str = Field(sa_column=sa.Column(sa.String(128), primary_key=True))
    posts: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    first_post_at: datetime = Field(sa_column=_ts(nullable=False))
    first_classified_at: datetime = Field(sa_column=_ts(nullable=False))


class RollupExample(SQLModel, table=True):
    """The top posts of an hour or a day x platform x product x theme, ranked as the weekly
    summary shows them (human label first, then the theme's score, then the newest).

    Kept with the rollups: an hour's rows are recomputed with its counts, a day's are merged from
    its hours' rows, so a week's examples are read from at most 7 x platforms rows per theme.
    """

    __tablename__ = "rollup_example"
    __table_args__ = (sa.Index("ix_rollup_example_read", "span", "product", "bucket", "rank"),)

    span: str = Field(sa_column=sa.Column(sa.String(4), primary_key=True))  # "hour" | "day"
    bucket: datetime = Field(sa_column=_ts(primary_key=True))
    platform: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    product: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    theme: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    rank: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    post_id: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    score: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    human: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
