"""The ONNX Runtime encoder: offline, the same embeddings and labels as torch fp32, a cache that heals.

Slow: exports MiniLM (torch.onnx.export + fusion) into a temporary cache once per module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from classify.base import PostInput
from classify.encoder import resolve_model_path
from classify.graph_cache import cached_ok
from classify.onnx_backend import OnnxEncoder, cache_path, ensure_onnx
from core.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def onnx_encoder(cache_dir: Path) -> OnnxEncoder:
    return OnnxEncoder(precision="fp32", cache_dir=cache_dir)


@pytest.fixture(scope="module")
def torch_encoder() -> Iterator[object]:
    from classify.encoder import Encoder

    yield Encoder(precision="fp32")


def _real_texts(n: int) -> list[str]:
    """Real posts from the shared folder (the dev set's texts), else the project's own examples."""
    from classify.devset import load_real_dev
    from core.settings import get_settings

    try:
        texts = [p.text for p in load_real_dev(get_settings().shared_dir)]
    except FileNotFoundError:
        from classify.training import load_examples, training_files

        texts = [e.text for e in load_examples(training_files())]
    rng = np.random.default_rng(7)
    return [texts[i] for i in rng.choice(len(texts), size=min(n, len(texts)), replace=False)]


def check_side_by_side(fast: Any, ref: Any, layers: tuple[int, ...]) -> None:
    """A side-by-side encoder against torch fp32 on real posts, an empty and an over-long one:
    every layer's pool within cosine 0.999, input order kept, and overlapping requests from
    several threads each given their own rows."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [*_real_texts(80), "", "x " * 3000]  # empty and over-long (truncated) as well
    got = fast.encode_layers(texts, layers=layers)
    want = ref.encode_layers(texts, layers=layers)
    k = 1 + len(layers)
    assert got.shape == want.shape == (len(texts), k * 384)
    for j in range(k):
        cos = (got[:, j * 384 : (j + 1) * 384] * want[:, j * 384 : (j + 1) * 384]).sum(1)
        assert cos.min() >= 0.999, (j, float(cos.min()))
    assert np.argmax(got[:, :384] @ want[:, :384].T, axis=1).tolist() == list(range(len(texts)))
    with ThreadPoolExecutor(3) as pool:
        parts = list(pool.map(lambda i: fast.encode_layers(texts[i::3], layers=layers), range(3)))
    for i, part in enumerate(parts):
        np.testing.assert_allclose(part, got[i::3], atol=2e-2)


def forked_exit_codes(
    child: Callable[[], None], n: int, *, timeout: float = 60
) -> list[int | None]:
    """Exit codes of ``n`` forked children running ``child`` one after another (killed at the
    timeout: a negative code is the signal)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    codes = []
    for _ in range(n):
        proc = ctx.Process(target=child)
        proc.start()
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join()
        codes.append(proc.exitcode)
    return codes


def test_loads_offline_without_torch(cache_dir: Path) -> None:
    # A fresh interpreter with the hub offline and every proxy pointing at a closed port:
    # loading must find the cached graph and never import torch or reach the network.
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from classify.onnx_backend import OnnxEncoder\n"
        f"e = OnnxEncoder(precision='fp32', cache_dir=Path({str(cache_dir)!r}))\n"
        "v = e.encode(['the model refused to help', ''])\n"
        "assert v.shape == (2, e.dim), v.shape\n"
        "assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-3)\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "print(e.version_id, round(e.load_seconds, 2))\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    version, seconds = out.stdout.splitlines()[-1].split()
    assert version == "minilm-l6-onnx-fp32"
    assert float(seconds) < 10  # the graph was found, not rebuilt


def test_embeddings_match_torch_fp32(onnx_encoder: OnnxEncoder, torch_encoder: object) -> None:
    from classify.encoder import Encoder

    assert isinstance(torch_encoder, Encoder)
    texts = [*_real_texts(120), "", "x " * 3000]  # empty and over-long (truncated) as well
    assert onnx_encoder.token_counts(texts) == torch_encoder.token_counts(texts)
    got = onnx_encoder.encode_layers(texts, layers=(3, 4))
    ref = torch_encoder.encode_layers(texts, layers=(3, 4))
    assert got.shape == ref.shape == (len(texts), 3 * 384)
    for k in range(3):  # the sentence embedding and both middle-layer pools
        cos = (got[:, k * 384 : (k + 1) * 384] * ref[:, k * 384 : (k + 1) * 384]).sum(1)
        assert cos.min() >= 0.999, (k, float(cos.min()))  # the same weights in fp32
    # Input order survives the length sort.
    assert np.argmax(got[:, :384] @ ref[:, :384].T, axis=1).tolist() == list(range(len(texts)))


def test_concurrent_runs_match_one_session_and_survive_a_fork(cache_dir: Path) -> None:
    import multiprocessing
    from concurrent.futures import ThreadPoolExecutor

    one = OnnxEncoder(precision="fp32", cache_dir=cache_dir, threads=2, concurrent=False)
    side = OnnxEncoder(precision="fp32", cache_dir=cache_dir, threads=2)
    assert side.concurrent and side.bounds_threads and not one.bounds_threads
    texts = _real_texts(60)
    ref = one.encode_layers(texts, layers=(3, 4))
    np.testing.assert_allclose(side.encode_layers(texts, layers=(3, 4)), ref, atol=1e-5)
    # Requests overlapping on several threads each get their own rows back, in their order.
    with ThreadPoolExecutor(3) as pool:
        parts = list(pool.map(lambda i: side.encode_layers(texts[i::3], layers=(3, 4)), range(3)))
    for i, part in enumerate(parts):
        np.testing.assert_allclose(part, ref[i::3], atol=1e-5)
    # A worker forked after runs gets a pool of its own (the parent's threads do not fork).
    child = multiprocessing.get_context("fork").Process(target=side.encode, args=(texts[:20],))
    child.start()
    child.join(120)
    assert child.exitcode == 0


@dataclass
class Agreement:
    same: float  # share of posts with identical labels
    max_diff: float  # largest score difference
    f1: tuple[float, float]  # micro-F1 of the reference, of the fast encoder
    ref_version: str
    fast_version: str


def held_out_agreement(ref_encoder: object, fast_encoder: object) -> Agreement:
    """Both encoders under the shipped heads on the held-out split: share of posts with identical
    labels, the largest score difference, micro-F1 of each, and the fast one's version."""
    from classify.artifacts import load_artifact
    from classify.evaluate import score
    from classify.training import load_examples, split_examples, training_files
    from classify.transformer import TransformerClassifier
    from core.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    held = split_examples(load_examples(training_files(), known_themes=taxonomy.theme_keys))["test"]
    posts = [e.as_post() for e in held]
    gold = [set(e.themes) for e in held]
    artifact = load_artifact()
    ref = TransformerClassifier(encoder=ref_encoder, artifact=artifact, taxonomy=taxonomy)  # type: ignore[arg-type]
    fast = TransformerClassifier(encoder=fast_encoder, artifact=artifact, taxonomy=taxonomy)  # type: ignore[arg-type]
    a, b = ref.predict(posts), fast.predict(posts)
    pairs = list(zip(a, b, strict=True))
    f1 = [
        score(gold, [set(p.themes) for p in preds], taxonomy.theme_keys).micro_f1
        for preds in (a, b)
    ]
    return Agreement(
        same=float(np.mean([set(x.themes) == set(y.themes) for x, y in pairs])),
        max_diff=max(abs(x.scores[t] - y.scores[t]) for x, y in pairs for t in x.scores),
        f1=(f1[0], f1[1]),
        ref_version=ref.version,
        fast_version=fast.version,
    )


def test_labels_agree_with_torch_fp32(onnx_encoder: OnnxEncoder, torch_encoder: object) -> None:
    """design.md's rule on the held-out split: >= 99% identical labels, micro-F1 within 0.01."""
    got = held_out_agreement(torch_encoder, onnx_encoder)
    assert got.ref_version != got.fast_version and "onnx-fp32" in got.fast_version
    assert got.same >= 0.99, got
    assert abs(got.f1[0] - got.f1[1]) <= 0.01, got


def test_cache_rebuilds_when_corrupt_or_missing(cache_dir: Path, tmp_path: Path) -> None:
    model = resolve_model_path()
    for name in os.listdir(cache_dir):
        if name.endswith((".onnx", ".json")):
            shutil.copy(cache_dir / name, tmp_path / name)
    path = cache_path(model, precision="fp32", cache_dir=tmp_path)
    assert cached_ok(path)
    good = json.loads(path.with_suffix(".json").read_text())["sha256"]

    with path.open("r+b") as f:  # flip bytes in the middle: same size, wrong content
        f.seek(path.stat().st_size // 2)
        f.write(b"\0garbage\0" * 64)
    assert not cached_ok(path)
    assert ensure_onnx(model, precision="fp32", cache_dir=tmp_path) == path
    assert cached_ok(path)
    assert json.loads(path.with_suffix(".json").read_text())["sha256"] == good  # same bytes again

    path.unlink()
    enc = OnnxEncoder(precision="fp32", cache_dir=tmp_path)
    assert enc.onnx_path == path and cached_ok(path)
    assert enc.encode(["still works"]).shape == (1, enc.dim)


def test_a_fresh_data_dir_takes_the_per_user_copy(cache_dir: Path, tmp_path: Path) -> None:
    model = resolve_model_path()
    fresh = tmp_path / "data" / "models" / "onnx"
    path = ensure_onnx(model, precision="fp32", cache_dir=fresh, shared_dir=cache_dir)
    assert path.parent == fresh.resolve() and cached_ok(path)
    # A copy, not a build: the bytes are the shared file's.
    src = cache_path(model, precision="fp32", cache_dir=cache_dir)
    assert path.read_bytes() == src.read_bytes()


def test_backend_setting_switches(tmp_path: Path) -> None:
    from classify.encoder import Encoder, load_encoder
    from classify.loader import current_version

    base = Settings(classifier="transformers", data_dir=tmp_path)
    onnx = load_encoder(base)
    assert isinstance(onnx, OnnxEncoder) and onnx.backend == "onnx"
    torch_s = base.model_copy(update={"classifier_backend": "torch"})
    t = load_encoder(torch_s, precision="fp32")
    assert isinstance(t, Encoder) and t.backend == "torch" and t.version_id == "minilm-l6"
    assert onnx.precision == "fp32"  # the default: it keeps torch fp32's labels
    int8 = load_encoder(base.model_copy(update={"onnx_precision": "int8"}))
    assert isinstance(int8, OnnxEncoder) and int8.precision == "int8"
    assert int8.onnx_path != onnx.onnx_path and int8.version_id == "minilm-l6-onnx-int8"
    # Quantized weights make a smaller graph and move the embedding a little, not a lot.
    assert int8.onnx_path.stat().st_size < onnx.onnx_path.stat().st_size
    texts = ["ChatGPT refused to write my essay", "switching to Claude for good"]
    cos = (int8.encode(texts) * onnx.encode(texts)).sum(1)
    assert 0.95 < cos.min() < 0.99999, cos
    # The cheap version (no weights loaded) names the runtime the settings pick.
    assert current_version(base).startswith("minilm-l6-onnx-fp32.h")
    assert current_version(base.model_copy(update={"onnx_precision": "int8"})).startswith(
        "minilm-l6-onnx-int8.h"
    )


def test_classifier_predicts_through_onnx(onnx_encoder: OnnxEncoder) -> None:
    from classify.artifacts import load_artifact
    from classify.transformer import TransformerClassifier
    from core.taxonomy import load_taxonomy

    clf = TransformerClassifier(
        encoder=onnx_encoder, artifact=load_artifact(), taxonomy=load_taxonomy()
    )
    preds = clf.predict(
        [PostInput("1", "ChatGPT refused again. Switching to Claude."), PostInput("2", "")]
    )
    assert [p.id for p in preds] == ["1", "2"]
    assert preds[1].themes == []
    assert all(p.model_version == clf.version for p in preds)
    assert "chatgpt" in preds[0].products and "claude" in preds[0].products
