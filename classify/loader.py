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
    from classify.artifacts import DEFAULT_ARTIFACT, load_artifact

    return _heads_version(s, taxonomy.digest, load_artifact(DEFAULT_ARTIFACT).content_hash)


def _heads_version(s: Settings, taxonomy_digest: str, heads_hash: str) -> str:
    from classify.artifacts import model_version
    from classify.encoder import configured_version_id

    return model_version(
        encoder_id=configured_version_id(s), heads_hash=heads_hash, taxonomy_digest=taxonomy_digest
    )


_basis: dict[tuple[object, ...], tuple[str, dict[str, float]]] = {}


def scoring_basis(settings: Settings | None = None) -> tuple[str, dict[str, float]]:
    """The version the configured classifier writes and each theme's decision threshold.

    Both come from one read of the heads, cached while their file is unchanged, so a retrain
    under a running API moves version and thresholds together. The trained heads' per-theme
    thresholds; 0.5 for the rules, whose scores are 0.9 or 0.05. Unreadable heads raise
    Unavailable (503 in the API and the dashboard).
    """
    s = settings or get_settings()
    from classify.artifacts import DEFAULT_ARTIFACT, ArtifactError, load_artifact
    from core.errors import Unavailable
    from core.taxonomy import load_taxonomy

    try:
        stat = DEFAULT_ARTIFACT.stat()
        mark: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        mark = None  # load_artifact below says what is missing
    key = (*_key(s), mark)
    if key not in _basis:
        taxonomy = load_taxonomy(s.taxonomy_path)
        if s.classifier != "transformers":
            _basis[key] = (current_version(s), dict.fromkeys(taxonomy.theme_keys, 0.5))
        else:
            try:
                art = load_artifact(DEFAULT_ARTIFACT)
            except ArtifactError as e:
                raise Unavailable(f"the classifier's heads cannot be read: {e}") from None
            values = [float(v) for v in art.arrays["thresholds"]]
            _basis[key] = (
                _heads_version(s, taxonomy.digest, art.content_hash),
                dict(zip(art.meta["themes"], values, strict=True)),
            )
    return _basis[key]
