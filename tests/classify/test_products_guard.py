"""The word pre-check in product tagging skips detectors but never changes what they find."""

from __future__ import annotations

import pytest

from classify import products
from classify.training import load_examples, training_files

TRICKY = [
    "GEMİNİ 2.5 is great",  # dotted capital I: IGNORECASE matches it to i, lower() does not
    "Mıstral AI shipped",  # dotless i
    "ſora made this",  # long s
    "DeepSee\u212a r1",  # Kelvin sign
    "use o1 for this",
    "o3 model is slow",
    "Dall-E and Le Chat and Mixtral 8x7b",
    "bing chat, Pi.ai, Character.AI, ERNIE Bot, command r",
    "Google's AI mode; LLaMA 3; Meta AI; pplx",
    "the captain and his copilot; a llama at the zoo; the mistral wind",
]


def _unguarded(text: str) -> frozenset[str]:
    return frozenset(k for k, detect in products._DETECTORS.items() if detect(text))


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_spellings_tag_as_without_the_check(text: str) -> None:
    assert products._named_in.__wrapped__(text) == _unguarded(text)


def test_training_texts_tag_as_without_the_check() -> None:
    examples = load_examples(training_files())
    texts = {t for e in examples for t in (e.text, e.parent_text or "")}
    found = {t: products._named_in.__wrapped__(t) for t in texts}
    assert found == {t: _unguarded(t) for t in texts}
    assert sum(bool(v) for v in found.values()) > 100  # the check did not just find nothing
