"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from dohawatch.classifier.engine import Classifier
from dohawatch.classifier.pack import load_pack


@pytest.fixture(scope="session")
def doha() -> Classifier:
    """The bundled Doha talks pack, compiled once."""
    return Classifier(load_pack("doha-talks"))
