"""Calibrate a recognizer's score map and quality model on lfw-dev.

    python -m bench.calibrate [--recognizer NAME] [--detector NAME]

Runs the extractor over every lfw-dev photo, then:
- score map: the similarity thresholds at FMR 1e-1 ... 1e-5 over all impostor pairs
  become the knots of scores 4000 ... 8000 (see extractor/scores.py);
- quality model: bench/quality_fit.py, with an identity-disjoint two-fold check;
and writes extractor/models/calibration.json (shipped with the code),
bench/results/calibration.json, docs/scores.md and docs/quality.md. Re-run
``facegate models fetch`` afterwards to copy the calibration into the manifest.
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bench.dataset import REPO_ROOT, lfw_dev
from bench.degrade import Degradation, degrade, plan
from bench.embed import run_pipeline
from bench.metrics import genuine_scores, impostor_scores, threshold_at_rate
from bench.quality_fit import error_versus_reject, fit_quality, mate_utility, utility_against
from extractor.decode import decode_image
from extractor.loader import load_extractor
from extractor.models.manifest import ScoreCalibration
from extractor.quality import QualityFeatures
from extractor.scores import MAX_SCORE, ScoreMap
from facegate.settings import Settings

CACHE = REPO_ROOT / "bench" / ".cache"
CALIBRATION_FILE = REPO_ROOT / "extractor" / "models" / "calibration.json"
DECADES = (1, 2, 3, 4, 5)  # FMR 10^-k -> score 3000 + 1000 k
TABLE_SCORES = (3000, 4000, 5000, 5500, 6000, 6500, 7000, 7500, 8000, 8500, 9000, 9500)
DEGRADED_SHARE = 0.6
SEED = 20261128


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recognizer", default="")
    parser.add_argument("--detector", default="")
    args = parser.parse_args(argv)
    settings = Settings.from_env(
        extractor={"recognizer": args.recognizer or None, "detector": args.detector or None}
    )
    extractor = load_extractor(settings, calibrating=True)
    recognizer_name = extractor.model_id.split("@")[0]
    images = lfw_dev()
    print(f"extracting {len(images)} lfw-dev photos with {extractor.model_id}", flush=True)
    run = run_pipeline(extractor, images)
    es = run.embeddings
    genuine, impostor = genuine_scores(es), impostor_scores(es)
    knots, fmrs = score_knots(impostor)
    score_map = ScoreMap(knots)
    table = rate_table(score_map, genuine, impostor)
    threshold = score_map.similarity(6000)  # FMR 1e-3

    # Degraded copies of photos whose identity has mates, scored against the clean mates.
    codes = es.label_codes()
    counts = np.bincount(codes)
    with_mates = np.flatnonzero(counts[codes] >= 2)
    degradations = [
        (int(with_mates[i]), kind, strength)
        for i, kind, strength in plan(len(with_mates), DEGRADED_SHARE, SEED)
    ]
    print(f"extracting {len(degradations)} degraded copies", flush=True)
    degraded_images = [images[i] for i, _, _ in degradations]
    degraded_run = run_pipeline(
        extractor,
        degraded_images,
        payloads=[
            degrade(decode_image(images[i].path.read_bytes()).pixels, kind, strength)
            for i, kind, strength in degradations
        ],
    )
    extractor.close()
    _cache_runs(run, degraded_run, degradations)
    clean_utility = mate_utility(es)
    degraded_utility = utility_against(es, degraded_run.embeddings, [i for i, _, _ in degradations])
    features = [*run.features, *degraded_run.features]
    utility = np.concatenate((clean_utility, degraded_utility))
    model = fit_quality(features, utility, threshold)
    labelled = np.isfinite(utility) & np.array([f is not None for f in features])
    bad_share = float(np.mean(utility[labelled] < threshold))

    # Identity-disjoint two-fold check: each half is scored by a model fitted on the other.
    fold = np.concatenate((codes % 2, codes[[i for i, _, _ in degradations]] % 2))
    out_of_fold = np.full(len(features), np.nan)
    for held_out in (0, 1):
        train = [f if fold[i] != held_out else None for i, f in enumerate(features)]
        fold_model = fit_quality(train, utility, threshold)
        for i in np.flatnonzero(fold == held_out):
            feature = features[i]
            if feature is not None:
                out_of_fold[i] = fold_model.score(feature)
    in_sample = np.array([model.score(f) if f is not None else np.nan for f in features])
    erc_cv = error_versus_reject(es, out_of_fold[: len(es)], threshold)
    erc_fit = error_versus_reject(es, in_sample[: len(es)], threshold)
    by_kind = _quality_by_degradation(degradations, in_sample[len(es) :])

    calibrations = json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.exists() else {}
    calibrations[recognizer_name] = {
        "score": ScoreCalibration(
            knots=tuple(knots), dataset="lfw-dev (all impostor pairs)", fmr_at_knots=tuple(fmrs)
        ).to_json(),
        "quality": model.to_json(),
        "detector": extractor.detector_id,
    }
    CALIBRATION_FILE.write_text(json.dumps(calibrations, indent=2, sort_keys=True) + "\n")
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} ({platform.node()})".strip(),
        "command": "python -m bench.calibrate"
        + (f" --recognizer {args.recognizer}" if args.recognizer else ""),
        "recognizer": extractor.model_id,
        "detector": extractor.detector_id,
        "images": len(es),
        "failures": run.failures,
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "knots": knots,
        "table": table,
        "quality_weights": dict(zip(model.features, model.weights, strict=True)),
        "quality_percentiles": {
            str(p): float(np.nanpercentile(in_sample[: len(es)], p))
            for p in (1, 5, 10, 25, 50, 75, 95)
        },
        "quality_by_degradation": by_kind,
        "degraded_copies": len(degradations),
        "quality_training_bad_share": bad_share,
        "erc_cross_validated": [vars(p) for p in erc_cv],
        "erc_in_sample": [vars(p) for p in erc_fit],
    }
    out = REPO_ROOT / "bench" / "results" / f"calibration-{recognizer_name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    _write_docs(result)
    print(json.dumps({k: result[k] for k in ("table", "erc_cross_validated")}, indent=1))
    return 0


def _cache_runs(
    clean: Any, degraded: Any, degradations: list[tuple[int, Degradation, float]]
) -> None:
    """Keep the measurements, so the quality fit can be studied without re-extracting."""
    CACHE.mkdir(parents=True, exist_ok=True)
    for name, run in (("clean", clean), ("degraded", degraded)):
        features = np.array(
            [
                f.vector() if f is not None else np.full(len(QualityFeatures.names()), np.nan)
                for f in run.features
            ]
        )
        np.savez(
            CACHE / f"calibration-{name}.npz",
            vectors=run.embeddings.vectors,
            valid=run.embeddings.valid,
            labels=np.array(run.embeddings.labels),
            features=features,
        )
    np.save(
        CACHE / "calibration-degradations.npy",
        np.array([[i, list(Degradation).index(k), st] for i, k, st in degradations]),
    )


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


def _write_docs(result: dict[str, Any]) -> None:
    docs = REPO_ROOT / "docs"
    rows = "\n".join(
        f"| {r['score']} | {r['similarity']:.4f} | {r['fmr']:.2e} | {r['fnmr']:.4f} |"
        for r in result["table"]
    )
    knots = "\n".join(f"| {s:.4f} | {v} |" for s, v in result["knots"])
    (docs / f"scores-{result['recognizer'].split('@')[0]}.md").write_text(
        f"""# Score table: {result["recognizer"]}

Generated by `{result["command"]}` on {result["date"]} ({result["machine"]}),
detector {result["detector"]}, over lfw-dev: {result["images"]} photos,
{result["genuine_pairs"]:,} genuine pairs and all {result["impostor_pairs"]:,} impostor
pairs. Failures (no face): {result["failures"] or "none"}.

## Score -> false-match and false-non-match rates

| score threshold | cosine similarity | FMR | FNMR |
|---:|---:|---:|---:|
{rows}

## Knots of the similarity -> score map

| similarity | score |
|---:|---:|
{knots}
"""
    )
    erc = "\n".join(
        f"| {a['rejected']:.0%} | {a['fnmr']:.4f} | {b['fnmr']:.4f} | {a['genuine_pairs']:,} |"
        for a, b in zip(result["erc_cross_validated"], result["erc_in_sample"], strict=True)
    )
    weights = "\n".join(f"| {k} | {v:+.3f} |" for k, v in result["quality_weights"].items())
    kinds = "\n".join(
        f"| {k} | {v['n']} | {v['no_face']} | {v['median_quality']:.3f} |"
        for k, v in result["quality_by_degradation"].items()
    )
    pct = ", ".join(f"p{k} {v:.3f}" for k, v in result["quality_percentiles"].items())
    (docs / f"quality-{result['recognizer'].split('@')[0]}.md").write_text(
        f"""# Quality calibration: {result["recognizer"]}

Generated by `{result["command"]}` on {result["date"]}. Error-versus-reject on lfw-dev:
FNMR at the fixed FMR 1e-3 threshold (score 6000) over the genuine pairs left after
discarding the lowest-quality share of photos. "Cross-validated" scores each half of
the identities with a model fitted on the other half; "in-sample" uses the shipped
model fitted on all of lfw-dev.

| discarded | FNMR (cross-validated) | FNMR (in-sample) | genuine pairs left |
|---:|---:|---:|---:|
{erc}

Weights of the shipped model (standardised features; 0 = dropped for a wrong sign):

| feature | weight |
|---|---:|
{weights}

faceQualityScore distribution on lfw-dev: {pct}.

The model was fitted on lfw-dev plus {result["degraded_copies"]} degraded copies
(bench/degrade.py); {result["quality_training_bad_share"]:.1%} of the training photos
fall below the FMR 1e-3 threshold against their mates. Median faceQualityScore of
those copies, by fault and strength (no face = the detector found none):

| degradation | copies | no face | median quality |
|---|---:|---:|---:|
{kinds}
"""
    )


if __name__ == "__main__":
    raise SystemExit(main())
