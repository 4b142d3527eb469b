"""The bf16 encoder as a traced, frozen TorchScript module, built once from the transformers model.

The module is `pooled_module` of the transformers model with its weights in bf16, traced on a
padded batch (so the attention mask is always applied and any batch shape runs) and frozen. Its
outputs are bitwise those of the eager bf16 model. Loading it needs torch but not transformers
(~2.5 s of imports on 2 cores), and the whole forward pass runs in TorchScript's interpreter
instead of Python between torch ops, so it holds the GIL only at the call: the rest of
`classify file` (lexical features, products, JSON) no longer takes turns with the encoder.
Cached like the ONNX graphs (`classify.graph_cache`), keyed by the weights and the torch and
transformers versions.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from classify import graph_cache

if TYPE_CHECKING:
    from core.settings import Settings

log = structlog.get_logger(__name__)

# Bump when the traced module changes (inputs, outputs, pooling, precision).
TRACE_FORMAT = 1


def trace_settings() -> dict[str, Any]:
    """Everything besides the weights that decides the traced file's bytes (versions read from
    the installed packages' metadata: no transformers import)."""
    from importlib.metadata import version

    return {
        "format": TRACE_FORMAT,
        "precision": "bf16",
        "torch": version("torch"),
        "transformers": version("transformers"),
    }


def cache_dir_of(settings: Settings) -> Path:
    """The folder of traced modules: under the data dir, beside the ONNX graphs."""
    return settings.data_dir / "models" / "torchscript"


def cache_path(model_path: str, *, cache_dir: Path) -> Path:
    return graph_cache.keyed_path(
        model_path, tag="bf16", settings=trace_settings(), cache_dir=cache_dir, suffix=".pt"
    )


def trace(model_path: str) -> Any:
    """The frozen, traced bf16 module of the transformers model at `model_path`."""
    import torch

    # Padded rows in the example: the traced graph keeps the masking path for every batch.
    ids = torch.full((3, 12), 1000, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    with warnings.catch_warnings(), torch.inference_mode():
        # Tracer chatter about shapes that stay dynamic here, and torch.jit's deprecation notice.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(eager(model_path), (ids, mask), check_trace=False)
        return torch.jit.freeze(traced)


def eager(model_path: str) -> Any:
    """The same module untraced: the transformers model in bf16 with the pooling around it."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from classify.encoder import pooled_module

    hf_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(model_path, local_files_only=True).eval()
    return pooled_module(model.to(torch.bfloat16))


def build(model_path: str, dest: Path) -> Path:
    """Trace into `dest` atomically, with a manifest beside it."""
    started = time.perf_counter()

    def make(tmp: Path, final: Path) -> dict[str, Any]:
        trace(model_path).save(str(final))
        return {"source": model_path}

    graph_cache.build_atomic(dest, make, trace_settings())
    log.info(
        "classify.torchscript_built",
        path=str(dest),
        mb=round(dest.stat().st_size / 1e6, 1),
        seconds=round(time.perf_counter() - started, 1),
    )
    return dest


def ensure(
    model_path: str, *, cache_dir: Path, shared_dir: Path | None = None, rebuild: bool = False
) -> Path:
    """The cached module for these weights, traced first if missing, corrupt or `rebuild`."""
    return graph_cache.ensure(
        cache_path(model_path, cache_dir=cache_dir),
        lambda p: build(model_path, p),
        rebuild=rebuild,
        shared_dir=shared_dir,
    )


def _jit_load(path: Path) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit's notice, every load
        return torch.jit.load(str(path)).eval()


def load(model_path: str, *, cache_dir: Path | None, shared_dir: Path | None = None) -> Any:
    """The traced module: from the cache (built there first if needed), or traced in memory.

    Where tracing or loading fails (a torch without TorchScript, a file torch refuses twice) it
    is the eager module instead: the same numbers, slower, and said in the log.
    """
    try:
        if cache_dir is None:
            return trace(model_path)
        path = ensure(model_path, cache_dir=cache_dir, shared_dir=shared_dir)
        try:
            return _jit_load(path)
        except Exception:  # the bytes matched but torch refuses: build afresh once
            log.exception("classify.torchscript_unloadable", path=str(path))
            return _jit_load(ensure(model_path, cache_dir=cache_dir, rebuild=True))
    except Exception:
        log.exception("classify.torchscript_unavailable", model=model_path)
        return eager(model_path)


def main() -> None:
    """Build (or verify) the traced module where the torch backend runs bf16 (the CPU runs bf16
    fast): `python -m classify.torchscript`."""
    from classify.encoder import fast_bf16, resolve_model_path
    from core.settings import get_settings

    if not fast_bf16():
        print("torchscript: skipped (this CPU runs bf16 slower than fp32; torch runs fp32 here)")
        return
    s = get_settings()
    shared = graph_cache.user_cache_dir("torchscript")
    path = ensure(resolve_model_path(s.model_path), cache_dir=cache_dir_of(s), shared_dir=shared)
    graph_cache.publish(path, shared)
    print(path)


if __name__ == "__main__":
    main()
