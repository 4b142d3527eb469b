"""Classifier throughput end to end (parse, tokenize, encode, heads, products, write JSON).

Usage: python -m bench.classify_bench [--n 1500] [--naive-n 150] [--torch-n 600] [--file-n 3000]

Posts are the real tweets and Reddit posts in the shared folder when it is present (read at
run time, never copied), else the project's training texts. Batch sizes 1 / 32 / 128 are the
size of one `predict` request, as the Celery task and `classify file` send them. The naive
baseline is transformers' `pipeline("feature-extraction")` called once per post, followed by
the same heads. One run measures the configured fast path (ONNX Runtime) beside torch fp32 (the
reference), the encoders alone, `undertow classify file` as a user runs it (a fresh process,
model load included, peak RSS), and how far the fast path's labels and scores move from torch
fp32 on the evaluation sets (design.md: >= 99% identical labels, micro-F1 within 0.01).
Writes bench/results/classify.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine, write_result
from cli.classify import FILE_CHUNK

# measurements.md: 21.6 MFLOP per token (MiniLM-L6's matrix products); the GFLOP/s of fp32
# matrix products is measured in the run (this host is not the one measurements.md used).
MFLOP_PER_TOKEN = 21.6


def _posts(n: int) -> list[dict[str, str]]:
    """Real posts from the three shared files, shuffled together (seeded), else training texts."""
    import random

    from core.settings import get_settings

    shared = get_settings().shared_dir / "data" / "posts"
    tw = shared / "twitter_chatgpt_ai_2023-04.jsonl"
    rd25 = shared / "reddit_llm_2025-09_dev.csv"
    rd23 = shared / "reddit_chatgpt_bard_2023-03.csv"
    texts: list[str] = []
    if tw.is_file() and rd25.is_file() and rd23.is_file():
        for line in tw.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line).get("renderedContent", ""))
        csv.field_size_limit(10_000_000)
        for path, title, body in ((rd25, "Full Title", "Full Content"), (rd23, "title", "text")):
            with path.open(encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    texts.append(f"{row.get(title) or ''}\n\n{row.get(body) or ''}".strip())
        source = "shared tweets + two Reddit files"
    else:
        from classify.training import load_examples, training_files

        texts = [e.text for e in load_examples(training_files())]
        source = "training texts"
    random.Random(0).shuffle(texts)  # every prefix (batch 1, torch) mixes tweets and Reddit posts
    # More posts than the files hold: repeat them (far apart, so no request sees a text twice).
    texts = [texts[i % len(texts)] for i in range(n)]
    rows = [{"id": str(i), "text": t} for i, t in enumerate(texts)]
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


def _matmul_gflops(*, bf16: bool = False) -> float:
    """GFLOP/s of the FFN's matrix product (16 posts x 94 tokens) on all cores, best of 5: fp32
    in numpy, or bf16 in torch (AMX or AVX-512 BF16 where the CPU has them)."""
    rng = np.random.default_rng(0)
    a: Any = rng.standard_normal((1504, 384), dtype=np.float32)
    w: Any = rng.standard_normal((384, 1536), dtype=np.float32)
    if bf16:
        import torch

        a, w = torch.from_numpy(a).to(torch.bfloat16), torch.from_numpy(w).to(torch.bfloat16)
    a @ w
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20):
            a @ w
        best = min(best, time.perf_counter() - start)
    return 20 * 2 * a.shape[0] * a.shape[1] * w.shape[1] / best / 1e9


def _encoder_alone(enc: Any, texts: list[str]) -> float:
    start = time.perf_counter()
    enc.encode_layers(texts, layers=(3, 4))
    return len(texts) / (time.perf_counter() - start)


def _classify_file(rows: list[dict[str, str]]) -> dict[str, Any]:
    """`undertow classify file` in a fresh process: wall s, posts/s, CPU s, peak RSS MB, summary."""
    exe = Path(sys.executable).with_name("undertow")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.jsonl"), Path(tmp, "out.jsonl")
        src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(exe), "classify", "file", str(src), "-o", str(dst)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        _, err = proc.communicate()
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"classify file failed: {err[-2000:]}")
        n = sum(1 for _ in dst.open(encoding="utf-8"))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "wall": wall,
        "rate": n / wall,
        "cpu": cpu,
        # The largest child so far: every run is the same command, so it is this command's peak.
        "rss": after.ru_maxrss / 1024,
        "summary": next((ln for ln in err.splitlines() if ln.startswith("classified")), ""),
        "load": os.getloadavg()[0],
    }


def _agreement(ref: Any, fast: Any) -> list[dict[str, Any]]:
    """Labels and scores of the fast path against torch fp32 on the evaluation sets."""
    from classify.base import PostInput
    from classify.devset import load_real_dev
    from classify.evaluate import score
    from classify.training import load_examples, split_examples, training_files
    from core.settings import get_settings

    themes = list(ref.themes)
    held = split_examples(load_examples(training_files(), known_themes=themes))["test"]
    sets = [("project held-out split", [e.as_post() for e in held], [set(e.themes) for e in held])]
    try:
        dev = load_real_dev(get_settings().shared_dir)
        sets.append(
            (
                "real dev set",
                [PostInput(id=p.id, text=p.text, parent_text=p.parent_text) for p in dev],
                [set(p.themes) for p in dev],
            )
        )
    except FileNotFoundError as e:
        print(f"skipping the real dev set: {e}", file=sys.stderr)
    out = []
    for name, posts, gold in sets:
        a, b = ref.predict(posts), fast.predict(posts)
        same = sum(set(x.themes) == set(y.themes) for x, y in zip(a, b, strict=True))
        diff = max(
            abs(x.scores[t] - y.scores[t]) for x, y in zip(a, b, strict=True) for t in themes
        )
        f1 = [score(gold, [set(p.themes) for p in preds], themes).micro_f1 for preds in (a, b)]
        out.append(
            {
                "set": name,
                "n": len(posts),
                "same": same,
                "max_diff": diff,
                "f1_ref": f1[0],
                "f1_fast": f1[1],
            }
        )
    return out


def _tree_state() -> str:
    """The commit measured, and whether the working tree differs from it."""
    git = ["git", "-C", str(Path(__file__).resolve().parents[1])]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"commit {commit or 'unknown'}" + (" with uncommitted work" if dirty else "")


def main() -> None:
    from classify.encoder import resolve_backend

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1500, help="posts for the fast path's batch runs")
    ap.add_argument("--torch-n", type=int, default=600, help="posts for torch fp32's batch runs")
    ap.add_argument("--naive-n", type=int, default=150)
    ap.add_argument("--file-n", type=int, default=3000, help="posts for `undertow classify file`")
    ap.add_argument("--file-runs", type=int, default=2, help="runs of `undertow classify file`")
    args = ap.parse_args()
    rows = _posts(max(args.n, args.file_n))
    load_before = os.getloadavg()

    # 1. `undertow classify file` first, in a fresh process, as the issue's check runs it.
    files = [_classify_file(rows[: args.file_n]) for _ in range(args.file_runs)]
    best = max(files, key=lambda f: f["rate"])

    import torch

    from classify.transformer import TransformerClassifier
    from core.settings import get_settings

    settings = get_settings()
    cores = torch.get_num_threads()
    t0 = time.perf_counter()
    ref = TransformerClassifier.from_settings(
        settings.model_copy(update={"classifier_backend": "torch"}), precision="fp32"
    )
    torch_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    onnx = TransformerClassifier.from_settings(
        settings.model_copy(update={"classifier_backend": "onnx"})
    )
    onnx_load = time.perf_counter() - t0
    # The fast path is what `classify file` takes by default: OpenVINO bf16 side by side where
    # the CPU runs bf16 fast, else ONNX fp32 (classifier_backend "auto"). Where it is OpenVINO,
    # torch's traced bf16 module (the fast path before it) runs too, as the baseline it replaced.
    torch_bf16 = None
    if resolve_backend("auto") == "onnx":
        fast, fast_load = onnx, onnx_load
    else:
        t0 = time.perf_counter()
        fast = TransformerClassifier.from_settings(
            settings.model_copy(update={"classifier_backend": "auto"})
        )
        fast_load = time.perf_counter() - t0
        if fast.encoder.backend != "torch":
            torch_bf16 = TransformerClassifier.from_settings(
                settings.model_copy(update={"classifier_backend": "torch"}), precision="bf16"
            )
    rows = rows[: args.n]

    def threads_for(clf: Any) -> None:
        # A side-by-side torch encoder runs one-thread ops; the fp32 reference splits each op.
        torch.set_num_threads(1 if getattr(clf.encoder, "concurrent", False) else cores)

    paths = [("fast", fast, args.n), ("torch", ref, args.torch_n)]
    if onnx is not fast:
        paths.append(("onnx", onnx, args.n))
    if torch_bf16 is not None:
        paths.append(("torch_bf16", torch_bf16, args.n))
    results: dict[str, dict[int, float]] = {}
    encoders: dict[str, float] = {}
    texts = [r["text"] for r in rows]
    for name, clf, n in paths:
        threads_for(clf)
        _end_to_end(clf, rows[:64], 32)  # warm-up: first calls allocate
        # The same posts at every batch size, so only the batching differs.
        results[name] = {b: _end_to_end(clf, rows[:n], b) for b in (1, 32, 128)}
        # Encoders alone (tokenize, model, pool the three layers the heads read), same posts.
        encoders[name] = _encoder_alone(clf.encoder, texts[:n])
    threads_for(ref)
    enc_fast, enc_torch = encoders["fast"], encoders["torch"]
    mean_tokens = float(np.mean(fast.encoder.token_counts(texts)))
    gflops = _matmul_gflops()
    ceiling = gflops * 1000 / (MFLOP_PER_TOKEN * mean_tokens)

    agreement = _agreement(ref, fast)
    naive = _naive(ref, rows[: args.naive_n])
    load_after = os.getloadavg()

    fe = fast.encoder
    r128 = results["fast"][128]
    rule_ok = all(
        a["same"] >= 0.99 * a["n"] and abs(a["f1_fast"] - a["f1_ref"]) <= 0.01 for a in agreement
    )
    file_rows = "\n".join(
        f"| {i} | {f['wall']:.1f} | {f['rate']:.0f} | {f['cpu']:.1f} | {args.file_n / f['cpu']:.0f} "
        f"| {f['load']:.1f} |"
        for i, f in enumerate(files, start=1)
    )
    agree_rows = "\n".join(
        f"| {a['set']} ({a['n']} posts) | {a['same'] / a['n']:.1%} ({a['n'] - a['same']} differ) "
        f"| {a['max_diff']:.4f} | {a['f1_ref']:.4f} | {a['f1_fast']:.4f} ({a['f1_fast'] - a['f1_ref']:+.4f}) |"
        for a in agreement
    )
    concurrent = bool(getattr(fe, "concurrent", False))
    runs = (
        f"{fe.threads} runs side by side, one core each"
        if concurrent
        else f"{fe.threads} intra-op threads"
    )
    file_share = best["rate"] / enc_fast
    onnx_row = onnx_enc_row = ""
    if "torch_bf16" in results:
        t = results["torch_bf16"]
        onnx_row = f"| torch bf16 (traced module, side by side; the fast path before OpenVINO) | {t[1]:.0f} | {t[32]:.0f} | {t[128]:.0f} |\n"
        onnx_enc_row = f"| torch bf16 | {encoders['torch_bf16']:.0f} |\n"
    if "onnx" in results:
        o = results["onnx"]
        onnx_row += f"| onnx fp32 (the service's default runtime) | {o[1]:.0f} | {o[32]:.0f} | {o[128]:.0f} |\n"
        onnx_enc_row += f"| onnx fp32 | {encoders['onnx']:.0f} |\n"
    bf16 = _matmul_gflops(bf16=True) if fe.precision == "bf16" else 0.0
    bf16_line = (
        f"\n- bf16 matrix products ran at {bf16:.0f} GFLOP/s, which bounds the bf16 encoder at "
        f"{bf16 * 1000 / (MFLOP_PER_TOKEN * mean_tokens):.0f} posts/s: it ran at "
        f"{enc_fast / (bf16 * 1000 / (MFLOP_PER_TOKEN * mean_tokens)):.0%} of that."
        if bf16
        else ""
    )
    body = f"""Code: {_tree_state()}. Command: `python -m bench.classify_bench --n {args.n}`. Fast path: `{fast.version}`
({fe.backend} {fe.precision}; each request sorted by token count and cut into runs of at most
{fe.micro_batch} posts that minimise padding, {runs}); reference: `{ref.version}` (torch fp32). {len(rows)} real posts,
{mean_tokens:.0f} tokens on average (truncated at {fe.max_tokens}). Load average (1 min) {load_before[0]:.1f}
before and {load_after[0]:.1f} after the run, on {os.cpu_count()} cores shared with other jobs: treat
these as lower bounds.

`undertow classify file` on {args.file_n} posts (chunks of {FILE_CHUNK} lines, two in flight), a fresh
process each run, model load included: best of {len(files)} runs **{best["wall"]:.1f} s wall,
{best["rate"]:.0f} posts/s**, peak RSS {best["rss"]:.0f} MB (its own line: "{best["summary"]}").

| run | wall s | posts/s | CPU s (user + sys) | posts per CPU s | load (1 min) after |
|---|---|---|---|---|---|
{file_rows}

| path (posts/s, end to end: parse, tokenize, encode, heads, products, evidence, JSON; requests of this size, two in flight as `classify file` sends them) | batch 1 | batch 32 | batch 128 |
|---|---|---|---|
| fast path: {fe.backend} {fe.precision} | {results["fast"][1]:.0f} | {results["fast"][32]:.0f} | **{r128:.0f}** |
{onnx_row}| torch fp32 (transformers, micro-batches of 16 sorted by length; first {args.torch_n} of the posts) | {results["torch"][1]:.0f} | {results["torch"][32]:.0f} | {results["torch"][128]:.0f} |
| naive: `pipeline("feature-extraction")` per post + same heads (first {args.naive_n} of the posts) | {naive:.0f} | | |

| encoder alone (tokenize, model, pool), all posts in one length-sorted request | posts/s |
|---|---|
| {fe.backend} {fe.precision} | {enc_fast:.0f} |
{onnx_enc_row}| torch fp32 | {enc_torch:.0f} |

Labels of the fast path against torch fp32 (design.md's rule: >= 99% identical, micro-F1 within
0.01): **{"holds" if rule_ok else "DOES NOT HOLD"}**.

| set | identical labels | max score difference | micro-F1 torch fp32 | micro-F1 fast path |
|---|---|---|---|---|
{agree_rows}

- End to end at batch 128 the fast path ran {r128 / naive:.1f}x the naive baseline and
  {r128 / results["torch"][128]:.1f}x torch fp32.
- The ceiling that counts here is the encoder alone ({enc_fast:.0f} posts/s in this run): `classify file`
  (model load included) reached {file_share:.0%} of it and requests of 128 {r128 / enc_fast:.0%}; the rest is
  tokenizing, the lexical and theme heads, products, evidence and JSON (run beside the encoder),
  the model load, and for 128-post requests more padding than one sort of all posts.
- Plain fp32 matrix products ran at {gflops:.0f} GFLOP/s on all cores in this run; at 21.6 MFLOP
  per token that bounds fp32 at {ceiling:.0f} posts/s for these {mean_tokens:.0f}-token posts (attention,
  LayerNorm and GELU come on top): the fp32 encoder alone ran at {encoders.get("onnx", enc_fast) / ceiling:.0%} of it.{bf16_line}
- Model load in this process: fast path {fast_load:.1f} s, ONNX fp32 {onnx_load:.1f} s (graph from the
  cache, no torch), torch fp32 {torch_load:.1f} s. Peak RSS of this process (all models, naive
  pipeline) {_peak_mb():.0f} MB.
"""
    path = write_result("classify", "Classifier throughput", body, machine=machine())
    print(body)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
