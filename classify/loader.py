"""Choosing the classifier the settings name; loaded once per process."""

from __future__ import annotations

from functools import lru_cache

from classify.base import Classifier
from core.settings import Settings, get_settings
from core.taxonomy import load_taxonomy


@lru_cache(maxsize=2)
def _load(kind: str, model_path: str, taxonomy_path: str, brands: tuple[tuple[str, str], ...]) -> Classifier:
    taxonomy = load_taxonomy(None if not taxonomy_path else __import__("pathlib").Path(taxonomy_path))
    if kind == "transformers":
        from classify.transformer import TransformerClassifier  # type: ignore[import-not-found]

        return TransformerClassifier.load_default(  # type: ignore[no-any-return]
            model_path=model_path or None, taxonomy=taxonomy, brand_accounts=dict(brands)
        )
    from classify.rules import RulesClassifier

    return RulesClassifier(taxonomy=taxonomy, brand_accounts=dict(brands))


def get_classifier(settings: Settings | None = None) -> Classifier:
    """The configured classifier (rules or transformers), built once per process."""
    s = settings or get_settings()
    return _load(
        s.classifier,
        s.model_path,
        str(s.taxonomy_path or ""),
        tuple(sorted(s.brand_accounts.items())),
    )
