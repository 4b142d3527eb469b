"""The lexical view's character n-grams: the same counts as sklearn's CountVectorizer, faster."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from classify.heads import CHAR_NGRAMS, CharNgrams
from tests.classify.test_onnx_backend import _real_texts

EDGES = [
    "",
    "   ",
    "a",
    "I",
    "ab",
    "é",
    "İstanbul ÇAĞ straße",  # lower() lengthens "İ"
    "x\n\ny  z\t\tw",
    "ChatGPT refused. AGAIN!!! #fail @openai https://t.co/abc",
    "我的工作全没了 ChatGPT",
    "🤖🤖 emoji-only 🤖",
    "supercalifragilisticexpialidocious " * 3,
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [*_real_texts(400), *EDGES]


def _reference(texts: list[str]) -> tuple[list[str], CountVectorizer]:
    """A vocabulary fitted on the texts (as training fits one), and sklearn's counter over it."""
    fitted = CountVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, min_df=2)
    fitted.fit(texts[::2])  # some n-grams of the other half are out of vocabulary
    vocab = list(fitted.get_feature_names_out())
    return vocab, CountVectorizer(
        analyzer="char_wb", ngram_range=CHAR_NGRAMS, vocabulary=vocab, lowercase=True
    )


def test_counts_are_sklearns_exactly(texts: list[str]) -> None:
    vocab, ref = _reference(texts)
    fast = CharNgrams(vocab, CHAR_NGRAMS)
    want = ref.transform(texts)
    for _ in range(2):  # cold, then from the remembered words
        got = fast.transform(texts)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert got.has_sorted_indices
        assert (got != want).nnz == 0
        np.testing.assert_array_equal(got.indices, want.indices)
    assert fast.transform([]).shape == (0, len(vocab))


def test_a_full_memo_is_cleared_and_the_counts_stay_right(texts: list[str]) -> None:
    vocab, ref = _reference(texts)
    fast = CharNgrams(vocab, CHAR_NGRAMS)
    fast.MAX_WORDS = 50
    got = fast.transform(texts)
    assert len(fast._words) <= 50
    assert (got != ref.transform(texts)).nnz == 0
