"""Reviewed posts: the labels a team puts in force become examples that fit and measure the model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from classify.artifacts import load_artifact
from classify.encoder import Encoder
from classify.review import correct_labels
from classify.reviewed import fit_part, held_out, reviewed_examples, reviewed_id, unseen
from classify.training import Example, load_examples, split_of, train, training_files
from classify.transformer import TransformerClassifier
from core.models import Post
from core.taxonomy import load_taxonomy
from ingest.store import upsert_posts
from tests.factories import make_post

TAX = load_taxonomy()
LOST = "lost_work_claim"


def _store(session: Session, posts: list) -> dict[str, int]:
    upsert_posts(session=session, posts=posts, secret="k")
    session.commit()
    return {p.external_id: p.id for p in session.exec(select(Post)) if p.id is not None}


def _label(session: Session, post_id: int, themes: list[str]) -> None:
    correct_labels(
        session=session, taxonomy=TAX, post_id=post_id, themes=themes, products=None, author="t"
    )
    session.commit()


def test_reviewed_posts_are_labels_in_force_on_the_current_text(session: Session) -> None:
    ids = _store(
        session,
        [
            make_post(external_id="parent", text="Claude is my writing partner"),
            make_post(
                external_id="reply", text="same, it refused me too", parent_external_id="parent"
            ),
            make_post(external_id="edited", text="it deleted my essay"),
            make_post(external_id="twice", text="switching to Gemini tomorrow"),
            make_post(external_id="gone", text="it refused again"),
            make_post(external_id="unreviewed", text="hello"),
        ],
    )
    _label(session, ids["reply"], ["refusal_complaint"])
    _label(session, ids["edited"], [LOST])
    _label(session, ids["twice"], [LOST])
    _label(session, ids["twice"], ["switching_intent", "refusal_complaint"])  # the newest holds
    _label(session, ids["gone"], ["refusal_complaint"])
    # An edit after the review: the label was made on an earlier text.
    upsert_posts(
        session=session,
        posts=[make_post(external_id="edited", text="never mind, found the essay")],
        secret="k",
    )
    gone = session.get(Post, ids["gone"])
    assert gone is not None
    gone.deleted_at = datetime(2026, 10, 22, tzinfo=UTC)
    session.add(gone)
    session.commit()

    # A taxonomy without refusal_complaint (a team dropped it): the other themes stay.
    themes = [t for t in TAX.theme_keys if t != "refusal_complaint"]
    examples, stale = reviewed_examples(session, themes)
    by_id = {e.id: e for e in examples}
    assert set(by_id) == {reviewed_id("reddit", "reply"), reviewed_id("reddit", "twice")}
    assert stale == 1  # "edited"; a deleted post is not counted at all
    reply = by_id[reviewed_id("reddit", "reply")]
    assert reply.parent_text == "Claude is my writing partner"
    assert reply.themes == ()
    assert by_id[reviewed_id("reddit", "twice")].themes == ("switching_intent",)
    assert by_id[reviewed_id("reddit", "twice")].parent_text is None

    split = {e.id: split_of(e.id) for e in examples}
    assert {e.id for e in held_out(examples)} == {i for i, s in split.items() if s == "test"}
    assert {e.id for e in fit_part(examples)} == {i for i, s in split.items() if s != "test"}


def _external_ids(n: int, *, test: bool, prefix: str) -> list[str]:
    """`n` Reddit ids whose reviewed example lands in the held-out split (test) or not."""
    out: list[str] = []
    i = 0
    while len(out) < n:
        ext = f"{prefix}{i}"
        if (split_of(reviewed_id("reddit", ext)) == "test") == test:
            out.append(ext)
        i += 1
    return out


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder(precision="fp32")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # the fits are the slow part
def test_train_fits_on_reviewed_posts_and_eval_scores_the_held_out_ones(
    session: Session, settings, encoder: Encoder, tmp_path: Path
) -> None:
    """A theme the written set barely shows is learnt from reviewed posts, and only from them."""
    shipped = load_examples(training_files(), known_themes=TAX.theme_keys)
    lost = [e for e in shipped if LOST in e.themes]
    other = [e for e in shipped if LOST not in e.themes]
    # Written set: 3 lost-work posts and 450 others, none from the shipped test split.
    fit_lost = [e for e in lost if split_of(e.id) != "test"]
    fit_other = [e for e in other if split_of(e.id) != "test"]
    written = fit_lost[:3] + fit_other[::4][:450]
    data_dir = tmp_path / "train"
    data_dir.mkdir()
    with (data_dir / "small.jsonl").open("w") as f:
        for e in written:
            f.write(json.dumps({"id": e.id, "text": e.text, "themes": list(e.themes)}) + "\n")
    # Reviewed in the database: 60 lost-work posts and 60 others the written set does not hold.
    taken = {e.id for e in written}
    reviewed_src = fit_lost[3:63] + [e for e in fit_other if e.id not in taken][:60]
    exts = _external_ids(len(reviewed_src), test=False, prefix="r")
    ids = _store(session, [make_post(external_id=x, text=e.text) for x, e in zip(exts, reviewed_src, strict=True)])  # fmt: skip
    for x, e in zip(exts, reviewed_src, strict=True):
        _label(session, ids[x], list(e.themes))
    examples, _ = reviewed_examples(session, TAX.theme_keys)
    assert len(fit_part(examples)) == 120

    # Unseen probes: the shipped test split's lost-work posts and as many others.
    probe_lost = [e for e in lost if split_of(e.id) == "test"]
    probe_other = [e for e in other if split_of(e.id) == "test"][: len(probe_lost)]
    assert len(probe_lost) >= 15

    def lost_recall_and_fp(out: Path, reviewed: list[Example]) -> tuple[float, float]:
        result = train(encoder=encoder, taxonomy=TAX, data_dir=data_dir, out=out, reviewed=reviewed)
        assert result.n_reviewed == len(reviewed)
        assert load_artifact(out).meta["training"]["n_reviewed"] == len(reviewed)
        clf = TransformerClassifier(encoder=encoder, artifact=load_artifact(out), taxonomy=TAX)
        pred = clf.predict([e.as_post() for e in probe_lost + probe_other])
        hits = [LOST in p.themes for p in pred]
        n = len(probe_lost)
        return sum(hits[:n]) / n, sum(hits[n:]) / len(probe_other)

    recall_without, _ = lost_recall_and_fp(tmp_path / "without.npz", [])
    recall_with, fp_with = lost_recall_and_fp(tmp_path / "with.npz", fit_part(examples))
    print(f"lost-work recall {recall_without:.2f} -> {recall_with:.2f}, false hits {fp_with:.2f}")
    assert recall_without <= 0.3, recall_without
    assert recall_with >= 0.6, recall_with
    assert fp_with <= 0.2, fp_with

    # Two more reviewed posts land in the held-out split.
    exts = _external_ids(2, test=True, prefix="h")
    ids = _store(
        session,
        [make_post(external_id=x, text=e.text) for x, e in zip(exts, probe_lost[:2], strict=True)],
    )
    for x in exts:
        _label(session, ids[x], [LOST])
    examples, _ = reviewed_examples(session, TAX.theme_keys)
    # Heads fit on reviewed posts are scored on the held-out ones alone ...
    posts, what = unseen(examples, n_fit=120)
    assert {e.id for e in posts} == {reviewed_id("reddit", x) for x in exts}
    assert what == "2 of 122 reviewed posts, held out of every fit"
    # ... heads fit on none, such as the shipped ones, on all of them: so `eval --reviewed` does.
    from cli.main import app

    res = CliRunner().invoke(app, ["classify", "eval", "--reviewed"])
    assert res.exit_code == 0, res.output
    assert "reviewed posts (all 122 reviewed posts: the heads in use saw none)" in res.output
    row = next(line for line in res.output.splitlines() if line.startswith(LOST))
    assert row.split()[1] == "62"  # support: every reviewed lost-work post


def test_reviewed_commands_name_a_database_they_cannot_read(tmp_path: Path, monkeypatch) -> None:
    from cli.main import app
    from core import settings as settings_mod

    for url, says in (
        (f"sqlite:///{tmp_path / 'new.db'}", "run `undertow db upgrade` first"),
        ("postgresql+psycopg://postgres@127.0.0.1:1/none", "Connection refused"),
    ):
        monkeypatch.setenv("UNDERTOW_DATABASE_URL", url)
        settings_mod.get_settings.cache_clear()
        for cmd in (["classify", "eval", "--reviewed"], ["classify", "train", "--reviewed"]):
            res = CliRunner().invoke(app, cmd)
            assert res.exit_code == 2, (cmd, res.output)
            assert "cannot read reviewed posts from the database" in res.output
            assert says in res.output, res.output
    settings_mod.get_settings.cache_clear()
