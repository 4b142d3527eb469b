"""torch bf16 side by side (the fast path where bf16 runs fast) and the "auto" backend that picks it.

On a CPU without bf16 in hardware torch emulates bf16: slower, the same numbers to within
rounding, so these checks hold on any host; only the choice of "auto" depends on the CPU.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from classify import encoder as encoder_mod
from classify.encoder import Encoder, resolve_backend
from core.settings import Settings
from tests.classify.test_onnx_backend import _real_texts, held_out_agreement

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encoders() -> Iterator[tuple[Encoder, Encoder]]:
    """(torch fp32, torch bf16 side by side); torch's thread count is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    ref = Encoder(precision="fp32")
    fast = Encoder(precision="bf16", threads=2)
    try:
        yield ref, fast
    finally:
        torch.set_num_threads(threads)


def test_side_by_side_bf16_keeps_the_embeddings_and_the_order(encoders) -> None:
    ref, fast = encoders
    assert fast.concurrent and fast.bounds_threads and not ref.bounds_threads
    texts = [*_real_texts(80), "", "x " * 3000]  # empty and over-long (truncated) as well
    got = fast.encode_layers(texts, layers=(3, 4))
    want = ref.encode_layers(texts, layers=(3, 4))
    assert got.shape == want.shape == (len(texts), 3 * 384)
    for k in range(3):
        cos = (got[:, k * 384 : (k + 1) * 384] * want[:, k * 384 : (k + 1) * 384]).sum(1)
        assert cos.min() >= 0.999, (k, float(cos.min()))
    # Input order survives the length sort and the two workers.
    assert np.argmax(got[:, :384] @ want[:, :384].T, axis=1).tolist() == list(range(len(texts)))
    # Overlapping requests from several threads each get their own rows back.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        parts = list(pool.map(lambda i: fast.encode_layers(texts[i::3], layers=(3, 4)), range(3)))
    for i, part in enumerate(parts):
        np.testing.assert_allclose(part, got[i::3], atol=2e-2)


def test_bf16_keeps_the_labels_and_the_scores(encoders) -> None:
    """design.md's rule on the held-out split (>= 99% identical labels, micro-F1 within 0.01),
    and the issue's: every score within 0.01 of fp32."""
    ref_enc, fast_enc = encoders
    got = held_out_agreement(ref_enc, fast_enc)
    assert "torch-bf16" in got.fast_version and got.fast_version != got.ref_version
    assert got.same >= 0.99, got
    assert got.max_diff <= 0.01, got
    assert abs(got.f1[0] - got.f1[1]) <= 0.01, got


@pytest.mark.parametrize(
    ("vendor", "flags", "runtime"),
    [
        ("GenuineIntel", "fpu avx512f avx512_bf16 amx_bf16 amx_tile", "torch"),  # Sapphire Rapids
        ("AuthenticAMD", "fpu avx512f avx512_bf16 avx512_vnni", "torch"),  # Zen 4
        ("GenuineIntel", "fpu avx512f avx512_bf16 avx512_vnni", "onnx"),  # bf16 slower than fp32
        ("AuthenticAMD", "fpu avx2 fma", "onnx"),  # Zen 3: no bf16
        ("GenuineIntel", "fpu avx2", "onnx"),
    ],
)
def test_auto_picks_torch_bf16_only_where_bf16_is_fast(
    monkeypatch, tmp_path: Path, vendor, flags, runtime
) -> None:
    from classify.loader import current_version

    info = f"vendor_id\t: {vendor}\nflags\t\t: {flags}\n"
    monkeypatch.setattr(encoder_mod, "_cpu_flags", lambda: info)
    assert encoder_mod.fast_bf16() == (runtime == "torch")
    assert resolve_backend("auto") == runtime
    assert resolve_backend("onnx") == "onnx" and resolve_backend("torch") == "torch"
    auto = Settings(classifier="transformers", data_dir=tmp_path, classifier_backend="auto")
    want = "minilm-l6-torch-bf16.h" if runtime == "torch" else "minilm-l6-onnx-fp32.h"
    assert current_version(auto).startswith(want)
    # The service's default stays ONNX whatever the CPU: one model version across a fleet.
    default = Settings(classifier="transformers", data_dir=tmp_path)
    assert current_version(default).startswith("minilm-l6-onnx-fp32.h")


def test_classify_file_takes_auto_unless_the_backend_is_configured(
    monkeypatch, tmp_path: Path
) -> None:
    from cli.classify import app
    from core import settings as settings_mod

    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"id": "a", "text": "Claude refused to help me again"}) + "\n")
    monkeypatch.setattr(encoder_mod, "_cpu_flags", lambda: "flags\t\t: fpu avx2\n")
    monkeypatch.delenv("UNDERTOW_CLASSIFIER_BACKEND", raising=False)
    settings_mod.get_settings.cache_clear()

    def version(*args: str) -> str:
        r = CliRunner().invoke(app, ["file", str(src), "-o", str(out), *args])
        assert r.exit_code == 0, r.output
        return str(json.loads(out.read_text())["model_version"])

    assert version().startswith("minilm-l6-onnx-fp32.h")  # auto, and this CPU has no AMX
    # torch without AMX runs fp32, the reference, whose version is the bare encoder id.
    assert version("--backend", "torch").startswith("minilm-l6.h")
    monkeypatch.setenv("UNDERTOW_CLASSIFIER_BACKEND", "torch")
    settings_mod.get_settings.cache_clear()
    assert version().startswith("minilm-l6.h")  # configured: the setting wins over auto
    r = CliRunner().invoke(app, ["file", str(src), "-o", str(out), "--backend", "gpu"])
    assert r.exit_code == 2 and "one of auto, onnx, torch" in r.output
    settings_mod.get_settings.cache_clear()
