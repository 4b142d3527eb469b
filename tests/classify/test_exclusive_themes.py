"""Themes that exclude each other: declared in the taxonomy, kept apart where labels are decided."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classify.heads import decide
from core.taxonomy import load_taxonomy


def _taxonomy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "taxonomy.toml"
    path.write_text(
        'version = 1\n[[themes]]\nkey = "a"\n' + body + '\n[[themes]]\nkey = "b"\n'
        '[[themes]]\nkey = "c"\nexcludes = ["a"]\n',
        encoding="utf-8",
    )
    return path


def test_the_shipped_taxonomy_keeps_safety_support_apart_from_the_complaints() -> None:
    pairs = load_taxonomy().exclusive_pairs
    assert ("refusal_complaint", "safety_support") in pairs
    assert ("perceived_censorship", "safety_support") in pairs
    # An author who defends safety work may still move to another assistant.
    assert not any("switching_intent" in pair for pair in pairs)


def test_a_pair_declared_on_both_sides_is_one_pair(tmp_path: Path) -> None:
    taxonomy = load_taxonomy(_taxonomy(tmp_path, 'excludes = ["c", "b"]'))
    assert taxonomy.exclusive_pairs == (("a", "b"), ("a", "c"))


@pytest.mark.parametrize("excludes", ['["nope"]', '["a"]'])
def test_an_exclusion_naming_no_other_theme_is_refused(tmp_path: Path, excludes: str) -> None:
    with pytest.raises(ValueError, match="not another theme's key"):
        load_taxonomy(_taxonomy(tmp_path, f"excludes = {excludes}"))


def test_decide_keeps_the_theme_further_over_its_threshold_in_logits() -> None:
    thresholds = np.array([0.3, 0.8, 0.5])
    proba = np.array(
        [
            [0.9, 0.95, 0.6],  # logit margins 3.04 vs 1.56: theme 0 stays, 1 goes
            [0.4, 0.99, 0.6],  # 0.44 vs 3.21: theme 1 stays, although 0.4 - 0.3 > 0.99 - 0.8 too
            [0.2, 0.99, 0.6],  # theme 0 under its threshold: nothing to settle
            [0.9, 0.5, 0.6],  # theme 1 under its threshold
        ]
    )
    on = decide(proba, thresholds, [(0, 1)])
    assert on.tolist() == [
        [True, False, True],
        [False, True, True],
        [False, True, True],
        [True, False, True],
    ]
    # Without exclusions every theme over its threshold is on: both of the first two rows.
    assert decide(proba, thresholds).tolist()[:2] == [[True, True, True], [True, True, True]]


def test_a_theme_that_lost_keeps_no_other_theme_out() -> None:
    """safety_support excludes both complaints; here it beats the refusal complaint and loses
    to the censorship one, so it goes and the refusal complaint stays."""
    thresholds = np.array([0.5, 0.5, 0.5])  # refusal, safety, censorship
    proba = np.array([[0.6, 0.8, 0.95], [0.6, 0.8, 0.4]])
    on = decide(proba, thresholds, [(0, 1), (2, 1)])
    assert on.tolist() == [[True, False, True], [False, True, False]]


@pytest.mark.slow
def test_the_classifier_never_labels_a_post_with_both_themes_of_a_pair() -> None:
    from classify.base import PostInput
    from classify.transformer import TransformerClassifier

    clf = TransformerClassifier.from_settings()
    posts = [
        PostInput(
            "1", "Gemini refused to help him stalk his ex and I'm glad. Some refusals are right."
        ),
        PostInput(
            "2",
            "People complain about refusals but this one was justified: it wouldn't write a fake "
            "eviction notice.",
        ),
        PostInput("3", "Claude refused to summarize a public court ruling. Useless."),
        PostInput("4", "Glad it refused to write malware for him, that is how it should work."),
    ]
    proba, _ = clf.scores(posts)
    r, s = clf.themes.index("refusal_complaint"), clf.themes.index("safety_support")
    over = proba >= clf.heads.thresholds
    both = [i for i in range(len(posts)) if over[i, r] and over[i, s]]
    assert both, "no post took both heads over their thresholds: the test would be vacuous"
    for i, p in enumerate(clf.predict(posts)):
        assert not {"refusal_complaint", "safety_support"} <= set(p.themes)
        if i in both:
            assert p.scores["refusal_complaint"] >= clf.heads.thresholds[r]  # scores stay whole
    assert "refusal_complaint" in clf.predict(posts[2:3])[0].themes
