"""Length-sorted micro-batches for the ONNX encoder: every post once, little padding."""

from __future__ import annotations

import numpy as np

from classify.batching import micro_batches


def _padded(lengths: np.ndarray, batches: list[np.ndarray]) -> int:
    return sum(int(lengths[b].max()) * len(b) for b in batches)


def test_every_post_once_sorted_and_capped() -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(3, 257, size=300)
    batches = micro_batches(lengths, 16)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(300))
    assert all(1 <= len(b) <= 16 for b in batches)
    # Runs follow the length order, so each pads only to its own longest post.
    assert (np.diff(lengths[flat]) >= 0).all()


def test_cuts_early_where_lengths_jump_but_keeps_short_posts_together() -> None:
    # A request like real ones: many short tweets, a few long Reddit posts hitting the cap.
    lengths = np.array([12] * 20 + [40, 60, 90, 130, 180, 256, 256, 256, 256, 256])
    batches = micro_batches(lengths, 16)
    fixed = [np.argsort(lengths, kind="stable")[i : i + 16] for i in range(0, len(lengths), 16)]
    assert _padded(lengths, batches) < 0.8 * _padded(lengths, fixed)
    # The twenty short posts take the fewest calls they can (two) and never pad to a long one.
    short = [b for b in batches if lengths[b].max() == 12]
    assert len(short) == 2 and sum(len(b) for b in short) == 20
    assert micro_batches(np.array([], dtype=np.int64), 16) == []


def test_cuts_are_the_cheapest_possible() -> None:
    rng = np.random.default_rng(11)
    for _ in range(30):
        lengths = rng.integers(1, 60, size=int(rng.integers(1, 9)))
        s = np.sort(lengths)

        # Brute force over every way to cut the sorted lengths into runs of at most 3.
        def cost(i: int) -> int:
            if i == len(s):
                return 0
            return min(
                (k - i) * int(s[k - 1]) + 10 + cost(k) for k in range(i + 1, min(i + 3, len(s)) + 1)
            )

        batches = micro_batches(lengths, 3, call_tokens=10)
        assert all(len(b) <= 3 for b in batches)
        assert _padded(lengths, batches) + 10 * len(batches) == cost(0)
