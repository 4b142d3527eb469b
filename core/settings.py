"""One Settings object: defaults < undertow.toml < UNDERTOW_* environment variables."""

from __future__ import annotations

import os
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
    shared_dir: Path = Path("../shared")
    timezone: str = "UTC"
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False
    classifier: Literal["rules", "transformers"] = "rules"
    # Encoder id or local path for the transformers classifier; empty means the packaged weights.
    model_path: str = ""
    taxonomy_path: Path | None = None
    # Extra brand accounts (handle -> product key) on top of the built-in registry.
    brand_accounts: dict[str, str] = Field(default_factory=dict)
    classify_batch_size: int = Field(default=64, ge=1, le=1024)
    sweep_interval_s: int = Field(default=120, ge=10)
    rollup_interval_s: int = Field(default=60, ge=5)
    # Posts handed to a worker but still unclassified after this long are enqueued again.
    requeue_after_s: int = Field(default=600, ge=10)
    http_timeout_s: float = Field(default=20.0, gt=0)
    http_user_agent: str = "undertow/0.1 (+https://github.com/undertow-project/undertow)"
    rate_limit_per_minute: int = Field(default=600, ge=1)
    sources: list[SourceConfig] = Field(default_factory=list)

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
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError("source names must be unique")
        return self

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
