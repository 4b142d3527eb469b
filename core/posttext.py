"""What of a post gets classified, and its fingerprint."""

from __future__ import annotations

import hashlib


def classify_text(*, title: str | None, text: str) -> str:
    """The text a classifier reads: the title (if any and not already in the body) then the body."""
    return f"{title}\n\n{text}" if title and title not in text else text


def text_hash(*, title: str | None, text: str) -> str:
    """Fingerprint of what is classified; an edit that changes it asks for a new classification."""
    return hashlib.sha256(classify_text(title=title, text=text).encode("utf-8")).hexdigest()
