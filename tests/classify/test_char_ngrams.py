"""The lexical view's word and character n-grams: the same counts as sklearn's CountVectorizer."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from classify.heads import CHAR_NGRAMS, CharNgrams, WordNgrams
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
    "it's a don't-won't I'm x2 b_c 42 4.2 ÉCOLE école",  # apostrophes, digits, "_", accents
    "one",  # a single token: no bigram
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


def test_word_counts_are_sklearns_exactly(texts: list[str]) -> None:
    fitted = CountVectorizer(ngram_range=(1, 2), min_df=2)
    fitted.fit(texts[::2])  # some words and pairs of the other half are out of vocabulary
    vocab = list(fitted.get_feature_names_out())
    want = CountVectorizer(ngram_range=(1, 2), vocabulary=vocab, lowercase=True).transform(texts)
    got = WordNgrams(vocab).transform(texts)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert got.has_sorted_indices and want.nnz > 1000
    assert any(" " in vocab[j] for j in got.indices)  # bigrams are counted, not only words
    assert (got != want).nnz == 0
    np.testing.assert_array_equal(got.indices, want.indices)
    assert WordNgrams(vocab).transform([]).shape == (0, len(vocab))
    with pytest.raises(ValueError, match="twice"):
        WordNgrams(["a b", "a b"])


def test_labelling_a_post_does_not_import_sklearn() -> None:
    """sklearn is for training; importing it took 1.1 s of every model load."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from classify.base import PostInput\n"
        "from classify.transformer import TransformerClassifier\n"
        "c = TransformerClassifier.from_settings()\n"
        "p = c.predict([PostInput('1', 'Claude refused to help, so I cancelled', parent_text='hm')])\n"
        "assert p[0].themes, p\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
