"""torch bf16 side by side (the fast path before OpenVINO where bf16 runs fast) and the "auto"
backend that picks OpenVINO there.

On a CPU without bf16 in hardware torch emulates bf16: slower, the same numbers to within
rounding, so these checks hold on any host; only the choice of "auto" depends on the CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from classify import encoder as encoder_mod
from classify.encoder import Encoder, resolve_backend
from core.settings import Settings
from tests.classify.test_onnx_backend import (
    _real_texts,
    check_side_by_side,
    forked_exit_codes,
    held_out_agreement,
)

pytestmark = pytest.mark.slow


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trace_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the traced bf16 module, built here (never the per-user copy)."""
    return tmp_path_factory.mktemp("torchscript-cache")


@pytest.fixture(scope="module")
def encoders(trace_cache: Path) -> Iterator[tuple[Encoder, Encoder]]:
    """(torch fp32, torch bf16 side by side); torch's thread count is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    ref = Encoder(precision="fp32")
    fast = Encoder(precision="bf16", threads=2, cache_dir=trace_cache)
    try:
        yield ref, fast
    finally:
        torch.set_num_threads(threads)


def test_side_by_side_bf16_keeps_the_embeddings_and_the_order(encoders) -> None:
    ref, fast = encoders
    assert fast.concurrent and fast.bounds_threads and not ref.bounds_threads
    check_side_by_side(fast, ref, layers=(3, 4))


def test_a_worker_forked_after_runs_encodes_the_same(encoders) -> None:
    """Celery's prefork pool forks workers: the traced module and a fresh pool work there.

    The first call in a forked child rebuilds torch's thread pool; both pool threads making it
    at once crashed about one child in four ("Invalid thread pool!", 15 of 60 in a stress run)
    until the encoder rebuilt it before starting them. Twelve children all pass only with that.
    """
    import os

    ref, fast = encoders
    texts = _real_texts(20)
    ref.encode_layers(texts)  # torch's own thread pool ran in the parent, as in a busy worker
    want = fast.encode_layers(texts, layers=(3, 4))  # the pool's threads run before the fork

    def child() -> None:
        got = fast.encode_layers(texts, layers=(3, 4))  # the same request: the same micro-batches
        os._exit(0 if np.array_equal(got, want) else 3)

    codes = forked_exit_codes(child, 12)
    assert codes == [0] * 12, codes  # 3: other embeddings; 1 or a signal: the child crashed


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
        (
            "GenuineIntel",
            "fpu avx512f avx512_bf16 amx_bf16 amx_tile",
            "openvino",
        ),  # Sapphire Rapids
        ("AuthenticAMD", "fpu avx512f avx512_bf16 avx512_vnni", "openvino"),  # Zen 4
        ("GenuineIntel", "fpu avx512f avx512_bf16 avx512_vnni", "onnx"),  # bf16 slower than fp32
        ("AuthenticAMD", "fpu avx2 fma", "onnx"),  # Zen 3: no bf16
        ("GenuineIntel", "fpu avx2", "onnx"),
    ],
)
def test_auto_picks_openvino_bf16_only_where_bf16_is_fast(
    monkeypatch, tmp_path: Path, vendor, flags, runtime
) -> None:
    from classify.loader import current_version

    info = f"vendor_id\t: {vendor}\nflags\t\t: {flags}\n"
    monkeypatch.setattr(encoder_mod, "_cpu_flags", lambda: info)
    assert encoder_mod.fast_bf16() == (runtime == "openvino")
    assert resolve_backend("auto") == runtime
    assert resolve_backend("onnx") == "onnx" and resolve_backend("torch") == "torch"
    assert resolve_backend("openvino") == "openvino"
    auto = Settings(classifier="transformers", data_dir=tmp_path, classifier_backend="auto")
    want = "minilm-l6-openvino-bf16.h" if runtime == "openvino" else "minilm-l6-onnx-fp32.h"
    assert current_version(auto).startswith(want)
    # torch, when asked for, runs bf16 exactly where OpenVINO would.
    torch_cfg = Settings(classifier="transformers", data_dir=tmp_path, classifier_backend="torch")
    want = "minilm-l6-torch-bf16.h" if runtime == "openvino" else "minilm-l6.h"
    assert current_version(torch_cfg).startswith(want)
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

    assert version().startswith("minilm-l6-onnx-fp32.h")  # auto, and this CPU's bf16 is slow
    # torch without fast bf16 runs fp32, the reference, whose version is the bare encoder id.
    assert version("--backend", "torch").startswith("minilm-l6.h")
    monkeypatch.setenv("UNDERTOW_CLASSIFIER_BACKEND", "torch")
    settings_mod.get_settings.cache_clear()
    assert version().startswith("minilm-l6.h")  # configured: the setting wins over auto
    r = CliRunner().invoke(app, ["file", str(src), "-o", str(out), "--backend", "gpu"])
    assert r.exit_code == 2 and "one of auto, onnx, openvino, torch" in r.output
    settings_mod.get_settings.cache_clear()


def test_the_traced_module_is_the_eager_bf16_model_for_any_batch_shape() -> None:
    """Traced once on a small padded batch, it must not have baked in a shape or the mask path."""
    import torch
    from transformers import AutoModel

    from classify.encoder import pooled_module, resolve_model_path
    from classify.torchscript import trace

    path = resolve_model_path()
    eager = pooled_module(
        AutoModel.from_pretrained(path, local_files_only=True).eval().to(torch.bfloat16)
    )
    traced = trace(path)
    gen = torch.Generator().manual_seed(0)
    for batch, tokens, pad in ((16, 94, True), (1, 7, False), (3, 256, True), (5, 20, False)):
        ids = torch.randint(1000, 20000, (batch, tokens), generator=gen)
        mask = torch.ones_like(ids)
        if pad:
            mask[0, tokens // 2 :] = 0
        with torch.inference_mode():
            want, got = eager(ids, mask), traced(ids, mask)
        assert got.shape == want.shape == (batch, 7, 384)
        assert torch.equal(got, want), (batch, tokens, float((got - want).abs().max()))


def test_the_cached_trace_loads_without_transformers(encoders, trace_cache: Path) -> None:
    from classify import torchscript
    from classify.encoder import resolve_model_path
    from classify.graph_cache import cached_ok

    _, fast = encoders
    path = torchscript.cache_path(resolve_model_path(), cache_dir=trace_cache)
    assert cached_ok(path)
    texts = ["Claude refused to help with my thesis", "", "switching to Gemini for good"]
    want = fast.encode_layers(texts, layers=(3, 4))
    # A fresh interpreter finds the traced module and never imports transformers.
    code = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from classify.encoder import Encoder\n"
        f"e = Encoder(precision='bf16', threads=2, cache_dir=Path({str(trace_cache)!r}))\n"
        f"v = e.encode_layers({texts!r}, layers=(3, 4))\n"
        "assert 'transformers' not in sys.modules\n"
        "print(json.dumps([e.version_id, e.load_seconds, v.tolist()]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr[-2000:]
    version, _, got = json.loads(out.stdout.splitlines()[-1])
    assert version == "minilm-l6-torch-bf16"
    np.testing.assert_allclose(np.array(got, dtype=np.float32), want, atol=1e-6)

    # Corrupt bytes are found by the manifest's hash and traced afresh, not loaded.
    with path.open("r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(b"\0garbage\0" * 64)
    assert not cached_ok(path)
    again = Encoder(precision="bf16", threads=2, cache_dir=trace_cache)
    assert cached_ok(path)
    np.testing.assert_allclose(again.encode_layers(texts, layers=(3, 4)), want, atol=1e-6)


def test_without_torchscript_the_eager_module_stands_in(monkeypatch, tmp_path: Path) -> None:
    import torch

    from classify import torchscript
    from classify.encoder import resolve_model_path

    def unavailable(*args: object, **kwargs: object) -> None:
        raise RuntimeError("this torch has no TorchScript")

    monkeypatch.setattr(torch.jit, "trace", unavailable)
    module = torchscript.load(resolve_model_path(), cache_dir=tmp_path)
    assert not isinstance(module, torch.jit.ScriptModule)
    ids = torch.tensor([[101, 2023, 2001, 102], [101, 7592, 102, 0]])
    with torch.inference_mode():
        pools = module(ids, (ids != 0).long())
    assert pools.shape == (2, 7, 384) and pools.dtype == torch.float32
    assert torch.allclose(pools.norm(dim=2), torch.ones(2, 7), atol=1e-3)
    assert not list(tmp_path.glob("*.pt"))  # nothing half-built was left as if it were good
