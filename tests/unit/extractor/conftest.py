"""Fixtures for tests that run the real models (fetched by ``make test``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.dataset import faces_dir
from extractor.loader import load_extractor
from extractor.pipeline import FaceExtractor
from facegate.settings import Settings


@pytest.fixture(scope="session")
def faces() -> Path:
    return faces_dir()


@pytest.fixture(scope="session")
def extractor() -> Iterator[FaceExtractor]:
    """The shipped default extractor, from the model directory that ``make test`` fills."""
    instance = load_extractor(Settings.from_env())
    yield instance
    instance.close()
