"""Plain text from the platforms' HTML and entity-escaped strings."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "blockquote",
        "pre",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "hr",
        "section",
        "article",
        "header",
        "footer",
    }
)
_SKIP_TAGS = frozenset({"script", "style", "template", "head", "title"})
# C0/C1 controls except tab and newline; PostgreSQL refuses NUL in text columns.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n" if tag == "br" else "\n\n")
            if tag == "li":
                self.parts.append("- ")
            if tag == "pre":
                self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS and tag != "br":
            self.parts.append("\n\n")
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        # Outside <pre>, source newlines are just whitespace, as a browser renders them.
        self.parts.append(data if self._pre else data.replace("\n", " "))


def normalize_whitespace(text: str) -> str:
    """Drop control characters, collapse runs of spaces, keep at most one blank line."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(value: str | None) -> str:
    """Plain text from an HTML fragment: tags dropped, blocks as line breaks, entities decoded."""
    if not value:
        return ""
    if "<" not in value:
        return clean_text(value)
    parser = _TextExtractor()
    try:
        parser.feed(value)
        parser.close()
    except (AssertionError, ValueError):
        # html.parser gives up on some broken markup; fall back to stripping tags.
        return clean_text(re.sub(r"<[^>]*>", " ", value))
    return normalize_whitespace("".join(parser.parts))


def clean_text(value: str | None) -> str:
    """Text that may carry HTML entities (Reddit, Algolia): entities decoded, whitespace tidied."""
    if not value:
        return ""
    return normalize_whitespace(html.unescape(value))
