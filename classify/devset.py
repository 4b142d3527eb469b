"""Real posts labelled by hand (ids only) joined with their texts from the shared folder.

Two label files ship with the package (file, key, themes, products): the dev set
(``data/dev_real_labels.jsonl``), used only to evaluate, and a disjoint real training list
(``data/train_real_labels.jsonl``; its themes are hand labels, its products come from the
tagger) that training adds to the written examples. The post texts
never ship; they are read from ``<shared_dir>/data/posts/`` at load time, so both sets are only
available where that folder is (the lead's checkout and CI).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

THEMES: tuple[str, ...] = (
    "refusal_complaint",
    "perceived_censorship",
    "competitor_solicitation",
    "switching_intent",
    "lost_work_claim",
    "manipulation_accusation",
    "hateful_framing",
    "safety_support",
)
PRODUCTS: tuple[str, ...] = (
    "claude",
    "chatgpt",
    "grok",
    "gemini",
    "llama",
    "deepseek",
    "mistral",
    "copilot",
    "perplexity",
    "qwen",
    "other",
)

LABELS_PATH = Path(__file__).parent / "data" / "dev_real_labels.jsonl"
TRAIN_LABELS_PATH = Path(__file__).parent / "data" / "train_real_labels.jsonl"

REDDIT_2025 = "reddit_llm_2025-09_dev.csv"
TWITTER_2023 = "twitter_chatgpt_ai_2023-04.jsonl"
REDDIT_2023 = "reddit_chatgpt_bard_2023-03.csv"

_NO_CONTENT = "[no content]"


@dataclass(frozen=True)
class LabeledPost:
    """One hand-labelled post; ``id`` is ``"<file>:<key>"``."""

    id: str
    text: str
    themes: tuple[str, ...]
    products: tuple[str, ...]
    parent_text: str | None = None


def _join(title: str, body: str) -> str:
    if body.strip() in ("", _NO_CONTENT):
        return title
    return f"{title}\n\n{body}"


def _read_csv(path: Path, key_col: str, text_of: Callable[[dict[str, str]], str]) -> dict[str, str]:
    # newline="" keeps multi-line quoted fields intact; mojibake is kept exactly as stored.
    with path.open(newline="", encoding="utf-8") as fh:
        return {row[key_col]: text_of(row) for row in csv.DictReader(fh)}


def _read_reddit_2025(path: Path) -> dict[str, str]:
    return _read_csv(path, "Post ID", lambda r: _join(r["Full Title"], r["Full Content"]))


def _read_reddit_2023(path: Path) -> dict[str, str]:
    return _read_csv(path, "url", lambda r: _join(r["title"], r["text"]))


def _read_twitter_2023(path: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                texts[str(row["id"])] = str(row["renderedContent"])
    return texts


_READERS: dict[str, Callable[[Path], dict[str, str]]] = {
    REDDIT_2025: _read_reddit_2025,
    TWITTER_2023: _read_twitter_2023,
    REDDIT_2023: _read_reddit_2023,
}


def _load_labels(path: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object")
            rows.append(row)
    return rows


def _str_tuple(value: object, allowed: tuple[str, ...], what: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: {what} must be a list of strings")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown {what} {unknown}")
    return tuple(value)


def load_real_dev(shared_dir: Path) -> list[LabeledPost]:
    """The real dev set, texts read from ``shared_dir/data/posts``, in label-file order.

    Raises ``FileNotFoundError`` when the shared folder or a posts file is missing and
    ``ValueError`` when a label is malformed, duplicated, or its key is not in the data.
    """
    return load_real_labels(shared_dir, LABELS_PATH)


def load_real_train(
    shared_dir: Path, *, labels_path: Path = TRAIN_LABELS_PATH
) -> list[LabeledPost]:
    """The real training posts; raises ``ValueError`` if any of them is also in the dev set."""
    posts = load_real_labels(shared_dir, labels_path)
    dev_ids = {f"{r.get('file')}:{r.get('key')}" for r in _load_labels(LABELS_PATH)}
    leaked = sorted(p.id for p in posts if p.id in dev_ids)
    if leaked:
        raise ValueError(
            f"{len(leaked)} real training posts are in the dev set, e.g. {leaked[0]!r}"
        )
    return posts


def load_real_labels(shared_dir: Path, labels_path: Path) -> list[LabeledPost]:
    """Labelled real posts from ``labels_path``, texts read from ``shared_dir/data/posts``."""
    posts_dir = Path(shared_dir) / "data" / "posts"
    if not posts_dir.is_dir():
        raise FileNotFoundError(
            f"shared data folder not found: {posts_dir} (the real dev set needs the shared "
            "posts; set UNDERTOW_SHARED_DIR or place the shared folder at ../shared)"
        )
    texts: dict[str, dict[str, str]] = {}
    out: list[LabeledPost] = []
    seen: set[str] = set()
    for row in _load_labels(labels_path):
        file, key = row.get("file"), row.get("key")
        if not isinstance(file, str) or not isinstance(key, str):
            raise ValueError(f"label without string file/key: {row!r}")
        post_id = f"{file}:{key}"
        if file not in _READERS:
            raise ValueError(f"label {post_id!r}: unknown posts file {file!r}")
        if file not in texts:
            path = posts_dir / file
            if not path.is_file():
                raise FileNotFoundError(f"posts file not found: {path}")
            texts[file] = _READERS[file](path)
        if key not in texts[file]:
            raise ValueError(f"label key {key!r} not found in {posts_dir / file}")
        if post_id in seen:
            raise ValueError(f"duplicate label for {post_id!r}")
        seen.add(post_id)
        out.append(
            LabeledPost(
                id=post_id,
                text=texts[file][key],
                themes=_str_tuple(row.get("themes"), THEMES, "themes", post_id),
                products=_str_tuple(row.get("products"), PRODUCTS, "products", post_id),
            )
        )
    return out
