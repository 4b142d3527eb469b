"""Train the theme heads from the project's labelled JSON Lines and save the artifact."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from classify.artifacts import DEFAULT_ARTIFACT, HeadsArtifact, save_artifact
from classify.base import PostInput
from classify.devset import load_real_train
from classify.encoder import Encoder, encoder_depth
from classify.heads import SIGNALS, FitReport, fit_heads
from classify.transformer import (
    ENCODER_INPUT,
    SNIPPET_CHARS,
    featurize,
    lexical_inputs,
    pooled_layers,
)
from core.taxonomy import Taxonomy

log = structlog.get_logger(__name__)

TRAIN_DIR = Path(__file__).with_name("data") / "train"
EXEMPLARS_PER_THEME = 40
SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """A training file holds a line that is not a valid labelled example."""


@dataclass(frozen=True)
class Example:
    """One labelled post."""

    id: str
    text: str
    themes: tuple[str, ...]
    parent_text: str | None = None
    author_handle: str | None = None
    platform: str | None = None
    lang: str | None = None
    products: tuple[str, ...] = ()
    targets: dict[str, str] = field(default_factory=dict)

    def as_post(self) -> PostInput:
        return PostInput(
            id=self.id,
            text=self.text,
            parent_text=self.parent_text,
            author_handle=self.author_handle,
            platform=self.platform,
        )


def parse_example(obj: dict[str, Any], *, known_themes: Iterable[str] | None = None) -> Example:
    """One JSON object to an Example; unknown themes are an error, not silently dropped."""
    if not isinstance(obj.get("id"), str | int) or not isinstance(obj.get("text"), str):
        raise DataError("needs a string `id` and `text`")
    raw_themes = obj.get("themes") or ()
    if not isinstance(raw_themes, list | tuple) or not all(isinstance(t, str) for t in raw_themes):
        raise DataError("`themes` must be a list of theme keys")
    # "none" is how a labeller writes "no theme" (design.md: it is not an entry of `themes`).
    themes = tuple(t for t in raw_themes if t != "none")
    if known_themes is not None:
        unknown = set(themes) - set(known_themes)
        if unknown:
            raise DataError(f"unknown themes {sorted(unknown)}")
    return Example(
        id=str(obj["id"]),
        text=obj["text"],
        themes=themes,
        parent_text=obj.get("parent_text") or None,
        author_handle=obj.get("author_handle") or None,
        platform=obj.get("platform"),
        lang=obj.get("lang"),
        products=tuple(obj.get("products") or ()),
        targets=dict(obj.get("targets") or {}),
    )


def load_examples(
    paths: Sequence[Path], *, known_themes: Iterable[str] | None = None
) -> list[Example]:
    """Examples from JSON Lines files ('#' lines are comments); a bad line names its file:line."""
    known = tuple(known_themes) if known_themes is not None else None
    seen: dict[str, str] = {}
    out: list[Example] = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                ex = parse_example(json.loads(line), known_themes=known)
            except (json.JSONDecodeError, DataError) as e:
                raise DataError(f"{path}:{n}: {e}") from e
            if ex.id in seen:
                raise DataError(f"{path}:{n}: id {ex.id!r} already used in {seen[ex.id]}")
            seen[ex.id] = f"{path.name}:{n}"
            out.append(ex)
    return out


def training_files(data_dir: Path = TRAIN_DIR) -> list[Path]:
    """The training set's files, in a stable order."""
    return sorted(data_dir.glob("*.jsonl"))


def split_of(example_id: str) -> str:
    """70/15/15 train/val/test by a hash of the id: stable as files grow, no seed to forget."""
    bucket = int(hashlib.sha256(example_id.encode()).hexdigest()[:8], 16) % 100
    return "train" if bucket < 70 else "val" if bucket < 85 else "test"


def split_examples(examples: Sequence[Example]) -> dict[str, list[Example]]:
    """Examples by split name."""
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for ex in examples:
        out[split_of(ex.id)].append(ex)
    return out


def label_matrix(examples: Sequence[Example], themes: Sequence[str]) -> np.ndarray:
    """(n, T) 0/1 matrix of gold labels."""
    y = np.zeros((len(examples), len(themes)), dtype=np.int8)
    col = {t: i for i, t in enumerate(themes)}
    for i, ex in enumerate(examples):
        for t in ex.themes:
            y[i, col[t]] = 1
    return y


@dataclass
class TrainResult:
    """The saved artifact's path and hash, and what fitting chose."""

    path: Path
    content_hash: str
    n_fit: int
    n_test: int
    fit: FitReport
    seconds: float
    n_real: int = 0
    real_note: str = ""
    n_reviewed: int = 0


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"


def _exemplars(
    examples: Sequence[Example], emb: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per theme, a spread of positive examples to show as "like: ..." evidence."""
    rows: list[int] = []
    theme_of: list[int] = []
    for t in range(y.shape[1]):
        pos = np.flatnonzero(y[:, t])
        # Every k-th positive in file order: different files, voices and lengths, deterministic.
        step = max(1, len(pos) // EXEMPLARS_PER_THEME)
        for i in pos[::step][:EXEMPLARS_PER_THEME]:
            rows.append(int(i))
            theme_of.append(t)
    return (
        emb[rows].astype(np.float16),
        np.array(theme_of, dtype=np.int16),
        [_snippet(examples[i].text) for i in rows],
    )


def real_examples(shared_dir: Path, themes: Sequence[str]) -> list[Example]:
    """The hand-labelled real training posts (ids in the package, texts from `shared_dir`)."""
    known = set(themes)
    return [
        Example(id=f"real:{p.id}", text=p.text, themes=tuple(t for t in p.themes if t in known))
        for p in load_real_train(shared_dir)
    ]


def train(
    *,
    encoder: Encoder,
    taxonomy: Taxonomy,
    data_dir: Path = TRAIN_DIR,
    out: Path = DEFAULT_ARTIFACT,
    registry: dict[str, str] | None = None,
    include_test: bool = False,
    shared_dir: Path | None = None,
    reviewed: Sequence[Example] = (),
) -> TrainResult:
    """Fit on train+val (thresholds from out-of-fold scores), keep test unseen, save atomically.

    With `shared_dir`, the real posts of `data/train_real_labels.jsonl` join the fit set (their
    texts are read from there; where the folder is absent, training goes on without them). They
    never join the held-out split, and neither their words nor their texts go into the artifact.
    `reviewed` (the fit part of `classify.reviewed.reviewed_examples`) joins the fit set on the
    same terms.
    """
    started = time.perf_counter()
    themes = taxonomy.theme_keys
    examples = load_examples(training_files(data_dir), known_themes=themes)
    if not examples:
        raise DataError(f"no training examples under {data_dir}")
    splits = split_examples(examples)
    written = splits["train"] + splits["val"] + (splits["test"] if include_test else [])
    real: list[Example] = []
    real_note = "no shared folder given: written examples only"
    if shared_dir is not None:
        try:
            real = real_examples(shared_dir, themes)
            real_note = f"{len(real)} real posts from {shared_dir}"
        except FileNotFoundError as e:
            real_note = f"real training posts skipped ({e}); written examples only"
            log.warning("classify.real_train_skipped", reason=str(e))
    fit_set = written + real + list(reviewed)
    y = label_matrix(fit_set, themes)
    posts = [e.as_post() for e in fit_set]
    layers = pooled_layers(encoder_depth(encoder.path))
    x, emb = featurize(encoder, posts, registry=registry, layers=layers)
    texts, parents = lexical_inputs(posts)
    heads, report = fit_heads(x, texts, parents, y, themes, vocab_texts=[e.text for e in written])
    # Evidence snippets ship in the artifact: written examples only, never a real post's text.
    ex_emb, ex_theme, snippets = _exemplars(written, emb[: len(written)], y[: len(written)])
    artifact = HeadsArtifact(
        arrays={**heads.arrays(), "exemplar_emb": ex_emb, "exemplar_theme": ex_theme},
        meta={
            "themes": list(themes),
            "encoder_id": encoder.id,
            "taxonomy_digest": taxonomy.digest,
            "signals": list(SIGNALS),
            "features": "text_emb|parent_emb|text_emb*parent_emb|signals|text_layer_pools",
            "pooled_layers": list(layers),
            "encoder_input": ENCODER_INPUT,
            "exemplar_snippets": snippets,
            **heads.meta(),
            "training": {
                "n_fit": len(fit_set),
                "n_real": len(real),
                "n_reviewed": len(reviewed),
                "n_test_held_out": 0 if include_test else len(splits["test"]),
                "data_digest": _data_digest(fit_set),
                "emb_c": report.emb_c,
                "lex_c": report.lex_c,
                "oof_macro_f1": round(report.oof_macro_f1, 4),
                "per_theme": {
                    k: {m: round(v, 4) for m, v in s.items()} for k, s in report.per_theme.items()
                },
            },
        },
    )
    digest = save_artifact(artifact, out)
    seconds = time.perf_counter() - started
    log.info(
        "classify.trained",
        path=str(out),
        hash=digest[:12],
        n=len(fit_set),
        seconds=round(seconds, 1),
    )
    return TrainResult(
        out,
        digest,
        len(fit_set),
        len(splits["test"]),
        report,
        seconds,
        len(real),
        real_note,
        len(reviewed),
    )


def _data_digest(examples: Sequence[Example]) -> str:
    h = hashlib.sha256()
    for e in sorted(examples, key=lambda e: e.id):
        h.update(json.dumps([e.id, e.text, e.parent_text, sorted(e.themes)]).encode())
    return h.hexdigest()[:16]
