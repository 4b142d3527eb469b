"""The encoder in ONNX Runtime: the same weights exported once into a cache, then run without torch.

The graph is exported from the local transformers model (no network), fused by onnxruntime's
BERT optimizer, and for int8 quantized dynamically with per-channel weights. It returns the
mean-pooled, L2-normalised embedding of every hidden state, so any layer the heads read comes
from one forward pass. The file is keyed by the weights' content hash and the export settings,
written atomically beside a manifest with its own hash, and rebuilt when missing or corrupt.
Loading needs only onnxruntime and tokenizers: no torch, no network.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np
import structlog

from classify import graph_cache
from classify.batching import PooledEncoding, SideBySide, Tokens
from classify.encoder import (
    MAX_TOKENS,
    MICRO_BATCH,
    cpu_count,
    encoder_id,
    hidden_size,
    log_loaded,
    pooled_module,
    resolve_model_path,
    version_id,
)
from classify.graph_cache import BuildError

if TYPE_CHECKING:
    from core.settings import Settings

log = structlog.get_logger(__name__)

OnnxPrecision = Literal["int8", "fp32"]
# Bump when the exported graph changes (inputs, outputs, fusion or quantization options).
EXPORT_FORMAT = 1
OPSET = 17
# int8 weights only where they keep the labels: full per-channel int8 flipped 1.5-2.4% of posts'
# labels on the evaluation sets; quantizing only the FFN up-projection and the attention output
# (the query/key/value projection and the FFN down-projection stay fp32) kept over 99%.
QUANTIZED_MATMULS = ("intermediate/dense/MatMul", "attention/output/dense/MatMul")


OnnxBuildError = BuildError  # the ONNX graph could not be exported or does not load


def onnx_cache_dir(settings: Settings) -> Path:
    """The folder of exported graphs: under the data dir, beside the database."""
    return settings.data_dir / "models" / "onnx"


def user_cache_dir() -> Path:
    """A per-user copy of built graphs, so a fresh data dir (a test, a second checkout) reuses one."""
    return graph_cache.user_cache_dir("onnx")


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def export_settings(precision: OnnxPrecision) -> dict[str, Any]:
    """Everything besides the weights that decides the exported file's bytes."""
    quant = (
        {"per_channel": True, "weight_type": "QInt8", "nodes": list(QUANTIZED_MATMULS)}
        if precision == "int8"
        else None
    )
    return {
        "format": EXPORT_FORMAT,
        "opset": OPSET,
        "precision": precision,
        "optimizer": "bert",
        "quantization": quant,
        "onnxruntime": _ort_version(),
    }


def cache_path(model_path: str, *, precision: OnnxPrecision, cache_dir: Path) -> Path:
    """Where the graph for these weights and settings lives: the key is in the file name."""
    return graph_cache.keyed_path(
        model_path,
        tag=precision,
        settings=export_settings(precision),
        cache_dir=cache_dir,
        suffix=".onnx",
    )


def _export(model_path: str, out: Path) -> tuple[int, int]:
    """torch.onnx.export of the transformers model plus in-graph pooling; (heads, hidden size)."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # Eager attention traces to plain ops that the BERT optimizer fuses; sdpa bakes in shapes.
    model = AutoModel.from_pretrained(
        model_path, local_files_only=True, attn_implementation="eager"
    ).eval()

    ids = torch.ones((2, 12), dtype=torch.long)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer chatter about shapes that stay dynamic here
        torch.onnx.export(
            pooled_module(model),
            (ids, torch.ones_like(ids)),
            str(out),
            input_names=["input_ids", "attention_mask"],
            output_names=["pooled"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "pooled": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    cfg = model.config
    return int(cfg.num_attention_heads), int(cfg.hidden_size)


def build(model_path: str, dest: Path, *, precision: OnnxPrecision) -> Path:
    """Export, fuse and (int8) quantize into `dest` atomically, with a manifest beside it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    started = time.perf_counter()

    def make(tmp: Path, final: Path) -> dict[str, Any]:
        raw, fused = tmp / "raw.onnx", tmp / "fused.onnx"
        heads, hidden = _export(model_path, raw)
        try:
            opt = optimizer.optimize_model(
                str(raw), model_type="bert", num_heads=heads, hidden_size=hidden
            )
            opt.save_model_to_file(str(fused))
            fusions = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
        except Exception:  # an unfused graph is slower but still right
            log.exception("classify.onnx_fusion_failed", model=model_path)
            fused, fusions = raw, {}
        if precision == "int8":
            import onnx

            graph = onnx.load(str(fused), load_external_data=False).graph
            nodes = [n.name for n in graph.node if n.name.endswith(QUANTIZED_MATMULS)]
            quantize_dynamic(
                str(fused),
                str(final),
                per_channel=True,
                weight_type=QuantType.QInt8,
                nodes_to_quantize=nodes,
                # Fused ops are in the com.microsoft domain, which shape inference cannot type.
                extra_options={"DefaultTensorType": 1},  # onnx.TensorProto.FLOAT
            )
        else:
            fused.replace(final)
        return {"source": model_path, "fusions": fusions}

    graph_cache.build_atomic(dest, make, export_settings(precision))
    log.info(
        "classify.onnx_built",
        path=str(dest),
        precision=precision,
        mb=round(dest.stat().st_size / 1e6, 1),
        seconds=round(time.perf_counter() - started, 1),
    )
    return dest


def ensure_onnx(
    model_path: str,
    *,
    precision: OnnxPrecision,
    cache_dir: Path,
    rebuild: bool = False,
    shared_dir: Path | None = None,
) -> Path:
    """The cached graph for these weights, built first if missing, corrupt or `rebuild`.

    `shared_dir` (the per-user cache) is looked in before building and receives a copy after.
    """
    return graph_cache.ensure(
        cache_path(model_path, precision=precision, cache_dir=cache_dir),
        lambda path: build(model_path, path, precision=precision),
        rebuild=rebuild,
        shared_dir=shared_dir,
    )


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # Idle workers would spin on the cores between micro-batches; on a machine shared with the
    # API, the database and tokenization, that cost 30-50% throughput under load (measured).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OnnxEncoder(PooledEncoding):
    """Implements `classify.encoder.SentenceEncoder` on ONNX Runtime; load once per process."""

    backend = "onnx"

    def __init__(
        self,
        model_path: str = "",
        *,
        precision: OnnxPrecision = "int8",
        cache_dir: Path,
        shared_dir: Path | None = None,
        micro_batch: int = MICRO_BATCH,
        max_tokens: int = MAX_TOKENS,
        threads: int | None = None,
        concurrent: bool = True,
    ) -> None:
        started = time.perf_counter()
        self.path = resolve_model_path(model_path)
        self.id = encoder_id(model_path)
        self.precision: OnnxPrecision = precision
        self.threads = threads or cpu_count()
        # Micro-batches run side by side, one core each, rather than each op split over the
        # cores: no wake-up and wait between ops, and a descheduled thread stalls only its own
        # micro-batch (the machine is shared). ORT sessions are safe to run from several threads.
        self.concurrent = concurrent and self.threads > 1
        self._pool = SideBySide(self.threads, "onnx")
        session_threads = 1 if self.concurrent else self.threads
        self.micro_batch = micro_batch
        self.max_tokens = max_tokens
        self.dim = hidden_size(self.path)
        self.onnx_path = ensure_onnx(
            self.path, precision=precision, cache_dir=cache_dir, shared_dir=shared_dir
        )
        try:
            self.session = _session(self.onnx_path, session_threads)
        except Exception:  # the bytes matched but ORT refuses: build afresh once
            log.exception("classify.onnx_unloadable", path=str(self.onnx_path))
            self.onnx_path = ensure_onnx(
                self.path, precision=precision, cache_dir=cache_dir, rebuild=True
            )
            self.session = _session(self.onnx_path, session_threads)
        self.tokens = Tokens(self.path, max_tokens)
        self.load_seconds = time.perf_counter() - started
        log_loaded(self)

    @property
    def version_id(self) -> str:
        return version_id(self.id, self.backend, self.precision)

    def _forward(self, input_ids: np.ndarray, mask: np.ndarray) -> Any:
        return self.session.run(["pooled"], {"input_ids": input_ids, "attention_mask": mask})[0]


def main() -> None:
    """Build (or verify) the cached graph for the configured encoder: `python -m classify.onnx_backend`."""
    from core.settings import get_settings

    s = get_settings()
    path = ensure_onnx(
        resolve_model_path(s.model_path),
        precision=s.onnx_precision,
        cache_dir=onnx_cache_dir(s),
        shared_dir=user_cache_dir(),
    )
    graph_cache.publish(path, user_cache_dir())
    print(path)  # the Makefile shows where the graph went


if __name__ == "__main__":
    main()
