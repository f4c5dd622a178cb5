"""The score maps a matcher needs, read from the model manifest alone.

A matcher turns similarities into the same 0..9999 scores the extractor reports
(Extractor.Info), so it must use the very calibration the manifest holds for each
recognizer. It reads only ``manifest.json``: a matcher pod holds templates, never model
files, so it must not need them (or their sha256 checks) to start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from extractor.models.catalog import Role
from extractor.models.manifest import MANIFEST_NAME, ModelError, load_manifest
from extractor.scores import ScoreMap


@dataclass(frozen=True)
class KnownModel:
    """What a matcher must know of a recognizer to store and score its templates."""

    dim: int
    score_map: ScoreMap


def known_models_from_manifest(model_dir: Path) -> dict[str, KnownModel]:
    """Every calibrated recognizer, keyed by its model id (``name@sha12``).

    Keyed by model id rather than name, so templates of a re-fetched or replaced model
    file (another sha256) are never scored with a calibration made for different bytes.
    Raises :class:`ModelError` when the manifest is missing or invalid, or calibrates no
    recognizer (a matcher that can score nothing would refuse every write).
    """
    manifest = load_manifest(model_dir)
    maps: dict[str, KnownModel] = {}
    for entry in manifest.models:
        if entry.role is not Role.RECOGNIZER or entry.score_calibration is None:
            continue
        try:
            maps[entry.model_id] = KnownModel(
                entry.embedding_dim, ScoreMap(entry.score_calibration.knots)
            )
        except ValueError as exc:
            raise ModelError(
                f"recognizer {entry.name!r} in {model_dir / MANIFEST_NAME} has an invalid "
                f"score calibration: {exc}"
            ) from exc
    if not maps:
        raise ModelError(
            f"no recognizer in {model_dir / MANIFEST_NAME} has a score calibration: "
            "run `facegate models fetch` (or calibrate your registered model)"
        )
    return maps
