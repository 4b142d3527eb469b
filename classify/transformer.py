"""The transformers classifier: MiniLM embeddings of a post and its parent, trained theme heads."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import structlog

from classify.artifacts import DEFAULT_ARTIFACT, ArtifactError, HeadsArtifact, load_artifact
from classify.artifacts import model_version as make_model_version
from classify.base import PostInput, Prediction
from classify.encoder import (
    MAX_TOKENS,
    Precision,
    SentenceEncoder,
    encoder_depth,
    load_encoder,
)
from classify.evidence import cue_phrases, theme_target
from classify.heads import SIGNALS, ThemeHeads, build_features, decide, post_signals
from classify.products import brand_product, tag_products
from core.settings import Settings, get_settings
from core.taxonomy import Taxonomy, load_taxonomy

log = structlog.get_logger(__name__)

MAX_CHARS = 4000  # far beyond the encoder's 128 tokens; keeps tokenizing a pasted essay cheap
SNIPPET_CHARS = 90


def pooled_layers(depth: int) -> tuple[int, ...]:
    """Middle encoder layers whose mean pools join the post's features (hidden_states indices):
    a third, half and two thirds of the way up, so a deeper encoder set in `model_path` is read
    at the same relative depths.

    MiniLM-L6 (6 layers): 2, 3, 4. Layer 2 joined 3 and 4 after a three-seed comparison
    (held-out +0.005, unseen writer A +0.021 macro-F1 on average). all-mpnet-base-v2 (12): 4, 6,
    8, where its layers 2-4 gave held-out macro-F1 0.844 and 4, 6, 8 gave 0.859 (classify_eval.md).
    Every pool comes from the same forward pass.
    """
    return tuple(sorted({min(depth, max(1, round(depth * f))) for f in (1 / 3, 1 / 2, 2 / 3)}))


# The packaged encoder's (six layers).
POOLED_LAYERS: tuple[int, ...] = pooled_layers(6)
# What the encoder reads: the post with each link as the word "link", cut at MAX_TOKENS word
# pieces. A URL is 10-30 word pieces of noise in a mean pool (7.7% of real posts' word pieces,
# 15% of tweets'), which also cost encoder time; the lexical view still sees the post as
# written. Heads record it.
URL = re.compile(r"https?://\S+|www\.\S+")
ENCODER_INPUT = f"links-as-word,max-{MAX_TOKENS}-tokens"


def encoder_text(text: str) -> str:
    """The text as the encoder reads it (see ENCODER_INPUT)."""
    return URL.sub("link", text)


def featurize(
    encoder: SentenceEncoder,
    posts: Sequence[PostInput],
    *,
    registry: dict[str, str] | None = None,
    layers: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix for the heads and the posts' sentence embeddings (for nearest examples).

    `layers` defaults to `pooled_layers` of the encoder's depth.
    """
    if layers is None:
        layers = pooled_layers(encoder_depth(encoder.path))
    texts = [(p.text or "")[:MAX_CHARS] for p in posts]
    parents = [(p.parent_text or "")[:MAX_CHARS] for p in posts]
    read = [encoder_text(t) for t in texts]
    read_parents = [encoder_text(t) for t in parents]
    # Replies in one batch often share a parent, and reposts differ only in their links:
    # encode every distinct string once.
    unique = list(dict.fromkeys([*read, *(t for t in read_parents if t)]))
    index = {t: i for i, t in enumerate(unique)}
    multi = encoder.encode_layers(unique, layers=layers)
    emb = multi[:, : encoder.dim]
    text_multi = multi[[index[t] for t in read]]
    text_emb = text_multi[:, : encoder.dim]
    parent_emb = np.zeros_like(text_emb)
    for i, t in enumerate(read_parents):
        if t:
            parent_emb[i] = emb[index[t]]
    signals = (
        np.stack(
            [
                post_signals(t, pt or None, p.author_handle, registry=registry)
                for t, pt, p in zip(texts, parents, posts, strict=True)
            ]
        )
        if posts
        else np.zeros((0, len(SIGNALS)), dtype=np.float32)
    )
    x = build_features(text_emb, parent_emb, signals)
    return np.hstack([x, text_multi[:, encoder.dim :]]), text_emb


def lexical_inputs(posts: Sequence[PostInput]) -> tuple[list[str], list[str]]:
    """Texts and parent texts (empty for top-level posts) for the lexical view."""
    return (
        [(p.text or "")[:MAX_CHARS] for p in posts],
        [(p.parent_text or "")[:MAX_CHARS] for p in posts],
    )


def post_products(post: PostInput, *, registry: dict[str, str] | None = None) -> list[str]:
    """Products a post names, or for a reply that names none, the ones its parent names."""
    products = tag_products(post.text or "", author_handle=post.author_handle, registry=registry)
    if not products and post.parent_text:
        products = tag_products(post.parent_text, registry=registry)
    return products


class TransformerClassifier:
    """Implements `classify.base.Classifier`; build once per process, call `predict` per batch."""

    def __init__(
        self,
        *,
        encoder: SentenceEncoder,
        artifact: HeadsArtifact,
        taxonomy: Taxonomy,
        brand_accounts: dict[str, str] | None = None,
    ) -> None:
        if artifact.meta.get("encoder_id") != encoder.id:
            raise ArtifactError(
                f"heads were trained on encoder {artifact.meta.get('encoder_id')!r}, "
                f"not {encoder.id!r}; retrain with `undertow classify train`"
            )
        self.layers = pooled_layers(encoder_depth(encoder.path))
        if tuple(artifact.meta.get("pooled_layers", ())) != self.layers:
            raise ArtifactError(
                f"heads were trained on encoder layers {artifact.meta.get('pooled_layers')}, "
                f"not {list(self.layers)}; retrain with `undertow classify train`"
            )
        if artifact.meta.get("encoder_input", "as-written") != ENCODER_INPUT:
            raise ArtifactError(
                f"heads were trained on encoder input {artifact.meta.get('encoder_input')!r}, "
                f"not {ENCODER_INPUT!r}; retrain with `undertow classify train`"
            )
        if set(artifact.themes) != set(taxonomy.theme_keys):
            raise ArtifactError(
                "the taxonomy's themes differ from the trained heads' "
                f"({sorted(set(taxonomy.theme_keys) ^ set(artifact.themes))}); retrain"
            )
        if artifact.meta.get("taxonomy_digest") != taxonomy.digest:
            log.warning(
                "classify.taxonomy_changed",
                trained=artifact.meta.get("taxonomy_digest"),
                current=taxonomy.digest,
            )
        self.encoder = encoder
        self.taxonomy = taxonomy
        self.registry = dict(brand_accounts or {})
        self.heads = ThemeHeads.from_artifact(
            artifact.themes,
            {k: v for k, v in artifact.arrays.items() if not k.startswith("exemplar_")},
            artifact.meta,
        )
        self.themes = artifact.themes
        col = {t: i for i, t in enumerate(self.themes)}
        self._exclusive = [(col[a], col[b]) for a, b in taxonomy.exclusive_pairs]
        self._version = make_model_version(
            encoder_id=encoder.version_id,
            heads_hash=artifact.content_hash,
            taxonomy_digest=taxonomy.digest,
        )
        ex = artifact.arrays.get("exemplar_emb")
        self._ex_emb = ex.astype(np.float32) if ex is not None else np.zeros((0, encoder.dim))
        self._ex_theme = artifact.arrays.get("exemplar_theme", np.zeros(0, dtype=np.int16))
        self._ex_snippets: list[str] = list(artifact.meta.get("exemplar_snippets", []))
        # torch releases the GIL; one forward pass at a time keeps threads from oversubscribing.
        # An encoder that bounds its own runs (ONNX: one per core) lets requests overlap instead.
        self._lock: contextlib.AbstractContextManager[object] = (
            contextlib.nullcontext() if encoder.bounds_threads else threading.Lock()
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        artifact_path: Path | None = None,
        precision: Precision = "auto",
    ) -> TransformerClassifier:
        """Encoder from `Settings.model_path` (or the packaged weights), the shipped heads."""
        s = settings or get_settings()
        encoder = load_encoder(s, precision=precision)
        return cls(
            encoder=encoder,
            artifact=load_artifact(artifact_path or DEFAULT_ARTIFACT),
            taxonomy=load_taxonomy(s.taxonomy_path),
            brand_accounts=s.brand_accounts,
        )

    @property
    def version(self) -> str:
        return self._version

    def scores(self, posts: Sequence[PostInput]) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities (n, T) in `self.themes` order, and the posts' embeddings."""
        with self._lock:
            x, emb = featurize(self.encoder, posts, registry=self.registry, layers=self.layers)
        x_lex = self.heads.lexicon.transform(*lexical_inputs(posts))
        return self.heads.predict_proba(x, x_lex), emb

    def predict(self, posts: list[PostInput]) -> list[Prediction]:
        """Themes over threshold, every theme's probability, products, targets, evidence."""
        if not posts:
            return []
        proba, emb = self.scores(posts)
        on = decide(proba, self.heads.thresholds, self._exclusive)
        sims = emb @ self._ex_emb.T if len(self._ex_emb) else None
        out: list[Prediction] = []
        for i, post in enumerate(posts):
            text = post.text or ""
            labelled = [t for t, theme in enumerate(self.themes) if on[i, t] and text.strip()]
            themes = [self.themes[t] for t in labelled]
            products = post_products(post, registry=self.registry)
            out.append(
                Prediction(
                    id=post.id,
                    themes=themes,
                    scores={th: round(float(proba[i, t]), 4) for t, th in enumerate(self.themes)},
                    products=products,
                    model_version=self._version,
                    targets=self._targets(post, themes),
                    evidence={
                        self.themes[t]: self._evidence(post, t, None if sims is None else sims[i])
                        for t in labelled
                    },
                )
            )
        return out

    def _targets(self, post: PostInput, themes: list[str]) -> dict[str, str]:
        text = post.text or ""
        text_products = tag_products(text, registry=self.registry)
        parent_products = tag_products(post.parent_text or "", registry=self.registry)
        brand = brand_product(post.author_handle, registry=self.registry)
        targets: dict[str, str] = {}
        for theme in themes:
            target = theme_target(
                theme,
                text=text,
                parent_text=post.parent_text,
                text_products=text_products,
                parent_products=parent_products,
                brand=brand,
            )
            if target:
                targets[theme] = target
        return targets

    def _evidence(self, post: PostInput, t: int, sims: np.ndarray | None) -> list[str]:
        theme = self.themes[t]
        phrases = cue_phrases(theme, post.text or "")
        if not phrases and post.parent_text:
            phrases = [f"(reply to) {p}" for p in cue_phrases(theme, post.parent_text, limit=1)]
        if sims is not None:
            mask = self._ex_theme == t
            if mask.any():
                j = int(np.flatnonzero(mask)[np.argmax(sims[mask])])
                phrases.append(f"like: {self._ex_snippets[j]}")
        return phrases


_default: TransformerClassifier | None = None
_default_lock = threading.Lock()


def load_default_classifier() -> TransformerClassifier:
    """The process-wide classifier from the settings, loaded on first use."""
    global _default  # noqa: PLW0603 - one model per worker process, by design
    with _default_lock:
        if _default is None:
            _default = TransformerClassifier.from_settings()
        return _default
