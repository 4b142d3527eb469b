"""How far two labellers of the real dev set agree, and the model against each of them.

`classify/data/eval/dev_second_labeller.jsonl` holds a second, blind labelling of the 456 dev
posts (ids and themes only): two annotators (helper agents) who had read only the codebook and
the post texts each labelled half. The agreement is computed from the two label files alone;
where the shared posts are present, the shipped classifier is scored against both.

    .venv/bin/python -m bench.label_agreement
"""

from __future__ import annotations

import sys
from pathlib import Path

from classify.devset import LABELS_PATH, THEMES, _load_labels
from classify.evaluate import Report, score

SECOND_PATH = LABELS_PATH.parent / "eval" / "dev_second_labeller.jsonl"


def _labels(path: Path) -> dict[str, tuple[set[str], bool]]:
    """Theme sets (and the labeller's "unsure" mark) by post id, from a label file."""
    return {
        f"{row['file']}:{row['key']}": (set(row["themes"]), bool(row.get("unsure")))
        for row in _load_labels(path)
    }


def _line(name: str, r: Report) -> str:
    cells = " ".join(
        f"{t}={s.f1:.2f}({s.support})" for t, s in r.per_theme.items() if s.support or s.fp
    )
    return f"{name:34} micro {r.micro_f1:.3f}  macro {r.macro_f1:.3f}  {cells}"


def main() -> None:
    gold = _labels(LABELS_PATH)
    second = _labels(SECOND_PATH)
    if set(gold) != set(second):
        raise SystemExit(f"the two files label different posts ({len(gold)} vs {len(second)})")
    ids = list(gold)
    g = [gold[i][0] for i in ids]
    s = [second[i][0] for i in ids]
    print(
        f"{len(ids)} dev posts; positive: dev labels {sum(map(bool, g))}, second {sum(map(bool, s))}"
    )
    print(_line("second labeller vs dev labels", score(g, s, THEMES)))
    same = sum(a == b for a, b in zip(g, s, strict=True))
    print(
        f"identical theme sets: {same}/{len(ids)}; second marked unsure: "
        f"{sum(second[i][1] for i in ids)}"
    )
    try:
        from classify.base import PostInput
        from classify.devset import load_real_dev
        from classify.loader import get_classifier
        from core.settings import get_settings

        posts = {p.id: p for p in load_real_dev(get_settings().shared_dir)}
    except FileNotFoundError as e:
        print(f"model rows skipped: {e}", file=sys.stderr)
        return
    clf = get_classifier()
    preds = clf.predict(
        [PostInput(id=i, text=posts[i].text, parent_text=posts[i].parent_text) for i in ids]
    )
    m = [set(p.themes) for p in preds]
    print(f"model: {clf.version}")
    print(_line("model vs dev labels", score(g, m, THEMES)))
    print(_line("model vs second labeller", score(s, m, THEMES)))
    agree = [k for k in range(len(ids)) if g[k] == s[k]]
    r = score([g[k] for k in agree], [m[k] for k in agree], THEMES)
    print(_line(f"model on the {len(agree)} agreed posts", r))


if __name__ == "__main__":
    main()
