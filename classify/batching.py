"""Side-by-side micro-batches for the encoders: word-piece ids without padding, length-sorted runs
cut to minimise padding, padded arrays per run, and a per-process pool that runs them.

On 2 cores two one-thread model calls side by side beat one call splitting each op over two
threads: nothing waits at a barrier for a thread the other work on the machine took away.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

# One more model call costs about as much as this many tokens of work (its fixed cost and
# the smaller matrix products), from bs 1 vs bs 16 in measurements.md; see micro_batches.
CALL_TOKENS = 48


def micro_batches(
    lengths: np.ndarray, size: int, *, call_tokens: int = CALL_TOKENS
) -> list[np.ndarray]:
    """Indices of `lengths` in length order, cut into runs of at most `size` posts.

    Each run pads to its longest post. The cuts minimise padded tokens plus `call_tokens` per
    run (what one more, smaller model call costs, in tokens), exactly, by dynamic programming
    over the sorted lengths: in 128-post requests of real posts, fixed runs of 16 padded 17%
    extra tokens, these about 4%; short posts still share a call.
    """
    order = np.argsort(lengths, kind="stable")
    n = len(order)
    sorted_len = lengths[order].astype(np.int64)
    best = np.zeros(n + 1, dtype=np.int64)  # best[k]: cost of the first k sorted posts
    cut = np.zeros(n + 1, dtype=np.int64)
    for k in range(1, n + 1):
        j = np.arange(max(0, k - size), k)  # the run is sorted posts j..k-1, longest k-1
        cost = best[j] + (k - j) * sorted_len[k - 1] + call_tokens
        i = int(np.argmin(cost))
        best[k], cut[k] = cost[i], j[i]
    out: list[np.ndarray] = []
    k = n
    while k > 0:
        out.append(order[cut[k] : k])
        k = int(cut[k])
    return out[::-1]


class Tokens:
    """Word-piece ids without padding: the fast tokenizer's Rust core, one call per request."""

    def __init__(self, model_path: str, max_tokens: int) -> None:
        file = Path(model_path) / "tokenizer.json"
        self._hf: Any = None
        if file.is_file():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(file))
            padding = tok.padding or {}
            self.pad_id = int(padding.get("pad_id", 0))
            tok.no_padding()  # tokenizer.json pads every text to 128; micro-batches pad themselves
            tok.enable_truncation(max_length=max_tokens)
            self._tok = tok
        else:  # a checkpoint with only vocab files: transformers builds the fast tokenizer
            from transformers import AutoTokenizer

            self._hf = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
            self.pad_id = int(self._hf.pad_token_id or 0)
        self.max_tokens = max_tokens

    def counts(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text after truncation, special tokens included (as encoded)."""
        return [len(x) for x in self.ids([t or " " for t in texts])]

    def ids(self, texts: list[str]) -> list[list[int]]:
        if self._hf is not None:
            enc = self._hf(texts, truncation=True, max_length=self.max_tokens)
            return [list(x) for x in enc["input_ids"]]
        return [e.ids for e in self._tok.encode_batch(texts)]


def padded(
    ids: list[list[int]], lengths: np.ndarray, idx: np.ndarray, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """input_ids and attention_mask (int64) of the posts ``idx``, padded to the longest of them."""
    width = int(lengths[idx].max())
    input_ids = np.full((len(idx), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(idx), width), dtype=np.int64)
    for row, i in enumerate(idx):
        input_ids[row, : lengths[i]] = ids[i]
        mask[row, : lengths[i]] = 1
    return input_ids, mask


def encode_pooled(
    texts: Sequence[str],
    layers: Sequence[int],
    out: np.ndarray,
    *,
    tokens: Tokens,
    micro_batch: int,
    forward: Callable[[np.ndarray, np.ndarray], Any],
    pool: SideBySide | None = None,
) -> np.ndarray:
    """Fill `out` with each text's sentence embedding, then its pools of `layers`.

    The texts' word pieces go in length-sorted runs (`micro_batches`), each padded to its longest;
    `forward(input_ids, mask)` returns a run's pools of every hidden state (n, layers + 1, dim).
    Runs go side by side in `pool` where one is given, else one after another.
    """
    ids = tokens.ids([t or " " for t in texts])
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    pick = [-1, *layers]  # pools[:, -1] is the last layer, i.e. the sentence embedding

    def run(idx: np.ndarray) -> None:
        input_ids, mask = padded(ids, lengths, idx, tokens.pad_id)
        pools = np.asarray(forward(input_ids, mask))
        out[idx] = pools[:, pick, :].reshape(len(idx), -1)

    batches = micro_batches(lengths, micro_batch)
    if pool is None:
        for idx in batches:
            run(idx)
    else:
        pool.run(run, batches)
    return out


class SideBySide:
    """A pool of ``threads`` workers per process that runs micro-batches, longest first."""

    _lock = threading.Lock()

    def __init__(
        self, threads: int, name: str, *, on_new_process: Callable[[], None] | None = None
    ) -> None:
        """``on_new_process`` runs on the calling thread before a process's first pool starts
        (in a forked worker: before its threads touch a runtime the fork left half-reset)."""
        self.threads = threads
        self.name = name
        self.on_new_process = on_new_process
        self._pool: tuple[int, ThreadPoolExecutor] | None = None  # (pid, pool)

    def _executor(self) -> ThreadPoolExecutor:
        # Per process: a worker forked after a run would inherit a pool whose threads are gone.
        with self._lock:
            if self._pool is None or self._pool[0] != os.getpid():
                if self.on_new_process is not None:
                    self.on_new_process()
                self._pool = (
                    os.getpid(),
                    ThreadPoolExecutor(self.threads, thread_name_prefix=self.name),
                )
            return self._pool[1]

    def run(self, fn: Callable[[np.ndarray], Any], batches: list[np.ndarray]) -> None:
        """``fn`` on every batch, longest first so no core is left with a long one at the end."""
        for _ in self._executor().map(fn, batches[::-1]):
            pass


class PooledEncoding:
    """`encode`, `encode_layers`, `token_counts` and `bounds_threads` for an encoder whose
    `_forward(input_ids, mask)` returns a run's pools of every hidden state: the runs go through
    `encode_pooled`, side by side in `_pool` when `concurrent`, else on the calling thread."""

    dim: int
    tokens: Tokens
    micro_batch: int
    concurrent: bool
    _pool: SideBySide

    def _forward(self, input_ids: np.ndarray, mask: np.ndarray) -> Any:
        raise NotImplementedError

    @property
    def bounds_threads(self) -> bool:
        """Every run goes through this encoder's pool, so callers on several threads never
        oversubscribe the cores and need not take turns."""
        return self.concurrent

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text after truncation, special tokens included."""
        return self.tokens.counts(texts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Sentence embeddings (n, dim) float32: the mean-pooled last layer, in input order."""
        return self.encode_layers(texts, layers=())

    def encode_layers(self, texts: Sequence[str], *, layers: Sequence[int] = ()) -> np.ndarray:
        """The sentence embedding, then the normalised mean pool of each of `layers` (n, dim*(1+k))."""
        out = np.zeros((len(texts), self.dim * (1 + len(layers))), dtype=np.float32)
        if not texts:
            return out
        return encode_pooled(
            texts,
            layers,
            out,
            tokens=self.tokens,
            micro_batch=self.micro_batch,
            forward=self._forward,
            pool=self._pool if self.concurrent else None,
        )
