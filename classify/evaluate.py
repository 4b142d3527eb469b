"""Score classifiers against gold labels: per-theme P/R/F1, micro and macro F1, confusions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from classify.base import Classifier, PostInput

log = structlog.get_logger(__name__)

NONE = "none"
BATCH = 128


@dataclass(frozen=True)
class ThemeScore:
    """Counts and rates for one theme."""

    theme: str
    tp: int
    fp: int
    fn: int

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.support if self.support else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Report:
    """One classifier's scores on one labelled set."""

    name: str
    version: str
    n: int
    per_theme: dict[str, ThemeScore]
    confusions: list[tuple[str, str, int]]
    exact_match: float

    @property
    def micro_f1(self) -> float:
        tp = sum(s.tp for s in self.per_theme.values())
        fp = sum(s.fp for s in self.per_theme.values())
        fn = sum(s.fn for s in self.per_theme.values())
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0

    @property
    def macro_f1(self) -> float:
        """Mean F1 over themes that have support (a theme absent from the set says nothing)."""
        scored = [s.f1 for s in self.per_theme.values() if s.support]
        return sum(scored) / len(scored) if scored else 0.0


def score(
    gold: Sequence[set[str]],
    pred: Sequence[set[str]],
    themes: Sequence[str],
    *,
    name: str = "",
    version: str = "",
) -> Report:
    """Compare label sets post by post."""
    if len(gold) != len(pred):
        raise ValueError("gold and predictions differ in length")
    counts = {t: [0, 0, 0] for t in themes}
    confusions: Counter[tuple[str, str]] = Counter()
    exact = 0
    for g, p in zip(gold, pred, strict=True):
        g, p = g & set(themes), p & set(themes)
        exact += g == p
        for t in themes:
            if t in g and t in p:
                counts[t][0] += 1
            elif t in p:
                counts[t][1] += 1
            elif t in g:
                counts[t][2] += 1
        # A confusion pair: a gold theme missed while another (or none) was predicted instead.
        missed, extra = g - p, p - g
        for m in missed:
            for e in extra or {NONE}:
                confusions[(m, e)] += 1
        if not g:
            for e in extra:
                confusions[(NONE, e)] += 1
    return Report(
        name=name,
        version=version,
        n=len(gold),
        per_theme={t: ThemeScore(t, *c) for t, c in counts.items()},
        confusions=[(a, b, n) for (a, b), n in confusions.most_common()],
        exact_match=exact / len(gold) if gold else 0.0,
    )


def predict_labels(classifier: Classifier, posts: Sequence[PostInput]) -> list[set[str]]:
    """Theme sets for `posts`, in batches."""
    out: list[set[str]] = []
    for start in range(0, len(posts), BATCH):
        out.extend(set(p.themes) for p in classifier.predict(list(posts[start : start + BATCH])))
    return out


def rules_baseline() -> Classifier | None:
    """The rules classifier from the foundation issue, where this checkout has it."""
    try:
        from classify.rules import RulesClassifier
    except ImportError:
        return None
    return RulesClassifier()  # type: ignore[no-any-return, call-arg, unused-ignore]


def evaluate(
    classifiers: dict[str, Classifier],
    posts: Sequence[PostInput],
    gold: Sequence[set[str]],
    themes: Sequence[str],
) -> list[Report]:
    """One report per classifier on the same posts."""
    reports = []
    for name, clf in classifiers.items():
        pred = predict_labels(clf, posts)
        reports.append(score(gold, pred, themes, name=name, version=clf.version))
        log.info(
            "classify.evaluated", name=name, n=len(posts), micro_f1=round(reports[-1].micro_f1, 3)
        )
    return reports


def format_reports(reports: Sequence[Report], *, title: str = "", top_confusions: int = 8) -> str:
    """A plain-text table: one row per theme, P/R/F1 per classifier side by side."""
    if not reports:
        return "(nothing evaluated)"
    themes = list(reports[0].per_theme)
    lines = []
    if title:
        lines.append(title)
    for r in reports:
        lines.append(f"  {r.name}: {r.version}  (n={r.n})")
    head = f"{'theme':<26}{'support':>8}" + "".join(
        f"  {r.name[:14]:>14} P     R     F1" for r in reports
    )
    lines.append(head)
    for t in themes:
        row = f"{t:<26}{reports[0].per_theme[t].support:>8}"
        for r in reports:
            s = r.per_theme[t]
            row += f"  {'':>14}{s.precision:5.2f} {s.recall:5.2f} {s.f1:5.2f}"
        lines.append(row)
    for label, attr in (
        ("micro F1", "micro_f1"),
        ("macro F1", "macro_f1"),
        ("exact match", "exact_match"),
    ):
        row = f"{label:<26}{'':>8}"
        for r in reports:
            row += f"  {'':>14}{'':>12}{getattr(r, attr):5.3f}"
        lines.append(row)
    for r in reports:
        pairs = ", ".join(f"{a}->{b} {n}" for a, b, n in r.confusions[:top_confusions])
        lines.append(f"confusions ({r.name}; gold->predicted): {pairs or 'none'}")
    return "\n".join(lines)
