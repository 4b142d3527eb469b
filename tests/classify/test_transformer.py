"""The transformers classifier with the real encoder and the shipped heads (slow: loads MiniLM)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest

from classify.base import PostInput
from core.taxonomy import load_taxonomy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clf() -> Iterator[object]:
    from classify.transformer import TransformerClassifier
    from core.logging import configure_logging

    # A CliRunner test may have pointed structlog at its (now closed) captured stderr.
    configure_logging()

    yield TransformerClassifier.from_settings()


def test_encoder_is_offline_normalised_and_order_preserving(clf: object) -> None:
    import os

    encoder = clf.encoder  # type: ignore[attr-defined]
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    texts = ["a much longer post about refusals " * 5, "short", "", "medium length post here"]
    emb = encoder.encode(texts)
    assert emb.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # Sorting into micro-batches must not reorder results.
    np.testing.assert_allclose(encoder.encode([texts[1]])[0], emb[1], atol=1e-5)


def test_predict_contract(clf: object) -> None:
    posts = [
        PostInput(
            "1",
            "Claude refused to summarize a public court ruling. I'm cancelling and moving to Grok.",
        ),
        PostInput(
            "2",
            "same here, 200 chats just vanished",
            parent_text="ChatGPT wiped my whole history overnight",
        ),
        PostInput(
            "3",
            "Bring your research to Grok. It won't refuse.",
            parent_text="Claude won't continue my research",
            author_handle="grok",
        ),
        PostInput("4", ""),
        PostInput(
            "5",
            "Listening to Claude Debussy while the mistral blows outside. Gemini season, typical.",
        ),
        PostInput("6", "x " * 5000),
    ]
    preds = clf.predict(posts)  # type: ignore[attr-defined]
    themes = load_taxonomy().theme_keys
    assert [p.id for p in preds] == ["1", "2", "3", "4", "5", "6"]
    version = clf.version  # type: ignore[attr-defined]
    # The default runtime is ONNX fp32, and the version says so.
    assert re.fullmatch(r"minilm-l6-onnx-fp32\.h[0-9a-f]{8}\.t[0-9a-f]{8}", version)
    for p in preds:
        assert set(p.scores) == set(themes)
        assert all(0.0 <= s <= 1.0 for s in p.scores.values())
        assert p.model_version == version
        assert set(p.evidence) == set(p.themes)
    by_id = {p.id: p for p in preds}
    assert "refusal_complaint" in by_id["1"].themes
    assert by_id["1"].targets.get("refusal_complaint") == "claude"
    assert "lost_work_claim" in by_id["2"].themes  # only the parent says what was lost
    assert by_id["2"].products == ["chatgpt"]
    assert "competitor_solicitation" in by_id["3"].themes
    assert by_id["3"].targets.get("competitor_solicitation") == "grok"
    assert by_id["4"].themes == []
    assert by_id["5"].products == []


def test_links_reach_the_encoder_as_one_word_and_the_lexical_view_as_written(clf: object) -> None:
    from classify.transformer import featurize, lexical_inputs

    encoder = clf.encoder  # type: ignore[attr-defined]
    seen: list[str] = []
    real = encoder.encode_layers

    def spy(texts, *, layers=()):  # type: ignore[no-untyped-def]
        seen.extend(texts)
        return real(texts, layers=layers)

    linked = PostInput("a", "Claude refused again https://t.co/Ab3xYz9 see www.example.com/x?y=1")
    worded = PostInput("b", "Claude refused again link see link")
    encoder.encode_layers = spy
    try:
        x, _ = featurize(encoder, [linked, worded])
    finally:
        del encoder.encode_layers
    assert seen == ["Claude refused again link see link"]  # one distinct string, encoded once
    np.testing.assert_array_equal(x[0], x[1])
    assert lexical_inputs([linked])[0] == [linked.text]
    assert encoder.token_counts([worded.text])[0] < encoder.token_counts([linked.text])[0]


def test_heads_trained_on_other_encoder_input_are_refused(clf: object) -> None:
    from classify.artifacts import DEFAULT_ARTIFACT, ArtifactError, HeadsArtifact, load_artifact
    from classify.transformer import TransformerClassifier

    shipped = load_artifact(DEFAULT_ARTIFACT)
    older = HeadsArtifact(
        arrays=shipped.arrays, meta={**shipped.meta, "encoder_input": "as-written"}
    )
    with pytest.raises(ArtifactError, match="encoder input"):
        TransformerClassifier(
            encoder=clf.encoder,  # type: ignore[attr-defined]
            artifact=older,
            taxonomy=load_taxonomy(None),
        )


def test_pooled_layers_sit_at_the_same_relative_depth() -> None:
    from classify.transformer import POOLED_LAYERS, pooled_layers

    assert POOLED_LAYERS == pooled_layers(6) == (2, 3, 4)  # the packaged MiniLM-L6
    assert pooled_layers(12) == (4, 6, 8)  # all-mpnet-base-v2, BERT-base
    assert pooled_layers(4) == (1, 2, 3)
    assert pooled_layers(24) == (8, 12, 16)
    assert pooled_layers(2) == (1,)
    assert pooled_layers(1) == (1,)


def test_a_shallower_encoder_is_read_at_its_own_depths(
    clf: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A 4-layer encoder in `model_path` (the packaged weights cut after layer 4): features come
    from its layers 1-3, and heads fit on the 6-layer encoder's layers 2-4 are refused."""
    from transformers import AutoModel, AutoTokenizer

    from classify.artifacts import DEFAULT_ARTIFACT, ArtifactError, HeadsArtifact, load_artifact
    from classify.encoder import Encoder, default_model_path
    from classify.transformer import TransformerClassifier, featurize

    path = tmp_path_factory.mktemp("four-layers")
    model = AutoModel.from_pretrained(default_model_path())
    model.encoder.layer = model.encoder.layer[:4]
    model.config.num_hidden_layers = 4
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(path)
    short = Encoder(str(path), precision="fp32")

    post = PostInput("a", "It refused to summarise my own notes, again.")
    x, emb = featurize(short, [post])
    pools = short.encode_layers([post.text], layers=(1, 2, 3))
    assert pools.shape == (1, 4 * short.dim)
    np.testing.assert_allclose(x[0, -3 * short.dim :], pools[0, short.dim :], atol=1e-6)
    np.testing.assert_allclose(emb[0], pools[0, : short.dim], atol=1e-6)
    # The same weights up to layer 3; the final embedding is layer 4 here, layer 6 there.
    full = clf.encoder.encode_layers([post.text], layers=(3,))  # type: ignore[attr-defined]
    np.testing.assert_allclose(full[0, short.dim :], pools[0, 3 * short.dim :], atol=1e-4)
    assert not np.allclose(full[0, : short.dim], emb[0], atol=1e-2)

    shipped = load_artifact(DEFAULT_ARTIFACT)
    moved = HeadsArtifact(arrays=shipped.arrays, meta={**shipped.meta, "encoder_id": short.id})
    with pytest.raises(ArtifactError, match=r"encoder layers \[2, 3, 4\], not \[1, 2, 3\]"):
        TransformerClassifier(encoder=short, artifact=moved, taxonomy=load_taxonomy(None))
