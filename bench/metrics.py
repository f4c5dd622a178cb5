"""Face recognition accuracy metrics over L2-normalised embeddings (pure numpy).

Conventions used throughout:

- The similarity of two images is the cosine of their embeddings, i.e. the dot
  product of the L2-normalised vectors, in [-1, 1]. Higher means more alike.
- A pair is *accepted* (claimed to match) at threshold ``t`` when ``score >= t``.
- An image whose pipeline failed (no face found, no embedding) stays in every
  count. Every pair that involves it scores ``-inf``: a genuine pair with a failed
  image is a false non-match at every threshold, an impostor pair with one is never
  a false match. Failures are never dropped.
- Rates at a threshold, for ``G`` genuine and ``I`` impostor scores::

      FAR(t) = FMR(t)  = #{impostor >= t} / I
      TAR(t) = 1 - FNMR(t) = #{genuine >= t} / G

- Every result is a small frozen dataclass with ``to_dict()`` giving plain Python
  values for JSON (non-finite floats become ``None``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IndexArray = NDArray[np.int64]

DEFAULT_FMRS: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
"""False-match rates tabulated by :func:`roc_table`."""

MAX_ALL_IMPOSTOR_PAIRS = 20_000_000
"""Up to this many impostor pairs, verification scores all of them."""

IMPOSTOR_SAMPLE_SIZE = 1_000_000
"""Above :data:`MAX_ALL_IMPOSTOR_PAIRS`, this many distinct impostor pairs are sampled."""

BLOCK_SIZE = 2048
"""Rows/columns of one similarity tile: a tile takes BLOCK_SIZE**2 * 8 bytes (32 MiB)."""

# A rate target such as 1e-3 times a count is not always exact in binary floating
# point (0.29 * 100 = 28.999999999999996); this relative slack keeps floor() exact.
_RATE_SLACK = 1e-9


def _plain(value: object) -> Any:
    """Convert dataclasses, tuples and numpy scalars to JSON-ready Python values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JsonResult:
    """Mixin: ``to_dict()`` for result dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        """The result as plain Python values (non-finite floats as ``None``)."""
        plain = _plain(self)
        assert isinstance(plain, dict)
        return plain


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, eq=False)
class EmbeddingSet:
    """Embeddings of a labelled image set, failures included.

    Attributes:
        vectors: ``(n, d)`` float64, each valid row L2-normalised; rows of failed
            images are zero and never used.
        valid: ``(n,)`` bool, False where the pipeline produced no embedding.
        labels: the identity of each image.
    """

    vectors: FloatArray
    valid: BoolArray
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.vectors.ndim != 2 or self.vectors.shape[0] != n or self.valid.shape != (n,):
            raise ValueError(
                f"shape mismatch: vectors {self.vectors.shape}, valid {self.valid.shape}, "
                f"{n} labels"
            )
        norms = np.linalg.norm(self.vectors[self.valid], axis=1)
        if norms.size and not np.allclose(norms, 1.0, atol=1e-4):
            raise ValueError("valid embeddings must be L2-normalised")
        self.vectors.setflags(write=False)
        self.valid.setflags(write=False)

    @classmethod
    def from_optional(
        cls, embeddings: Sequence[ArrayLike | None], labels: Sequence[str]
    ) -> EmbeddingSet:
        """Build from one embedding or ``None`` (failure) per image; L2-normalises them."""
        if len(embeddings) != len(labels):
            raise ValueError(f"{len(embeddings)} embeddings for {len(labels)} labels")
        present = [np.asarray(e, dtype=np.float64).ravel() for e in embeddings if e is not None]
        dim = present[0].shape[0] if present else 1
        vectors = np.zeros((len(labels), dim), dtype=np.float64)
        valid = np.zeros(len(labels), dtype=np.bool_)
        for i, embedding in enumerate(embeddings):
            if embedding is None:
                continue
            vector = np.asarray(embedding, dtype=np.float64).ravel()
            norm = float(np.linalg.norm(vector))
            if vector.shape != (dim,) or not norm > 0 or not math.isfinite(norm):
                raise ValueError(f"embedding {i}: bad shape {vector.shape} or norm {norm}")
            vectors[i] = vector / norm
            valid[i] = True
        return cls(vectors=vectors, valid=valid, labels=tuple(labels))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_failed(self) -> int:
        """Images without an embedding."""
        return int(np.count_nonzero(~self.valid))

    def label_codes(self) -> IndexArray:
        """Integer code per image; equal codes mean equal identities."""
        _, codes = np.unique(np.asarray(self.labels, dtype=object), return_inverse=True)
        return np.asarray(codes, dtype=np.int64).ravel()


# ---------------------------------------------------------------------- pair scores


def pair_scores(es: EmbeddingSet, pairs: ArrayLike) -> FloatArray:
    """Cosine similarity of each ``(i, j)`` pair of image indices; ``-inf`` if either failed."""
    index = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    scores = np.empty(index.shape[0], dtype=np.float64)
    chunk = 65_536
    for start in range(0, index.shape[0], chunk):
        a = index[start : start + chunk, 0]
        b = index[start : start + chunk, 1]
        s = np.einsum("ij,ij->i", es.vectors[a], es.vectors[b])
        s[~(es.valid[a] & es.valid[b])] = -np.inf
        scores[start : start + chunk] = s
    return scores


def genuine_scores(es: EmbeddingSet) -> FloatArray:
    """Scores of all genuine pairs (same identity, ``i < j``), ``-inf`` where one failed.

    Ordered by identity code, then ``i``, then ``j``.
    """
    codes = es.label_codes()
    order = np.argsort(codes, kind="stable")
    boundaries = np.flatnonzero(np.diff(codes[order])) + 1
    parts: list[FloatArray] = []
    for group in np.split(order, boundaries):
        k = group.shape[0]
        if k < 2:
            continue
        sims = es.vectors[group] @ es.vectors[group].T
        ok = es.valid[group]
        sims[~(ok[:, None] & ok[None, :])] = -np.inf
        parts.append(sims[np.triu_indices(k, 1)])
    if not parts:
        return np.empty(0, dtype=np.float64)
    return np.concatenate(parts)


def count_pairs(labels: Sequence[str]) -> tuple[int, int]:
    """``(genuine, impostor)`` pair counts of a labelled set: ``sum C(k_id, 2)`` and the rest."""
    _, counts = np.unique(np.asarray(labels, dtype=object), return_counts=True)
    n = len(labels)
    genuine = int(sum(int(k) * (int(k) - 1) // 2 for k in counts))
    return genuine, n * (n - 1) // 2 - genuine


def impostor_scores(
    es: EmbeddingSet,
    *,
    max_pairs: int = MAX_ALL_IMPOSTOR_PAIRS,
    sample_size: int = IMPOSTOR_SAMPLE_SIZE,
    seed: int = 0,
    block: int = BLOCK_SIZE,
) -> FloatArray:
    """Scores of impostor pairs (different identities), ``-inf`` where one failed.

    All ``C(n, 2) - sum C(k_id, 2)`` pairs when there are at most ``max_pairs``,
    computed tile by tile (``block x block`` similarities at a time, so memory is
    the output plus one tile). Otherwise ``sample_size`` distinct pairs drawn
    uniformly without replacement with ``numpy.random.default_rng(seed)``.
    The order of the returned scores is unspecified.
    """
    if sample_size > max_pairs:
        raise ValueError("sample_size must not exceed max_pairs")
    _, total = count_pairs(es.labels)
    codes = es.label_codes()
    if total <= max_pairs:
        return _all_impostor_scores(es, codes, total, block)
    return pair_scores(es, _sample_impostor_pairs(codes, sample_size, seed))


def _all_impostor_scores(es: EmbeddingSet, codes: IndexArray, total: int, block: int) -> FloatArray:
    n = len(es)
    out = np.empty(total, dtype=np.float64)
    filled = 0
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        rows = np.arange(i0, i1)
        for j0 in range(i0, n, block):
            j1 = min(j0 + block, n)
            cols = np.arange(j0, j1)
            sims = es.vectors[i0:i1] @ es.vectors[j0:j1].T
            sims[~(es.valid[i0:i1, None] & es.valid[None, j0:j1])] = -np.inf
            keep = (cols[None, :] > rows[:, None]) & (codes[i0:i1, None] != codes[None, j0:j1])
            picked = sims[keep]
            out[filled : filled + picked.shape[0]] = picked
            filled += picked.shape[0]
    assert filled == total, (filled, total)
    return out


def _sample_impostor_pairs(codes: IndexArray, size: int, seed: int) -> IndexArray:
    """``size`` distinct unordered impostor pairs, uniform: draw (i, j), reject, dedupe."""
    n = codes.shape[0]
    rng = np.random.default_rng(seed)
    keys = np.empty(0, dtype=np.int64)
    while keys.shape[0] < size:
        draw = int((size - keys.shape[0]) * 1.3) + 1000
        i = rng.integers(0, n, draw, dtype=np.int64)
        j = rng.integers(0, n, draw, dtype=np.int64)
        ok = codes[i] != codes[j]
        lo, hi = np.minimum(i[ok], j[ok]), np.maximum(i[ok], j[ok])
        keys = np.unique(np.concatenate([keys, lo * n + hi]))
    keys = rng.choice(keys, size=size, replace=False)
    return np.stack([keys // n, keys % n], axis=1)


# --------------------------------------------------------------------- verification


def threshold_at_rate(negative_scores: ArrayLike, rate: float) -> float:
    """The smallest threshold ``t`` with ``#{negative >= t} / N <= rate``.

    With the negatives sorted descending ``s_1 >= s_2 >= ... >= s_N`` and
    ``k = floor(rate * N)`` accepts allowed, ``t = nextafter(s_{k+1}, +inf)``: the
    next float above the (k+1)-th highest score. Ties are thus conservative: if
    ``s_{k+1}`` equals higher scores, all of them are rejected, and the achieved rate
    may be below ``rate``. If ``k >= N`` every score is allowed and ``s_{N+1}`` is
    taken as ``-inf``: ``t`` is the lowest finite float, so ``-inf`` scores (failures)
    are still rejected.
    """
    scores = np.asarray(negative_scores, dtype=np.float64).ravel()
    n = scores.shape[0]
    if n == 0:
        raise ValueError("no negative scores")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate {rate} outside [0, 1]")
    k = math.floor(rate * n * (1.0 + _RATE_SLACK))
    if k >= n:
        return float(np.nextafter(-math.inf, math.inf))
    # The (k+1)-th highest is the element of ascending rank n-1-k.
    kth = float(np.partition(scores, n - 1 - k)[n - 1 - k])
    return float(np.nextafter(kth, math.inf))


@dataclass(frozen=True)
class TarAtFar(JsonResult):
    """True-accept rate at the threshold where the false-accept rate is at most ``far``.

    ``resolvable`` is False when ``far * n_impostor < 1``: the threshold then sits just
    above the highest impostor score and the TAR is a conservative estimate.
    """

    far: float
    threshold: float
    tar: float
    far_achieved: float
    false_accepts: int
    n_genuine: int
    n_impostor: int
    resolvable: bool


def tar_at_far(genuine: ArrayLike, impostor: ArrayLike, far: float) -> TarAtFar:
    """TAR at FAR: ``#{genuine >= t} / G`` with ``t = threshold_at_rate(impostor, far)``."""
    g = np.asarray(genuine, dtype=np.float64).ravel()
    imp = np.asarray(impostor, dtype=np.float64).ravel()
    if g.shape[0] == 0:
        raise ValueError("no genuine scores")
    t = threshold_at_rate(imp, far)
    false_accepts = int(np.count_nonzero(imp >= t))
    return TarAtFar(
        far=far,
        threshold=t,
        tar=float(np.count_nonzero(g >= t)) / g.shape[0],
        far_achieved=false_accepts / imp.shape[0],
        false_accepts=false_accepts,
        n_genuine=int(g.shape[0]),
        n_impostor=int(imp.shape[0]),
        resolvable=far * imp.shape[0] * (1.0 + _RATE_SLACK) >= 1.0,
    )


@dataclass(frozen=True)
class RocPoint(JsonResult):
    """One row of :func:`roc_table`: FNMR at the threshold for a target FMR."""

    fmr: float
    threshold: float
    fmr_achieved: float
    fnmr: float
    resolvable: bool


@dataclass(frozen=True)
class RocTable(JsonResult):
    """Thresholds and FNMR for a list of target FMRs."""

    points: tuple[RocPoint, ...]
    n_genuine: int
    n_impostor: int


def roc_table(
    genuine: ArrayLike, impostor: ArrayLike, fmrs: Sequence[float] = DEFAULT_FMRS
) -> RocTable:
    """For each target FMR: threshold as :func:`threshold_at_rate`, achieved FMR and FNMR.

    ``FNMR(t) = #{genuine < t} / G = 1 - TAR(t)``.
    """
    g = np.asarray(genuine, dtype=np.float64).ravel()
    imp = np.asarray(impostor, dtype=np.float64).ravel()
    points = []
    for fmr in fmrs:
        r = tar_at_far(g, imp, fmr)
        points.append(
            RocPoint(
                fmr=fmr,
                threshold=r.threshold,
                fmr_achieved=r.far_achieved,
                fnmr=1.0 - r.tar,
                resolvable=r.resolvable,
            )
        )
    return RocTable(points=tuple(points), n_genuine=int(g.shape[0]), n_impostor=int(imp.shape[0]))


def roc_auc(genuine: ArrayLike, impostor: ArrayLike) -> float:
    """Area under the ROC curve: ``P(genuine > impostor) + P(genuine == impostor) / 2``.

    Computed as the Mann-Whitney U statistic with average ranks for ties:
    ``(sum of genuine ranks - G (G + 1) / 2) / (G I)``.
    """
    g = np.asarray(genuine, dtype=np.float64).ravel()
    imp = np.asarray(impostor, dtype=np.float64).ravel()
    if g.shape[0] == 0 or imp.shape[0] == 0:
        raise ValueError("need genuine and impostor scores")
    both = np.concatenate([g, imp])
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    # Average 1-based rank of each distinct value: ranks first..last share their mean.
    last = np.cumsum(counts)
    average_rank = last - (counts - 1) / 2.0
    genuine_rank_sum = float(average_rank[inverse.ravel()[: g.shape[0]]].sum())
    n_g, n_i = g.shape[0], imp.shape[0]
    return (genuine_rank_sum - n_g * (n_g + 1) / 2.0) / (n_g * n_i)


@dataclass(frozen=True)
class VerificationResult(JsonResult):
    """1:1 verification over all genuine pairs and all (or sampled) impostor pairs."""

    n_images: int
    n_failed: int
    n_genuine: int
    n_impostor: int
    impostor_pairs_total: int
    impostor_sampled: bool
    auc: float
    tar_at_far: tuple[TarAtFar, ...]
    roc: RocTable


def evaluate_verification(
    es: EmbeddingSet,
    *,
    fars: Sequence[float] = (1e-3, 1e-4),
    fmrs: Sequence[float] = DEFAULT_FMRS,
    max_pairs: int = MAX_ALL_IMPOSTOR_PAIRS,
    sample_size: int = IMPOSTOR_SAMPLE_SIZE,
    seed: int = 0,
) -> VerificationResult:
    """Verification metrics: TAR at each FAR, the ROC table and the AUC.

    Genuine pairs: all. Impostor pairs: all when at most ``max_pairs``, else a
    seeded sample (see :func:`impostor_scores`). Failed images count (``-inf``).
    """
    genuine = genuine_scores(es)
    impostor = impostor_scores(es, max_pairs=max_pairs, sample_size=sample_size, seed=seed)
    _, total = count_pairs(es.labels)
    return VerificationResult(
        n_images=len(es),
        n_failed=es.n_failed,
        n_genuine=int(genuine.shape[0]),
        n_impostor=int(impostor.shape[0]),
        impostor_pairs_total=total,
        impostor_sampled=total > max_pairs,
        auc=roc_auc(genuine, impostor),
        tar_at_far=tuple(tar_at_far(genuine, impostor, far) for far in fars),
        roc=roc_table(genuine, impostor, fmrs),
    )


# ------------------------------------------------------------- LFW-style k-fold


@dataclass(frozen=True)
class KFoldAccuracy(JsonResult):
    """LFW-protocol accuracy: mean and population std (ddof=0) over the folds."""

    mean: float
    std: float
    fold_accuracies: tuple[float, ...]
    fold_thresholds: tuple[float, ...]
    n_pairs: int
    n_failed_pairs: int

    @classmethod
    def of_folds(
        cls, accuracies: Sequence[float], thresholds: Sequence[float], *, pairs: int, failed: int
    ) -> KFoldAccuracy:
        return cls(
            mean=float(np.mean(accuracies)),
            std=float(np.std(accuracies)),
            fold_accuracies=tuple(accuracies),
            fold_thresholds=tuple(thresholds),
            n_pairs=pairs,
            n_failed_pairs=failed,
        )


def best_threshold(scores: ArrayLike, same: ArrayLike) -> tuple[float, float]:
    """The threshold maximising accuracy of ``score >= t`` on these pairs, and that accuracy.

    Candidates: every distinct finite score (accept it and above), and ``+inf``
    (accept none); ``-inf`` scores (failures) are never accepted. Accuracy is
    ``(#{same, s >= t} + #{different, s < t}) / n``. Among equally good candidates
    the lowest wins; the threshold returned is then moved down to the midpoint
    between the winning score and the next lower distinct score (same decisions on
    these pairs, a margin for unseen ones).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(same, dtype=np.bool_).ravel()
    n = s.shape[0]
    if n == 0 or y.shape[0] != n:
        raise ValueError("need one 'same' flag per score, and at least one pair")
    order = np.argsort(s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    distinct = np.unique(s_sorted)
    first = np.searchsorted(s_sorted, distinct, side="left")
    same_below = np.concatenate([[0], np.cumsum(y_sorted)])[first]
    n_same = int(y.sum())
    # Candidate c accepts the scores >= distinct[c]; the last candidate accepts none.
    true_accepts = np.append(n_same - same_below, 0)
    true_rejects = np.append(first - same_below, n - n_same)
    accuracy = (true_accepts + true_rejects) / n
    # A -inf score (failure) is rejected at every threshold: no candidate accepts it.
    accuracy[np.append(np.isneginf(distinct), False)] = -1.0
    best = int(np.argmax(accuracy))
    if best == distinct.shape[0]:
        threshold = math.inf
    else:
        threshold = float(distinct[best])
        if best > 0 and math.isfinite(float(distinct[best - 1])) and math.isfinite(threshold):
            mid = (float(distinct[best - 1]) + threshold) / 2.0
            if mid > distinct[best - 1]:
                threshold = mid
    return threshold, float(accuracy[best])


def kfold_accuracy(
    scores: ArrayLike, same: ArrayLike, *, n_folds: int = 10, folds: ArrayLike | None = None
) -> KFoldAccuracy:
    """LFW 10-fold accuracy of the pairs' scores.

    For each fold f: ``t_f = best_threshold`` on the pairs of the other folds, and
    ``acc_f = mean((score >= t_f) == same)`` on fold f. Reports ``mean(acc_f)`` and
    ``std(acc_f)`` (ddof=0, as the usual LFW evaluation code). ``folds`` gives the
    fold of each pair; by default the pairs are cut in ``n_folds`` contiguous equal
    parts, the layout of LFW's ``pairs.txt``. Failed pairs score ``-inf``.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(same, dtype=np.bool_).ravel()
    n = s.shape[0]
    if y.shape[0] != n:
        raise ValueError("need one 'same' flag per score")
    if folds is None:
        if n < n_folds:
            raise ValueError(f"{n} pairs cannot make {n_folds} folds")
        fold_of = np.arange(n, dtype=np.int64) * n_folds // n
    else:
        fold_of = np.asarray(folds, dtype=np.int64).ravel()
        if fold_of.shape[0] != n:
            raise ValueError("need one fold per score")
    accuracies: list[float] = []
    thresholds: list[float] = []
    for fold in np.unique(fold_of):
        test = fold_of == fold
        threshold, _ = best_threshold(s[~test], y[~test])
        accuracies.append(float(np.mean((s[test] >= threshold) == y[test])))
        thresholds.append(threshold)
    return KFoldAccuracy.of_folds(
        accuracies, thresholds, pairs=n, failed=int(np.count_nonzero(np.isneginf(s)))
    )


def lfw_accuracy(
    es: EmbeddingSet, pairs: ArrayLike, same: ArrayLike, *, n_folds: int = 10
) -> KFoldAccuracy:
    """:func:`kfold_accuracy` of :func:`pair_scores` for ``(i, j)`` index pairs."""
    return kfold_accuracy(pair_scores(es, pairs), same, n_folds=n_folds)


# ------------------------------------------------------------------ identification


@dataclass(frozen=True)
class IdentificationSplit:
    """Image indices of each role in the identification protocol.

    See :func:`identification_split` and :func:`evaluate_identification`.
    """

    mates: tuple[int, ...]
    """Gallery entry of each multi-photo identity, in identity order."""
    distractors: tuple[int, ...]
    """Single-photo identities enrolled in the gallery."""
    mated_probes: tuple[int, ...]
    nonmated_probes: tuple[int, ...]


def identification_split(labels: Sequence[str], file_names: Sequence[str]) -> IdentificationSplit:
    """Assign each image a role; see :func:`evaluate_identification` for the protocol."""
    if len(labels) != len(file_names):
        raise ValueError(f"{len(labels)} labels for {len(file_names)} file names")
    by_identity: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_identity.setdefault(label, []).append(index)
    mates: list[int] = []
    mated_probes: list[int] = []
    singles: list[int] = []
    for identity in sorted(by_identity):
        members = sorted(by_identity[identity], key=lambda i: (file_names[i], i))
        if len(members) >= 2:
            mates.append(members[0])
            mated_probes.extend(members[1:])
        else:
            singles.append(members[0])
    half = len(singles) // 2
    return IdentificationSplit(
        mates=tuple(mates),
        distractors=tuple(singles[:half]),
        mated_probes=tuple(mated_probes),
        nonmated_probes=tuple(singles[half:]),
    )


@dataclass(frozen=True)
class IdentificationResult(JsonResult):
    """Open-set 1:N identification with distractors; see :func:`evaluate_identification`."""

    n_gallery: int
    """Entries enrolled (valid mates + valid distractors)."""
    n_mates: int
    n_distractors: int
    n_failed_enrolments: int
    n_mated_probes: int
    n_nonmated_probes: int
    n_failed_mated_probes: int
    n_failed_nonmated_probes: int
    rank1_hits: int
    rank1_hit_rate: float
    fpir: float
    threshold: float
    fpir_achieved: float
    false_positives: int
    fnir_misses: int
    fnir: float


def evaluate_identification(
    es: EmbeddingSet,
    file_names: Sequence[str],
    *,
    fpir: float = 0.01,
    split: IdentificationSplit | None = None,
    block: int = BLOCK_SIZE,
) -> IdentificationResult:
    """Rank-1 hit rate and FNIR at FPIR of a 1:N search with distractors.

    Protocol:

    - gallery = the first photo (sorted by file name) of each identity having >= 2
      photos, plus the first half (by sorted identity name) of the single-photo
      identities as distractors in the gallery (``n_single // 2`` of them; with an
      odd count the extra one is a probe);
    - mated probes = all other photos of the multi-photo identities;
    - non-mated probes = the second half of the single-photo identities.

    Each probe is scored (cosine) against every enrolled gallery entry; its rank-1
    candidate is the highest-scoring entry (lowest index on ties). A gallery photo
    without an embedding is not enrolled.

    - rank-1 hit rate = share of mated probes whose top candidate is the mate. A
      failed probe or a failed mate enrolment counts as a miss.
    - threshold ``t`` = :func:`threshold_at_rate` of the non-mated probes' top scores
      at ``fpir``: the smallest ``t`` such that the share of non-mated probes whose
      top score is ``>= t`` is ``<= fpir``. A failed non-mated probe (or an empty
      gallery) returns no candidate: top score ``-inf``, never a false positive.
    - FNIR = share of mated probes whose rank-1 candidate is not the mate, or scores
      below ``t`` (failures count as misses).
    """
    if split is None:
        split = identification_split(es.labels, file_names)
    mates = np.asarray(split.mates, dtype=np.int64)
    gallery = np.concatenate([mates, np.asarray(split.distractors, dtype=np.int64)])
    enrolled = gallery[es.valid[gallery]]
    mated = np.asarray(split.mated_probes, dtype=np.int64)
    nonmated = np.asarray(split.nonmated_probes, dtype=np.int64)
    if mated.shape[0] == 0 or nonmated.shape[0] == 0:
        raise ValueError("identification needs mated and non-mated probes")

    top_mated, top_score_mated = _rank1(es, mated, enrolled, block)
    _, top_score_nonmated = _rank1(es, nonmated, enrolled, block)

    mate_of = {es.labels[int(m)]: int(m) for m in mates}
    expected = np.array([mate_of.get(es.labels[int(p)], -2) for p in mated], dtype=np.int64)
    hit = top_mated == expected  # top_mated is -1 for a failed probe: never a hit
    threshold = threshold_at_rate(top_score_nonmated, fpir)
    false_positives = int(np.count_nonzero(top_score_nonmated >= threshold))
    misses = int(np.count_nonzero(~(hit & (top_score_mated >= threshold))))
    rank1_hits = int(np.count_nonzero(hit))
    return IdentificationResult(
        n_gallery=int(enrolled.shape[0]),
        n_mates=int(mates.shape[0]),
        n_distractors=len(split.distractors),
        n_failed_enrolments=int(gallery.shape[0] - enrolled.shape[0]),
        n_mated_probes=int(mated.shape[0]),
        n_nonmated_probes=int(nonmated.shape[0]),
        n_failed_mated_probes=int(np.count_nonzero(~es.valid[mated])),
        n_failed_nonmated_probes=int(np.count_nonzero(~es.valid[nonmated])),
        rank1_hits=rank1_hits,
        rank1_hit_rate=rank1_hits / mated.shape[0],
        fpir=fpir,
        threshold=threshold,
        fpir_achieved=false_positives / nonmated.shape[0],
        false_positives=false_positives,
        fnir_misses=misses,
        fnir=misses / mated.shape[0],
    )


def _rank1(
    es: EmbeddingSet, probes: IndexArray, enrolled: IndexArray, block: int
) -> tuple[IndexArray, FloatArray]:
    """Image index and score of each probe's top gallery entry (-1 and -inf if none)."""
    top = np.full(probes.shape[0], -1, dtype=np.int64)
    score = np.full(probes.shape[0], -np.inf, dtype=np.float64)
    if enrolled.shape[0] == 0:
        return top, score
    gallery_vectors = es.vectors[enrolled]
    for start in range(0, probes.shape[0], block):
        chunk = probes[start : start + block]
        sims = es.vectors[chunk] @ gallery_vectors.T
        best = np.argmax(sims, axis=1)
        top[start : start + block] = enrolled[best]
        score[start : start + block] = sims[np.arange(chunk.shape[0]), best]
    failed = ~es.valid[probes]
    top[failed] = -1
    score[failed] = -np.inf
    return top, score
