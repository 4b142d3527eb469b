"""Fixtures shared by the encoder backends' tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from classify.encoder import resolve_model_path
from classify.onnx_backend import ensure_onnx


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ONNX fp32 graph built here from the packaged weights (never the per-user copy)."""
    d = tmp_path_factory.mktemp("onnx-cache")
    ensure_onnx(resolve_model_path(), precision="fp32", cache_dir=d)
    return d
