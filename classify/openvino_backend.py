"""The encoder in OpenVINO: the cached ONNX fp32 graph, compiled for bf16 where the CPU runs it fast.

OpenVINO's CPU plugin reads the same graph the ONNX backend runs (`classify.onnx_backend`, built
once into the cache), fuses attention, GELU and LayerNorm itself, and runs the matrix products in
bf16 on AMX or AVX-512 BF16 while keeping the reductions in fp32. On the 2-core AMD Zen 4 host
that made the encoder 1.2x the traced torch bf16 module (bench/results/classify.md), closer to
fp32 (embedding cosine 0.9999), and it imports in 0.15 s where torch takes 1.6 s.

Micro-batches run side by side, one stream and one core each, as in the other backends. A
compiled model does not survive a fork (a forked child's first request hangs in the parent's
thread pool, and destroying it there crashes), so each process compiles its own (0.3 s) and
keeps the inherited one alive, and each thread keeps its own request.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from classify.batching import PooledEncoding, SideBySide, Tokens
from classify.encoder import (
    MAX_TOKENS,
    MICRO_BATCH,
    cpu_count,
    encoder_id,
    fast_bf16,
    hidden_size,
    log_loaded,
    resolve_model_path,
    version_id,
)
from classify.onnx_backend import ensure_onnx

OpenVinoPrecision = Literal["bf16", "fp32"]
# OpenVINO's names for them (it refuses "fp32": `Supported values: bf16, f16, f32`).
_HINT: dict[OpenVinoPrecision, str] = {"bf16": "bf16", "fp32": "f32"}

# Models and requests a forked process inherited: never destroyed there, since tearing one down
# stops threads that exist only in the parent (a segfault in every child, seen in the fork test).
_inherited: list[object] = []


def default_precision() -> OpenVinoPrecision:
    """bf16 where the CPU runs it fast (`fast_bf16`), else fp32: from the CPU flags, so one host
    always gets one model version."""
    return "bf16" if fast_bf16() else "fp32"


def _compile(onnx_path: Path, *, precision: OpenVinoPrecision, streams: int) -> Any:
    import openvino as ov

    core = ov.Core()
    return core.compile_model(
        core.read_model(str(onnx_path)),
        "CPU",
        {
            "INFERENCE_PRECISION_HINT": _HINT[precision],
            # One stream per core, one thread per stream: requests from the pool's threads run
            # at once instead of splitting each op over the cores.
            "NUM_STREAMS": streams,
            "INFERENCE_NUM_THREADS": streams,
            # No pinning: the cores are shared with the API, the database and other workers.
            "ENABLE_CPU_PINNING": False,
        },
    )


def _warm_up(model: Any) -> None:
    """One inference on this thread before any run side by side.

    The Python binding fills function-local statics (its numpy type tables) on the first copy
    in or out of a tensor, running Python code while the C++ guard is held. Two threads that
    both make a first call deadlock: one holds the guard and waits for the GIL, the other
    holds the GIL and waits for the guard (`classify file` hung in about 1 process start in
    16 on a 2-core host). Once filled in a process they stay filled, in forked children too.
    """
    request = model.create_infer_request()
    ids = np.zeros((1, 2), dtype=np.int64)
    request.infer({"input_ids": ids, "attention_mask": np.ones_like(ids)}).to_tuple()[0].copy()


class OpenVinoEncoder(PooledEncoding):
    """Implements `classify.encoder.SentenceEncoder` on OpenVINO; load once per process."""

    backend = "openvino"

    def __init__(
        self,
        model_path: str = "",
        *,
        precision: OpenVinoPrecision | None = None,
        cache_dir: Path,
        shared_dir: Path | None = None,
        micro_batch: int = MICRO_BATCH,
        max_tokens: int = MAX_TOKENS,
        threads: int | None = None,
    ) -> None:
        """`cache_dir` is the ONNX graphs' folder: the fp32 graph there is what gets compiled."""
        started = time.perf_counter()
        self.path = resolve_model_path(model_path)
        self.id = encoder_id(model_path)
        self.precision: OpenVinoPrecision = precision or default_precision()
        self.threads = threads or cpu_count()
        self.concurrent = self.threads > 1  # runs side by side, one core each
        self.micro_batch = micro_batch
        self.max_tokens = max_tokens
        self.dim = hidden_size(self.path)
        self.onnx_path = ensure_onnx(
            self.path, precision="fp32", cache_dir=cache_dir, shared_dir=shared_dir
        )
        self._pool = SideBySide(self.threads, "openvino")
        self._lock = threading.Lock()
        self._local = threading.local()
        self._compiled: tuple[int, Any] | None = None  # (pid, compiled model)
        self._model()  # compile now: a graph OpenVINO refuses fails the load, not the first post
        self.tokens = Tokens(self.path, max_tokens)
        self.load_seconds = time.perf_counter() - started
        log_loaded(self)

    def _model(self) -> Any:
        """This process's compiled model (a forked worker compiles its own)."""
        with self._lock:
            if self._compiled is None or self._compiled[0] != os.getpid():
                if self._compiled is not None:
                    _inherited.append(self._compiled)
                model = _compile(self.onnx_path, precision=self.precision, streams=self.threads)
                _warm_up(model)
                self._compiled = (os.getpid(), model)
            return self._compiled[1]

    def _request(self) -> Any:
        """This thread's infer request on this process's model."""
        model = self._model()
        held = getattr(self._local, "request", None)
        if held is None or held[0] is not model:
            if held is not None:
                _inherited.append(held)
            held = (model, model.create_infer_request())
            self._local.request = held
        return held[1]

    def _forward(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        result = self._request().infer({"input_ids": input_ids, "attention_mask": mask})
        # The request reuses its output buffer; the caller copies its rows out before the next.
        return result.to_tuple()[0]  # type: ignore[no-any-return]

    @property
    def version_id(self) -> str:
        return version_id(self.id, self.backend, self.precision)
