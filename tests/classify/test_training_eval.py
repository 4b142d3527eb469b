"""Training data loading, deterministic splits, thresholds and the evaluation arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classify.artifacts import HeadsArtifact, load_artifact, save_artifact
from classify.evaluate import format_reports, score
from classify.evidence import cue_counts, cue_phrases, theme_target
from classify.heads import STACK_INPUTS, ThemeHeads, choose_threshold, fit_heads
from classify.training import DataError, load_examples, split_examples, split_of


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text(
        "# a comment line\n"
        + "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows)
        + "\n"
    )
    return path


def test_load_examples_reports_file_and_line(tmp_path: Path) -> None:
    good = {"id": "x1", "text": "it deleted my work", "themes": ["lost_work_claim"]}
    path = _write(tmp_path / "a.jsonl", [good, "{broken"])
    with pytest.raises(DataError, match=r"a\.jsonl:3"):
        load_examples([path])
    path = _write(tmp_path / "b.jsonl", [good, {"id": "x2", "text": "t", "themes": ["nope"]}])
    with pytest.raises(DataError, match="unknown themes"):
        load_examples([path], known_themes=["lost_work_claim"])
    path = _write(tmp_path / "c.jsonl", [good, good])
    with pytest.raises(DataError, match="already used"):
        load_examples([path])


def test_load_examples_reads_past_a_byte_order_mark(tmp_path: Path) -> None:
    """`classify eval LABELED.jsonl` on a file saved as "UTF-8 with BOM" reads its first line."""
    path = tmp_path / "bom.jsonl"
    row = {"id": "x1", "text": "it deleted my work", "themes": ["lost_work_claim"]}
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(row) + "\n").encode())
    assert [(e.id, e.themes) for e in load_examples([path])] == [("x1", ("lost_work_claim",))]


def test_themes_must_be_a_list_and_none_means_no_theme(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.jsonl", [{"id": "x1", "text": "t", "themes": "lost_work_claim"}])
    with pytest.raises(DataError, match=r"s\.jsonl:2: `themes` must be a list"):
        load_examples([path])  # a bare string would have been read letter by letter
    path = _write(tmp_path / "n.jsonl", [{"id": "x1", "text": "t", "themes": ["none"]}])
    assert load_examples([path], known_themes=["lost_work_claim"])[0].themes == ()


def test_eval_refuses_a_labeled_file_with_an_unknown_theme(tmp_path: Path) -> None:
    """A misspelt key fails with its line instead of counting as a miss of the model."""
    from typer.testing import CliRunner

    from cli.classify import app

    row = {"id": "x1", "text": "it deleted my work", "themes": ["lost_work_clam"]}
    path = _write(tmp_path / "typo.jsonl", [row])
    result = CliRunner().invoke(app, ["eval", str(path)])
    assert result.exit_code == 1, result.output
    assert "typo.jsonl:2: unknown themes ['lost_work_clam']" in result.output


def test_splits_are_stable_and_proportioned(tmp_path: Path) -> None:
    rows = [{"id": f"id-{i}", "text": "t", "themes": []} for i in range(2000)]
    examples = load_examples([_write(tmp_path / "d.jsonl", rows)])
    splits = split_examples(examples)
    assert abs(len(splits["train"]) / 2000 - 0.70) < 0.04
    assert abs(len(splits["test"]) / 2000 - 0.15) < 0.03
    # A post's split depends on its id alone, so adding files never moves old examples.
    assert all(split_of(e.id) == "test" for e in splits["test"])
    assert split_examples(examples[::-1])["test"][::-1] == splits["test"]


def test_threshold_is_precision_first() -> None:
    p = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    y = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    t, stats = choose_threshold(p, y, min_precision=0.85)
    assert stats["precision"] >= 0.85
    assert 0.7 < t <= 0.8  # keeps the three sure positives, not the 0.7 negative


def test_score_micro_macro_and_confusions() -> None:
    themes = ["a", "b"]
    gold = [{"a"}, {"a"}, {"b"}, set()]
    pred = [{"a"}, {"b"}, {"b"}, {"a"}]
    r = score(gold, pred, themes, name="m", version="v")
    assert (r.per_theme["a"].tp, r.per_theme["a"].fp, r.per_theme["a"].fn) == (1, 1, 1)
    assert r.per_theme["b"].precision == 0.5 and r.per_theme["b"].recall == 1.0
    assert r.micro_f1 == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))
    assert ("a", "b", 1) in r.confusions and ("none", "a", 1) in r.confusions
    table = format_reports([r])
    assert "micro F1" in table and "a->b 1" in table


def test_evidence_and_targets() -> None:
    assert cue_phrases("refusal_complaint", "Fine. Claude refused again. Whatever.") == [
        "Claude refused again"
    ]
    text = "Claude refused my thesis request so I'm switching to Grok."
    products = ["claude", "grok"]
    kw = {
        "text": text,
        "parent_text": None,
        "text_products": products,
        "parent_products": [],
        "brand": None,
    }
    assert theme_target("refusal_complaint", **kw) == "claude"
    assert theme_target("switching_intent", **kw) == "claude"
    sol = "Cancel ChatGPT and come to Claude."
    kw2 = {
        "text": sol,
        "parent_text": None,
        "text_products": ["claude", "chatgpt"],
        "parent_products": [],
        "brand": None,
    }
    assert theme_target("competitor_solicitation", **kw2) == "claude"


def test_cue_counts_cover_the_training_languages() -> None:
    themes = ("refusal_complaint", "lost_work_claim", "switching_intent", "not_a_theme")
    assert cue_counts("Claude hat sich geweigert, die Geschichte weiterzuschreiben.", themes) == [
        1,
        0,
        0,
        0,
    ]
    assert cue_counts("Gemini a effacé toute ma conversation.", themes)[1] == 1
    assert cue_counts("Cancelei o ChatGPT e migrei pro Claude.", themes)[2] == 2
    assert cue_counts("", themes) == [0, 0, 0, 0]


def test_cue_counts_on_folded_text_equal_ignorecase_matching() -> None:
    """cue_counts folds the text once and matches case-sensitively: the counts must be exactly
    those of the IGNORECASE patterns, for every code point and on real and written posts."""
    import re

    from classify.evidence import CUES, fold_case
    from classify.training import load_examples, training_files
    from tests.classify.test_onnx_backend import _real_texts

    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    folded = fold_case(every)
    assert len(folded) == len(every)  # one character for one: word boundaries stay put
    letters = sorted({ch for p in CUES.values() for ch in p.pattern if ch.isalpha()})
    any_letter = re.compile("[" + "".join(letters) + "]", re.IGNORECASE)
    word = re.compile(r"\w")
    for c, f in zip(every, folded, strict=True):
        assert bool(any_letter.fullmatch(c)) == (f in letters), hex(ord(c))
        assert bool(word.match(c)) == bool(word.match(f)), hex(ord(c))
    assert fold_case("İSTANBUL ſo ıt") == "istanbul so it"

    themes = tuple(CUES)
    texts = [e.text for e in load_examples(training_files())] + _real_texts(456)
    texts += [
        "REFUSED. Deleted!! GASLIGHTING",
        "KÜNDIGE jetzt, ich WECHSLE",
        "ſuppreſſed cenſorſhip",
    ]
    for text in texts:
        want = [len(CUES[t].findall(text)) for t in themes]
        assert cue_counts(text, themes) == want, text[:80]


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Posts whose embeddings carry no signal: only their cue words tell the themes apart."""
    rng = np.random.default_rng(seed)
    filler = [
        "the",
        "model",
        "answered",
        "my",
        "question",
        "about",
        "the",
        "weather",
        "and",
        "my",
        "garden",
        "today",
    ]
    cues = {
        0: ["it refused again", "se niega a ayudar", "hat sich geweigert", "refusing my prompt"],
        1: ["it deleted my chats", "a tout effacé", "my history vanished", "apagou tudo"],
    }
    texts, y = [], np.zeros((n, 2), dtype=np.int8)
    for i in range(n):
        words = list(rng.choice(filler, size=8))
        t = i % 3  # a third refusals, a third lost work, a third neither
        if t < 2:
            y[i, t] = 1
            words.insert(int(rng.integers(0, 8)), str(rng.choice(cues[t])))
        texts.append(" ".join(words))
    return rng.normal(size=(n, 12)).astype(np.float32), texts, y


def test_fit_heads_stacks_cues_and_survives_the_artifact(tmp_path: Path) -> None:
    themes = ("refusal_complaint", "lost_work_claim")
    x, texts, y = _synthetic(150, seed=1)
    heads, report = fit_heads(x, texts, [""] * len(texts), y, themes, folds=3)
    assert heads.stack.shape == (2, len(STACK_INPUTS) + 1)
    assert report.oof_macro_f1 > 0.8
    x_new, texts_new, y_new = _synthetic(60, seed=2)
    proba = heads.predict_proba(x_new, heads.lexicon.transform(texts_new, [""] * 60))
    pred = proba >= heads.thresholds
    assert (pred == y_new.astype(bool)).mean() > 0.9
    # The artifact holds everything scoring needs, vocabulary and stack included.
    save_artifact(
        HeadsArtifact(heads.arrays(), {"themes": list(themes), **heads.meta()}), tmp_path / "h.npz"
    )
    loaded = load_artifact(tmp_path / "h.npz")
    again = ThemeHeads.from_artifact(themes, loaded.arrays, loaded.meta)
    np.testing.assert_allclose(
        again.predict_proba(x_new, again.lexicon.transform(texts_new, [""] * 60)), proba, atol=2e-3
    )
