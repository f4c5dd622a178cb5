"""The tables of ``python -m bench.quantize`` (docs/models.md, section "quantize")."""

from __future__ import annotations

from typing import Any

from bench.compare_models import DETECTION_COLUMNS

REJECT_SHARE = 0.10
"""The share of lowest-quality faces discarded before FNMR is read."""


MODEL_HEADER = (
    "| model | variant | CPU ms batch 1 | CPU ms batch 32 | TAR @ FAR 1e-3 | TAR @ FAR 1e-4 "
    "| rank-1 | FNIR @ FPIR 0.01 | quality change | qualifies |\n" + "|---" * 10 + "|"
)
POSE_HEADER = (
    "| pose from | pan | tilt | roll | quality change "
    f"| FNMR @ score 7000, lowest {REJECT_SHARE:.0%} quality discarded |\n" + "|---" * 6 + "|"
)


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _change(q: dict[str, Any] | None) -> str:
    return f"{q['median_abs']:.4f} / {q['max_abs']:.4f} ({q['crossed_min']})" if q else "—"


def render(result: dict[str, Any]) -> str:
    fp32, cal, pose = result["fp32"], result["calibration"], result["pose"]
    base = fp32["recognizer"]
    rows = [{"role": role, "variant": "fp32 (shipped)", **base, **fp32[role]} for role in fp32]
    models = []
    for r in rows + result["variants"]:
        same = r["role"] == "pose" and "int8" in r["variant"]
        acc = (
            (["= fp32"] * 4)
            if same
            else [
                f"{r['tar_at_far']['0.001']:.4f}",
                f"{r['tar_at_far']['0.0001']:.4f}",
                f"{r['rank1']:.4f}",
                f"{r['fnir_at_fpir_0.01']:.4f}",
            ]
        )
        verdict = {True: "**yes**", False: "no", None: "—"}[r.get("qualifies")]
        ms = r["speed"]
        cells = (r["role"], r["variant"], ms["batch1"], ms["batch32"], *acc)
        models.append(_row(*cells, _change(r.get("quality_change")), verdict))
    detection = [
        _row(
            label,
            d["compreface_exact_counts"],
            f"{d['dlib_missed']} / {d['dlib_boxes']}",
            d["dlib_extra"],
            f"{d['noface_false_faces']} ({d['noface_photos']} photos)",
            d["tight_crops_found"],
            d["lfw_dev_no_face"],
        )
        for label, d in [("fp32 (shipped)", fp32["detector"]["detection"])]
        + [(r["variant"], r["detection"]) for r in result["variants"] if "detection" in r]
    ]
    sources = [(r["key"], r["variant"]) for r in result["variants"] if r["role"] == "pose"]
    poses = [
        _row(
            label,
            *(
                f"{a['median_abs']} / {a['max_abs']} ({a['median']:+}; r {a['r']})"
                for a in (pose[key]["angles"][x] for x in ("pan", "tilt", "roll"))
            ),
            _change(pose[key]["quality_change"]),
            f"{pose[key]['fnmr_at_7000_after_reject']:.4f}",
        )
        for key, label in [*sources, ("landmarks", "the detector's 5 landmarks")]
    ]
    nl = "\n"
    return f"""Measured by `{result["command"]}` on {result["machine"]}; \
{result["threads_per_model"]} intra-op thread(s) per model; int8 calibrated on the \
{len(cal["photos"])} photos of the first {len(cal["persons"])} lfw-dev identities.

{MODEL_HEADER}
{nl.join(models)}

{_row(*DETECTION_COLUMNS[:-1])}
{"|---" * (len(DETECTION_COLUMNS) - 1)}|
{nl.join(detection)}

Pose of the central face of {pose["faces"]} lfw-dev photos against 3DDFA fp32 (FNMR at
score 7000 after discarding {REJECT_SHARE:.0%} with 3DDFA fp32: \
{pose["fp32_fnmr_at_7000_after_reject"]:.4f}):

{POSE_HEADER}
{nl.join(poses)}
"""
