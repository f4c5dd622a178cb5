"""faceQualityScore: the logistic model's monotonicity, range, JSON form and features."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from extractor.models.fetch import load_calibrations
from extractor.quality import (
    EYE_DISTANCE_HALF_PX,
    POSE_HALF_DEGREES,
    QualityFeatures,
    QualityModel,
    contrast,
    eye_distance,
    prior,
    sharpness,
)

NAMES = QualityFeatures.names()


def make_features(values: np.ndarray | list[float]) -> QualityFeatures:
    return QualityFeatures(**{name: float(v) for name, v in zip(NAMES, values, strict=True)})


DIM = 4


def make_model(weights: list[float] | None = None, bias: float = 0.3) -> QualityModel:
    width = len(NAMES) + DIM
    signs = [(-1.0) ** i * (0.5 + 0.25 * i) for i in range(width)]
    return QualityModel(
        features=NAMES,
        embedding_dim=DIM,
        mean=tuple(float(i) for i in range(width)),
        std=tuple(0.5 + i for i in range(width)),
        weights=tuple(weights or signs),
        bias=bias,
    )


def split(model: QualityModel, x: np.ndarray) -> tuple[QualityFeatures, np.ndarray]:
    return make_features(x[: len(NAMES)]), x[len(NAMES) :]


def test_feature_vector_follows_the_names() -> None:
    values = [1.5 * (i + 1) for i in range(len(NAMES))]
    features = make_features(values)
    np.testing.assert_array_equal(features.vector(), values)
    assert features.vector().dtype == np.float64


@pytest.mark.parametrize("index", range(len(NAMES) + DIM))
def test_fitted_part_is_monotone_in_each_input_with_the_weight_sign(index: int) -> None:
    model = make_model()
    mean, std, weight = model.mean[index], model.std[index], model.weights[index]
    base = np.asarray(model.mean)
    grid = np.linspace(mean - 3.9 * std, mean + 3.9 * std, 50)
    scores = []
    for value in grid:
        x = base.copy()
        x[index] = value
        scores.append(model.fitted(*split(model, x)))
    steps = np.diff(scores)
    assert np.all(steps > 0) if weight > 0 else np.all(steps < 0), index
    # Past the clip (4 standard deviations) the score stops moving.
    x = base.copy()
    x[index] = mean + 4 * std
    at_clip = model.fitted(*split(model, x))
    x[index] = mean + 400 * std
    assert model.fitted(*split(model, x)) == at_clip


def test_mean_inputs_give_the_bias_probability() -> None:
    model = make_model(bias=0.7)
    expected = 1.0 / (1.0 + math.exp(-0.7))
    assert model.fitted(*split(model, np.asarray(model.mean))) == pytest.approx(expected)


def test_priors_halve_quality_at_55_degrees_and_12_pixels() -> None:
    frontal_large = make_features([math.log(40.0), 0.0, 0.0, 1.0, 5.0, 3.5, 2.7])
    assert prior(frontal_large) == pytest.approx(1.0, abs=0.02)
    turned = make_features([math.log(40.0), POSE_HALF_DEGREES, 0.0, 1.0, 5.0, 3.5, 2.7])
    assert prior(turned) == pytest.approx(0.5, abs=0.01)
    tiny = make_features([math.log(EYE_DISTANCE_HALF_PX), 0.0, 0.0, 1.0, 5.0, 3.5, 2.7])
    assert prior(tiny) == pytest.approx(0.5, abs=0.02)
    profiles = [
        prior(make_features([3.7, pan, 0.0, 1.0, 5.0, 3.5, 2.7])) for pan in (0, 30, 60, 90)
    ]
    assert profiles == sorted(profiles, reverse=True)
    assert profiles[-1] < 0.01


def test_quality_is_the_fitted_probability_times_the_prior() -> None:
    model = make_model()
    x = np.asarray(model.mean, dtype=np.float64)
    x[1] = 70.0  # abs_pan: far off-axis
    features, embedding = split(model, x)
    assert model.score(features, embedding) == pytest.approx(
        model.fitted(features, embedding) * prior(features)
    )


@pytest.mark.parametrize("extreme", [1e300, -1e300])
def test_extreme_inputs_stay_strictly_inside_0_1(extreme: float) -> None:
    model = make_model()
    for index in range(len(NAMES) + DIM):
        x = np.asarray(model.mean, dtype=np.float64)
        x[index] = extreme
        assert 0.0 < model.fitted(*split(model, x)) < 1.0


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_unmeasurable_face_has_zero_quality(value: float) -> None:
    model = make_model()
    x = np.asarray(model.mean, dtype=np.float64)
    x[0] = value
    assert model.score(*split(model, x)) == 0.0


def test_wrong_embedding_size_is_refused() -> None:
    model = make_model()
    features, _ = split(model, np.asarray(model.mean))
    with pytest.raises(ValueError, match="4-d embedding"):
        model.score(features, np.zeros(DIM + 1))


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
    with pytest.raises(ValueError, match="must all have"):
        QualityModel.from_json(data)


def test_non_positive_std_is_rejected() -> None:
    data = make_model().to_json()
    data["std"] = [0.0, *data["std"][1:]]
    with pytest.raises(ValueError, match="positive"):
        QualityModel.from_json(data)


def test_shipped_quality_model_loads_and_gives_probabilities() -> None:
    calibrations = load_calibrations()
    assert "quality" in calibrations["edgeface-s-gamma05"]
    model = QualityModel.from_json(calibrations["edgeface-s-gamma05"]["quality"])
    rng = np.random.default_rng(9)
    width = len(NAMES) + model.embedding_dim
    samples = rng.normal(np.asarray(model.mean), 10 * np.asarray(model.std), (200, width))
    scores = np.array([model.score(*split(model, row)) for row in samples])
    assert np.all((scores >= 0) & (scores < 1))


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
