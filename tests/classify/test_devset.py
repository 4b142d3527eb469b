"""The real-world dev set resolves against the shared posts and is well-formed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from classify.devset import PRODUCTS, THEMES, LabeledPost, load_real_dev, load_real_train
from classify.training import real_examples

SHARED_DIR = Path(os.environ.get("UNDERTOW_SHARED_DIR", "../shared"))


@pytest.fixture(scope="module")
def dev() -> list[LabeledPost]:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared data folder {SHARED_DIR} is absent (set UNDERTOW_SHARED_DIR)")
    # load_real_dev raises if any label's key is missing from the posts files.
    return load_real_dev(SHARED_DIR)


def test_size(dev: list[LabeledPost]) -> None:
    assert len(dev) >= 400


def test_ids_unique_and_resolved(dev: list[LabeledPost]) -> None:
    ids = [p.id for p in dev]
    assert len(ids) == len(set(ids))
    files = {i.split(":", 1)[0] for i in ids}
    assert files == {
        "reddit_llm_2025-09_dev.csv",
        "twitter_chatgpt_ai_2023-04.jsonl",
        "reddit_chatgpt_bard_2023-03.csv",
    }


def test_labels_valid(dev: list[LabeledPost]) -> None:
    for p in dev:
        assert set(p.themes) <= set(THEMES), p.id
        assert set(p.products) <= set(PRODUCTS), p.id
        assert len(p.themes) == len(set(p.themes)), p.id


def test_texts_non_empty(dev: list[LabeledPost]) -> None:
    for p in dev:
        assert p.text.strip(), p.id
        assert p.parent_text is None


def test_missing_shared_dir_is_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="shared data folder not found"):
        load_real_dev(tmp_path / "nowhere")


def test_real_training_posts_are_disjoint_from_dev(dev: list[LabeledPost]) -> None:
    train = load_real_train(SHARED_DIR)
    assert len(train) >= 500
    assert not {p.id for p in train} & {p.id for p in dev}
    # Hand labels, not a list of blanks: every theme seen on real posts has training positives.
    seen = {t for p in train for t in p.themes}
    assert {"refusal_complaint", "perceived_censorship", "switching_intent"} <= seen


def test_real_training_list_refuses_dev_posts(dev: list[LabeledPost], tmp_path: Path) -> None:
    file, key = dev[0].id.split(":", 1)
    labels = tmp_path / "train.jsonl"
    labels.write_text(json.dumps({"file": file, "key": key, "themes": [], "products": []}) + "\n")
    with pytest.raises(ValueError, match="in the dev set"):
        load_real_train(SHARED_DIR, labels_path=labels)


def test_real_training_posts_need_the_shared_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="shared data folder not found"):
        real_examples(tmp_path / "nowhere", THEMES)


def test_second_labelling_covers_the_dev_set_with_known_themes() -> None:
    """The blind second labelling (bench.label_agreement) labels exactly the dev posts."""
    from bench.label_agreement import SECOND_PATH, _labels
    from classify.devset import LABELS_PATH

    second = _labels(SECOND_PATH)
    assert set(second) == set(_labels(LABELS_PATH))
    assert all(themes <= set(THEMES) for themes, _ in second.values())
    assert 0 < sum(bool(themes) for themes, _ in second.values()) < len(second)
