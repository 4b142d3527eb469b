"""Structured logging (structlog) with secrets redacted before anything is rendered."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(secret|token|password|authorization|api_key|cookie|bearer)", re.I)
_KEY_PATTERN = re.compile(r"ut_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{20,}")


def _scrub(value: Any) -> Any:
    # Keys handed over inside lists, dicts or an exception's text are masked too.
    if isinstance(value, str):
        return _KEY_PATTERN.sub("ut_***", value)
    if isinstance(value, dict):
        return {k: "***" if _SECRET_KEYS.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for k, v in list(event.items()):
        event[k] = "***" if _SECRET_KEYS.search(k) else _scrub(v)
    return event


_base_factory = logging.getLogRecordFactory()


def _redacting_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Stdlib records (uvicorn, celery, httpx) with API keys masked, whatever handler gets them."""
    record = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is logging's to report, not ours
        return record
    if "ut_" in message and _KEY_PATTERN.search(message):
        record.msg, record.args = _KEY_PATTERN.sub("ut_***", message), None
    return record


class _Stderr:
    """Whatever sys.stderr is at write time (tests and runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(*, level: str = "INFO", json: bool = False) -> None:
    """Route stdlib and structlog output through one renderer; idempotent."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # Redact after the traceback is rendered, so a key inside an exception is masked too.
        processors=[*shared, structlog.processors.format_exc_info, _redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    logging.setLogRecordFactory(_redacting_record)


def get_logger(name: str | None = None) -> Any:
    """A bound structlog logger; call with an event name and fields."""
    return structlog.get_logger(name)
