"""Typed, expected failures; the API renders each as problem+json with its status."""

from __future__ import annotations

from typing import Any


class UndertowError(Exception):
    """Base of expected errors: a status, a short title, a useful detail."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(UndertowError):
    status = 404
    title = "Not found"


class Conflict(UndertowError):
    status = 409
    title = "Conflict"


class InvalidInput(UndertowError):
    status = 422
    title = "Invalid input"


class Unauthorized(UndertowError):
    status = 401
    title = "Unauthorized"


class Forbidden(UndertowError):
    status = 403
    title = "Forbidden"


class RateLimited(UndertowError):
    status = 429
    title = "Too many requests"


class Unavailable(UndertowError):
    status = 503
    title = "Service unavailable"


class ConfigError(UndertowError):
    title = "Configuration error"
