"""Does reviewing the review queue's posts first teach the classifier more than reviewing at random?

A team reviews real posts in rounds and retrains with `classify train --reviewed`. This replays
that on the project's hand-labelled real training posts (texts from ../shared, labels in
`classify/data/train_real_labels.jsonl`), which stand in for a team's unreviewed posts: the
model starts from the written examples alone (train + val split, as `classify train`), and each
round "reviews" ROUND posts of the pool, reveals their labels, refits the heads on the written
examples plus every post reviewed so far, and scores the real dev set, which no fit sees.

- **queue**: the ROUND pool posts with the smallest margin to a theme's threshold in log-odds
  under the current fit: what `GET /v1/posts/review-queue` lists first;
- **random**: ROUND pool posts drawn at random (three seeds);
- **all**: the whole pool reviewed, the shipped recipe's data (a reference, not a budget).

Per round: real dev micro- and macro-F1, and how many of the reviewed posts carry a theme
(positives are what the heads lack: 107 of the pool's 2,470 posts have one).

    .venv/bin/python -m bench.review_eval              # about 10 min on 2 cores
    .venv/bin/python -m bench.review_eval --rounds 3 --round-size 100
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench.common import machine
from classify.encoder import Encoder
from classify.evaluate import score
from classify.heads import decide, fit_heads, logit_margin
from classify.training import (
    label_matrix,
    load_examples,
    real_examples,
    split_examples,
    training_files,
)
from classify.transformer import featurize, lexical_inputs
from core.settings import get_settings
from core.taxonomy import load_taxonomy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--round-size", type=int, default=100)
    ap.add_argument("--seeds", default="1,2,3", help="random-review seeds")
    args = ap.parse_args()

    from classify.devset import load_real_dev

    settings = get_settings()
    taxonomy = load_taxonomy(settings.taxonomy_path)
    themes = taxonomy.theme_keys
    col = {t: i for i, t in enumerate(themes)}
    exclusive = [(col[a], col[b]) for a, b in taxonomy.exclusive_pairs]
    splits = split_examples(load_examples(training_files(), known_themes=themes))
    written = splits["train"] + splits["val"]
    try:
        pool = real_examples(settings.shared_dir, themes)
        dev = load_real_dev(settings.shared_dir)
    except FileNotFoundError as e:
        sys.exit(f"needs the shared posts: {e}")
    dev_posts = list(dev)
    dev_gold = [set(p.themes) for p in dev]

    started = time.perf_counter()
    everything = [e.as_post() for e in written + pool]
    from classify.base import PostInput

    everything += [PostInput(id=p.id, text=p.text, parent_text=p.parent_text) for p in dev_posts]
    x, _ = featurize(Encoder(settings.model_path, precision="fp32"), everything)
    texts, parents = lexical_inputs(everything)
    print(f"features for {len(everything)} posts in {time.perf_counter() - started:.0f}s")
    n_w, n_p = len(written), len(pool)
    y_all = label_matrix(written + pool, themes)
    w_idx = np.arange(n_w)
    p_idx = n_w + np.arange(n_p)
    d_idx = n_w + n_p + np.arange(len(dev_posts))
    vocab = [e.text for e in written]

    def fit(reviewed: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        """Fit on written + reviewed pool posts; dev micro/macro, pool scores and thresholds."""
        idx = np.concatenate([w_idx, p_idx[reviewed]])
        heads, _ = fit_heads(
            x[idx],
            [texts[i] for i in idx],
            [parents[i] for i in idx],
            y_all[idx],
            themes,
            vocab_texts=vocab,
        )

        def proba(rows: np.ndarray) -> np.ndarray:
            lex = heads.lexicon.transform([texts[i] for i in rows], [parents[i] for i in rows])
            return heads.predict_proba(x[rows], lex)

        on = decide(proba(d_idx), heads.thresholds, exclusive)
        pred = [{themes[j] for j in np.flatnonzero(r)} for r in on]
        rep = score(dev_gold, pred, themes)
        return rep.micro_f1, rep.macro_f1, proba(p_idx), heads.thresholds

    pos = y_all[n_w:].any(axis=1)
    rows: list[tuple[str, int, float, float, int]] = []
    t0 = time.perf_counter()
    base_micro, base_macro, base_p, base_thr = fit(np.zeros(0, dtype=int))
    print(
        f"written only: dev micro {base_micro:.3f} macro {base_macro:.3f} ({time.perf_counter() - t0:.0f}s a fit)"
    )
    rows.append(("written only", 0, base_micro, base_macro, 0))

    # The queue: each round takes the unreviewed posts closest to a threshold under the last fit.
    reviewed = np.zeros(0, dtype=int)
    p_pool, thr = base_p, base_thr
    for _ in range(args.rounds):
        margin = np.abs(logit_margin(p_pool, thr)).min(axis=1)  # as the review queue ranks
        margin[reviewed] = np.inf
        reviewed = np.concatenate([reviewed, np.argsort(margin, kind="stable")[: args.round_size]])
        micro, macro, p_pool, thr = fit(reviewed)
        rows.append(("queue", len(reviewed), micro, macro, int(pos[reviewed].sum())))
        print(rows[-1], flush=True)
    for seed in [int(s) for s in args.seeds.split(",")]:
        order = np.random.default_rng(seed).permutation(n_p)
        for r in range(1, args.rounds + 1):
            chosen = order[: r * args.round_size]
            micro, macro, _, _ = fit(chosen)
            rows.append(
                (f"random (seed {seed})", len(chosen), micro, macro, int(pos[chosen].sum()))
            )
            print(rows[-1], flush=True)
    micro, macro, _, _ = fit(np.arange(n_p))
    rows.append(("all", n_p, micro, macro, int(pos.sum())))

    print()
    print(
        f"{machine()}, written {n_w}, "
        f"pool {n_p} ({int(pos.sum())} with a theme), dev {len(dev_posts)}"
    )
    print("| reviewed by | posts reviewed | with a theme | real dev micro-F1 | real dev macro-F1 |")
    print("|---|---|---|---|---|")
    for name, n, mi, ma, npos in rows:
        print(f"| {name} | {n} | {npos} | {mi:.3f} | {ma:.3f} |")


if __name__ == "__main__":
    main()
