"""The version a classifier writes is known without loading the encoder."""

from __future__ import annotations

import pytest

from classify.loader import current_version, get_classifier
from core.settings import Settings


def test_rules_version_matches_the_loaded_classifier():
    s = Settings(classifier="rules")
    assert current_version(s) == get_classifier(s).version


@pytest.mark.slow
def test_transformers_version_matches_the_loaded_classifier():
    s = Settings(classifier="transformers")
    expected = current_version(s)
    assert expected.startswith("minilm-l6-onnx-fp32.h")
    assert get_classifier(s).version == expected
