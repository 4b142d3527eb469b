"""Lone surrogates (an emoji cut in half by a JSON "\\ud83d" escape) and NUL become U+FFFD."""

from __future__ import annotations

import json

from core.posttext import storable, text_hash


def test_lone_halves_become_replacement_characters_at_any_depth() -> None:
    raw = json.loads(
        '{"t": "cut \\ud83d", "k\\udc00": [1, {"x": "\\ud800a"}], "ok": "\\ud83d\\ude00"}'
    )
    got = storable(raw)
    assert got == {"t": "cut \ufffd", "k\ufffd": [1, {"x": "\ufffda"}], "ok": "\U0001f600"}
    assert json.dumps(got, ensure_ascii=False).encode("utf-8")  # encodable now
    assert text_hash(title=None, text=got["t"])  # hashing failed on the raw text
    assert storable({"a": ["x\u0000"], "k": "\u0000"}) == {"a": ["x\ufffd"], "k": "\ufffd"}


def test_clean_values_come_back_as_they_were() -> None:
    raw = {"text": "an emoji \U0001f600 whole", "n": [1, 2.5, None, True], "nested": {"a": "é"}}
    assert storable(raw) is raw
    assert storable(("a", "b\udfff")) == ("a", "b\ufffd")
    assert storable(7) == 7
