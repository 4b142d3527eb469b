"""Trained heads on disk: one .npz (no pickle), a format version, a content hash, atomic saves."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# 2: the per-theme stack also sees cue counts and post length (heads.STACK_INPUTS).
FORMAT_VERSION = 2
ARTIFACT_DIR = Path(__file__).with_name("artifacts")
DEFAULT_ARTIFACT = ARTIFACT_DIR / "heads.npz"


class ArtifactError(Exception):
    """The artifact is missing, corrupt, of another format version, or for other themes."""


@dataclass
class HeadsArtifact:
    """Named float arrays plus JSON metadata (themes, encoder, taxonomy digest, training stats)."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    content_hash: str = field(default="")

    @property
    def themes(self) -> tuple[str, ...]:
        return tuple(self.meta["themes"])


def _canonical_meta(meta: dict[str, Any]) -> bytes:
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def content_hash(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    """sha256 over the metadata and every array's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(b"undertow-heads\0")
    h.update(_canonical_meta(meta))
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_artifact(artifact: HeadsArtifact, path: Path = DEFAULT_ARTIFACT) -> str:
    """Write atomically (temp file in the same folder, fsync, os.replace); returns the hash."""
    meta = {**artifact.meta, "format_version": FORMAT_VERSION}
    digest = content_hash(artifact.arrays, meta)
    payload: dict[str, np.ndarray] = {
        f"a_{k}": np.ascontiguousarray(v) for k, v in artifact.arrays.items()
    }
    payload["meta_json"] = np.frombuffer(_canonical_meta(meta), dtype=np.uint8)
    payload["content_hash"] = np.frombuffer(digest.encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **payload)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); an artifact is meant to be shared and shipped.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    artifact.meta, artifact.content_hash = meta, digest
    return digest


def load_artifact(path: Path = DEFAULT_ARTIFACT) -> HeadsArtifact:
    """Read and verify an artifact; any mismatch raises ArtifactError, never a half-loaded model."""
    if not path.is_file():
        raise ArtifactError(f"no trained heads at {path}; run `undertow classify train`")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"unreadable artifact {path}: {e}") from e
    try:
        meta = json.loads(bytes(data.pop("meta_json")).decode())
        stored = bytes(data.pop("content_hash")).decode()
    except (KeyError, ValueError) as e:
        raise ArtifactError(f"artifact {path} lacks metadata") from e
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"artifact {path} has format {meta.get('format_version')}, expected {FORMAT_VERSION}"
        )
    arrays = {k[2:]: v for k, v in data.items() if k.startswith("a_")}
    actual = content_hash(arrays, meta)
    if actual != stored:
        raise ArtifactError(f"artifact {path} fails its content hash (corrupt or edited)")
    return HeadsArtifact(arrays=arrays, meta=meta, content_hash=actual)


def model_version(*, encoder_id: str, heads_hash: str, taxonomy_digest: str) -> str:
    """Encoder, heads and taxonomy in one string, e.g. ``minilm-l6.h1a2b3c4d.t5e6f7a8b``."""
    return f"{encoder_id}.h{heads_hash[:8]}.t{taxonomy_digest[:8]}"
