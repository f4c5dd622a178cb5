"""faceQualityScore: the logistic model's monotonicity, range, JSON form and features."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from extractor.models.fetch import load_calibrations
from extractor.quality import (
    QualityFeatures,
    QualityModel,
    contrast,
    eye_distance,
    sharpness,
)

NAMES = QualityFeatures.names()


def make_features(values: np.ndarray | list[float]) -> QualityFeatures:
    return QualityFeatures(**{name: float(v) for name, v in zip(NAMES, values, strict=True)})


def make_model(weights: list[float] | None = None, bias: float = 0.3) -> QualityModel:
    count = len(NAMES)
    signs = [(-1.0) ** i * (0.5 + 0.25 * i) for i in range(count)]
    return QualityModel(
        features=NAMES,
        mean=tuple(float(i) for i in range(count)),
        std=tuple(0.5 + i for i in range(count)),
        weights=tuple(weights or signs),
        bias=bias,
    )


def test_feature_vector_follows_the_names() -> None:
    values = [1.5 * (i + 1) for i in range(len(NAMES))]
    features = make_features(values)
    np.testing.assert_array_equal(features.vector(), values)
    assert features.vector().dtype == np.float64


@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_monotone_in_each_feature_with_the_weight_sign(index: int) -> None:
    model = make_model()
    mean, std, weight = model.mean[index], model.std[index], model.weights[index]
    base = np.asarray(model.mean)
    grid = np.linspace(mean - 3.9 * std, mean + 3.9 * std, 50)
    scores = []
    for value in grid:
        x = base.copy()
        x[index] = value
        scores.append(model.score(make_features(x)))
    steps = np.diff(scores)
    assert np.all(steps > 0) if weight > 0 else np.all(steps < 0), NAMES[index]
    # Past the clip (4 standard deviations) the score stops moving.
    x = base.copy()
    x[index] = mean + 4 * std
    at_clip = model.score(make_features(x))
    x[index] = mean + 400 * std
    assert model.score(make_features(x)) == at_clip


def test_mean_features_give_the_bias_probability() -> None:
    model = make_model(bias=0.7)
    expected = 1.0 / (1.0 + math.exp(-0.7))
    assert model.score(make_features(np.asarray(model.mean))) == pytest.approx(expected)


@pytest.mark.parametrize("extreme", [1e300, -1e300, math.inf, -math.inf])
def test_extreme_inputs_stay_strictly_inside_0_1(extreme: float) -> None:
    model = make_model()
    for index in range(len(NAMES)):
        x = np.asarray(model.mean, dtype=np.float64)
        x[index] = extreme
        assert 0.0 < model.score(make_features(x)) < 1.0
    everything = make_features([extreme] * len(NAMES))
    assert 0.0 < model.score(everything) < 1.0


def test_batch_equals_single_scores() -> None:
    model = make_model()
    rng = np.random.default_rng(5)
    batch = [make_features(row) for row in rng.normal(2.0, 3.0, (20, len(NAMES)))]
    scores = model.scores(batch)
    assert scores.shape == (20,)
    assert scores.tolist() == pytest.approx([model.score(f) for f in batch])
    assert model.scores([]).shape == (0,)


def test_json_round_trip() -> None:
    model = make_model()
    text = json.dumps(model.to_json())
    assert QualityModel.from_json(json.loads(text)) == model


def test_feature_name_mismatch_is_rejected() -> None:
    good = make_model().to_json()
    for features in (list(reversed(NAMES)), [*NAMES[:-1], "hair_colour"], list(NAMES[:-1])):
        with pytest.raises(ValueError, match="do not match"):
            QualityModel.from_json({**good, "features": features})


@pytest.mark.parametrize("key", ["mean", "std", "weights"])
def test_array_length_mismatch_is_rejected(key: str) -> None:
    data = make_model().to_json()
    data[key] = data[key][:-1]
    with pytest.raises(ValueError, match="differ in length"):
        QualityModel.from_json(data)


def test_shipped_quality_models_load_and_are_probabilities() -> None:
    shipped = {
        name: QualityModel.from_json(entry["quality"])
        for name, entry in load_calibrations().items()
        if "quality" in entry
    }
    if not shipped:
        pytest.skip("no calibrated quality model shipped yet")
    rng = np.random.default_rng(9)
    for name, model in shipped.items():
        samples = rng.normal(np.asarray(model.mean), 10 * np.asarray(model.std), (200, len(NAMES)))
        scores = model.scores([make_features(row) for row in samples])
        assert np.all((scores > 0) & (scores < 1)), name


def _face_like(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)


def test_sharpness_of_flat_blurred_and_sharp_crops() -> None:
    flat = np.full((112, 112, 3), 128, np.uint8)
    sharp = _face_like(1)
    blurred = cv2.GaussianBlur(sharp, (9, 9), 3.0)
    assert sharpness(flat) == 0.0
    assert sharpness(sharp) > sharpness(blurred) > 0.0


def test_contrast_of_flat_and_contrasty_crops() -> None:
    flat = np.full((112, 112, 3), 200, np.uint8)
    noisy = _face_like(2)
    faint = (noisy // 8 + 100).astype(np.uint8)
    assert contrast(flat) == 0.0
    assert contrast(noisy) > contrast(faint) > 0.0


def test_eye_distance() -> None:
    landmarks = np.array([[10.0, 20.0], [13.0, 24.0], [0, 0], [0, 0], [0, 0]])
    assert eye_distance(landmarks) == 5.0
