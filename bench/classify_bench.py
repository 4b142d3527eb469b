"""Classifier throughput end to end (parse, tokenize, encode, heads, products, write JSON).

Usage: python -m bench.classify_bench [--n 1500] [--naive-n 150]

Posts are the real tweets and Reddit posts in the shared folder when it is present (read at
run time, never copied), else the project's training texts. Batch sizes 1 / 32 / 128 are the
size of one `predict` request, as the Celery task and `classify file` send them. The naive
baseline is transformers' `pipeline("feature-extraction")` called once per post, followed by
the same heads. Writes bench/results/classify.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import sys
import time

import numpy as np

from bench.common import machine, write_result

# Ceilings from ../shared/docs/measurements.md: 21.6 MFLOP per token; two cores measured
# 146-186 GFLOP/s in fp32 matrix products.
MFLOP_PER_TOKEN = 21.6
FP32_GFLOPS = (146.0, 186.0)


def _posts(n: int) -> list[dict[str, str]]:
    from core.settings import get_settings

    shared = get_settings().shared_dir / "data" / "posts"
    texts: list[str] = []
    tw = shared / "twitter_chatgpt_ai_2023-04.jsonl"
    rd = shared / "reddit_llm_2025-09_dev.csv"
    if tw.is_file() and rd.is_file():
        for line in tw.read_text(encoding="utf-8").splitlines():
            texts.append(json.loads(line).get("renderedContent", ""))
        csv.field_size_limit(10_000_000)
        with rd.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                body = row.get("Body") or row.get("body") or ""
                texts.append(((row.get("Title") or row.get("title") or "") + "\n" + body).strip())
                if len(texts) >= n:
                    break
        source = "shared tweets + Reddit posts"
    else:
        from classify.training import load_examples, training_files

        texts = [e.text for e in load_examples(training_files())]
        source = "training texts"
    rows = [{"id": str(i), "text": t} for i, t in enumerate(texts[:n])]
    print(f"{len(rows)} posts from {source}", file=sys.stderr)
    return rows


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _end_to_end(clf: object, rows: list[dict[str, str]], batch: int) -> float:
    from cli.classify import classify_stream

    lines = [json.dumps(r) for r in rows]
    out = io.StringIO()
    start = time.perf_counter()
    written, _ = classify_stream(clf, iter(lines), out, batch_size=batch)
    return written / (time.perf_counter() - start)


def _naive(clf: object, rows: list[dict[str, str]]) -> float:
    """pipeline("feature-extraction") once per post, mean-pooled, then the same heads."""
    from transformers import FeatureExtractionPipeline, pipeline

    from classify.base import PostInput
    from classify.heads import build_features, post_signals
    from classify.products import tag_products
    from classify.transformer import POOLED_LAYERS, TransformerClassifier, lexical_inputs

    assert isinstance(clf, TransformerClassifier)

    class AllLayers(FeatureExtractionPipeline):
        # The heads read two middle layers too; the stock pipeline returns only the last.
        def postprocess(self, model_outputs, return_tensors=False):  # type: ignore[no-untyped-def,override]
            return [h[0].numpy() for h in model_outputs.hidden_states]

    pipe = pipeline("feature-extraction", model=clf.encoder.path, pipeline_class=AllLayers)
    pipe.model.config.output_hidden_states = True

    def pool(h: np.ndarray) -> np.ndarray:
        v = h.mean(0)
        return (v / np.linalg.norm(v)).astype(np.float32)[None, :]

    out = io.StringIO()
    start = time.perf_counter()
    for r in rows:
        post = PostInput(id=r["id"], text=r["text"])
        layers = pipe(post.text or " ", truncation=True, max_length=256)
        emb = pool(layers[-1])
        x = build_features(emb, np.zeros_like(emb), post_signals(post.text, None, None)[None, :])
        x = np.hstack([x, *(pool(layers[i]) for i in POOLED_LAYERS)])
        p = clf.heads.predict_proba(x, clf.heads.lexicon.transform(*lexical_inputs([post])))[0]
        row = {"id": post.id, "scores": p.tolist(), "products": tag_products(post.text)}
        out.write(json.dumps(row) + "\n")
    return len(rows) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--naive-n", type=int, default=150)
    ap.add_argument("--batch1-n", type=int, default=200)
    args = ap.parse_args()
    rows = _posts(args.n)

    t0 = time.perf_counter()
    from classify.transformer import TransformerClassifier

    clf = TransformerClassifier.from_settings()
    load_s = time.perf_counter() - t0
    mem_loaded = _peak_mb()

    _end_to_end(clf, rows[:64], 32)  # warm-up: first calls allocate
    results = {
        1: _end_to_end(clf, rows[: args.batch1_n], 1),
        32: _end_to_end(clf, rows, 32),
        128: _end_to_end(clf, rows, 128),
    }
    mem_run = _peak_mb()

    # Encoder alone, to say how much of the time the model takes and how close to the ceiling.
    texts = [r["text"] for r in rows]
    start = time.perf_counter()
    clf.encoder.encode(texts)
    enc_rate = len(texts) / (time.perf_counter() - start)
    tok = clf.encoder.tokenizer(texts, truncation=True, max_length=clf.encoder.max_tokens)
    mean_tokens = float(np.mean([len(ids) for ids in tok["input_ids"]]))
    ceiling = [g * 1000 / (MFLOP_PER_TOKEN * mean_tokens) for g in FP32_GFLOPS]

    naive = _naive(clf, rows[: args.naive_n])
    load_avg = os.getloadavg()[0]

    body = f"""Command: `python -m bench.classify_bench --n {args.n}`; model `{clf.version}`,
encoder precision {clf.encoder.precision}, {clf.encoder.threads} torch threads, micro-batches of
{clf.encoder.micro_batch} sorted by length; {len(rows)} posts, {mean_tokens:.0f} tokens on average
(truncated at {clf.encoder.max_tokens}). Load average during the run: {load_avg:.1f} on
{os.cpu_count()} cores (other jobs shared the machine, so treat these as lower bounds).

| path | posts/s |
|---|---|
| end to end, batch 1 ({args.batch1_n} posts) | {results[1]:.0f} |
| end to end, batch 32 | {results[32]:.0f} |
| end to end, batch 128 | {results[128]:.0f} |
| naive: `pipeline("feature-extraction")` per post + same heads ({args.naive_n} posts) | {naive:.0f} |
| encoder alone (tokenize, model, pool), length-sorted | {enc_rate:.0f} |

- Batch 128 is {results[128] / naive:.1f}x the naive baseline.
- fp32 ceiling for {mean_tokens:.0f}-token posts on two cores: {ceiling[0]:.0f}-{ceiling[1]:.0f}
  posts/s (measurements.md); the encoder alone reached {enc_rate / ceiling[1]:.0%}-{enc_rate / ceiling[0]:.0%}
  of it, end to end at batch 128 {results[128] / ceiling[1]:.0%}-{results[128] / ceiling[0]:.0%}.
- Model load (encoder + heads): {load_s:.1f} s. Peak RSS {mem_loaded:.0f} MB after loading,
  {mem_run:.0f} MB after the runs (naive pipeline not yet loaded).
- bf16: {"used (native on this CPU)" if clf.encoder.precision == "bf16" else "not used: this CPU has no native bf16 (torch emulates it at ~15 posts/s), so the encoder runs fp32"}.
"""
    path = write_result("classify", "Classifier throughput", body, machine=machine())
    print(body)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
