"""The accuracy benchmark's section of docs/benchmarks.md, its two figures (DET and CMC,
drawn with matplotlib's Agg backend) and its console summary, from the figures of one
run (bench/accuracy_api.py documents their keys)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.dataset import REPO_ROOT
from bench.metrics import FloatArray
from bench.report import replace_section

SECTION = "accuracy"
DOC = REPO_ROOT / "docs" / "benchmarks.md"
DET_FIGURE = REPO_ROOT / "docs" / "figures" / "accuracy-det.png"
CMC_FIGURE = REPO_ROOT / "docs" / "figures" / "accuracy-cmc.png"
API_USERS = "API, refusals as errors"
API_ACCEPTED = "API, accepted requests only"
IN_PROCESS = "in process"
# Curves of the same run often coincide: each is drawn thinner than the one before it
# and in its own dash pattern, so that none hides another.
_STYLES: tuple[dict[str, Any], ...] = (
    {"linewidth": 4.0, "linestyle": "-", "alpha": 0.6},
    {"linewidth": 2.5, "linestyle": "--"},
    {"linewidth": 1.2, "linestyle": ":"},
)


def det_points(genuine: FloatArray, impostor: FloatArray) -> tuple[FloatArray, FloatArray]:
    """FMR and FNMR with ``score >= t`` accepted, ``t`` every distinct finite score."""
    both = np.concatenate([genuine, impostor])
    thresholds = np.unique(both[np.isfinite(both)])
    below_genuine = np.searchsorted(np.sort(genuine), thresholds, side="left")
    below_impostor = np.searchsorted(np.sort(impostor), thresholds, side="left")
    fmr = (impostor.shape[0] - below_impostor) / impostor.shape[0]
    return fmr, below_genuine / genuine.shape[0]


def draw_det(
    path: Path, curves: Mapping[str, tuple[FloatArray, FloatArray]], threshold: float
) -> None:
    """One DET curve per label: (genuine, impostor) scores, ``-inf`` for a refused pair;
    a dot where ``threshold`` falls."""
    figure, axes = _figure()
    for (label, (genuine, impostor)), style in zip(
        curves.items(), itertools.cycle(_STYLES), strict=False
    ):
        fmr, fnmr = det_points(genuine, impostor)
        shown = (fmr > 0) & (fnmr > 0)  # a log axis has no zero
        (line,) = axes.step(fmr[shown], fnmr[shown], where="post", label=label, **style)
        axes.plot(
            np.mean(impostor >= threshold),
            np.mean(genuine < threshold),
            "o",
            color=line.get_color(),
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("false match rate (FMR)")
    axes.set_ylabel("false non-match rate (FNMR)")
    axes.set_title(f"lfw-dev verification pairs; dots: score {threshold:g}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    _save(figure, path)


def cmc_curves(result: dict[str, Any]) -> dict[str, list[float]]:
    """Hit rate at rank 1, 2, ... of each CMC curve."""
    api = result["identification"]["api"]
    return {
        API_USERS: api["users"]["cmc"],
        API_ACCEPTED: api["accepted"]["cmc"],
        IN_PROCESS: result["identification"]["in_process"]["users"]["cmc"],
    }


def draw_cmc(path: Path, curves: Mapping[str, Sequence[float]]) -> None:
    figure, axes = _figure()
    for (label, cmc), style in zip(curves.items(), itertools.cycle(_STYLES), strict=False):
        axes.plot(range(1, len(cmc) + 1), cmc, marker="o", label=label, **style)
    axes.set_xlabel("rank")
    axes.set_ylabel("mated searches with the mate at this rank or better")
    axes.set_title("lfw-dev 1:N search, with distractors")
    axes.set_xticks(range(1, max(len(c) for c in curves.values()) + 1))
    axes.grid(True, alpha=0.3)
    axes.legend()
    _save(figure, path)


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=(6.4, 4.8), layout="tight")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _save(figure: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _threshold(value: float | None) -> str:
    return "none" if value is None else str(math.ceil(value))


def figure_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(figure, API users, API accepted only, in process, API - in process) rows."""
    ver, idn = result["verification"], result["identification"]
    fmr = result["protocol"]["tar_fmr"]
    fpir = result["protocol"]["fpir"]
    default = result["protocol"]["default_threshold"]

    def accuracy(view: dict[str, Any]) -> str:
        return f"{_rate(view['accuracy']['mean'])} ± {_rate(view['accuracy']['std'])}"

    def tar(view: dict[str, Any]) -> str:
        at = view["tar_at_fmr"]
        return f"{_rate(at['tar'])} (score ≥ {_threshold(at['threshold'])})"

    def fnir(view: dict[str, Any]) -> str:
        return f"{_rate(view['fnir_at_fpir'])} (score ≥ {_threshold(view['threshold_at_fpir'])})"

    rows = []
    for name, group, show, key in (
        ("10-fold accuracy (mean ± std)", ver, accuracy, "accuracy_10fold"),
        (f"FMR at {default}", ver, lambda v: _rate(v["fmr_at_default"]), "fmr_at_default"),
        (f"FNMR at {default}", ver, lambda v: _rate(v["fnmr_at_default"]), "fnmr_at_default"),
        (f"TAR at FMR {fmr:g}", ver, tar, "tar_at_fmr"),
        ("rank-1 hit rate", idn, lambda v: _rate(v["rank1"]), "rank1"),
        (f"FNIR at FPIR {fpir:g}", idn, fnir, "fnir_at_fpir"),
        (f"FPIR at {default}", idn, lambda v: _rate(v["fpir_at_default"]), "fpir_at_default"),
        (f"FNIR at {default}", idn, lambda v: _rate(v["fnir_at_default"]), "fnir_at_default"),
    ):
        api, local = group["api"], group["in_process"]
        rows.append(
            (
                name,
                show(api["users"]),
                show(api["accepted"]),
                show(local["users"]),
                _signed(group["difference"][key]),
            )
        )
    return rows


_REFUSAL_ROWS = (
    ("enrolment_attempts", "failure to enrol, per attempt"),
    ("enrolment_identities", "failure to enrol, per identity"),
    ("verify", "failure to acquire, verify requests"),
    ("search", "failure to acquire, search requests"),
    ("probes", "failure to acquire, all probe requests"),
)


def _by_type(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items()) or "-"


def render(result: dict[str, Any]) -> str:
    """The markdown section."""
    p, wall = result["protocol"], result["wall_s"]
    lines = [
        "### Accuracy through the REST API",
        "",
        f"`{result['command']}` ({result['machine']}). The real service "
        "(`facegate serve`, SQLite, rate limit off) driven only over HTTP with SigV4 and the "
        f"application's API key, {p['clients']} concurrent clients, on {p['dataset']} "
        f"({p['photos']:,} photos of {p['identities']:,} people); beside it the same pairs "
        "and searches scored in process (the face nearest each photo's centre, which LFW "
        "labels, through the same score map), with the photos the API enrolled in the "
        "gallery and, in place of those it refused, the person's first photo or the "
        "distractor all the same: API - in process is what going through the service "
        "costs, enrolment refusals included.",
        "",
        f"- Verification: `POST /v1.1/face/verify` (face and probe) on {p['folds']} "
        f"identity-disjoint folds of {p['pairs_per_fold']} genuine and "
        f"{p['pairs_per_fold']} impostor pairs (seed {p['seed']}); each fold's threshold is "
        "the most accurate on the other folds' accepted pairs. With "
        f"{p['impostor_pairs']:,} impostor pairs no FMR below "
        f"{1 / p['impostor_pairs']:.1e} can be measured: TAR is given at FMR "
        f"{p['tar_fmr']:g} only.",
        f"- Identification: `POST /v1.1/subjects` for {p['gallery_identities']:,} people "
        "with two photos or more (their photos tried in name order until one is accepted) "
        f"and {p['distractors']} distractors (a seeded half of the one-photo people); "
        f"`POST /v1.1/face/search` (threshold 0, limit {p['search_limit']}) with their "
        f"{p['mated_searches']:,} other photos and the other {p['nonmated_searches']} "
        "one-photo people. FNIR counts a mate that is not first or scores below the "
        "threshold; the threshold at FPIR comes from the non-mated searches' top scores.",
        "- Refusals counted as errors (what users get): a refused verify pair is a wrong "
        "decision in the accuracy whatever its truth; in FMR, FNMR and TAR (ISO/IEC "
        "19795-1's generalised rates) a refused genuine pair is a false non-match and a "
        "refused impostor pair no false match, both still counted; a refused mated search, "
        "or one of a person who could not be enrolled, is a miss; a refused non-mated "
        "search finds nobody. Accepted only: refused requests (and searches of people not "
        "enrolled) are left out. In process, a photo without a face counts as a refusal.",
        "",
        "| figure | API, refusals as errors | API, accepted only | in process | API - in process |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in figure_rows(result)),
        "",
        "Refusals by NEC error type (the in-process pipeline found no face in "
        f"{sum(result['in_process_failures'].values())} photos):",
        "",
        "| refusals | requests | refused | rate | by type |",
        "|---|---|---|---|---|",
    ]
    for key, name in _REFUSAL_ROWS:
        rate = result["refusals"][key]
        lines.append(
            f"| {name} | {rate['requests']:,} | {rate['refused']:,} | {_rate(rate['rate'])} "
            f"| {_by_type(rate['by_type'])} |"
        )
    lines += ["", "Targets (API, refusals as errors):", ""]
    names = {
        "fta_probes": "failure to acquire, probes",
        "accuracy_10fold": "10-fold accuracy",
        "rank1": "rank-1 hit rate",
        "fnir_at_fpir": f"FNIR at FPIR {p['fpir']:g}",
    }
    for key, name in names.items():
        t = result["targets"][key]
        bound = "≤" if t["at_most"] else "≥"
        verdict = "met" if t["met"] else "NOT met"
        lines.append(f"- {name} {bound} {t['limit']:g}: {_rate(t['value'])}, {verdict}")
    det, cmc = (Path(result["figures"][k]).relative_to("docs") for k in ("det", "cmc"))
    lines += [
        "",
        f"Wall time {wall['total']:.0f} s: service start {wall['service_start']:.0f} s, "
        f"enrolment {wall['enrol']:.0f} s, verification {wall['verify']:.0f} s, searches "
        f"{wall['search']:.0f} s, in process {wall['in_process']:.0f} s.",
        "",
        f"DET curves (dots at score {p['default_threshold']}; points with no false "
        f"match or no false non-match are off the log axes): ![DET]({det})",
        "",
        f"CMC: ![CMC]({cmc})",
    ]
    return "\n".join(lines)


def summary(result: dict[str, Any]) -> str:
    """The figures table and the targets as plain text, for the console."""
    rows = [("figure", API_USERS, API_ACCEPTED, IN_PROCESS, "API - in process")]
    rows += figure_rows(result)
    widths = [max(len(row[k]) for row in rows) for k in range(5)]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    for key, rate in result["refusals"].items():
        text.append(f"refusals {key}: {rate['refused']}/{rate['requests']} {rate['by_type']}")
    for key, t in result["targets"].items():
        text.append(
            f"target {key}: {t['value']} vs {t['limit']}: {'met' if t['met'] else 'NOT met'}"
        )
    return "\n".join(text)


def write_docs(result: dict[str, Any], det: Mapping[str, tuple[FloatArray, FloatArray]]) -> None:
    """The figures (``det``: each DET curve's genuine and impostor scores) and the section."""
    draw_det(DET_FIGURE, det, result["protocol"]["default_threshold"])
    draw_cmc(CMC_FIGURE, cmc_curves(result))
    replace_section(DOC, SECTION, render(result))
