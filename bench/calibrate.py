"""Calibrate a recognizer's score map and quality model on lfw-dev.

    python -m bench.calibrate [--recognizer NAME] [--detector NAME] [--reuse]

Runs the extractor over every lfw-dev photo and over degraded copies of 60% of them
(bench/degrade.py), taking from each the face the service takes from a probe (on
lfw-dev, the labelled face: bench/face_selection.py), then:
- score map: the similarity thresholds at FMR 1e-1 ... 1e-5 over all impostor pairs
  become the knots of scores 4000 ... 8000 (see extractor/scores.py);
- quality model: bench/quality_fit.py, with an identity-disjoint two-fold check;
and writes extractor/models/calibration.json (shipped with the code),
bench/results/calibration-<recognizer>.json, docs/scores.md and docs/quality.md (or
docs/scores-<recognizer>.md for a recognizer that is not the default). ``--reuse``
fits again from the measurements cached in bench/.cache by the previous run of the
same models. Re-run ``facegate models fetch`` afterwards to copy the calibration into
the manifest.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.dataset import REPO_ROOT, lfw_dev
from bench.degrade import Degradation, degrade, plan
from bench.embed import run_pipeline
from bench.metrics import EmbeddingSet, genuine_scores, impostor_scores, threshold_at_rate
from bench.quality_fit import error_versus_reject, fit_quality, mate_utility, utility_against
from bench.report import machine_summary, replace_section
from extractor.decode import decode_image
from extractor.loader import load_extractor
from extractor.models.catalog import DEFAULT_RECOGNIZER
from extractor.models.manifest import ScoreCalibration
from extractor.quality import QualityFeatures, QualityModel
from extractor.scores import ScoreMap
from facegate.contract import MAX_SCORE
from facegate.settings import Settings

CACHE = REPO_ROOT / "bench" / ".cache"
CALIBRATION_FILE = REPO_ROOT / "extractor" / "models" / "calibration.json"
DECADES = (1, 2, 3, 4, 5)  # FMR 10^-k -> score 3000 + 1000 k
TABLE_SCORES = (3000, 4000, 5000, 5500, 6000, 6500, 7000, 7500, 8000, 8500, 9000, 9500)
DEGRADED_SHARE = 0.6
SEED = 20261128
QUALITY_TARGET_SCORE = 8000  # quality = P(median similarity to mates >= FMR 1e-5 threshold)
ERC_SCORES = (6000, 7000, 8000)  # FMR 1e-3, 1e-4 (the default threshold), 1e-5


@dataclass(frozen=True)
class Measured:
    """One extractor's output on lfw-dev: embeddings and quality features per photo."""

    embeddings: EmbeddingSet
    features: list[QualityFeatures | None]

    def save(self, path: Any, models: str) -> None:
        width = len(QualityFeatures.names())
        rows = [f.vector() if f else np.full(width, np.nan) for f in self.features]
        np.savez(
            path,
            models=np.array(models),
            vectors=self.embeddings.vectors,
            valid=self.embeddings.valid,
            labels=np.array(self.embeddings.labels),
            features=np.array(rows),
        )

    @classmethod
    def load(cls, path: Any, models: str) -> Measured:
        data = np.load(path)
        if str(data["models"]) != models:
            raise SystemExit(f"{path} holds measurements of {data['models']}, not {models}")
        features = [
            None if np.isnan(row).any() else QualityFeatures(*(float(v) for v in row))
            for row in data["features"]
        ]
        labels = tuple(str(label) for label in data["labels"])
        return cls(EmbeddingSet(data["vectors"], data["valid"], labels), features)


def score_knots(impostor: np.ndarray) -> tuple[list[tuple[float, int]], list[float]]:
    knots: list[tuple[float, int]] = [(-1.0, 0)]
    fmrs = [1.0]
    for k in DECADES:
        knots.append((threshold_at_rate(impostor, 10.0**-k), 3000 + 1000 * k))
        fmrs.append(10.0**-k)
    knots.append((1.0, MAX_SCORE))
    fmrs.append(0.0)
    return knots, fmrs


def rate_table(
    score_map: ScoreMap, genuine: np.ndarray, impostor: np.ndarray
) -> list[dict[str, float]]:
    rows = []
    for score in TABLE_SCORES:
        similarity = score_map.similarity(score)
        rows.append(
            {
                "score": score,
                "similarity": similarity,
                "fmr": float(np.count_nonzero(impostor >= similarity) / len(impostor)),
                "fnmr": float(np.count_nonzero(genuine < similarity) / len(genuine)),
            }
        )
    return rows


def measure(
    settings: Settings, reuse: bool
) -> tuple[str, str, Measured, Measured, list[tuple[int, Degradation, float]]]:
    """Extract (or reload) the clean and degraded lfw-dev measurements."""
    extractor = load_extractor(settings, calibrating=True)
    models = f"{extractor.detector_id}+{extractor.model_id}"
    images = lfw_dev()
    labels = [image.identity for image in images]
    codes = np.unique(labels, return_inverse=True)[1]
    with_mates = np.flatnonzero(np.bincount(codes)[codes] >= 2)
    degradations = [
        (int(with_mates[i]), kind, strength)
        for i, kind, strength in plan(len(with_mates), DEGRADED_SHARE, SEED)
    ]
    clean_path, degraded_path = CACHE / "calibration-clean.npz", CACHE / "calibration-degraded.npz"
    if reuse:
        extractor.close()
        clean, degraded = Measured.load(clean_path, models), Measured.load(degraded_path, models)
        return extractor.detector_id, extractor.model_id, clean, degraded, degradations
    print(f"extracting {len(images)} lfw-dev photos with {models}", flush=True)
    run = run_pipeline(extractor, images, as_probes=True)
    print(f"extracting {len(degradations)} degraded copies", flush=True)
    degraded_run = run_pipeline(
        extractor,
        [images[i] for i, _, _ in degradations],
        payloads=[
            degrade(decode_image(images[i].path.read_bytes()).pixels, kind, strength)
            for i, kind, strength in degradations
        ],
        as_probes=True,
    )
    extractor.close()
    clean = Measured(run.embeddings, list(run.features))
    degraded = Measured(degraded_run.embeddings, list(degraded_run.features))
    CACHE.mkdir(parents=True, exist_ok=True)
    clean.save(clean_path, models)
    degraded.save(degraded_path, models)
    return extractor.detector_id, extractor.model_id, clean, degraded, degradations


def cross_validated(
    features: list[QualityFeatures | None],
    embeddings: np.ndarray,
    utility: np.ndarray,
    fold: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """Each identity half scored by a model fitted on the other half (NaN: no face)."""
    out = np.full(len(features), np.nan)
    for held_out in (0, 1):
        train = [f if fold[i] != held_out else None for i, f in enumerate(features)]
        model = fit_quality(train, embeddings, utility, threshold)
        out[fold == held_out] = _scores(model, features, embeddings)[fold == held_out]
    return out


def _scores(
    model: QualityModel, features: list[QualityFeatures | None], embeddings: np.ndarray
) -> np.ndarray:
    return np.array(
        [
            model.score(f, e) if f is not None else np.nan
            for f, e in zip(features, embeddings, strict=True)
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recognizer", default="")
    parser.add_argument("--detector", default="")
    parser.add_argument("--reuse", action="store_true", help="fit from the cached measurements")
    args = parser.parse_args(argv)
    settings = Settings.from_env(
        extractor={"recognizer": args.recognizer or None, "detector": args.detector or None}
    )
    detector_id, model_id, clean, degraded, degradations = measure(settings, args.reuse)
    recognizer_name = model_id.split("@")[0]
    es = clean.embeddings
    genuine, impostor = genuine_scores(es), impostor_scores(es)
    knots, fmrs = score_knots(impostor)
    score_map = ScoreMap(knots)
    target = score_map.similarity(QUALITY_TARGET_SCORE)

    originals = [i for i, _, _ in degradations]
    features = [*clean.features, *degraded.features]
    embeddings = np.vstack((es.vectors, degraded.embeddings.vectors))
    utility = np.concatenate(
        (mate_utility(es), utility_against(es, degraded.embeddings, originals))
    )
    model = fit_quality(features, embeddings, utility, target)
    labelled = np.isfinite(utility) & np.array([f is not None for f in features])
    codes = es.label_codes()
    fold = np.concatenate((codes % 2, codes[originals] % 2))
    out_of_fold = cross_validated(features, embeddings, utility, fold, target)
    in_sample = _scores(model, features, embeddings)
    erc = {
        str(score): {
            "cross_validated": [
                vars(p)
                for p in error_versus_reject(
                    es, out_of_fold[: len(es)], score_map.similarity(score)
                )
            ],
            "shipped": [
                vars(p)
                for p in error_versus_reject(es, in_sample[: len(es)], score_map.similarity(score))
            ],
        }
        for score in ERC_SCORES
    }

    calibrations = json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.exists() else {}
    calibrations[recognizer_name] = {
        "score": ScoreCalibration(
            knots=tuple(knots), dataset="lfw-dev (all impostor pairs)", fmr_at_knots=tuple(fmrs)
        ).to_json(),
        "quality": model.to_json(),
        "detector": detector_id,
    }
    CALIBRATION_FILE.write_text(json.dumps(calibrations, indent=2, sort_keys=True) + "\n")
    result: dict[str, Any] = {
        "machine": machine_summary(),
        "command": "python -m bench.calibrate"
        + (f" --recognizer {args.recognizer}" if args.recognizer else ""),
        "recognizer": model_id,
        "detector": detector_id,
        "images": len(es),
        "no_face": es.n_failed,
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "knots": knots,
        "table": rate_table(score_map, genuine, impostor),
        "quality_target_score": QUALITY_TARGET_SCORE,
        "quality_weights": dict(
            zip(model.features, model.weights[: len(model.features)], strict=True)
        ),
        "quality_embedding_weight_norm": float(
            np.linalg.norm(model.weights[len(model.features) :])
        ),
        "quality_percentiles": {
            str(p): float(np.nanpercentile(in_sample[: len(es)], p))
            for p in (1, 5, 10, 25, 50, 75, 95)
        },
        "quality_by_degradation": _quality_by_degradation(degradations, in_sample[len(es) :]),
        "degraded_copies": len(degradations),
        "quality_training_bad_share": float(np.mean(utility[labelled] < target)),
        "error_versus_reject": erc,
    }
    out = REPO_ROOT / "bench" / "results" / f"calibration-{recognizer_name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    _write_docs(result, default=recognizer_name == DEFAULT_RECOGNIZER)
    print(json.dumps({k: result[k] for k in ("table", "error_versus_reject")}, indent=1))
    return 0


def _quality_by_degradation(
    degradations: list[tuple[int, Degradation, float]], quality: np.ndarray
) -> dict[str, dict[str, float]]:
    """Median quality and no-face count per degradation, split at half strength."""
    groups: dict[str, list[float]] = {}
    for (_, kind, strength), q in zip(degradations, quality, strict=True):
        groups.setdefault(f"{kind} {'strong' if strength >= 0.5 else 'mild'}", []).append(q)
    summary = {}
    for key, values in sorted(groups.items()):
        found = [v for v in values if not np.isnan(v)]
        summary[key] = {
            "n": len(values),
            "no_face": len(values) - len(found),
            "median_quality": float(np.median(found)) if found else float("nan"),
        }
    return summary


def _write_docs(result: dict[str, Any], *, default: bool) -> None:
    name = result["recognizer"]
    heading = f"### {name}" + (" (default)" if default else "")
    rows = "\n".join(
        f"| {r['score']} | {r['similarity']:.4f} | {r['fmr']:.2e} | {r['fnmr']:.4f} |"
        for r in result["table"]
    )
    knots = "\n".join(f"| {s:.4f} | {v} |" for s, v in result["knots"])
    replace_section(
        REPO_ROOT / "docs" / "scores.md",
        f"scores-{name.split('@')[0]}",
        f"""{heading}

`{result["command"]}` ({result["machine"]}); detector {result["detector"]}; lfw-dev:
{result["images"]} photos ({result["no_face"]} without a face), {result["genuine_pairs"]:,}
genuine pairs and all {result["impostor_pairs"]:,} impostor pairs.

| score threshold | cosine similarity | FMR | FNMR |
|---:|---:|---:|---:|
{rows}

Knots of the map:

| similarity | score |
|---:|---:|
{knots}
""",
    )
    curves = result["error_versus_reject"]
    columns = [str(score) for score in ERC_SCORES]
    erc = "\n".join(
        f"| {point['rejected']:.0%} | "
        + " | ".join(f"{curves[c]['cross_validated'][k]['fnmr']:.4f}" for c in columns)
        + f" | {curves['7000']['shipped'][k]['fnmr']:.4f} | {point['genuine_pairs']:,} |"
        for k, point in enumerate(curves["7000"]["cross_validated"])
    )
    weights = "\n".join(f"| {k} | {v:+.3f} |" for k, v in result["quality_weights"].items())
    pct = ", ".join(f"p{k} {v:.3f}" for k, v in result["quality_percentiles"].items())
    kinds = "\n".join(
        f"| {k} | {v['n']} | {v['no_face']} | {v['median_quality']:.3f} |"
        for k, v in result["quality_by_degradation"].items()
    )
    replace_section(
        REPO_ROOT / "docs" / "quality.md",
        f"quality-{name.split('@')[0]}",
        f"""{heading}

`{result["command"]}` ({result["machine"]}). Error-versus-reject on lfw-dev: FNMR at
fixed thresholds (columns: the FMR of the threshold) over the genuine pairs left after
discarding the lowest-quality share of photos; cross-validated, except the "shipped"
column (the model fitted on all data).

| discarded | FMR 1e-3 | FMR 1e-4 (score 7000) | FMR 1e-5 | FMR 1e-4, shipped | pairs left |
|---:|---:|---:|---:|---:|---:|
{erc}

Weights of the measurements (standardised; 0 = dropped for a wrong sign); the 512
embedding weights have L2 norm {result["quality_embedding_weight_norm"]:.2f}:

| feature | weight |
|---|---:|
{weights}

faceQualityScore on lfw-dev: {pct}.

Fitted on lfw-dev plus {result["degraded_copies"]} degraded copies; the target is a
median similarity to the photo's mates at or above score {result["quality_target_score"]}
(FMR 1e-5), which {result["quality_training_bad_share"]:.1%} of the training photos miss.
Median faceQualityScore of the copies by fault and strength (no face = the detector
found none):

| degradation | copies | no face | median quality |
|---|---:|---:|---:|
{kinds}
""",
    )


if __name__ == "__main__":
    raise SystemExit(main())
