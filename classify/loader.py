"""Choosing the classifier the settings name; loaded once per process."""

from __future__ import annotations

from classify.base import Classifier
from core.settings import Settings, get_settings

_cache: dict[tuple[object, ...], Classifier] = {}


def _key(s: Settings) -> tuple[object, ...]:
    return (
        s.classifier,
        s.model_path,
        s.classifier_backend,
        s.onnx_precision,
        s.data_dir,
        s.taxonomy_path,
        tuple(sorted(s.brand_accounts.items())),
    )


def get_classifier(settings: Settings | None = None) -> Classifier:
    """The configured classifier (rules or transformers), built once per process and settings."""
    s = settings or get_settings()
    key = _key(s)
    if key not in _cache:
        if s.classifier == "transformers":
            from classify.transformer import TransformerClassifier

            _cache[key] = TransformerClassifier.from_settings(s)
        else:
            from classify.rules import RulesClassifier
            from core.taxonomy import load_taxonomy

            _cache[key] = RulesClassifier(
                taxonomy=load_taxonomy(s.taxonomy_path), brand_accounts=s.brand_accounts
            )
    return _cache[key]


def current_version(settings: Settings | None = None) -> str:
    """The version the configured classifier writes, without loading the encoder's weights."""
    s = settings or get_settings()
    key = _key(s)
    if key in _cache:
        return _cache[key].version
    from core.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(s.taxonomy_path)
    if s.classifier != "transformers":
        from classify.rules import RulesClassifier

        return RulesClassifier(taxonomy=taxonomy).version
    from classify.artifacts import DEFAULT_ARTIFACT, load_artifact, model_version
    from classify.encoder import configured_version_id

    return model_version(
        encoder_id=configured_version_id(s),
        heads_hash=load_artifact(DEFAULT_ARTIFACT).content_hash,
        taxonomy_digest=taxonomy.digest,
    )


_thresholds: dict[tuple[object, ...], dict[str, float]] = {}


def decision_thresholds(settings: Settings | None = None) -> dict[str, float]:
    """Each theme's decision threshold on its score, for the configured classifier (cached).

    The trained heads' per-theme thresholds; 0.5 for the rules, whose scores are 0.9 or 0.05.
    """
    s = settings or get_settings()
    key = _key(s)
    if key not in _thresholds:
        from core.taxonomy import load_taxonomy

        themes = load_taxonomy(s.taxonomy_path).theme_keys
        if s.classifier != "transformers":
            _thresholds[key] = dict.fromkeys(themes, 0.5)
        else:
            from classify.artifacts import DEFAULT_ARTIFACT, load_artifact

            art = load_artifact(DEFAULT_ARTIFACT)
            values = [float(v) for v in art.arrays["thresholds"]]
            _thresholds[key] = dict(zip(art.meta["themes"], values, strict=True))
    return _thresholds[key]
