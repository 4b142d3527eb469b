"""What of a post gets classified, and its fingerprint."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# What no store keeps: a code point in U+D800-U+DFFF in a Python str is always a lone surrogate
# half (a pair would be one astral character), which JSON's "\\ud83d" escape of an emoji cut in
# two decodes to and UTF-8 cannot encode (PostgreSQL, SQLite, hashes and output files refuse it);
# NUL ("\\u0000"), which PostgreSQL refuses in text and JSON columns.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CONTAINERS = (dict, list, tuple)


def storable(value: Any) -> Any:
    """`value` with every lone surrogate and NUL in its strings (dict keys and values, list
    items, at any depth) replaced by U+FFFD; everything else as it was."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value) if _UNSTORABLE.search(value) else value
    if not isinstance(value, _CONTAINERS) or _clean_as_json(value):
        return value  # the usual case, found at C speed
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    return type(value)(storable(v) for v in value)


def classify_text(*, title: str | None, text: str) -> str:
    """The text a classifier reads: the title (if any and not already in the body) then the body."""
    return f"{title}\n\n{text}" if title and title not in text else text


def text_hash(*, title: str | None, text: str) -> str:
    """Fingerprint of what is classified; an edit that changes it asks for a new classification."""
    return hashlib.sha256(classify_text(title=title, text=text).encode("utf-8")).hexdigest()


def _clean_as_json(value: Any) -> bool:
    """True when `value` is plain JSON with nothing `_UNSTORABLE` in it (False: walk it)."""
    try:
        flat = json.dumps(value)  # escapes all but ASCII: NUL is "\\u0000", surrogates "\\udXXX"
    except (TypeError, ValueError, RecursionError):
        return False
    if "\\u0000" in flat:
        return False
    if "\\ud" not in flat:
        return True
    # Surrogate escapes: an emoji's pair, or a lone half? Unescaped, only a lone half remains one.
    return _UNSTORABLE.search(json.dumps(value, ensure_ascii=False)) is None
