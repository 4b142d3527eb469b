"""Model files built once from the transformers weights and cached on disk (ONNX graphs, traced
torch modules).

A file is keyed by the weights' content hash and the build settings, written atomically beside a
manifest with its own hash, verified on every load and rebuilt when missing or corrupt. Workers
starting together build once (a file lock); a per-user copy lets a fresh data dir (a test, a
second checkout) reuse what another built.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from filelock import FileLock

from classify.encoder import encoder_id

log = structlog.get_logger(__name__)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class BuildError(Exception):
    """A cached model file could not be built or does not load."""


def user_cache_dir(kind: str) -> Path:
    """The per-user copy of built files of one kind ("onnx", "torchscript").

    Read from XDG_CACHE_HOME like every other tool's cache, not from the settings: it is a copy.
    """
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "undertow" / kind


def weights_digest(model_path: str) -> str:
    """sha256 over the weights and config files (~0.1 s for MiniLM's 90 MB)."""
    folder = Path(model_path)
    h = hashlib.sha256(b"undertow-encoder\0")
    found = False
    for name in ("config.json", *WEIGHT_FILES):
        f = folder / name
        if f.is_file():
            found = found or name in WEIGHT_FILES
            h.update(f"\0{name}\0".encode())
            with f.open("rb") as fh:
                h.update(hashlib.file_digest(fh, "sha256").digest())
    if not found:
        raise BuildError(f"no weights ({' or '.join(WEIGHT_FILES)}) under {model_path}")
    return h.hexdigest()


def keyed_path(
    model_path: str, *, tag: str, settings: dict[str, Any], cache_dir: Path, suffix: str
) -> Path:
    """Where the file for these weights and build settings lives: the key is in the file name."""
    key = hashlib.sha256(
        (weights_digest(model_path) + json.dumps(settings, sort_keys=True)).encode()
    ).hexdigest()[:20]
    return cache_dir.resolve() / f"{encoder_id(model_path)}-{tag}-{key}{suffix}"


def manifest_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def cached_ok(path: Path) -> bool:
    """The file exists and its bytes are the ones the manifest recorded when it was built."""
    try:
        manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
        return bool(
            path.stat().st_size == manifest["bytes"] and _file_sha256(path) == manifest["sha256"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_atomic(src: Path, dest: Path) -> None:
    with src.open("rb") as f:
        os.fsync(f.fileno())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(src, 0o666 & ~umask)
    os.replace(src, dest)


def build_atomic(
    dest: Path, make: Callable[[Path, Path], dict[str, Any]], settings: dict[str, Any]
) -> Path:
    """`make(tmp_dir, final)` writes the file to `final`; install it at `dest` with a manifest.

    `make` returns extra manifest fields. Older builds of the same tag are dropped.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=dest.parent) as tmp:
        final = Path(tmp, "final" + dest.suffix)
        extra = make(Path(tmp), final)
        manifest = {
            "bytes": final.stat().st_size,
            "sha256": _file_sha256(final),
            "settings": settings,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **extra,
        }
        man = Path(tmp, "manifest.json")
        man.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        # The file first, its manifest last: a crash in between leaves a file that fails the check.
        _write_atomic(final, dest)
        _write_atomic(man, manifest_path(dest))
    _prune(dest)
    return dest


def _prune(keep: Path) -> None:
    """Drop files of the same encoder and tag built for older weights or settings."""
    prefix = keep.name.rsplit("-", 1)[0] + "-"
    for old in keep.parent.glob(f"{prefix}*"):
        if old.stem != keep.stem and old.suffix in {keep.suffix, ".json", ".lock"}:
            old.unlink(missing_ok=True)


def copy_verified(src: Path, dest: Path) -> bool:
    """Copy a verified file and its manifest into `dest`'s folder atomically; False on failure."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        for a, b in ((src, dest), (manifest_path(src), manifest_path(dest))):
            tmp = b.with_name(f".{b.name}.{os.getpid()}.tmp")
            shutil.copyfile(a, tmp)
            _write_atomic(tmp, b)
    except OSError:
        log.warning("classify.cache_copy_failed", src=str(src), dest=str(dest))
        return False
    return cached_ok(dest)


def ensure(
    path: Path,
    build: Callable[[Path], object],
    *,
    rebuild: bool = False,
    shared_dir: Path | None = None,
) -> Path:
    """The cached file at `path`, built first by `build(path)` if missing, corrupt or `rebuild`.

    `shared_dir` (the per-user cache) is looked in before building and receives a copy after.
    """
    if not rebuild and cached_ok(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Workers starting together build once; the others wait and then find it.
    with FileLock(str(path.with_suffix(".lock")), timeout=900):
        if rebuild or not cached_ok(path):
            shared = shared_dir / path.name if shared_dir else None
            if not rebuild and shared and cached_ok(shared) and copy_verified(shared, path):
                log.info("classify.cache_copied", src=str(shared), dest=str(path))
                return path
            if path.exists():
                log.warning("classify.cache_rebuild", path=str(path), reason="corrupt or forced")
            build(path)
            if shared and shared.resolve() != path.resolve():
                copy_verified(path, shared)
    return path


def publish(path: Path, shared_dir: Path) -> None:
    """Make sure the per-user cache holds a verified copy of the built file at `path`."""
    shared = shared_dir / path.name
    if not cached_ok(shared):
        copy_verified(path, shared)
