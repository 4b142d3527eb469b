"""One Settings object: defaults < undertow.toml < UNDERTOW_* environment variables."""

from __future__ import annotations

import os
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PLACEHOLDER_SECRET = "dev-only-change-me"  # noqa: S105 - a marker, refused outside development
CONFIG_ENV = "UNDERTOW_CONFIG"
_SECRET_OPTION = re.compile(r"(secret|password|token|key)", re.I)
SourceKind = Literal["hackernews", "reddit", "bluesky", "mastodon", "x", "rss", "file", "replay"]


class SourceConfig(BaseModel):
    """One `[[sources]]` entry: what to watch, where, and how often."""

    model_config = {"extra": "forbid"}

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    kind: SourceKind
    enabled: bool = True
    interval_s: int = Field(default=900, ge=30)
    queries: list[str] = Field(default_factory=list)
    # Where the API lives; tests and self-hosted instances point this elsewhere.
    base_url: str | None = None
    # How far back the first run reaches when the source has no cursor yet.
    backfill_hours: int = Field(default=24, ge=1, le=24 * 90)
    max_pages: int = Field(default=10, ge=1)
    thread_depth: int = Field(default=3, ge=0)
    thread_size: int = Field(default=200, ge=0)
    # Kind-specific settings (subreddits, instances, tags, feed urls, credentials, column maps).
    options: dict[str, Any] = Field(default_factory=dict)

    def __repr_args__(self) -> Any:
        # Credentials live in options; never let a repr or a log line show them.
        for key, value in super().__repr_args__():
            if key == "options" and isinstance(value, dict):
                value = {k: ("***" if _SECRET_OPTION.search(k) else v) for k, v in value.items()}
            yield key, value


class SmtpSettings(BaseModel):
    """Outgoing mail (alert and report emails) over SMTP."""

    model_config = {"extra": "forbid"}

    host: str = ""  # empty: email channels are refused
    port: int = Field(default=587, ge=1, le=65535)
    user: str = ""
    password: SecretStr = SecretStr("")
    from_addr: str = "undertow@localhost"
    starttls: bool = True
    timeout_s: float = Field(default=20.0, gt=0)


class AlertSettings(BaseModel):
    """Spike detection cadence, alert lifecycle and delivery."""

    model_config = {"extra": "forbid"}

    detect_interval_s: int = Field(default=900, ge=30)
    # History read per rule: the baseline, its dispersion and the calibrated threshold.
    history_days: int = Field(default=56, ge=7, le=365)
    # Buckets re-examined on every run, so posts that arrive late can still open an incident.
    recheck_buckets: int = Field(default=3, ge=1, le=48)
    # An alert resolves after this many complete buckets in a row back under the threshold.
    resolve_after_buckets: int = Field(default=3, ge=1, le=168)
    # Webhook (and SMTP) targets on loopback, private, link-local, multicast or unspecified
    # addresses are refused unless this is true (SSRF protection).
    allow_private_targets: bool = False
    # Signs generic webhooks when a channel has no secret of its own.
    webhook_secret: SecretStr = SecretStr("")
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    retry_base_s: float = Field(default=30.0, ge=0)
    retry_max_s: float = Field(default=900.0, ge=0)
    # Channels given to the default rules (`undertow alerts rules defaults`).
    default_channels: list[dict[str, Any]] = Field(default_factory=list)


def default_sources() -> list[SourceConfig]:
    """The packaged source list (core/default_sources.toml)."""
    data = tomllib.loads(Path(__file__).with_name("default_sources.toml").read_text("utf-8"))
    return [SourceConfig(**s) for s in data["sources"]]


class Settings(BaseSettings):
    """Everything configurable; read once per process through ``get_settings()``."""

    model_config = SettingsConfigDict(
        env_prefix="UNDERTOW_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    # SQLAlchemy URL; empty means a SQLite file under data_dir.
    database_url: str = ""
    # Celery broker; empty means kombu's filesystem transport under data_dir (no server needed).
    broker_url: str = ""
    # Redis for the scheduler lease in distributed mode; empty means a file lock under data_dir.
    redis_url: str = ""
    author_key_secret: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    # Signs dashboard session cookies and CSRF tokens (HMAC-SHA256); set it in production.
    session_secret: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    # Seals alert channels' webhook URLs and signing secrets in the database (AES-256-GCM,
    # core/sealing.py); empty means a key derived from session_secret.
    secrets_key: SecretStr = SecretStr("")
    session_max_age_s: int = Field(default=12 * 3600, ge=60)
    # Where the dashboard is reached from outside (links in emailed and Slack reports).
    public_url: str = ""
    shared_dir: Path = Path("../shared")
    timezone: str = "UTC"
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False
    classifier: Literal["rules", "transformers"] = "transformers"
    # Encoder id or local path for the transformers classifier; empty means the packaged weights.
    model_path: str = ""
    # Runtime of the encoder: ONNX Runtime or OpenVINO (both on the same graph, exported once
    # into a cache under data_dir) or torch. ONNX fp32 keeps torch fp32's labels; int8 (part of
    # the weights quantized per channel) is 10-20% faster and keeps design.md's label rule with
    # the current heads by a margin of 3 posts, but broke it with earlier heads (BENCHMARKS.md).
    # On a CPU that runs bf16 fast (AMX, or AMD's AVX-512 BF16) OpenVINO runs bf16 (and torch
    # its traced bf16 module), side by side, faster than ONNX fp32 with the same labels. "auto"
    # picks OpenVINO bf16 there and ONNX fp32 elsewhere: the model version then depends on the
    # host, so the service pins "onnx" (one version across a fleet of mixed CPUs) and
    # `undertow classify file`, which writes no database, takes "auto" unless this is set.
    classifier_backend: Literal["auto", "onnx", "openvino", "torch"] = "onnx"
    onnx_precision: Literal["int8", "fp32"] = "fp32"
    taxonomy_path: Path | None = None
    # Extra brand accounts (handle -> product key) on top of the built-in registry.
    brand_accounts: dict[str, str] = Field(default_factory=dict)
    classify_batch_size: int = Field(default=64, ge=1, le=1024)
    sweep_interval_s: int = Field(default=120, ge=10)
    rollup_interval_s: int = Field(default=60, ge=5)
    # Posts handed to a worker but still unclassified after this long are enqueued again.
    requeue_after_s: int = Field(default=600, ge=10)
    # Posts older than this many days are deleted with their labels, classifications and raw
    # payloads (daily job `retention.prune`, or `undertow db prune`); unset keeps everything.
    retention_days: int | None = Field(default=None, ge=1)
    http_timeout_s: float = Field(default=20.0, gt=0)
    http_user_agent: str = "undertow/0.1 (+https://github.com/undertow-project/undertow)"
    rate_limit_per_minute: int = Field(default=600, ge=1)
    # Exports streamed at once per API process (each holds database connections while it runs);
    # one more gets 503 with Retry-After instead of starving the pool.
    max_concurrent_exports: int = Field(default=3, ge=1, le=20)
    sources: list[SourceConfig] = Field(default_factory=default_sources)
    # Credentials that switch on the default Bluesky and X sources.
    bluesky_identifier: str = ""
    bluesky_app_password: SecretStr = SecretStr("")
    x_bearer_token: SecretStr = SecretStr("")
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, v: str) -> str:
        if v and not v.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return v

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        if self.env == "production" and (
            self.author_key_secret.get_secret_value() == PLACEHOLDER_SECRET
        ):
            raise ValueError("author_key_secret still holds the development placeholder")
        if self.env == "production" and (
            self.session_secret.get_secret_value() == PLACEHOLDER_SECRET
        ):
            raise ValueError("session_secret still holds the development placeholder")
        self._apply_credentials()
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError("source names must be unique")
        return self

    def _apply_credentials(self) -> None:
        bsky = self.bluesky_app_password.get_secret_value()
        token = self.x_bearer_token.get_secret_value()
        for src in self.sources:
            if src.kind == "bluesky" and self.bluesky_identifier and bsky:
                src.options.setdefault("identifier", self.bluesky_identifier)
                src.options.setdefault("app_password", bsky)
                src.enabled = True
            if src.kind == "x" and token:
                src.options.setdefault("bearer_token", token)
                src.enabled = True

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url or f"sqlite:///{(self.data_dir / 'undertow.db').resolve()}"
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = os.environ.get(CONFIG_ENV) or (
            "undertow.toml" if Path("undertow.toml").exists() else ""
        )
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{CONFIG_ENV}={path}: no such config file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
