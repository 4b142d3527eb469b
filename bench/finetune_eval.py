"""Does fine-tuning the encoder on the fit set lift the classifier? (issue #4's accuracy targets)

The shipped classifier reads frozen all-MiniLM-L6-v2 features. This fine-tunes every encoder
layer on the same fit set that `undertow classify train` uses (the written train + val
examples and the hand-labelled real training posts): a linear theme layer on the mean-pooled,
L2-normalised embedding, binary cross-entropy with positives weighted by sqrt(neg / pos)
(at most 10), AdamW, bf16 autocast on the CPU, length-sorted batches of 16. Then both encoders,
frozen and fine-tuned, go through the shipped recipe unchanged (`featurize`, `fit_heads` on the
fit set, `decide`) and are scored on the two sets no fit sees: the written held-out split
(macro-F1 over the eight themes) and the real dev set (micro-F1).

The fine-tuned encoder has seen the fit set's labels, so the heads' out-of-fold stack and
thresholds are fit on features that already know them; the held-out split and the dev set are
what tell. The fine-tuned weights are written under var/ (never committed).

    .venv/bin/python -m bench.finetune_eval                  # about 12 min on 2 cores
    .venv/bin/python -m bench.finetune_eval --epochs 1 --lr 5e-5
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine
from classify.base import PostInput
from classify.encoder import Encoder, default_model_path
from classify.evaluate import score
from classify.heads import decide, fit_heads
from classify.training import (
    Example,
    label_matrix,
    load_examples,
    real_examples,
    split_examples,
    training_files,
)
from classify.transformer import MAX_TOKENS, encoder_text, featurize, lexical_inputs
from core.settings import get_settings
from core.taxonomy import Taxonomy, load_taxonomy


def fine_tune(fit: list[Example], themes: tuple[str, ...], out: Path, args: Any) -> float:
    """Fine-tune every layer of the packaged encoder on `fit`; save it to `out`; seconds taken."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    os.environ["HF_HUB_OFFLINE"] = "1"
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    path = default_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    head = torch.nn.Linear(model.config.hidden_size, len(themes))
    y = torch.tensor(label_matrix(fit, themes), dtype=torch.float32)
    pos = y.sum(0)
    loss_fn = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.sqrt((len(fit) - pos) / pos.clamp(min=1)).clamp(1, 10)
    )
    ids = tok([encoder_text(e.text) for e in fit], truncation=True, max_length=MAX_TOKENS)[
        "input_ids"
    ]
    order = sorted(range(len(fit)), key=lambda i: len(ids[i]))
    batches = [order[i : i + args.batch] for i in range(0, len(order), args.batch)]
    steps = int(len(batches) * args.epochs)
    opt = torch.optim.AdamW(
        [{"params": model.parameters(), "lr": args.lr}, {"params": head.parameters(), "lr": 1e-3}],
        weight_decay=0.01,
    )
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, s / warmup) * max(0.0, (steps - s) / steps)
    )
    model.train()
    step = 0
    while step < steps:
        random.shuffle(batches)
        for b in batches[: steps - step]:
            width = max(len(ids[i]) for i in b)
            input_ids = torch.tensor(
                [ids[i] + [tok.pad_token_id] * (width - len(ids[i])) for i in b]
            )
            mask = torch.tensor([[1] * len(ids[i]) + [0] * (width - len(ids[i])) for i in b])
            with torch.autocast("cpu", dtype=torch.bfloat16):
                h = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).float()
            emb = (h.float() * m).sum(1) / m.sum(1)
            logits = head(torch.nn.functional.normalize(emb, dim=1) * 20)
            loss = loss_fn(logits, y[b])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 100 == 0:
                print(f"  step {step}/{steps}, loss {loss.item():.4f}", flush=True)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return time.perf_counter() - started


def measure(
    model_path: str,
    fit: list[Example],
    held: list[Example],
    dev: list[PostInput],
    dev_gold: list[set[str]],
    taxonomy: Taxonomy,
) -> tuple[float, float, float, float]:
    """The shipped recipe on `model_path`: held-out macro/micro-F1, dev micro/macro-F1."""
    themes = taxonomy.theme_keys
    col = {t: i for i, t in enumerate(themes)}
    exclusive = [(col[a], col[b]) for a, b in taxonomy.exclusive_pairs]
    posts = [e.as_post() for e in fit + held] + dev
    x, _ = featurize(Encoder(model_path, precision="fp32"), posts)
    texts, parents = lexical_inputs(posts)
    n_fit, n_held = len(fit), len(held)
    heads, _ = fit_heads(
        x[:n_fit],
        texts[:n_fit],
        parents[:n_fit],
        label_matrix(fit, themes),
        themes,
        vocab_texts=[e.text for e in fit if not e.id.startswith("real:")],
    )

    def labels(lo: int, hi: int) -> list[set[str]]:
        lex = heads.lexicon.transform(texts[lo:hi], parents[lo:hi])
        on = decide(heads.predict_proba(x[lo:hi], lex), heads.thresholds, exclusive)
        return [{themes[j] for j in np.flatnonzero(r)} for r in on]

    held_rep = score([set(e.themes) for e in held], labels(n_fit, n_fit + n_held), themes)
    dev_rep = score(dev_gold, labels(n_fit + n_held, len(posts)), themes)
    return held_rep.macro_f1, held_rep.micro_f1, dev_rep.micro_f1, dev_rep.macro_f1


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", type=Path, default=Path("var/finetune/model"))
    args = ap.parse_args()

    from classify.devset import load_real_dev

    settings = get_settings()
    taxonomy = load_taxonomy(settings.taxonomy_path)
    themes = taxonomy.theme_keys
    splits = split_examples(load_examples(training_files(), known_themes=themes))
    try:
        fit = splits["train"] + splits["val"] + real_examples(settings.shared_dir, themes)
        dev = load_real_dev(settings.shared_dir)
    except FileNotFoundError as e:
        sys.exit(f"needs the shared posts: {e}")
    dev_posts = [PostInput(id=p.id, text=p.text, parent_text=p.parent_text) for p in dev]
    dev_gold = [set(p.themes) for p in dev]
    print(f"fit {len(fit)}, held out {len(splits['test'])}, dev {len(dev)}", flush=True)

    t0 = time.perf_counter()
    frozen = measure(settings.model_path, fit, splits["test"], dev_posts, dev_gold, taxonomy)
    print(f"frozen: {frozen} ({time.perf_counter() - t0:.0f}s)", flush=True)
    seconds = fine_tune(fit, themes, args.out, args)
    print(f"fine-tuned in {seconds:.0f}s -> {args.out}", flush=True)
    tuned = measure(str(args.out.resolve()), fit, splits["test"], dev_posts, dev_gold, taxonomy)

    print()
    print(
        f"{machine()}; fine-tune: {args.epochs} epochs, "
        f"lr {args.lr}, batch {args.batch}, seed {args.seed}, {seconds:.0f}s"
    )
    print(
        "| encoder | held-out macro-F1 | held-out micro-F1 | real dev micro-F1 | real dev macro-F1 |"
    )
    print("|---|---|---|---|---|")
    for name, r in (("frozen (shipped)", frozen), ("fine-tuned, all layers", tuned)):
        print(f"| {name} | {r[0]:.3f} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.3f} |")


if __name__ == "__main__":
    main()
