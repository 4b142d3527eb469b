"""The one classifier interface: a batch of posts in, per-post predictions out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class PostInput:
    """What a classifier sees of a post: its text, its parent's text for replies, its author."""

    id: str
    text: str
    parent_text: str | None = None
    author_handle: str | None = None
    platform: str | None = None


@dataclass
class Prediction:
    """Themes over threshold, a probability per taxonomy theme, products, targets and evidence."""

    id: str
    themes: list[str]
    scores: dict[str, float]
    products: list[str]
    model_version: str
    # theme -> the product it is about, where one is known (design.md: "targets").
    targets: dict[str, str] = field(default_factory=dict)
    # theme -> short phrases or nearest training examples that drove the label.
    evidence: dict[str, list[str]] = field(default_factory=dict)


class Classifier(Protocol):
    """Anything that labels posts by the taxonomy; ``version`` identifies weights + taxonomy."""

    @property
    def version(self) -> str: ...

    def predict(self, posts: list[PostInput]) -> list[Prediction]: ...
