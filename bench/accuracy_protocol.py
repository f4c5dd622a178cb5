"""The protocol of bench/accuracy_api.py: which pairs are verified, who is enrolled and who
searches, and the figures computed from the answers, refusals counted two ways.

Pure functions over photo indices, scores and NEC error types. A refused request (or, in
process, a photo without a face) has the score ``-inf``; it is counted:

- as users see it: a refused verify pair is a wrong decision in the 10-fold accuracy
  whatever its truth; in FMR/FNMR (ISO/IEC 19795-1's generalised rates) a refused genuine
  pair is a false non-match and a refused impostor pair is no false match but stays in the
  denominator; a refused mated search, or one whose identity failed to enrol, is a miss; a
  refused non-mated search returns no candidate (no false positive, still counted);
- over the accepted requests only: refused pairs and searches are left out.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bench.dataset import LabelledImage
from bench.metrics import (
    BoolArray,
    FloatArray,
    IndexArray,
    JsonResult,
    KFoldAccuracy,
    TarAtFar,
    best_threshold,
    tar_at_far,
    threshold_at_rate,
)

# ------------------------------------------------------------------ verification pairs


@dataclass(frozen=True, eq=False)
class VerificationPairs:
    """Photo index pairs, fold by fold: each fold's genuine pairs, then its impostor pairs."""

    first: IndexArray
    second: IndexArray
    same: BoolArray
    fold: IndexArray

    def __len__(self) -> int:
        return int(self.first.shape[0])


def _photos_by_identity(labels: Sequence[str]) -> dict[str, list[int]]:
    photos: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        photos.setdefault(label, []).append(index)
    return photos


def draw_verification_pairs(
    labels: Sequence[str], *, n_folds: int, pairs_per_fold: int, seed: int
) -> VerificationPairs:
    """LFW View 2-style folds: ``pairs_per_fold`` genuine and as many impostor pairs each.

    Identities are dealt to folds at random (``default_rng(seed)``), those with two photos
    or more and those with one separately, so each fold gets its share of both and no
    identity is in two folds. Genuine pairs: two photos of one identity of the fold, drawn
    in rounds (each round takes one unused pair from every identity that has one left, in
    a shuffled order) so that they spread over people rather than pile on the few with many
    photos. Impostor pairs: a photo each of two different identities of the fold, distinct.

    Raises:
        ValueError: a fold cannot hold that many distinct genuine or impostor pairs.
    """
    rng = np.random.default_rng(seed)
    photos = _photos_by_identity(labels)
    multi = sorted(i for i, p in photos.items() if len(p) >= 2)
    single = sorted(i for i, p in photos.items() if len(p) < 2)
    members: list[list[str]] = [[] for _ in range(n_folds)]
    for group in (multi, single):
        for position, pick in enumerate(rng.permutation(len(group))):
            members[position % n_folds].append(group[int(pick)])
    rows: list[tuple[int, int, bool, int]] = []
    for fold, identities in enumerate(members):
        genuine = _genuine_pairs(rng, [photos[i] for i in identities if len(photos[i]) >= 2])
        if len(genuine) < pairs_per_fold:
            raise ValueError(f"fold {fold} holds only {len(genuine)} genuine pairs")
        impostor = _impostor_pairs(rng, photos, identities, pairs_per_fold)
        rows += [(a, b, True, fold) for a, b in genuine[:pairs_per_fold]]
        rows += [(a, b, False, fold) for a, b in impostor]
    return VerificationPairs(
        first=np.array([r[0] for r in rows], dtype=np.int64),
        second=np.array([r[1] for r in rows], dtype=np.int64),
        same=np.array([r[2] for r in rows], dtype=np.bool_),
        fold=np.array([r[3] for r in rows], dtype=np.int64),
    )


def _genuine_pairs(rng: np.random.Generator, people: list[list[int]]) -> list[tuple[int, int]]:
    """Every genuine pair of these people, in round-robin order over the people."""
    queues = []
    for photos in people:
        pairs = [(a, b) for i, a in enumerate(photos) for b in photos[i + 1 :]]
        queues.append([pairs[int(k)] for k in rng.permutation(len(pairs))])
    order = [queues[int(k)] for k in rng.permutation(len(queues))]
    drawn: list[tuple[int, int]] = []
    for depth in range(max((len(q) for q in order), default=0)):
        drawn += [queue[depth] for queue in order if depth < len(queue)]
    return drawn


def _impostor_pairs(
    rng: np.random.Generator, photos: Mapping[str, list[int]], identities: list[str], count: int
) -> list[tuple[int, int]]:
    sizes = [len(photos[i]) for i in identities]
    possible = (sum(sizes) ** 2 - sum(k * k for k in sizes)) // 2
    if possible < count:
        raise ValueError(f"a fold holds only {possible} impostor pairs")
    drawn: dict[tuple[int, int], None] = {}
    while len(drawn) < count:
        one, other = (identities[int(k)] for k in rng.choice(len(identities), 2, replace=False))
        a = photos[one][int(rng.integers(len(photos[one])))]
        b = photos[other][int(rng.integers(len(photos[other])))]
        if (b, a) not in drawn:
            drawn.setdefault((a, b))
    return list(drawn)


# ------------------------------------------------------------------ identification plan


@dataclass(frozen=True)
class IdentificationPlan:
    """Who is enrolled and who searches.

    ``enrolment_order``: each identity with two photos or more -> its photos in file name
    order, the order in which enrolment tries them until one is accepted.
    ``distractors``: single-photo identities enrolled (one try each); ``nonmated``: the
    other single-photo identities' photos, searched.
    """

    enrolment_order: Mapping[str, tuple[int, ...]]
    distractors: tuple[int, ...]
    nonmated: tuple[int, ...]


def plan_identification(images: Sequence[LabelledImage], *, seed: int) -> IdentificationPlan:
    """Every multi-photo identity enrolled; a seeded half of the single-photo identities
    (``n // 2``) as distractors, the rest non-mated probes."""
    photos = _photos_by_identity([image.identity for image in images])
    order = {
        identity: tuple(sorted(members, key=lambda i: (images[i].path.name, i)))
        for identity, members in sorted(photos.items())
        if len(members) >= 2
    }
    singles = [members[0] for _, members in sorted(photos.items()) if len(members) == 1]
    picked = np.random.default_rng(seed).permutation(len(singles))
    half = len(singles) // 2
    return IdentificationPlan(
        enrolment_order=order,
        distractors=tuple(sorted(singles[int(k)] for k in picked[:half])),
        nonmated=tuple(sorted(singles[int(k)] for k in picked[half:])),
    )


def mated_probes(plan: IdentificationPlan, enrolled: Mapping[str, int]) -> list[tuple[int, str]]:
    """(photo, identity) of every mated search: all photos of each multi-photo identity
    but the one enrolled (``enrolled``: identity -> photo); for an identity that is not in
    ``enrolled``, all but its first photo, so the set of searches does not depend on
    which photos were refused."""
    probes = []
    for identity, photos in plan.enrolment_order.items():
        gallery = enrolled.get(identity, photos[0])
        probes += [(photo, identity) for photo in photos if photo != gallery]
    return probes


# ------------------------------------------------------------------ refusals


@dataclass(frozen=True)
class RefusalRate(JsonResult):
    """Refused / requests, with the refusals counted by NEC error type (most first)."""

    requests: int
    refused: int
    rate: float
    by_type: dict[str, int]


def refusal_rate(refusals: Iterable[str | None]) -> RefusalRate:
    """From one entry per request: its error type, or None when it was accepted."""
    outcomes = list(refusals)
    counts = Counter(r for r in outcomes if r is not None)
    refused = sum(counts.values())
    return RefusalRate(
        requests=len(outcomes),
        refused=refused,
        rate=refused / len(outcomes) if outcomes else math.nan,
        by_type=dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
    )


# ------------------------------------------------------------------ verification figures


@dataclass(frozen=True)
class VerificationView(JsonResult):
    """1:1 figures over one view of the pairs (users' or accepted only)."""

    pairs: int
    accuracy: KFoldAccuracy
    fmr_at_default: float
    fnmr_at_default: float
    tar_at_fmr: TarAtFar

    def minus(self, other: VerificationView) -> dict[str, float]:
        """This view's figures less another's (e.g. the API's less in process)."""
        return {
            "accuracy_10fold": self.accuracy.mean - other.accuracy.mean,
            "fmr_at_default": self.fmr_at_default - other.fmr_at_default,
            "fnmr_at_default": self.fnmr_at_default - other.fnmr_at_default,
            "tar_at_fmr": self.tar_at_fmr.tar - other.tar_at_fmr.tar,
        }


@dataclass(frozen=True)
class VerificationFigures(JsonResult):
    refused_pairs: int
    users: VerificationView
    accepted: VerificationView


def kfold_with_refusals(
    scores: FloatArray, same: BoolArray, fold: IndexArray
) -> tuple[KFoldAccuracy, KFoldAccuracy]:
    """10-fold accuracy (threshold on the other folds' accepted pairs), users' view (a
    refused pair is wrong) and accepted-only view; the thresholds are the same."""
    accepted = np.isfinite(scores)
    users: list[float] = []
    accepted_only: list[float] = []
    thresholds: list[float] = []
    for test_fold in np.unique(fold):
        train = (fold != test_fold) & accepted
        threshold, _ = best_threshold(scores[train], same[train])
        test = fold == test_fold
        right = int(np.count_nonzero(test & accepted & ((scores >= threshold) == same)))
        answered = int(np.count_nonzero(test & accepted))
        users.append(right / int(np.count_nonzero(test)))
        accepted_only.append(right / answered if answered else math.nan)
        thresholds.append(threshold)

    n_pairs, n_accepted = int(scores.shape[0]), int(np.count_nonzero(accepted))
    return (
        KFoldAccuracy.of_folds(users, thresholds, pairs=n_pairs, failed=n_pairs - n_accepted),
        KFoldAccuracy.of_folds(accepted_only, thresholds, pairs=n_accepted, failed=0),
    )


def verification_figures(
    scores: FloatArray, same: BoolArray, fold: IndexArray, *, fmr: float, threshold: float
) -> VerificationFigures:
    """Both views of the pairs' scores (``-inf`` = refused): 10-fold accuracy, FMR and
    FNMR at ``threshold``, TAR at ``fmr``."""
    accepted = np.isfinite(scores)
    users_accuracy, accepted_accuracy = kfold_with_refusals(scores, same, fold)

    def view(keep: BoolArray, accuracy: KFoldAccuracy) -> VerificationView:
        genuine, impostor = scores[keep & same], scores[keep & ~same]
        return VerificationView(
            pairs=int(np.count_nonzero(keep)),
            accuracy=accuracy,
            fmr_at_default=float(np.mean(impostor >= threshold)),
            fnmr_at_default=float(np.mean(genuine < threshold)),
            tar_at_fmr=tar_at_far(genuine, impostor, fmr),
        )

    return VerificationFigures(
        refused_pairs=int(np.count_nonzero(~accepted)),
        users=view(np.ones_like(accepted), users_accuracy),
        accepted=view(accepted, accepted_accuracy),
    )


# ------------------------------------------------------------------ identification figures


@dataclass(frozen=True, eq=False)
class SearchAnswers:
    """What the searches found, one entry per search.

    Mated: the mate's 1-based rank among the candidates (0: absent, refused, or its
    identity not enrolled), its score (``-inf`` when absent) and whether the search was
    answered with the identity enrolled. Non-mated: the top candidate's score (``-inf``
    when none or refused) and whether it was answered.
    """

    mate_rank: IndexArray
    mate_score: FloatArray
    mated_accepted: BoolArray
    nonmated_top: FloatArray
    nonmated_accepted: BoolArray


@dataclass(frozen=True)
class IdentificationView(JsonResult):
    """1:N figures over one view of the searches; FNIR counts a mate that is not first
    or scores below the threshold."""

    mated_searches: int
    nonmated_searches: int
    cmc: tuple[float, ...]
    """Share of mated searches with the mate at rank 1, 1-2, ..., 1-n."""
    rank1: float
    fpir: float
    threshold_at_fpir: float
    fpir_achieved: float
    fnir_at_fpir: float
    fpir_at_default: float
    fnir_at_default: float

    def minus(self, other: IdentificationView) -> dict[str, float]:
        """This view's figures less another's (e.g. the API's less in process)."""
        return {
            "rank1": self.rank1 - other.rank1,
            "fnir_at_fpir": self.fnir_at_fpir - other.fnir_at_fpir,
            "fpir_at_default": self.fpir_at_default - other.fpir_at_default,
            "fnir_at_default": self.fnir_at_default - other.fnir_at_default,
        }


@dataclass(frozen=True)
class IdentificationFigures(JsonResult):
    users: IdentificationView
    accepted: IdentificationView


def identification_figures(
    answers: SearchAnswers, *, ranks: int, fpir: float, threshold: float
) -> IdentificationFigures:
    """Both views: CMC to ``ranks``, rank-1, FNIR at ``fpir`` (threshold from the non-mated
    searches' top scores) and FPIR/FNIR at ``threshold``."""

    def view(mated: BoolArray, nonmated: BoolArray) -> IdentificationView:
        rank, score = answers.mate_rank[mated], answers.mate_score[mated]
        top = answers.nonmated_top[nonmated]
        if rank.shape[0] == 0 or top.shape[0] == 0:
            raise ValueError("identification needs mated and non-mated searches")
        first = rank == 1
        at_fpir = threshold_at_rate(top, fpir)
        return IdentificationView(
            mated_searches=int(rank.shape[0]),
            nonmated_searches=int(top.shape[0]),
            cmc=tuple(float(np.mean((rank >= 1) & (rank <= r))) for r in range(1, ranks + 1)),
            rank1=float(np.mean(first)),
            fpir=fpir,
            threshold_at_fpir=at_fpir,
            fpir_achieved=float(np.mean(top >= at_fpir)),
            fnir_at_fpir=float(np.mean(~(first & (score >= at_fpir)))),
            fpir_at_default=float(np.mean(top >= threshold)),
            fnir_at_default=float(np.mean(~(first & (score >= threshold)))),
        )

    everyone = np.ones_like(answers.mated_accepted)
    return IdentificationFigures(
        users=view(everyone, np.ones_like(answers.nonmated_accepted)),
        accepted=view(answers.mated_accepted, answers.nonmated_accepted),
    )


# ------------------------------------------------------------------ targets


@dataclass(frozen=True)
class Target(JsonResult):
    value: float
    limit: float
    at_most: bool
    """True: the value must not exceed the limit; False: it must reach it."""
    met: bool


def target(value: float, limit: float, *, at_most: bool) -> Target:
    met = value <= limit if at_most else value >= limit
    return Target(value=value, limit=limit, at_most=at_most, met=bool(met))
