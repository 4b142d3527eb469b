"""Heads artifacts: roundtrip, content hash, atomic replace, format version, model version."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import classify.artifacts as artifacts
from classify.artifacts import (
    ArtifactError,
    HeadsArtifact,
    load_artifact,
    model_version,
    save_artifact,
)


def _artifact(seed: int = 0) -> HeadsArtifact:
    rng = np.random.default_rng(seed)
    return HeadsArtifact(
        arrays={
            "weights": rng.normal(size=(4, 3)).astype(np.float32),
            "bias": np.zeros(3, np.float32),
        },
        meta={"themes": ["a", "b", "c"], "encoder_id": "minilm-l6", "taxonomy_digest": "abc"},
    )


def test_roundtrip_keeps_arrays_meta_and_hash(tmp_path: Path) -> None:
    a = _artifact()
    digest = save_artifact(a, tmp_path / "heads.npz")
    b = load_artifact(tmp_path / "heads.npz")
    assert b.content_hash == digest == a.content_hash
    assert b.themes == ("a", "b", "c")
    assert b.meta["format_version"] == artifacts.FORMAT_VERSION
    np.testing.assert_array_equal(b.arrays["weights"], a.arrays["weights"])


def test_hash_depends_on_content_only(tmp_path: Path) -> None:
    h1 = save_artifact(_artifact(0), tmp_path / "one.npz")
    h2 = save_artifact(_artifact(0), tmp_path / "two.npz")
    h3 = save_artifact(_artifact(1), tmp_path / "three.npz")
    assert h1 == h2 != h3


def test_edited_artifact_fails_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "heads.npz"
    save_artifact(_artifact(), path)
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    data["a_bias"] = data["a_bias"] + 1  # tamper with one number, keep the stored hash
    np.savez(path, **data)
    with pytest.raises(ArtifactError, match="content hash"):
        load_artifact(path)


def test_other_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "heads.npz"
    save_artifact(_artifact(), path)
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    meta = json.loads(bytes(data["meta_json"]).decode())
    meta["format_version"] = 999
    data["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **data)
    with pytest.raises(ArtifactError, match="format 999"):
        load_artifact(path)


def test_missing_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="classify train"):
        load_artifact(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="unreadable"):
        load_artifact(tmp_path / "junk.npz")


def test_failed_save_leaves_old_artifact_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "heads.npz"
    old = save_artifact(_artifact(0), path)

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(artifacts.np, "savez_compressed", crash)
    with pytest.raises(OSError, match="disk full"):
        save_artifact(_artifact(1), path)
    assert load_artifact(path).content_hash == old
    assert [p.name for p in tmp_path.iterdir()] == ["heads.npz"]
    assert zipfile.is_zipfile(path)


def test_model_version_names_encoder_heads_and_taxonomy() -> None:
    v = model_version(
        encoder_id="minilm-l6", heads_hash="0123456789ab", taxonomy_digest="fedcba987654"
    )
    assert v == "minilm-l6.h01234567.tfedcba98"
