"""A shard is a similarity index that needs no model: it opens and serves without a model
directory, takes each gallery's model and dimension from its first template, and refuses
probes of another model or dimension and similarity floors outside -1..1."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from facegate.errors import ErrorType, FacegateError
from facegate.settings import Settings
from matcher.server import open_shard
from matcher.shard import Shard
from matcher.writes import ShardEntry

MODEL = "synthetic-16@0123456789ab"
DIM = 16
GALLERY = "gallery-a"


def unit(rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    vector = rng.standard_normal(dim)
    result: np.ndarray = (vector / np.linalg.norm(vector)).astype(np.float32)
    return result


def no_model_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model_dir=tmp_path / "no-models")


@pytest.fixture
def shard(tmp_path: Path) -> Iterator[Shard]:
    opened = open_shard(no_model_settings(tmp_path))
    try:
        yield opened
    finally:
        opened.close()


def refusal(call: Callable[[], object]) -> str:
    """The message of the InvalidRequest that ``call()`` raises."""
    with pytest.raises(FacegateError) as caught:
        call()
    assert caught.value.error_type is ErrorType.INVALID_REQUEST
    return caught.value.message


def test_a_shard_opens_and_serves_with_no_model_directory(tmp_path: Path) -> None:
    settings = no_model_settings(tmp_path)
    rng = np.random.default_rng(1)
    vectors = [unit(rng) for _ in range(5)]
    shard = open_shard(settings)
    try:
        shard.upsert(
            [ShardEntry(GALLERY, f"e{i}", f"s{i}", MODEL, v, 0) for i, v in enumerate(vectors)]
        )
        [hits] = shard.search(GALLERY, [(MODEL, vectors[3])], k=2, min_similarity=-1.0)
        assert (len(hits), hits[0].event_id, hits[0].subject_id) == (2, "e3", "s3")
        assert hits[0].similarity == pytest.approx(1.0, abs=1e-6)
    finally:
        shard.close()
    # Recovery reads the shard's own snapshot, nothing of any model.
    reopened = open_shard(settings)
    try:
        [hits] = reopened.search(GALLERY, [(MODEL, vectors[4])], k=1, min_similarity=0.99)
        assert [h.event_id for h in hits] == ["e4"]
    finally:
        reopened.close()
    assert not settings.models.exists()


def test_min_similarity_filters_hits(shard: Shard) -> None:
    rng = np.random.default_rng(2)
    vectors = [unit(rng) for _ in range(20)]
    shard.upsert([ShardEntry(GALLERY, f"e{i}", "s", MODEL, v, 0) for i, v in enumerate(vectors)])
    probe = vectors[0]
    [every] = shard.search(GALLERY, [(MODEL, probe)], k=50, min_similarity=-1.0)
    assert len(every) == 20
    floor = every[5].similarity
    [above] = shard.search(GALLERY, [(MODEL, probe)], k=50, min_similarity=floor)
    assert above == every[:6]


@pytest.mark.parametrize("min_similarity", [-1.01, 1.01, math.nan, math.inf, -math.inf])
def test_min_similarity_outside_minus_one_to_one_is_refused(
    shard: Shard, min_similarity: float
) -> None:
    probe = unit(np.random.default_rng(3))
    message = refusal(
        partial(shard.search, GALLERY, [(MODEL, probe)], k=1, min_similarity=min_similarity)
    )
    assert "min_similarity" in message


def test_probes_must_be_of_the_gallery_model_and_dimension(shard: Shard) -> None:
    rng = np.random.default_rng(4)
    shard.upsert([ShardEntry(GALLERY, "e0", "s0", MODEL, unit(rng), 0)])
    other_model = "other@ba9876543210"
    for model_id, vector in [
        (other_model, unit(rng)),
        (MODEL, unit(rng, 2 * DIM)),
        ("", unit(rng)),
    ]:
        message = refusal(
            partial(shard.search, GALLERY, [(model_id, vector)], k=1, min_similarity=-1.0)
        )
        assert f"{DIM}-d templates of {MODEL!r}" in message
    # A gallery the shard does not hold has no hits, whatever the probe.
    assert shard.search("nobody", [(other_model, unit(rng, 8))], k=1, min_similarity=-1.0) == [[]]
