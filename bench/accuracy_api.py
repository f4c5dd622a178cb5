"""Accuracy through the public REST API, beside the same protocol scored in process.

    python -m bench.accuracy_api [--folds 10] [--pairs-per-fold 300] [--clients 4]
                                 [--seed 0] [--no-docs]

Starts the real service (``python -m facegate serve`` on a temporary data directory, every
port ephemeral, REST rate limit off), reads the first-run credentials it prints, and
drives it only over HTTP as a client would: SigV4 (botocore, service execute-api) plus
the application's x-api-key, base64 JSON bodies, ``--clients`` concurrent threads so that
the server's micro-batching is used. A transport error or an HTTP 5xx (or 401/403/429: the
benchmark's own fault) stops the run; any other 4xx is a refusal, counted by its NEC
``errorType``. The service is stopped with SIGTERM at the end, also on errors. On
lfw-dev (bench/dataset.py), with the protocol of bench/accuracy_protocol.py:

- verification: ``POST /v1.1/face/verify`` ``{"face", "probe"}`` over LFW View 2-style
  identity-disjoint folds of genuine and impostor pairs: 10-fold accuracy, FMR and FNMR
  at the default threshold 7000, TAR at FMR 1e-3 (the only rate resolvable with a few
  thousand impostor pairs);
- identification: one ``POST /v1.1/subjects`` per identity with two photos or more (its
  photos tried in name order until one is accepted) and per distractor (a seeded half of
  the single-photo identities); ``POST /v1.1/face/search`` (threshold 0, limit 10) with
  every other photo of those identities and with the other singles: CMC to rank 10,
  rank-1, FNIR at FPIR 0.01, FPIR and FNIR at 7000;
- refusals (ISO/IEC 19795-1): failure to enrol per attempt and per identity, failure to
  acquire per verify and search request, by error type;
- the same pairs and gallery/probe split scored in process (bench/embed.py's pipeline:
  the face nearest each photo's centre, scores through the recognizer's score map), and
  the difference API - in process.

Every figure is given as users see it (refusals counted as errors) and over the accepted
requests only; bench/accuracy_protocol.py defines both.

bench/results/accuracy_api.json - keys::

    schema: 1
    machine, command: str
    wall_s: {total, service_start, enrol, verify, search, in_process: float}
    protocol: {dataset, photos, identities, seed, clients, folds, pairs_per_fold,
               genuine_pairs, impostor_pairs, gallery_identities, distractors,
               mated_searches, nonmated_searches, search_limit, default_threshold,
               tar_fmr, fpir}
    refusals: {enrolment_attempts, enrolment_identities, verify, search, probes: RATE}
    in_process_failures: {error type: photos}
    verification: {api, in_process: {refused_pairs, users: VER, accepted: VER},
                   difference: {figure: API users - in process users}}
    identification: {api, in_process: {users: IDN, accepted: IDN}, difference: {...}}
    targets: {fta_probes, accuracy_10fold, rank1, fnir_at_fpir: TARGET}
    figures: {det, cmc: str}                  # PNGs, relative to the repository

    RATE   = {requests, refused, rate, by_type: {error type: count}}
    VER    = {pairs, accuracy: {mean, std, fold_accuracies, fold_thresholds, n_pairs,
              n_failed_pairs}, fmr_at_default, fnmr_at_default,
              tar_at_fmr: {far, threshold, tar, far_achieved, ..., resolvable}}
    IDN    = {mated_searches, nonmated_searches, cmc: [rank 1..10], rank1, fpir,
              threshold_at_fpir, fpir_achieved, fnir_at_fpir, fpir_at_default,
              fnir_at_default}
    TARGET = {value, limit, at_most, met}     # judged on the users' view of the API

The section "accuracy" of docs/benchmarks.md and its two figures are written from the
same run (bench/accuracy_report.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bench.accuracy_protocol import (
    IdentificationFigures,
    IdentificationPlan,
    SearchAnswers,
    VerificationFigures,
    VerificationPairs,
    draw_verification_pairs,
    identification_figures,
    mated_probes,
    plan_identification,
    refusal_rate,
    target,
    verification_figures,
)
from bench.accuracy_report import (
    API_ACCEPTED,
    API_USERS,
    CMC_FIGURE,
    DET_FIGURE,
    IN_PROCESS,
    summary,
    write_docs,
)
from bench.dataset import REPO_ROOT, LabelledImage, lfw_dev
from bench.embed import run_pipeline
from bench.metrics import EmbeddingSet, FloatArray
from bench.report import machine_summary
from bench.rest_service import Outcome, RestClient, ServiceError, running_service
from extractor.loader import load_extractor
from extractor.scores import ScoreMap
from facegate.contract import DEFAULT_THRESHOLD
from facegate.settings import Settings
from tests.support.stack import b64

RESULTS = REPO_ROOT / "bench" / "results" / "accuracy_api.json"
SEARCH_LIMIT = 10
TAR_FMR = 1e-3
FPIR = 0.01
T = TypeVar("T")
R = TypeVar("R")


def _parallel(clients: int, work: Callable[[T], R], items: Sequence[T]) -> list[R]:
    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(work, items))


@dataclass(frozen=True)
class Enrolment:
    attempts: list[str | None]
    """Error type of each registration attempt (None: accepted)."""
    identities: list[str | None]
    """Per identity: None when enrolled, else its last attempt's error type."""
    photo: dict[str, int]
    """Identity -> the photo enrolled."""
    subject: dict[str, str]
    """Identity -> its subject id."""


def enrol(
    rest: RestClient,
    encoded: Sequence[str],
    labels: Sequence[str],
    plan: IdentificationPlan,
    clients: int,
) -> Enrolment:
    """One subject per identity; a refused photo is followed by the identity's next one."""
    tasks = list(plan.enrolment_order.items())
    tasks += [(labels[photo], (photo,)) for photo in plan.distractors]

    def one(task: tuple[str, tuple[int, ...]]) -> list[tuple[int, Outcome]]:
        tried = []
        for photo in task[1]:
            outcome = rest.post("/v1.1/subjects", {"face": encoded[photo]})
            tried.append((photo, outcome))
            if outcome[1] is None:
                break
        return tried

    enrolment = Enrolment([], [], {}, {})
    for (identity, _), tried in zip(tasks, _parallel(clients, one, tasks), strict=True):
        enrolment.attempts.extend(refusal for _, (_, refusal) in tried)
        photo, (answer, refusal) = tried[-1]
        enrolment.identities.append(refusal)
        if refusal is None:
            enrolment.photo[identity] = photo
            enrolment.subject[identity] = str(answer["id"])
    return enrolment


def verify_pairs(
    rest: RestClient, encoded: Sequence[str], pairs: VerificationPairs, clients: int
) -> tuple[FloatArray, list[str | None]]:
    """Each pair's score (``-inf`` when refused) and error type."""

    def one(k: int) -> Outcome:
        body = {"face": encoded[pairs.first[k]], "probe": encoded[pairs.second[k]]}
        return rest.post("/v1.1/face/verify", body)

    outcomes = _parallel(clients, one, range(len(pairs)))
    scores = np.array(
        [-np.inf if refusal is not None else float(answer["score"]) for answer, refusal in outcomes]
    )
    return scores, [refusal for _, refusal in outcomes]


def _candidates(answer: dict[str, Any]) -> list[tuple[str, float]]:
    found = [(str(c["id"]), float(c["score"])) for c in answer["candidates"]]
    if any(a[1] < b[1] for a, b in itertools.pairwise(found)):
        raise ServiceError(f"search candidates not in descending score order: {found}")
    return found


def search_gallery(
    rest: RestClient,
    encoded: Sequence[str],
    plan: IdentificationPlan,
    enrolment: Enrolment,
    clients: int,
) -> tuple[SearchAnswers, list[str | None]]:
    """Mated searches of the enrolled identities (those of identities that failed to enrol
    are misses, not sent) and non-mated searches; the answers and each request's error
    type."""
    mated = mated_probes(plan, enrolment.photo)
    sent = [k for k, (_, identity) in enumerate(mated) if identity in enrolment.subject]
    photos = [mated[k][0] for k in sent] + list(plan.nonmated)

    def one(photo: int) -> Outcome:
        body = {"probe": encoded[photo], "threshold": 0, "limit": SEARCH_LIMIT}
        return rest.post("/v1.1/face/search", body)

    outcomes = _parallel(clients, one, photos)
    rank = np.zeros(len(mated), dtype=np.int64)
    score = np.full(len(mated), -np.inf)
    accepted = np.zeros(len(mated), dtype=np.bool_)
    for k, (answer, refusal) in zip(sent, outcomes[: len(sent)], strict=True):
        if refusal is not None:
            continue
        accepted[k] = True
        subject = enrolment.subject[mated[k][1]]
        for position, (candidate, candidate_score) in enumerate(_candidates(answer), 1):
            if candidate == subject:
                rank[k], score[k] = position, candidate_score
                break
    nonmated = outcomes[len(sent) :]
    top = [_candidates(answer)[:1] if refusal is None else [] for answer, refusal in nonmated]
    answers = SearchAnswers(
        mate_rank=rank,
        mate_score=score,
        mated_accepted=accepted,
        nonmated_top=np.array([found[0][1] if found else -np.inf for found in top]),
        nonmated_accepted=np.array([refusal is None for _, refusal in nonmated]),
    )
    return answers, [refusal for _, refusal in outcomes]


@dataclass(frozen=True)
class InProcess:
    verify_scores: FloatArray
    answers: SearchAnswers
    failures: dict[str, int]


def _scores(score_map: ScoreMap, similarities: FloatArray) -> FloatArray:
    return np.asarray(score_map.scores(similarities), dtype=np.float64)


def score_in_process(
    images: Sequence[LabelledImage],
    pairs: VerificationPairs,
    plan: IdentificationPlan,
    enrolled: Mapping[str, int],
) -> InProcess:
    """The same pairs and gallery/probe split (``enrolled``: the photo the API enrolled
    per identity; an identity it refused is enrolled here with its first photo), scored
    from in-process templates through the recognizer's score map."""
    extractor = load_extractor(Settings.from_env())
    try:
        run = run_pipeline(extractor, images)
    finally:
        extractor.close()
    es, score_map = run.embeddings, extractor.score_map
    a, b = pairs.first, pairs.second
    verify = _scores(score_map, np.einsum("ij,ij->i", es.vectors[a], es.vectors[b]))
    verify[~(es.valid[a] & es.valid[b])] = -np.inf
    return InProcess(verify, _rank_in_process(es, score_map, plan, enrolled), run.failures)


def _rank_in_process(
    es: EmbeddingSet, score_map: ScoreMap, plan: IdentificationPlan, enrolled: Mapping[str, int]
) -> SearchAnswers:
    """Each search ranks the gallery by similarity and keeps the first SEARCH_LIMIT, as
    the matcher does."""
    gallery_of = {i: enrolled.get(i, photos[0]) for i, photos in plan.enrolment_order.items()}
    listed = [*gallery_of.values(), *plan.distractors]
    gallery = np.array([p for p in listed if es.valid[p]], dtype=np.int64)
    gallery_labels = np.asarray(es.labels, dtype=object)[gallery]
    mated = mated_probes(plan, enrolled)
    probes = np.array([photo for photo, _ in mated], dtype=np.int64)
    similarities = es.vectors[probes] @ es.vectors[gallery].T
    top = np.argsort(-similarities, axis=1, kind="stable")[:, :SEARCH_LIMIT]
    wanted = np.array([identity for _, identity in mated], dtype=object)
    found = gallery_labels[top] == wanted[:, None]
    position = np.argmax(found, axis=1)
    rows = np.arange(probes.shape[0])
    accepted = es.valid[probes] & np.array([es.valid[gallery_of[i]] for _, i in mated])
    hit = accepted & found.any(axis=1)
    mate_score = _scores(score_map, similarities[rows, top[rows, position]])
    nonmated = np.array(plan.nonmated, dtype=np.int64)
    top_score = _scores(score_map, np.max(es.vectors[nonmated] @ es.vectors[gallery].T, axis=1))
    top_score[~es.valid[nonmated]] = -np.inf
    return SearchAnswers(
        mate_rank=np.where(hit, position + 1, 0).astype(np.int64),
        mate_score=np.where(hit, mate_score, -np.inf),
        mated_accepted=accepted,
        nonmated_top=top_score,
        nonmated_accepted=es.valid[nonmated].copy(),
    )


def _timed(wall: dict[str, float], name: str, work: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = work()
    wall[name] = time.perf_counter() - started
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=10, help="verification folds")
    parser.add_argument(
        "--pairs-per-fold",
        type=int,
        default=300,
        help="genuine pairs per fold, and as many impostor pairs",
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent REST clients")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pairs and distractors")
    parser.add_argument(
        "--no-docs", action="store_true", help="write only the JSON, not the docs and figures"
    )
    return parser


@dataclass(frozen=True)
class ApiRun:
    enrolment: Enrolment
    verify_scores: FloatArray
    verify_refusals: list[str | None]
    answers: SearchAnswers
    search_refusals: list[str | None]


def measure_api(
    encoded: Sequence[str],
    labels: Sequence[str],
    pairs: VerificationPairs,
    plan: IdentificationPlan,
    *,
    clients: int,
    wall: dict[str, float],
) -> ApiRun:
    """Enrolment, verification and searches through a fresh service; seconds in ``wall``."""
    with (
        tempfile.TemporaryDirectory(prefix="facegate-accuracy-") as tmp,
        running_service(Path(tmp)) as service,
    ):
        wall["service_start"] = service.start_s
        rest = RestClient(service)
        try:
            enrolment = _timed(wall, "enrol", lambda: enrol(rest, encoded, labels, plan, clients))
            print(f"accuracy: {len(enrolment.subject)} subjects enrolled", flush=True)
            scores, verify_refusals = _timed(
                wall, "verify", lambda: verify_pairs(rest, encoded, pairs, clients)
            )
            print(f"accuracy: {len(pairs)} pairs verified", flush=True)
            answers, search_refusals = _timed(
                wall, "search", lambda: search_gallery(rest, encoded, plan, enrolment, clients)
            )
            print(f"accuracy: {len(search_refusals)} searches done", flush=True)
        finally:
            rest.close()
    return ApiRun(enrolment, scores, verify_refusals, answers, search_refusals)


def run_figures(pairs: VerificationPairs, api: ApiRun, local: InProcess) -> dict[str, Any]:
    """The run's figures (the JSON keys refusals, in_process_failures, verification,
    identification and targets) from what the API and the in-process pipeline answered."""

    def verification(scores: FloatArray) -> VerificationFigures:
        return verification_figures(
            scores, pairs.same, pairs.fold, fmr=TAR_FMR, threshold=DEFAULT_THRESHOLD
        )

    def identification(answers: SearchAnswers) -> IdentificationFigures:
        return identification_figures(
            answers, ranks=SEARCH_LIMIT, fpir=FPIR, threshold=DEFAULT_THRESHOLD
        )

    api_ver, local_ver = verification(api.verify_scores), verification(local.verify_scores)
    api_id, local_id = identification(api.answers), identification(local.answers)
    refusals = {
        "enrolment_attempts": refusal_rate(api.enrolment.attempts),
        "enrolment_identities": refusal_rate(api.enrolment.identities),
        "verify": refusal_rate(api.verify_refusals),
        "search": refusal_rate(api.search_refusals),
        "probes": refusal_rate(api.verify_refusals + api.search_refusals),
    }
    targets = {
        "fta_probes": target(refusals["probes"].rate, 0.005, at_most=True),
        "accuracy_10fold": target(api_ver.users.accuracy.mean, 0.996, at_most=False),
        "rank1": target(api_id.users.rank1, 0.995, at_most=False),
        "fnir_at_fpir": target(api_id.users.fnir_at_fpir, 0.02, at_most=True),
    }
    return {
        "refusals": {name: rate.to_dict() for name, rate in refusals.items()},
        "in_process_failures": local.failures,
        "verification": {
            "api": api_ver.to_dict(),
            "in_process": local_ver.to_dict(),
            "difference": api_ver.users.minus(local_ver.users),
        },
        "identification": {
            "api": api_id.to_dict(),
            "in_process": local_id.to_dict(),
            "difference": api_id.users.minus(local_id.users),
        },
        "targets": {name: t.to_dict() for name, t in targets.items()},
    }


def det_scores(
    pairs: VerificationPairs, api: ApiRun, local: InProcess
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """(genuine, impostor) scores of each DET curve."""
    accepted = np.isfinite(api.verify_scores)
    views = {
        API_USERS: (api.verify_scores, pairs.same),
        API_ACCEPTED: (api.verify_scores[accepted], pairs.same[accepted]),
        IN_PROCESS: (local.verify_scores, pairs.same),
    }
    return {label: (s[same], s[~same]) for label, (s, same) in views.items()}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    images = lfw_dev()
    labels = [image.identity for image in images]
    pairs = draw_verification_pairs(
        labels, n_folds=args.folds, pairs_per_fold=args.pairs_per_fold, seed=args.seed
    )
    plan = plan_identification(images, seed=args.seed)
    encoded = [b64(image.path.read_bytes()) for image in images]
    wall: dict[str, float] = {}
    started = time.perf_counter()
    api = measure_api(encoded, labels, pairs, plan, clients=args.clients, wall=wall)
    local = _timed(
        wall, "in_process", lambda: score_in_process(images, pairs, plan, api.enrolment.photo)
    )
    wall["total"] = time.perf_counter() - started
    given = argv if argv is not None else sys.argv[1:]
    result: dict[str, Any] = {
        "schema": 1,
        "machine": machine_summary(),
        "command": " ".join(["python -m bench.accuracy_api", *given]).strip(),
        "wall_s": wall,
        "protocol": {
            "dataset": "lfw-dev",
            "photos": len(images),
            "identities": len(set(labels)),
            "seed": args.seed,
            "clients": args.clients,
            "folds": args.folds,
            "pairs_per_fold": args.pairs_per_fold,
            "genuine_pairs": int(np.count_nonzero(pairs.same)),
            "impostor_pairs": int(np.count_nonzero(~pairs.same)),
            "gallery_identities": len(plan.enrolment_order),
            "distractors": len(plan.distractors),
            "mated_searches": int(api.answers.mate_rank.shape[0]),
            "nonmated_searches": len(plan.nonmated),
            "search_limit": SEARCH_LIMIT,
            "default_threshold": DEFAULT_THRESHOLD,
            "tar_fmr": TAR_FMR,
            "fpir": FPIR,
        },
        **run_figures(pairs, api, local),
        "figures": {
            "det": str(DET_FIGURE.relative_to(REPO_ROOT)),
            "cmc": str(CMC_FIGURE.relative_to(REPO_ROOT)),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    if not args.no_docs:
        write_docs(result, det_scores(pairs, api, local))
    print(summary(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
