"""Which face a request takes: the selection rules measured on real photos.

    python -m bench.face_selection

The extractor finds every face (up to 20) of each lfw-dev photo and of each group
photo of the test set (``test/*/_multi``). Candidate rules then choose from those
boxes (whole pixels, as the API reports them):

- probe rules never refuse: a choice is wrong on lfw-dev when it is not the labelled
  face, which LFW centres in every photo (checked here: among the photos with several
  faces, the centred face is the one that best matches the person's other photos);
- enrolment rules may refuse (MultipleFaces): a failure to enrol on lfw-dev is a
  refused photo, a wrong enrolment an accepted photo whose chosen face is not the
  labelled one; a group photo holds two or more people who could each be the subject,
  so accepting one for enrolment is a wrong enrolment waiting to happen.

The shipped rules (extractor/selection.py) are evaluated through the service's own
``select_faces`` at several ``comparable_ratio`` values; the others (today's rule
before this study, a centrality margin) are written out here.

bench/results/face_selection.json - keys::

    machine, command: str
    lfw: {photos, with_several_faces, identity_check: {photos, centred_face_best}}
    groups: {photos: [str]}
    probe_rules: [{rule, lfw_wrong, groups_not_widest}]
    enrolment_rules: [{rule, lfw_refused, lfw_wrong, groups_accepted}]
    shipped: {comparable_ratio}

The tables go to the section "face-selection" of docs/attributes.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.dataset import REPO_ROOT, faces_dir, lfw_dev
from bench.report import machine_summary, publish
from extractor.detect import Detection
from extractor.loader import load_extractor
from extractor.pipeline import FaceExtractor
from extractor.selection import (
    COMPARABLE_WIDTH_RATIO,
    FaceSelection,
    most_prominent,
    select_faces,
)
from facegate.errors import FacegateError
from facegate.settings import Settings

RESULTS = REPO_ROOT / "bench" / "results" / "face_selection.json"
DOCS = REPO_ROOT / "docs" / "attributes.md"
RATIOS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0)
CENTRALITY_MARGINS = (0.5, 1.0)
"""Face widths by which a comparable face must be farther from the centre to be let
pass, in the rejected centrality-margin enrolment rule."""
LEGACY_RATIO = 0.5


@dataclass(frozen=True)
class Photo:
    name: str
    identity: str
    """lfw-dev identity; empty for a group photo."""
    width: int
    height: int
    boxes: np.ndarray
    """(n, 4) left, top, right, bottom, largest area first, as the extractor orders them."""
    embeddings: np.ndarray

    @property
    def widths(self) -> np.ndarray:
        widths: np.ndarray = self.boxes[:, 2] - self.boxes[:, 0]
        return widths

    @property
    def off_centre(self) -> np.ndarray:
        centre_x = (self.boxes[:, 0] + self.boxes[:, 2]) / 2
        centre_y = (self.boxes[:, 1] + self.boxes[:, 3]) / 2
        distance: np.ndarray = np.hypot(centre_x - self.width / 2, centre_y - self.height / 2)
        return distance

    @property
    def labelled(self) -> int:
        """The face LFW labels: the one nearest the photo's centre."""
        return int(np.argmin(self.off_centre))


ProbeRule = Callable[[Photo], int]
EnrolmentRule = Callable[[Photo], int | None]
"""The chosen face's index, None for a refusal."""


def measure(extractor: FaceExtractor, paths: Sequence[tuple[Path, str]]) -> list[Photo]:
    root = faces_dir()

    def one(item: tuple[Path, str]) -> Photo | None:
        path, identity = item
        try:
            extraction = extractor.extract(path.read_bytes(), limit=extractor.config.max_faces)
        except FacegateError:
            return None
        if not extraction.faces:
            return None
        boxes = np.array(
            [
                [a.face_area.left, a.face_area.top, a.face_area.right, a.face_area.bottom]
                for a in (f.attributes for f in extraction.faces)
            ],
            dtype=np.float64,
        )
        vectors = np.stack([f.embedding for f in extraction.faces if f.embedding is not None])
        name = str(path.relative_to(root))
        return Photo(name, identity, extraction.width, extraction.height, boxes, vectors)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return [p for p in pool.map(one, paths) if p is not None]


def _detections(photo: Photo) -> list[Detection]:
    return [Detection(box=box, score=1.0, landmarks=np.zeros((5, 2))) for box in photo.boxes]


def _index_of(photo: Photo, detection: Detection) -> int:
    return int(np.flatnonzero((photo.boxes == detection.box).all(axis=1))[0])


def prominent_rule(ratio: float) -> ProbeRule:
    """The shipped probe choice (``most_prominent``) at ``ratio``."""

    def rule(photo: Photo) -> int:
        chosen = most_prominent(
            _detections(photo), width=photo.width, height=photo.height, comparable_ratio=ratio
        )
        return _index_of(photo, chosen)

    return rule


def enrolment_rule(ratio: float) -> EnrolmentRule:
    """The shipped enrolment rule (``select_faces`` with SINGLE) at ``ratio``."""

    def rule(photo: Photo) -> int | None:
        try:
            chosen = select_faces(
                _detections(photo),
                FaceSelection.SINGLE,
                1,
                width=photo.width,
                height=photo.height,
                comparable_ratio=ratio,
            )[0]
        except FacegateError:
            return None
        return _index_of(photo, chosen)

    return rule


def widest(photo: Photo) -> int:
    return int(np.argmax(photo.widths))


def largest_area(photo: Photo) -> int:
    return 0


def legacy_enrolment(photo: Photo) -> int | None:
    """The rule before this study: the largest face; refused when another face is at
    least half its width."""
    rivals = photo.widths >= LEGACY_RATIO * photo.widths[0]
    return 0 if int(rivals.sum()) == 1 else None


def centrality_margin_rule(ratio: float, margin: float) -> EnrolmentRule:
    """The shipped probe choice, refused only when a comparable face is also less than
    ``margin`` face widths farther from the centre than the chosen one."""
    probe = prominent_rule(ratio)

    def rule(photo: Photo) -> int | None:
        chosen = probe(photo)
        widths, off = photo.widths, photo.off_centre
        for other in range(len(widths)):
            if other == chosen or widths[other] < ratio * widths[chosen]:
                continue
            if off[other] - off[chosen] < margin * widths[chosen]:
                return None
        return chosen

    return rule


def identity_check(photos: Sequence[Photo]) -> dict[str, int]:
    """Among lfw-dev photos with several faces whose person has other photos: how often
    the centred face is the one most similar to the centred faces of those photos."""
    by_identity: dict[str, list[Photo]] = {}
    for photo in photos:
        by_identity.setdefault(photo.identity, []).append(photo)
    checked = best = 0
    for photo in photos:
        others = [p for p in by_identity[photo.identity] if p is not photo]
        if len(photo.boxes) < 2 or not others:
            continue
        references = np.stack([p.embeddings[p.labelled] for p in others])
        similarity = (photo.embeddings @ references.T).max(axis=1)
        checked += 1
        best += int(np.argmax(similarity)) == photo.labelled
    return {"photos": checked, "centred_face_best": best}


def evaluate(lfw: Sequence[Photo], groups: Sequence[Photo]) -> dict[str, object]:
    probe_rules: list[tuple[str, ProbeRule]] = [("largest area", largest_area), ("widest", widest)]
    probe_rules += [(f"prominent, comparable at {r:g}", prominent_rule(r)) for r in RATIOS]
    enrolment_rules: list[tuple[str, EnrolmentRule]] = [
        (
            f"before: largest, refused if another face >= {LEGACY_RATIO:g} of its width",
            legacy_enrolment,
        ),
        ("prominent, never refused", prominent_rule(COMPARABLE_WIDTH_RATIO)),
    ]
    enrolment_rules += [
        (f"prominent, refused if another face >= {r:g} of its width", enrolment_rule(r))
        for r in RATIOS
    ]
    enrolment_rules += [
        (
            f"prominent, refused if another face >= {COMPARABLE_WIDTH_RATIO:g} of its width "
            f"is < {m:g} widths farther off centre",
            centrality_margin_rule(COMPARABLE_WIDTH_RATIO, m),
        )
        for m in CENTRALITY_MARGINS
    ]
    return {
        "probe_rules": [
            {
                "rule": name,
                "lfw_wrong": sum(rule(p) != p.labelled for p in lfw),
                "groups_not_widest": sum(rule(p) != widest(p) for p in groups),
            }
            for name, rule in probe_rules
        ],
        "enrolment_rules": [
            {
                "rule": name,
                "lfw_refused": sum(rule(p) is None for p in lfw),
                "lfw_wrong": sum(rule(p) not in (None, p.labelled) for p in lfw),
                "groups_accepted": [p.name for p in groups if rule(p) is not None],
            }
            for name, rule in enrolment_rules
        ],
    }


def render(result: dict[str, Any]) -> str:
    lfw, groups = result["lfw"], result["groups"]
    photos, n_groups = lfw["photos"], len(groups["photos"])
    check = lfw["identity_check"]
    lines = [
        f"`{result['command']}` ({result['machine']}); extractor {result['models']}.",
        "",
        f"lfw-dev: {photos:,} photos with a face, {lfw['with_several_faces']:,} of them with "
        f"several; the centred face is the one most similar to the person's other photos "
        f"in {check['centred_face_best']} of the {check['photos']} such photos whose person "
        f"has other photos. Group photos: {n_groups} (`test/*/_multi`, 2 to 20 people).",
        "",
        "Probe rules (never refuse):",
        "",
        "| rule | lfw-dev: not the labelled face | group photos: not the widest face |",
        "|---|---:|---:|",
    ]
    for row in result["probe_rules"]:
        lines.append(
            f"| {row['rule']} | {row['lfw_wrong']} ({_share(row['lfw_wrong'], photos)}) "
            f"| {row['groups_not_widest']} of {n_groups} |"
        )
    lines += [
        "",
        "Enrolment rules:",
        "",
        "| rule | lfw-dev: refused (failure to enrol) | lfw-dev: wrong person enrolled "
        "| group photos accepted |",
        "|---|---:|---:|---:|",
    ]
    for row in result["enrolment_rules"]:
        lines.append(
            f"| {row['rule']} | {row['lfw_refused']} ({_share(row['lfw_refused'], photos)}) "
            f"| {row['lfw_wrong']} | {len(row['groups_accepted'])} of {n_groups} |"
        )
    lines += [
        "",
        f"Shipped: comparable at {result['shipped']['comparable_ratio']:g} for both rules.",
    ]
    return "\n".join(lines)


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.2f}%"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    extractor = load_extractor(Settings.from_env())
    try:
        lfw = measure(extractor, [(i.path, i.identity) for i in lfw_dev()])
        group_paths = sorted(
            p for p in (faces_dir() / "test").glob("*/_multi/*") if p.suffix in {".jpg", ".png"}
        )
        groups = [p for p in measure(extractor, [(p, "") for p in group_paths]) if len(p.boxes) > 1]
        models = f"{extractor.detector_id} + {extractor.model_id}"
    finally:
        extractor.close()
    result: dict[str, Any] = {
        "machine": machine_summary(),
        "command": "python -m bench.face_selection",
        "models": models,
        "lfw": {
            "photos": len(lfw),
            "with_several_faces": sum(len(p.boxes) > 1 for p in lfw),
            "identity_check": identity_check(lfw),
        },
        "groups": {"photos": [p.name for p in groups]},
        **evaluate(lfw, groups),
        "shipped": {"comparable_ratio": COMPARABLE_WIDTH_RATIO},
    }
    publish(result, RESULTS, DOCS, "face-selection", render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
