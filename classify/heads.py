"""Multi-label theme heads: two linear views (embeddings, words) stacked and calibrated per theme.

The embedding view sees the post, its parent and a few product/brand signals; the lexical view
sees the post's words and character n-grams (it carries the non-English posts MiniLM reads
poorly) and the parent's words. Per theme, a tiny logistic regression on the two views'
out-of-fold logits, the theme's multilingual cue-word counts (post and parent) and the post's
length both combines and calibrates them (a long real post dilutes its one telling sentence in
a mean-pooled embedding, so length moves how much a logit means); thresholds are then chosen
on those out-of-fold probabilities, precision first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import scipy.sparse as sp

from classify.evidence import cue_counts
from classify.products import brand_product, tag_products

# Signals beside the embeddings, in feature order. Each one is there because replies and brand
# accounts behave differently: a brand replying to a post about a rival is the typical
# competitor solicitation, and "same here" only means something under its parent.
SIGNALS: tuple[str, ...] = (
    "has_parent",
    "brand_author",
    "brand_reply_to_rival",
    "text_names_product",
    "text_names_several_products",
    "parent_names_product",
)
# Ridge penalties tried per view (out-of-fold); larger is smoother.
EMB_C_GRID: tuple[float, ...] = (300.0, 1000.0, 3000.0)
LEX_C_GRID: tuple[float, ...] = (0.3, 1.0, 3.0)
# The precision floor for thresholds on out-of-fold scores. 0.85 cost half the recall on real
# posts for no precision gained there; 0.75 is the best trade on the held-out split.
MIN_PRECISION = 0.75
# A false "hateful" label on someone's post costs more than a missed one.
MIN_PRECISION_BY_THEME: dict[str, float] = {"hateful_framing": 0.95}
FOLDS = 5
PARENT_WEIGHT = 0.5  # a reply's own words count more than its parent's
MAX_CHAR_FEATURES = 40_000
CHAR_NGRAMS = (2, 5)  # character n-grams inside word boundaries, padded with a space
MAX_WORD_FEATURES = 20_000


def post_signals(
    text: str,
    parent_text: str | None,
    author_handle: str | None,
    *,
    registry: dict[str, str] | None = None,
) -> np.ndarray:
    """The non-embedding features of one post, as floats in SIGNALS order."""
    products = tag_products(text)
    parent_products = tag_products(parent_text or "")
    brand = brand_product(author_handle, registry=registry)
    rival = bool(brand and any(p != brand for p in parent_products + products))
    return np.array(
        [
            float(bool(parent_text)),
            float(brand is not None),
            float(rival),
            float(bool(products)),
            float(len(products) > 1),
            float(bool(parent_products)),
        ],
        dtype=np.float32,
    )


def build_features(text_emb: np.ndarray, parent_emb: np.ndarray, signals: np.ndarray) -> np.ndarray:
    """Embedding view: the post, its parent (zeros for top-level posts), their product, signals."""
    return np.hstack([text_emb, parent_emb, text_emb * parent_emb, signals]).astype(np.float32)


# --- the lexical view -------------------------------------------------------------------------


class WordNgrams:
    """Counts of a fixed vocabulary of word 1-2-grams: exactly what sklearn's
    CountVectorizer(ngram_range=(1, 2), lowercase=True) counts with its default tokens (two or
    more word characters), without importing sklearn (1.1 s of every model load) to count them.
    """

    TOKENS = re.compile(r"(?u)\b\w\w+\b")  # sklearn's default token_pattern

    def __init__(self, vocabulary: Sequence[str]) -> None:
        self.index = {gram: i for i, gram in enumerate(vocabulary)}
        if len(self.index) != len(vocabulary):
            raise ValueError("the word vocabulary holds a term twice")

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Sparse (n, vocabulary) int64 counts, indices sorted."""
        get = self.index.get
        indptr, indices, values = [0], list[int](), list[int]()
        for text in texts:
            tokens = self.TOKENS.findall(text.lower())
            grams = [*tokens, *map(" ".join, pairwise(tokens))]
            counts = Counter(j for j in map(get, grams) if j is not None)
            indices.extend(counts.keys())
            values.extend(counts.values())
            indptr.append(len(indices))
        return _counts_matrix(values, indices, indptr, len(self.index))


def _counts_matrix(
    values: list[int], indices: list[int], indptr: list[int], width: int
) -> sp.csr_matrix:
    out = sp.csr_matrix(
        (
            np.asarray(values, dtype=np.int64),
            np.asarray(indices, dtype=np.int64),
            np.asarray(indptr, dtype=np.int64),
        ),
        shape=(len(indptr) - 1, width),
    )
    out.sort_indices()
    return out


class CharNgrams:
    """Counts of a fixed vocabulary of character n-grams inside word boundaries: exactly what
    sklearn's CountVectorizer(analyzer="char_wb", lowercase=True) counts, about 3x faster.

    Generating every 2-5-gram of every word is most of the lexical view's time; words repeat, so
    each word's n-gram ids are worked out once and remembered (the memo is cleared when full).
    Safe to call from several threads: a word raced for is worked out twice, the same way.
    """

    WHITE_SPACES = re.compile(r"\s\s+")  # sklearn's whitespace normalisation
    MAX_WORDS = 100_000

    def __init__(self, vocabulary: Sequence[str], ngram_range: tuple[int, int] = (2, 5)) -> None:
        self.index = {gram: i for i, gram in enumerate(vocabulary)}
        self.min_n, self.max_n = ngram_range
        self._words: dict[str, list[int]] = {}

    def _ids(self, word: str) -> list[int]:
        get = self.index.get
        padded = f" {word} "
        length = len(padded)
        grams: list[str] = []
        for n in range(self.min_n, self.max_n + 1):
            if n >= length:  # the whole padded word, counted once (sklearn's "short word")
                grams.append(padded)
                break
            grams.extend(padded[i : i + n] for i in range(length - n + 1))
        return [j for j in map(get, grams) if j is not None]

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Sparse (n, vocabulary) int64 counts, indices sorted."""
        memo = self._words
        indptr, indices, values = [0], list[int](), list[int]()
        for text in texts:
            ids: list[int] = []
            for word in self.WHITE_SPACES.sub(" ", text.lower()).split():
                hit = memo.get(word)
                if hit is None:
                    if len(memo) >= self.MAX_WORDS:
                        memo.clear()
                    hit = memo[word] = self._ids(word)
                ids.extend(hit)
            counts = Counter(ids)
            indices.extend(counts.keys())
            values.extend(counts.values())
            indptr.append(len(indices))
        return _counts_matrix(values, indices, indptr, len(self.index))


@dataclass
class Lexicon:
    """Word 1-2-gram and character 2-5-gram vocabularies with their idf weights.

    Its matrices end with the stack's extra columns (`n_extras` of them): per theme, log1p of
    the cue-word count in the post, then in the parent; last, log1p of the post's word count.
    """

    words: list[str]
    chars: list[str]
    idf: np.ndarray  # (len(words) + len(chars),)
    themes: tuple[str, ...] = ()

    def _vectorizers(self) -> tuple[WordNgrams, CharNgrams]:
        # Building a vectorizer indexes its whole vocabulary: do it once, not per batch.
        cached = self.__dict__.get("_cached")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        word = WordNgrams(self.words)
        char = CharNgrams(self.chars, CHAR_NGRAMS)
        self.__dict__["_cached"] = (word, char)
        return word, char

    def transform(self, texts: Sequence[str], parents: Sequence[str]) -> sp.csr_matrix:
        """Sparse (n, words + chars + words + extras): post words and characters, parent words."""
        word, char = self._vectorizers()
        own = _tfidf(sp.hstack([word.transform(texts), char.transform(texts)]).tocsr(), self.idf)
        parent = _tfidf(word.transform(parents).tocsr(), self.idf[: len(self.words)])
        extras = sp.csr_matrix(self.extras(texts, parents))
        return sp.hstack([own, parent * PARENT_WEIGHT, extras]).tocsr().astype(np.float32)

    def extras(self, texts: Sequence[str], parents: Sequence[str]) -> np.ndarray:
        """Dense (n, 2T + 1): cue counts in the post, in the parent, and the post's length."""
        if not texts:
            return np.zeros((0, self.n_extras), dtype=np.float32)
        own = [cue_counts(t, self.themes) for t in texts]
        parent = [cue_counts(t, self.themes) for t in parents]
        length = [[len(t.split())] for t in texts]
        return np.log1p(np.hstack([own, parent, length])).astype(np.float32)

    @property
    def n_extras(self) -> int:
        return 2 * len(self.themes) + 1

    @property
    def width(self) -> int:
        return 2 * len(self.words) + len(self.chars)

    @classmethod
    def fit(cls, texts: Sequence[str], themes: Sequence[str] = ()) -> Lexicon:
        """Vocabularies (min_df 2, capped) and smoothed idf from the training texts."""
        from sklearn.feature_extraction.text import CountVectorizer

        word = CountVectorizer(ngram_range=(1, 2), min_df=2, max_features=MAX_WORD_FEATURES)
        char = CountVectorizer(
            analyzer="char_wb", ngram_range=CHAR_NGRAMS, min_df=2, max_features=MAX_CHAR_FEATURES
        )
        counts = sp.hstack([word.fit_transform(texts), char.fit_transform(texts)]).tocsr()
        df = np.asarray((counts > 0).sum(0)).ravel()
        idf = (np.log((1 + len(texts)) / (1 + df)) + 1).astype(np.float32)
        return cls(
            words=list(word.get_feature_names_out()),
            chars=list(char.get_feature_names_out()),
            idf=idf,
            themes=tuple(themes),
        )


def _tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    x = counts.astype(np.float32)
    x.data = 1.0 + np.log(x.data)  # sublinear tf
    x = x @ sp.diags(idf)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
    return sp.diags(1.0 / np.maximum(norms, 1e-9)) @ x


def logit_margin(proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How far each score lies above (+) or below (-) its theme's threshold, in log-odds."""
    p = np.clip(proba, 1e-7, 1 - 1e-7)
    t = np.clip(thresholds, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p)) - np.log(t / (1 - t))  # type: ignore[no-any-return]


def decide(
    proba: np.ndarray, thresholds: np.ndarray, exclusive: Sequence[tuple[int, int]] = ()
) -> np.ndarray:
    """(n, T) bool: each theme at or over its threshold, and of themes that exclude each other
    (``exclusive``, column pairs) only those further over their thresholds, in logits.

    The heads are fitted one theme at a time; the codebook's exclusions ("praise of a refusal is
    safety_support, not a refusal complaint") are kept here, where the themes meet. Where a
    post's themes conflict, they are taken from the largest margin down and a theme is dropped
    only if one already kept excludes it: a theme that lost keeps no other theme out.
    """
    on = proba >= thresholds
    if not exclusive:
        return on
    margin = logit_margin(proba, thresholds)
    rivals: dict[int, set[int]] = {}
    conflict = np.zeros(len(on), dtype=bool)
    for a, b in exclusive:
        rivals.setdefault(a, set()).add(b)
        rivals.setdefault(b, set()).add(a)
        conflict |= on[:, a] & on[:, b]
    for i in np.flatnonzero(conflict):
        kept: set[int] = set()
        for col in np.argsort(-margin[i], kind="stable"):
            if not on[i, col]:
                continue
            if rivals.get(int(col), set()) & kept:
                on[i, col] = False
            else:
                kept.add(int(col))
    return on


# --- fitting ----------------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


def ridge_primal(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """All themes at once: least squares on 0/1 targets with an L2 penalty; (W (D,T), b (T,)).

    A ridge fit is one linear solve, against hundreds of iterations for a logistic one, and
    ranks posts as well here (out-of-fold F1 within 0.02); the stack calibrates its scores.
    """
    x64 = x.astype(np.float64)
    y_mean = y.mean(0)
    w = np.linalg.solve(x64.T @ x64 + lam * np.eye(x.shape[1]), x64.T @ (y - y_mean))
    return w.astype(np.float32), y_mean.astype(np.float32)


def ridge_dual(x: sp.csr_matrix, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge for wide sparse features through the (n, n) Gram matrix; (W (D,T), b (T,))."""
    gram = (x @ x.T).toarray().astype(np.float64)
    y_mean = y.mean(0)
    alpha = np.linalg.solve(gram + lam * np.eye(gram.shape[0]), y - y_mean)
    return np.asarray(x.T @ alpha).astype(np.float32), y_mean.astype(np.float32)


@dataclass
class DenseView:
    """Standardised dense features -> logits."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (D, T)
    bias: np.ndarray

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights + self.bias

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, c: float) -> DenseView:
        mean, scale = x.mean(0), x.std(0) + 1e-3
        w, b = ridge_primal((x - mean) / scale, y.astype(np.float64), c)
        return cls(mean.astype(np.float32), scale.astype(np.float32), w, b)


@dataclass
class SparseView:
    """TF-IDF features -> logits."""

    weights: np.ndarray  # (D, T)
    bias: np.ndarray

    def logits(self, x: sp.csr_matrix) -> np.ndarray:
        # The lexicon's extra columns (after the n-grams) are the stack's, not this view's.
        return np.asarray(x[:, : self.weights.shape[0]] @ self.weights) + self.bias

    @classmethod
    def fit(cls, x: sp.csr_matrix, y: np.ndarray, c: float) -> SparseView:
        w, b = ridge_dual(x, y.astype(np.float64), c)
        return cls(w, b)


@dataclass
class ThemeHeads:
    """Both views, the per-theme stack (a_emb, a_lex, c) and the thresholds."""

    themes: tuple[str, ...]
    lexicon: Lexicon
    emb: DenseView
    lex: SparseView
    stack: np.ndarray  # (T, STACK_INPUTS + 1): weights, then the intercept
    thresholds: np.ndarray  # (T,)

    def predict_proba(self, x_emb: np.ndarray, x_lex: sp.csr_matrix) -> np.ndarray:
        """Calibrated probabilities (n, T); `x_lex` from `self.lexicon.transform`."""
        extras = x_lex[:, x_lex.shape[1] - self.lexicon.n_extras :].toarray()
        return _stacked(self.emb.logits(x_emb), self.lex.logits(x_lex), extras, self.stack)

    def arrays(self) -> dict[str, np.ndarray]:
        """Named arrays for the artifact (the vocabularies go in its metadata)."""
        return {
            "emb_mean": self.emb.mean,
            "emb_scale": self.emb.scale,
            "emb_weights": self.emb.weights,
            "emb_bias": self.emb.bias,
            # float16 halves the largest array; its rounding moves logits by ~1e-4.
            "lex_weights": self.lex.weights.astype(np.float16),
            "lex_bias": self.lex.bias,
            "lex_idf": self.lexicon.idf,
            "stack": self.stack,
            "thresholds": self.thresholds,
        }

    def meta(self) -> dict[str, Any]:
        return {
            "lex_words": self.lexicon.words,
            "lex_chars": self.lexicon.chars,
            "stack_inputs": list(STACK_INPUTS),
        }

    @classmethod
    def from_artifact(
        cls, themes: Sequence[str], arrays: dict[str, np.ndarray], meta: dict[str, Any]
    ) -> ThemeHeads:
        """Rebuild heads from `arrays()` and `meta()` output."""
        f = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
        return cls(
            themes=tuple(themes),
            lexicon=Lexicon(
                list(meta["lex_words"]), list(meta["lex_chars"]), f["lex_idf"], tuple(themes)
            ),
            emb=DenseView(f["emb_mean"], f["emb_scale"], f["emb_weights"], f["emb_bias"]),
            lex=SparseView(f["lex_weights"], f["lex_bias"]),
            stack=f["stack"],
            thresholds=f["thresholds"],
        )


# What the per-theme stack sees, in order (its last column is the intercept).
STACK_INPUTS: tuple[str, ...] = (
    "emb_logit",
    "lex_logit",
    "cues",
    "parent_cues",
    "log_length",
    "log_length*emb_logit",
    "log_length*lex_logit",
)


def _stack_inputs(z_emb: np.ndarray, z_lex: np.ndarray, extras: np.ndarray) -> np.ndarray:
    """(n, T, len(STACK_INPUTS)) from both views' logits and the lexicon's extra columns."""
    n, t = z_emb.shape
    length = np.repeat(extras[:, -1:], t, axis=1)
    return np.stack(
        [
            z_emb,
            z_lex,
            extras[:, :t],
            extras[:, t : 2 * t],
            length,
            length * z_emb,
            length * z_lex,
        ],
        axis=2,
    ).reshape(n, t, len(STACK_INPUTS))


def _stacked(
    z_emb: np.ndarray, z_lex: np.ndarray, extras: np.ndarray, stack: np.ndarray
) -> np.ndarray:
    inputs = _stack_inputs(z_emb, z_lex, extras)
    return _sigmoid(np.einsum("ntk,tk->nt", inputs, stack[:, :-1]) + stack[:, -1])


@dataclass
class FitReport:
    """What fitting chose, and per theme the out-of-fold stats at the chosen threshold."""

    emb_c: float
    lex_c: float
    oof_macro_f1: float
    per_theme: dict[str, dict[str, float]]


def choose_threshold(
    p: np.ndarray, y: np.ndarray, *, min_precision: float = MIN_PRECISION
) -> tuple[float, dict[str, float]]:
    """Precision first: the best-F1 threshold whose precision reaches the floor, else best F0.5."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order].astype(np.int64)
    tp = np.cumsum(ys)
    k = np.arange(1, len(ps) + 1)
    pos = max(int(ys.sum()), 1)
    # Only cut between distinct scores.
    last = np.r_[ps[1:] != ps[:-1], True] & (tp > 0)
    if not last.any():
        return 0.5, {"threshold": 0.5, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    prec, rec = tp / k, tp / pos
    f1 = np.where(last, 2 * prec * rec / np.maximum(prec + rec, 1e-9), -1)
    f05 = np.where(last, 1.25 * prec * rec / np.maximum(0.25 * prec + rec, 1e-9), -1)
    ok = last & (prec >= min_precision)
    i = int(np.argmax(np.where(ok, f1, -1))) if ok.any() else int(np.argmax(f05))
    # Halfway to the next lower score, so a slightly lower score on new data still counts.
    below = ps[i + 1] if i + 1 < len(ps) else ps[i] - 0.02
    threshold = float(np.clip((ps[i] + below) / 2, 0.02, 0.98))
    return threshold, {
        "threshold": threshold,
        "precision": float(prec[i]),
        "recall": float(rec[i]),
        "f1": float(2 * prec[i] * rec[i] / max(prec[i] + rec[i], 1e-9)),
    }


def _fit_stack(
    z_emb: np.ndarray, z_lex: np.ndarray, extras: np.ndarray, y: np.ndarray
) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    inputs = _stack_inputs(z_emb, z_lex, extras)
    stack = np.zeros((y.shape[1], len(STACK_INPUTS) + 1), dtype=np.float32)
    for t in range(y.shape[1]):
        if y[:, t].min() == y[:, t].max():
            stack[t, -1] = -8.0 if y[:, t].max() == 0 else 8.0
            continue
        lr = LogisticRegression(C=1.0, max_iter=2000)
        lr.fit(inputs[:, t], y[:, t])
        stack[t] = (*lr.coef_[0], lr.intercept_[0])
    return stack


def _oof(
    fold: np.ndarray, fit_predict: Any, y: np.ndarray, grid: Sequence[float]
) -> tuple[float, np.ndarray]:
    """The grid value with the best mean out-of-fold F1, and its out-of-fold logits."""
    best: tuple[float, float, np.ndarray] | None = None
    for c in grid:
        z = np.zeros(y.shape)
        for f in np.unique(fold):
            z[fold == f] = fit_predict(fold != f, fold == f, c)
        score = float(
            np.mean(
                [choose_threshold(_sigmoid(z[:, t]), y[:, t])[1]["f1"] for t in range(y.shape[1])]
            )
        )
        if best is None or score > best[1]:
            best = (c, score, z)
    assert best is not None
    return best[0], best[2]


def fit_heads(
    x_emb: np.ndarray,
    texts: Sequence[str],
    parents: Sequence[str],
    y: np.ndarray,
    themes: Sequence[str],
    *,
    vocab_texts: Sequence[str] | None = None,
    folds: int = FOLDS,
    min_precision: float = MIN_PRECISION,
    seed: int = 13,
) -> tuple[ThemeHeads, FitReport]:
    """Choose C per view, stack and calibrate and threshold on out-of-fold logits, refit on all.

    `vocab_texts` (default `texts`) are the texts whose n-grams form the stored vocabulary:
    training passes only the written examples, so no fragment of a real post is ever saved.
    """
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    lexicon = Lexicon.fit(texts if vocab_texts is None else vocab_texts, themes)
    x_all = lexicon.transform(texts, parents)
    x_lex = x_all[:, : lexicon.width]
    extras = x_all[:, lexicon.width :].toarray()

    def emb_fp(tr: np.ndarray, te: np.ndarray, c: float) -> np.ndarray:
        return DenseView.fit(x_emb[tr], y[tr], c).logits(x_emb[te])

    def lex_fp(tr: np.ndarray, te: np.ndarray, c: float) -> np.ndarray:
        return SparseView.fit(x_lex[tr], y[tr], c).logits(x_lex[te])

    emb_c, z_emb = _oof(fold, emb_fp, y, EMB_C_GRID)
    lex_c, z_lex = _oof(fold, lex_fp, y, LEX_C_GRID)
    stack = _fit_stack(z_emb, z_lex, extras, y)
    p = _stacked(z_emb, z_lex, extras, stack)
    thresholds = np.zeros(len(themes), dtype=np.float32)
    per_theme: dict[str, dict[str, float]] = {}
    for t, theme in enumerate(themes):
        floor = max(min_precision, MIN_PRECISION_BY_THEME.get(theme, 0.0))
        thresholds[t], per_theme[theme] = choose_threshold(p[:, t], y[:, t], min_precision=floor)
    heads = ThemeHeads(
        themes=tuple(themes),
        lexicon=lexicon,
        emb=DenseView.fit(x_emb, y, emb_c),
        lex=SparseView.fit(x_lex, y, lex_c),
        stack=stack,
        thresholds=thresholds,
    )
    oof_macro = float(np.mean([s["f1"] for s in per_theme.values()]))
    return heads, FitReport(emb_c, lex_c, oof_macro, per_theme)
