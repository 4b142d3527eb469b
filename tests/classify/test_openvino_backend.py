"""OpenVINO (the "auto" fast path where the CPU runs bf16 fast): same embeddings, same labels,
side by side, and a worker forked after it ran.

The encoder compiles the ONNX fp32 graph with the precision this CPU gets (`default_precision`):
bf16 on AMX or AMD's AVX-512 BF16, fp32 elsewhere, so these checks hold on any host and test the
precision the host would really run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from classify.encoder import Encoder
from classify.openvino_backend import OpenVinoEncoder, default_precision
from tests.classify.test_onnx_backend import (
    _real_texts,
    check_side_by_side,
    forked_exit_codes,
    held_out_agreement,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encoders(cache_dir: Path) -> Iterator[tuple[Encoder, OpenVinoEncoder]]:
    """(torch fp32, OpenVINO side by side)."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield Encoder(precision="fp32"), OpenVinoEncoder(threads=2, cache_dir=cache_dir)
    finally:
        torch.set_num_threads(threads)


def test_the_embeddings_are_torch_fp32s_in_input_order(encoders) -> None:
    ref, fast = encoders
    assert fast.precision == default_precision() and fast.bounds_threads
    check_side_by_side(fast, ref, layers=(2, 3, 4))


def test_it_keeps_the_labels_and_the_scores(encoders) -> None:
    """design.md's rule on the held-out split (>= 99% identical labels, micro-F1 within 0.01),
    and the issue's: every score within 0.01 of fp32."""
    ref, fast = encoders
    got = held_out_agreement(ref, fast)
    assert f"openvino-{default_precision()}" in got.fast_version, got
    assert got.same >= 0.99, got
    assert got.max_diff <= 0.01, got
    assert abs(got.f1[0] - got.f1[1]) <= 0.01, got


def test_a_worker_forked_after_runs_encodes_the_same(encoders) -> None:
    """Celery's prefork pool forks workers. A compiled model does not survive the fork: with the
    parent's model every child here hung until killed (-9), and with a model of its own but the
    parent's destroyed every child segfaulted (-11). A child compiles its own and keeps the
    parent's alive."""
    _, fast = encoders
    texts = _real_texts(20)
    want = fast.encode_layers(texts, layers=(2, 3, 4))  # both streams ran before the fork

    def child() -> None:
        got = fast.encode_layers(texts, layers=(2, 3, 4))
        os._exit(0 if np.allclose(got, want, atol=1e-6) else 3)

    codes = forked_exit_codes(child, 4)
    assert codes == [0] * 4, codes  # 3: other embeddings; a signal: the child hung or crashed
    # The parent's model and requests still serve it after the forks.
    np.testing.assert_array_equal(fast.encode_layers(texts, layers=(2, 3, 4)), want)


_FIRST_CALLS_AT_ONCE = """
import sys, threading
import numpy as np
from pathlib import Path
from classify.openvino_backend import OpenVinoEncoder
sys.setswitchinterval(1e-6)  # hand the GIL over as often as possible: the race, made likely
enc = OpenVinoEncoder(threads=2, cache_dir=Path(sys.argv[1]))
ids = np.full((2, 16), 1000, dtype=np.int64)
start = threading.Barrier(8)
def first_call():
    start.wait()
    enc._forward(ids, np.ones_like(ids))
threads = [threading.Thread(target=first_call) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("done")
"""


def test_first_requests_made_at_once_do_not_deadlock(cache_dir: Path) -> None:
    """Each thread's first request fills statics in OpenVINO's Python binding; two at once
    deadlocked (one waits for the GIL holding the C++ guard, the other the reverse), which hung
    `classify file` in about 1 start in 16. Here, in fresh interpreters, without the warm-up
    at compile 6 of 10 starts hung; with it none of 15."""
    for _ in range(5):
        try:
            run = subprocess.run(
                [sys.executable, "-c", _FIRST_CALLS_AT_ONCE, str(cache_dir)],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("the first requests, made at once, deadlocked")
        assert run.returncode == 0 and "done" in run.stdout, run.stderr[-2000:]


def test_one_core_runs_in_line_with_the_same_numbers(encoders, cache_dir: Path) -> None:
    _, fast = encoders
    one = OpenVinoEncoder(threads=1, cache_dir=cache_dir)
    assert not one.concurrent and one.onnx_path == fast.onnx_path
    texts = _real_texts(12)
    np.testing.assert_allclose(one.encode(texts), fast.encode(texts), atol=1e-5)


def test_fp32_compiles_on_every_host_and_matches_torch_fp32(encoders, cache_dir: Path) -> None:
    """`--backend openvino` asks for fp32 on a CPU without fast bf16, and a bf16 host never takes
    that path by default: OpenVINO spells it "f32" and refused "fp32" on a Zen 3 host."""
    ref, _ = encoders
    fp32 = OpenVinoEncoder(precision="fp32", threads=1, cache_dir=cache_dir)
    assert "openvino-fp32" in fp32.version_id
    texts = _real_texts(12)
    np.testing.assert_allclose(fp32.encode(texts), ref.encode(texts), atol=1e-4)


def test_auto_falls_back_to_torch_where_openvino_fails(monkeypatch, tmp_path: Path) -> None:
    """A CPU or install where OpenVINO cannot compile: "auto" runs torch's bf16 module instead
    (and says so in the log and the model version); "openvino" asked for by name fails."""
    from classify import encoder as encoder_mod
    from classify import openvino_backend
    from classify.encoder import load_encoder
    from core.settings import Settings

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no CPU plugin for this machine")

    monkeypatch.setattr(openvino_backend, "_compile", refuse)
    zen4 = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n"
    monkeypatch.setattr(encoder_mod, "_cpu_flags", lambda: zen4)
    auto = Settings(classifier="transformers", data_dir=tmp_path, classifier_backend="auto")
    import torch

    threads = torch.get_num_threads()
    try:
        enc = load_encoder(auto)  # torch bf16 side by side sets one thread per op
    finally:
        torch.set_num_threads(threads)
    assert enc.backend == "torch" and enc.precision == "bf16"
    assert enc.version_id == "minilm-l6-torch-bf16"
    by_name = auto.model_copy(update={"classifier_backend": "openvino"})
    with pytest.raises(RuntimeError, match="no CPU plugin"):
        load_encoder(by_name)
