"""Times as outside data writes them: epoch seconds or milliseconds, ISO 8601, RFC 822."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def read_time(value: object) -> datetime:
    """A timezone-aware UTC datetime (no zone means UTC); ValueError says what is unreadable.

    Numbers and numeric strings are epoch seconds, or milliseconds above 1e11. No range check:
    ingest adds its own (`ingest.normalize.parse_time`), a backtest series may be anywhen.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"no time: {value!r:.60}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"bad epoch: {value!r}")
        seconds = value / 1000 if abs(value) > 100_000_000_000 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as e:
            raise ValueError(f"bad epoch: {value!r}") from e
    if not isinstance(value, str):
        raise ValueError(f"time is a {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError("empty time")
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return read_time(float(text))
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    # fromisoformat takes at most six fractional digits; some servers send nine.
    iso = _FRACTION.sub(r"\1", iso, count=1)
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            parsed = None
    if parsed is None:
        raise ValueError(f"unreadable time: {text!r:.60}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
