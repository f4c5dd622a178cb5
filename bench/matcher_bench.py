"""Matcher benchmark: facegate's gallery against numpy brute force and FAISS, same run.

    python -m bench.matcher_bench [--sizes 100000,1000000] [--dims 512] [--queries 300]

Data (bench/synthetic.py): clustered synthetic templates whose cosine statistics copy
the shipped recognizer's on lfw-dev (impostor sd 0.105, genuine mean 0.74), four per
cluster (person); queries are fresh templates of gallery clusters; tag masks give exact
selectivities 100% (no filter), 10%, 1% and 0.1%. The dimension defaults to the shipped
model's (512, so "the shipped dimension and 512-d" is one run). For each size and
dimension, one system at a time is built and freed:

- facegate: ``matcher.gallery.Gallery`` bulk-loaded (upsert in batches of 10,000, then
  ``flush``), searched through ``search`` (the planner's path);
- numpy brute force: the float32 matrix; a precomputed row-index array per filter,
  blockwise matmul, argpartition;
- FAISS ``IndexHNSWFlat`` (inner product, facegate's M and efConstruction), filtered with
  ``IDSelectorBitmap``; its efSearch is swept up to :data:`FAISS_EF` until it reaches
  facegate's recall at that selectivity.

Latency is per query, one client, one query at a time, k=10. facegate searches its
graph's segments at once, one thread each (``IndexParams.graph_segments``, 2 by
default), so numpy's OpenBLAS gets as many threads for the brute force; facegate's own
scans run BLAS on one thread, as the matcher does (matcher/blas.py). FAISS's HNSW cannot
split one query over threads and searches with one. Each search also reports its process CPU time
(``cpu_p50_ms``): what it costs, whichever number of threads it used.
Recall@10 is pooled over queries against the exact fp32 top-10
(bench.synthetic.exact_topk); "recall above threshold" counts only the exact top-10
entries with similarity >= the shipped model's score 7000 (what a search at the
default threshold should return; at 1M templates most of them are impostors, since
score 7000 is a false-match rate of 1e-4); "recall genuine" counts only exact top-10
entries of the probe's own person (what a user must not miss).

bench/results/matcher.json — keys (stable; later work compares against them)::

    schema: 1
    machine, command: str                     # machine_summary(); the command line
    k: 10, queries: int, sweep_queries: int
    threshold: {score: 7000, similarity: float, model: str}
    shipped_model: {name: str, dim: int}
    synthetic: {templates_per_cluster, spread, effective_dim, seed}
    params: {m, ef_construction, ef_search, graph_segments, exact_factor, overfetch}
                                              # facegate defaults
    selectivities: {"100%": 0, "10%": 1, "1%": 2, "0.1%": 4}         # label -> tag mask
    runs: {"<n>x<dim>": RUN}                  # e.g. "1000000x512"
    targets: {NAME: {met: bool | null, value: float | null, limit: float, run: str}}
        # NAME: unfiltered_p50_ms, unfiltered_recall_at_10, filter_1pct_p50_ms,
        # filter_1pct_recall_at_10, speedup_over_brute_force, memory_ratio_to_raw;
        # judged on the largest run of at least 1,000,000 templates (null: none ran)
        # memory_ratio_to_raw: the larger of facegate's RSS and stats ratios

    RUN = {
      n, dim, clusters, raw_bytes,            # raw_bytes = n * dim * 4
      ground_truth_s: float,
      blas_threads: int | null,               # numpy's OpenBLAS threads while searching
                                              # (null: could not be set, default used)
      facegate: {
        upsert_s, flush_s, build_s: float,
        memory: MEMORY,
        exact_agreement: float,               # share of probes where search_exact's
                                              # top-10 equals the fp32 ground truth
        search: {LABEL: SEARCH & {path: "exact" | "hnsw"}},
        ef_sweep: [{ef_search, recall_at_10, recall_above_threshold,
                    recall_genuine, latency_p50_ms, latency_p99_ms}],   # at 100%
        segment_sweep: [{graph_segments, build_s,                # a second build
                         points: [SEARCH-like & {ef_search}]}],  # unfiltered
        ef_search_for_recall_0_99: int | null,                   # smallest swept
        planner: {exact_max, rule_share,      # exact_max: the planner's limit at n
                  crossing_share: float | null,
                  points: [{tag_bit, selectivity, entries, plan,
                            exact_p50_ms, hnsw_p50_ms, hnsw_recall_at_10,
                            hnsw_recall_genuine, planned_p50_ms,
                            planned_recall_at_10, planned_recall_genuine,
                            queries}]},       # hnsw_*: plan="hnsw" forces HNSW
        grpc: {gallery_call: LATENCY,         # Gallery.search, unfiltered
               in_process: LATENCY,           # Shard.search: its checks too
               grpc: LATENCY,                 # Matcher.Search through a stub
               overhead_p50_ms: float},       # grpc - in_process, p50
      },
      numpy: {memory: MEMORY, search: {LABEL: SEARCH}},
      faiss: {build_s, memory: MEMORY,
              search: {LABEL: SEARCH & {ef_search, target_recall, reached: bool}}},
      ratios: {LABEL: {numpy_over_facegate_p50, faiss_over_facegate_p50}},
    }
    MEMORY  = {stats_bytes: int | null,       # Stats.memory_bytes (facegate only)
               rss_delta_bytes: int,          # RSS growth while building; for numpy
                                              # the matrix and index arrays' nbytes
               bytes_per_template: float, ratio_to_raw: float,          # from RSS
               stats_bytes_per_template, stats_ratio_to_raw: float | null}
    LATENCY = {latency_p50_ms, latency_p99_ms, qps, queries,
               cpu_p50_ms}                    # process CPU time per query, all threads
    SEARCH  = LATENCY & {entries: int, recall_at_10: float,
                         recall_above_threshold: float | null,
                         recall_genuine: float | null}

The section "matcher" of docs/benchmarks.md is written from the same figures.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import gc
import importlib
import json
import math
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import grpc
import numpy as np

from bench import synthetic
from bench.dataset import REPO_ROOT
from bench.report import machine_summary, replace_section
from bench.synthetic import F32, I64, U64, TopK
from extractor.models.catalog import DEFAULT_RECOGNIZER, spec_by_name
from extractor.models.fetch import load_calibrations
from extractor.scores import ScoreMap
from facegate.contract import DEFAULT_THRESHOLD
from facegate.settings import Settings
from facegate.v1 import common_pb2, matcher_pb2, matcher_pb2_grpc
from matcher.blas import set_blas_threads
from matcher.gallery import EntryBatch, Gallery, Hit
from matcher.params import IndexParams
from matcher.persist import load_gallery, save_gallery
from matcher.server import MAX_MESSAGE_BYTES, MatcherDeps, create_server
from matcher.shard import Shard, ShardConfig
from matcher.wal import WriteAheadLog

RESULTS = REPO_ROOT / "bench" / "results" / "matcher.json"
K = 10
SEED = 0
UPSERT_BATCH = 10_000
WARMUP = 5
SELECTIVITIES: tuple[tuple[str, int], ...] = (
    ("100%", 0),
    ("10%", 1 << 0),
    ("1%", 1 << 1),
    ("0.1%", 1 << 2),
)
EF_SWEEP = (16, 32, 64, 128, 256, 384, 448, 512, 1024, 2048, 4096)
SEGMENT_SWEEP = (1,)
"""Graph segments also measured (a second build), unfiltered, at SEGMENT_EF."""
SEGMENT_EF = (384, 512, 1024)
FAISS_EF = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
FAISS_STEP_BUDGET_S = 120.0
"""An efSearch step whose queries take longer than this ends the sweep."""
SWEEP_BUDGET_S = 30.0
"""Most seconds one path at one selectivity of the planner sweep may take."""
EXACT_AGREEMENT_PROBES = 20
TARGET_N = 1_000_000

T = TypeVar("T")


# ------------------------------------------------------------------------ helpers


def _page_size() -> int:
    return int(os.sysconf("SC_PAGE_SIZE"))


def rss_bytes() -> int:
    """Resident set size of this process (/proc/self/statm, second field)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * _page_size()


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back, so RSS deltas mean something."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _cores() -> int:
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Latency:
    latency_p50_ms: float
    latency_p99_ms: float
    qps: float
    queries: int
    cpu_p50_ms: float


def time_queries(
    search: Callable[[F32], T],
    probes: F32,
    *,
    budget_s: float | None = None,
) -> tuple[Latency, list[T]]:
    """Latency of ``search`` over ``probes`` one at a time, after a short warm-up.

    With ``budget_s``, stops once that many seconds are spent (at least 3 queries).
    """
    for probe in probes[:WARMUP]:
        search(probe)
    times: list[float] = []
    cpu_times: list[float] = []
    results: list[T] = []
    spent = 0.0
    for probe in probes:
        start, cpu_start = time.perf_counter(), time.process_time()
        results.append(search(probe))
        elapsed = time.perf_counter() - start
        cpu_times.append(time.process_time() - cpu_start)
        times.append(elapsed)
        spent += elapsed
        if budget_s is not None and spent > budget_s and len(times) >= 3:
            break
    ms = np.asarray(times) * 1e3
    return (
        Latency(
            latency_p50_ms=float(np.percentile(ms, 50)),
            latency_p99_ms=float(np.percentile(ms, 99)),
            qps=len(times) / spent,
            queries=len(times),
            cpu_p50_ms=float(np.percentile(cpu_times, 50)) * 1e3,
        ),
        results,
    )


def _head(truth: TopK, count: int) -> TopK:
    return TopK(truth.indices[:count], truth.similarities[:count])


def _nan_none(value: float) -> float | None:
    return None if math.isnan(value) else value


@dataclass(frozen=True, eq=False)
class Workload:
    """One size and dimension: gallery vectors and tags, probes and their exact top-k."""

    x: F32
    masks: U64
    clusters: int
    probes: F32
    probe_clusters: I64
    truths: dict[int, TopK]
    """Tag mask -> exact top-k of every probe."""
    threshold: float

    def entries(self, tag_mask: int) -> int:
        return int(synthetic.selected(self.masks, tag_mask).size)

    def quality(self, found: Sequence[Sequence[int]], tag_mask: int) -> dict[str, Any]:
        """Recall measures of ``found`` (rows per probe, the first len(found) probes)."""
        truth = _head(self.truths[tag_mask], len(found))
        return {
            "recall_at_10": synthetic.recall(found, truth),
            "recall_above_threshold": _nan_none(
                synthetic.recall_above(found, truth, self.threshold)
            ),
            "recall_genuine": _nan_none(
                synthetic.recall_genuine(found, truth, self.probe_clusters, self.clusters)
            ),
        }


def _memory(rss_delta: int, stats_bytes: int | None, n: int, raw: int) -> dict[str, Any]:
    return {
        "stats_bytes": stats_bytes,
        "rss_delta_bytes": rss_delta,
        "bytes_per_template": rss_delta / n,
        "ratio_to_raw": rss_delta / raw,
        "stats_bytes_per_template": None if stats_bytes is None else stats_bytes / n,
        "stats_ratio_to_raw": None if stats_bytes is None else stats_bytes / raw,
    }


def event_id(row: int) -> str:
    """The event id of gallery row ``row`` (UUID-shaped, like real ones)."""
    return str(uuid.UUID(int=row))


def row_of(event: str) -> int:
    return int(event.replace("-", ""), 16)


def subject_id(cluster: int) -> str:
    return str(uuid.UUID(int=(1 << 64) | cluster))


def _rows(hits: list[Hit]) -> list[int]:
    return [row_of(h.event_id) for h in hits]


def shipped_score_map() -> ScoreMap:
    """The shipped model's calibrated score map (also used for the synthetic model)."""
    knots = load_calibrations()[DEFAULT_RECOGNIZER]["score"]["knots"]
    return ScoreMap([(float(s), int(v)) for s, v in knots])


def threshold_similarity() -> float:
    """The shipped model's similarity at the default score threshold (7000)."""
    return shipped_score_map().similarity(DEFAULT_THRESHOLD)


# ----------------------------------------------------------------------- facegate


def _crossing(points: list[dict[str, Any]]) -> float | None:
    """The selectivity where the exact path stops being faster than HNSW (log interp)."""
    last: tuple[float, float] | None = None
    for point in points:
        share, exact, hnsw = point["selectivity"], point["exact_p50_ms"], point["hnsw_p50_ms"]
        diff = math.log(exact) - math.log(hnsw)
        if last is not None and last[1] <= 0 < diff:
            (s0, d0), s1 = last, share
            t = -d0 / (diff - d0)
            return float(math.exp(math.log(s0) + t * (math.log(s1) - math.log(s0))))
        last = (share, diff)
    return None


def build_gallery(w: Workload, params: IndexParams) -> tuple[Gallery, float, float]:
    """A gallery bulk-loaded with the workload; the seconds its upserts and its flush
    took."""
    n, dim = w.x.shape
    gallery = Gallery("bench", f"synthetic@{dim}", dim, params)
    start = time.perf_counter()
    for lo in range(0, n, UPSERT_BATCH):
        hi = min(n, lo + UPSERT_BATCH)
        gallery.upsert(
            EntryBatch(
                event_ids=[event_id(i) for i in range(lo, hi)],
                subject_ids=[subject_id(i % w.clusters) for i in range(lo, hi)],
                vectors=w.x[lo:hi],
                tag_masks=w.masks[lo:hi],
            )
        )
    upserted = time.perf_counter()
    gallery.flush(num_threads=_cores())
    return gallery, upserted - start, time.perf_counter() - upserted


def run_facegate(w: Workload, sweep_queries: int) -> dict[str, Any]:
    x, probes = w.x, w.probes
    n = len(x)
    raw = x.nbytes
    release_memory()
    before = rss_bytes()
    gallery, upsert_s, flush_s = build_gallery(w, IndexParams())
    release_memory()
    stats = gallery.stats()
    result: dict[str, Any] = {
        "upsert_s": upsert_s,
        "flush_s": flush_s,
        "build_s": upsert_s + flush_s,
        "memory": _memory(rss_bytes() - before, stats.memory_bytes, n, raw),
    }
    print(f"  facegate built in {result['build_s']:.1f} s", flush=True)

    agree = total = 0
    for _, tag_mask in SELECTIVITIES:
        truth = w.truths[tag_mask]
        for q in range(min(EXACT_AGREEMENT_PROBES, len(probes))):
            got = _rows(gallery.search_exact(probes[q], K, tag_mask=tag_mask))
            agree += got == truth.rows(q)
            total += 1
    result["exact_agreement"] = agree / total

    searches: dict[str, Any] = {}
    for label, tag_mask in SELECTIVITIES:
        latency, hits = time_queries(
            functools.partial(gallery.search, k=K, tag_mask=tag_mask), probes
        )
        searches[label] = {
            "path": gallery.plan(tag_mask),
            "entries": w.entries(tag_mask),
            **asdict(latency),
            **w.quality([_rows(h) for h in hits], tag_mask),
        }
        print(f"  facegate {label}: {searches[label]}", flush=True)
    result["search"] = searches

    default_ef = gallery.params.ef_search
    sweep: list[dict[str, Any]] = []
    for ef in EF_SWEEP:
        gallery.set_ef_search(ef)
        latency, hits = time_queries(functools.partial(gallery.search, k=K), probes)
        sweep.append(
            {
                "ef_search": ef,
                **w.quality([_rows(h) for h in hits], 0),
                "latency_p50_ms": latency.latency_p50_ms,
                "latency_p99_ms": latency.latency_p99_ms,
            }
        )
        print(f"  ef sweep {sweep[-1]}", flush=True)
    gallery.set_ef_search(default_ef)
    result["ef_sweep"] = sweep
    result["ef_search_for_recall_0_99"] = next(
        (s["ef_search"] for s in sweep if s["recall_at_10"] >= 0.99), None
    )

    result["planner"] = _planner_sweep(gallery, w, sweep_queries)
    result["grpc"] = _grpc_round_trip(gallery, probes)
    result["snapshot"] = _snapshot_round_trip(gallery, probes[:20])
    del gallery
    release_memory()
    result["segment_sweep"] = [_segments_run(w, segments) for segments in SEGMENT_SWEEP]
    return result


def _segments_run(w: Workload, segments: int) -> dict[str, Any]:
    """The unfiltered search of a gallery whose graph has ``segments`` segments."""
    gallery, upsert_s, flush_s = build_gallery(w, IndexParams(graph_segments=segments))
    points = []
    for ef in SEGMENT_EF:
        gallery.set_ef_search(ef)
        latency, hits = time_queries(functools.partial(gallery.search, k=K), w.probes)
        points.append(
            {"ef_search": ef, **asdict(latency), **w.quality([_rows(h) for h in hits], 0)}
        )
        print(f"  {segments} segments {points[-1]}", flush=True)
    del gallery
    release_memory()
    return {"graph_segments": segments, "build_s": upsert_s + flush_s, "points": points}


def _snapshot_round_trip(gallery: Gallery, probes: F32) -> dict[str, Any]:
    """What a restart costs: writing the gallery's snapshot and loading it back (the
    recovery path of Shard.open when the log after the snapshot is short)."""
    with tempfile.TemporaryDirectory(prefix="matcher-snapshot-", dir=REPO_ROOT / ".data") as tmp:
        target = Path(tmp) / "gallery"
        started = time.perf_counter()
        save_gallery(gallery, target)
        written = time.perf_counter() - started
        size = sum(f.stat().st_size for f in target.iterdir())
        started = time.perf_counter()
        loaded = load_gallery(target)
        recovered = time.perf_counter() - started
        same = all(loaded.search(p, K) == gallery.search(p, K) for p in probes)
        del loaded
        gc.collect()
    print(
        f"  snapshot: write {written:.1f} s, load {recovered:.1f} s, {size / 1e9:.2f} GB",
        flush=True,
    )
    return {"write_s": written, "load_s": recovered, "bytes": size, "same_results": same}


def _planner_sweep(gallery: Gallery, w: Workload, count: int) -> dict[str, Any]:
    """Exact path, forced HNSW path and the planner's choice at every sweep selectivity."""
    probes, masks = w.probes[:count], w.masks
    points: list[dict[str, Any]] = []
    n = masks.shape[0]
    for bit in sorted(synthetic.TAG_SHARES, key=lambda b: synthetic.TAG_SHARES[b]):
        tag_mask = 1 << bit
        entries = w.entries(tag_mask)
        if entries == 0:
            continue
        exact, _ = time_queries(
            functools.partial(gallery.search_exact, k=K, tag_mask=tag_mask),
            probes,
            budget_s=SWEEP_BUDGET_S,
        )
        hnsw, hnsw_hits = time_queries(
            functools.partial(gallery.search, k=K, tag_mask=tag_mask, plan="hnsw"),
            probes,
            budget_s=SWEEP_BUDGET_S,
        )
        planned, planned_hits = time_queries(
            functools.partial(gallery.search, k=K, tag_mask=tag_mask),
            probes,
            budget_s=SWEEP_BUDGET_S,
        )
        hnsw_quality = w.quality([_rows(h) for h in hnsw_hits], tag_mask)
        planned_quality = w.quality([_rows(h) for h in planned_hits], tag_mask)
        points.append(
            {
                "tag_bit": bit,
                "selectivity": entries / n,
                "entries": entries,
                "plan": gallery.plan(tag_mask),
                "exact_p50_ms": exact.latency_p50_ms,
                "hnsw_p50_ms": hnsw.latency_p50_ms,
                "hnsw_recall_at_10": hnsw_quality["recall_at_10"],
                "hnsw_recall_genuine": hnsw_quality["recall_genuine"],
                "planned_p50_ms": planned.latency_p50_ms,
                "planned_recall_at_10": planned_quality["recall_at_10"],
                "planned_recall_genuine": planned_quality["recall_genuine"],
                "queries": min(exact.queries, hnsw.queries, planned.queries),
            }
        )
        print(f"  planner {points[-1]}", flush=True)
    return {
        "exact_max": gallery.params.exact_max(n),
        "rule_share": min(1.0, gallery.params.exact_max(n) / n),
        "crossing_share": _crossing(points),
        "points": points,
    }


def _grpc_round_trip(gallery: Gallery, probes: F32) -> dict[str, Any]:
    """Unfiltered Search, k=10, no similarity floor: the gallery's own call, the shard's
    (checks included) and a real stub through the Matcher server on a free port.

    The shard is made around the gallery already built (its constructor takes the
    galleries), with a write-ahead log in a temporary directory that nothing writes to.
    """
    grpc_timeout_s = 30.0
    with tempfile.TemporaryDirectory(prefix="matcher-bench-") as tmp:
        config = ShardConfig(data_dir=Path(tmp))
        wal = WriteAheadLog.open(Path(tmp) / "wal")
        shard = Shard(
            config,
            wal,
            galleries={gallery.gallery_id: gallery},
            sequence=0,
            snapshot_sequence=0,
        )
        try:
            gallery_call, _ = time_queries(functools.partial(gallery.search, k=K), probes)

            def shard_call(probe: F32) -> int:
                found = shard.search(
                    gallery.gallery_id, [(gallery.model_id, probe)], k=K, min_similarity=-1.0
                )
                return len(found[0])

            in_process, _ = time_queries(shard_call, probes)
            settings = replace(Settings.from_env(), matcher_port=0)
            server, port = create_server(settings, MatcherDeps(shard))
            server.start()
            try:
                with grpc.insecure_channel(
                    f"127.0.0.1:{port}",
                    options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
                ) as channel:
                    stub = matcher_pb2_grpc.MatcherStub(channel)

                    def grpc_call(probe: F32) -> int:
                        request = matcher_pb2.MatcherSearchRequest(
                            gallery_id=gallery.gallery_id,
                            probes=[
                                common_pb2.Template(
                                    model_id=gallery.model_id, embedding=probe.tolist()
                                )
                            ],
                            k=K,
                            min_similarity=-1.0,
                        )
                        response = stub.Search(request, timeout=grpc_timeout_s)
                        return len(response.results[0].hits)

                    over_grpc, counts = time_queries(grpc_call, probes)
                    if any(c != K for c in counts):
                        raise RuntimeError("gRPC Search returned fewer than k hits")
            finally:
                server.stop(grace=None).wait()
        finally:
            shard.close()
    return {
        "gallery_call": asdict(gallery_call),
        "in_process": asdict(in_process),
        "grpc": asdict(over_grpc),
        "overhead_p50_ms": over_grpc.latency_p50_ms - in_process.latency_p50_ms,
    }


# -------------------------------------------------------------------------- numpy


def run_numpy(w: Workload) -> dict[str, Any]:
    x, masks, probes = w.x, w.masks, w.probes
    n = x.shape[0]
    searches: dict[str, Any] = {}
    index_bytes = 0
    for label, tag_mask in SELECTIVITIES:
        rows = None if tag_mask == 0 else synthetic.selected(masks, tag_mask)
        index_bytes += 0 if rows is None else rows.nbytes

        def search(probe: F32, rows: I64 | None = rows) -> list[int]:
            return brute_force(x, rows, probe, K)

        latency, found = time_queries(search, probes)
        searches[label] = {
            "entries": n if rows is None else int(rows.size),
            **asdict(latency),
            **w.quality(found, tag_mask),
        }
        print(f"  numpy {label}: {searches[label]}", flush=True)
    return {"memory": _memory(x.nbytes + index_bytes, None, n, x.nbytes), "search": searches}


BRUTE_BLOCK = 16_384


def brute_force(x: F32, rows: I64 | None, probe: F32, k: int) -> list[int]:
    """Exact top-k rows of ``x`` (all, or ``rows``) for one probe, best first."""
    if rows is None:
        sims = x @ probe
        ids = None
    else:
        sims = np.empty(rows.shape[0], dtype=np.float32)
        for lo in range(0, rows.shape[0], BRUTE_BLOCK):
            block = rows[lo : lo + BRUTE_BLOCK]
            sims[lo : lo + block.shape[0]] = x[block] @ probe
        ids = rows
    top = np.argpartition(-sims, k - 1)[:k] if sims.shape[0] > k else np.arange(sims.shape[0])
    top = top[np.argsort(-sims[top], kind="stable")]
    chosen = top if ids is None else ids[top]
    return [int(i) for i in chosen]


# -------------------------------------------------------------------------- FAISS


def run_faiss(w: Workload, targets: dict[str, float]) -> dict[str, Any]:
    faiss: Any = importlib.import_module("faiss")  # its partial stubs lack the HNSW API

    x, masks, probes = w.x, w.masks, w.probes
    n, dim = x.shape
    release_memory()
    before = rss_bytes()
    faiss.omp_set_num_threads(_cores())
    start = time.perf_counter()
    # The same graph parameters as facegate's, so the comparison is of the searches.
    index = faiss.IndexHNSWFlat(dim, IndexParams().m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = IndexParams().ef_construction
    index.add(x)
    built = time.perf_counter() - start
    release_memory()
    result: dict[str, Any] = {
        "build_s": built,
        "memory": _memory(rss_bytes() - before, None, n, x.nbytes),
    }
    print(f"  faiss built in {built:.1f} s", flush=True)
    faiss.omp_set_num_threads(1)
    searches: dict[str, Any] = {}
    for label, tag_mask in SELECTIVITIES:
        bitmap = None
        if tag_mask:
            keep = (masks & np.uint64(tag_mask)) != 0
            bitmap = np.packbits(keep, bitorder="little")
        best: dict[str, Any] | None = None
        for ef in FAISS_EF:
            params = faiss.SearchParametersHNSW()
            params.efSearch = ef
            if bitmap is not None:
                selector = faiss.IDSelectorBitmap(bitmap)
                params.sel = selector

            def search(probe: F32, params: Any = params) -> list[int]:
                _, ids = index.search(probe.reshape(1, dim), K, params=params)
                return [int(i) for i in ids[0] if i >= 0]

            latency, found = time_queries(search, probes)
            quality = w.quality(found, tag_mask)
            best = {
                "entries": w.entries(tag_mask),
                "ef_search": ef,
                "target_recall": targets[label],
                "reached": quality["recall_at_10"] >= targets[label],
                **asdict(latency),
                **quality,
            }
            spent = latency.queries / latency.qps
            if best["reached"] or spent > FAISS_STEP_BUDGET_S:
                break
        assert best is not None
        searches[label] = best
        print(f"  faiss {label}: {best}", flush=True)
    result["search"] = searches
    return result


# ---------------------------------------------------------------------------- run


def run_one(n: int, dim: int, count: int, sweep_queries: int, threshold: float) -> dict[str, Any]:
    clusters = max(1, n // synthetic.TEMPLATES_PER_CLUSTER)
    print(f"{n} x {dim}: generating", flush=True)
    x = synthetic.clustered_templates(n, dim, clusters=clusters, seed=SEED)
    masks = synthetic.tag_masks(n, seed=SEED)
    probes, probe_clusters = synthetic.queries(count, dim, clusters=clusters, seed=SEED)
    filters = sorted({m for _, m in SELECTIVITIES} | {1 << b for b in synthetic.TAG_SHARES})
    start = time.perf_counter()
    exact = synthetic.exact_topk_filters(x, probes, K, masks, filters)
    workload = Workload(
        x=x,
        masks=masks,
        clusters=clusters,
        probes=probes,
        probe_clusters=probe_clusters,
        truths=dict(zip(filters, exact, strict=True)),
        threshold=threshold,
    )
    del x, masks, probes, exact
    run: dict[str, Any] = {
        "n": n,
        "dim": dim,
        "clusters": clusters,
        "raw_bytes": workload.x.nbytes,
        "ground_truth_s": time.perf_counter() - start,
    }
    print(f"  ground truth in {run['ground_truth_s']:.1f} s", flush=True)
    blas_default = set_blas_threads(1)  # as the matcher runs (matcher/blas.py)
    try:
        _measure(run, workload, sweep_queries)
    finally:
        if blas_default is not None:
            set_blas_threads(blas_default)
    del workload
    release_memory()
    return run


def _measure(run: dict[str, Any], w: Workload, sweep_queries: int) -> None:
    run["facegate"] = run_facegate(w, sweep_queries)
    release_memory()  # the gallery is gone
    ours = run["facegate"]["search"]
    targets = {label: float(ours[label]["recall_at_10"]) for label, _ in SELECTIVITIES}
    run["faiss"] = run_faiss(w, targets)
    release_memory()  # the index is gone
    # Brute force gets the threads one facegate query uses (its graph segments).
    threads = IndexParams().graph_segments
    found = set_blas_threads(threads)
    run["numpy"] = run_numpy(w)
    set_blas_threads(1)
    run["blas_threads"] = None if found is None else threads
    run["ratios"] = {
        label: {
            "numpy_over_facegate_p50": run["numpy"]["search"][label]["latency_p50_ms"]
            / ours[label]["latency_p50_ms"],
            "faiss_over_facegate_p50": run["faiss"]["search"][label]["latency_p50_ms"]
            / ours[label]["latency_p50_ms"],
        }
        for label, _ in SELECTIVITIES
    }


def _target(
    value: float | None, limit: float, run: str | None, higher_is_better: bool
) -> dict[str, Any]:
    met = None
    if value is not None:
        met = value >= limit if higher_is_better else value <= limit
    return {"met": met, "value": value, "limit": limit, "run": run}


def check_targets(runs: dict[str, Any], dim: int) -> dict[str, Any]:
    """The issue's targets, judged on the largest run of >= 1M templates at ``dim``."""
    eligible = [key for key, r in runs.items() if r["n"] >= TARGET_N and r["dim"] == dim]
    key = max(eligible, key=lambda k: runs[k]["n"]) if eligible else None
    run = runs[key] if key else None

    def get(*path: str) -> float | None:
        if run is None:
            return None
        value: Any = run
        for part in path:
            value = value[part]
        return float(value)

    memory = None
    if run is not None:
        fg = run["facegate"]["memory"]
        memory = max(fg["ratio_to_raw"], fg["stats_ratio_to_raw"])
    return {
        "unfiltered_p50_ms": _target(
            get("facegate", "search", "100%", "latency_p50_ms"), 2.0, key, False
        ),
        "unfiltered_recall_at_10": _target(
            get("facegate", "search", "100%", "recall_at_10"), 0.99, key, True
        ),
        "filter_1pct_p50_ms": _target(
            get("facegate", "search", "1%", "latency_p50_ms"), 5.0, key, False
        ),
        "filter_1pct_recall_at_10": _target(
            get("facegate", "search", "1%", "recall_at_10"), 0.99, key, True
        ),
        "speedup_over_brute_force": _target(
            get("ratios", "100%", "numpy_over_facegate_p50"), 50.0, key, True
        ),
        "memory_ratio_to_raw": _target(memory, 2.0, key, False),
    }


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="gallery sizes, comma-separated")
    parser.add_argument("--dims", default="", help="dimensions (default: the shipped model's)")
    parser.add_argument("--queries", type=int, default=300, help="probes per measurement")
    parser.add_argument(
        "--sweep-queries", type=int, default=50, help="probes per point of the planner sweep"
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="write only the JSON, not docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    shipped = spec_by_name(DEFAULT_RECOGNIZER)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    dims = [int(d) for d in args.dims.split(",") if d] or [shipped.embedding_dim]
    dims = list(dict.fromkeys(dims))  # the shipped dimension "and 512-d" may be one
    threshold = threshold_similarity()
    defaults = IndexParams()
    runs: dict[str, Any] = {}
    for dim in dims:
        for n in sorted(sizes):
            runs[f"{n}x{dim}"] = run_one(n, dim, args.queries, args.sweep_queries, threshold)
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python -m bench.matcher_bench", *given])
    result: dict[str, Any] = {
        "schema": 1,
        "machine": machine_summary(),
        "command": command.strip(),
        "k": K,
        "queries": args.queries,
        "sweep_queries": args.sweep_queries,
        "threshold": {
            "score": DEFAULT_THRESHOLD,
            "similarity": threshold,
            "model": DEFAULT_RECOGNIZER,
        },
        "shipped_model": {"name": DEFAULT_RECOGNIZER, "dim": shipped.embedding_dim},
        "synthetic": {
            "templates_per_cluster": synthetic.TEMPLATES_PER_CLUSTER,
            "spread": synthetic.DEFAULT_SPREAD,
            "effective_dim": synthetic.DEFAULT_EFFECTIVE_DIM,
            "seed": SEED,
        },
        "params": {
            "m": defaults.m,
            "ef_construction": defaults.ef_construction,
            "ef_search": defaults.ef_search,
            "graph_segments": defaults.graph_segments,
            "exact_factor": defaults.exact_factor,
            "overfetch": defaults.overfetch,
        },
        "selectivities": dict(SELECTIVITIES),
        "runs": runs,
        "targets": check_targets(runs, shipped.embedding_dim),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    if not args.no_docs:
        write_docs(result)
    for name, target in result["targets"].items():
        verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        print(f"target {name}: {target['value']} vs {target['limit']}: {verdict}")
    return 0


# --------------------------------------------------------------------------- docs


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _lat(latency: dict[str, Any]) -> str:
    return (
        f"{latency['latency_p50_ms']:.2f} / {latency['latency_p99_ms']:.2f}, {latency['qps']:.0f}"
    )


def _run_section(key: str, run: dict[str, Any], result: dict[str, Any]) -> str:
    fg, fa, nb = run["facegate"], run["faiss"], run["numpy"]
    n, dim = run["n"], run["dim"]
    lines = [
        f"#### {n:,} templates x {dim}-d",
        "",
        "| system | build s | bytes/template (RSS) | x raw (RSS) | x raw (stats) |",
        "|---|---|---|---|---|",
    ]

    def mem(name: str, build: float | None, memory: dict[str, Any]) -> str:
        return (
            f"| {name} | {_f(build, 1)} | {memory['bytes_per_template']:.0f} | "
            f"{memory['ratio_to_raw']:.2f} | {_f(memory['stats_ratio_to_raw'])} |"
        )

    lines += [
        mem("facegate", fg["build_s"], fg["memory"]),
        mem("FAISS HNSWFlat", fa["build_s"], fa["memory"]),
        mem("numpy brute force", None, nb["memory"]),
        "",
        "| selectivity | system | path / efSearch | p50 ms | p99 ms | q/s | CPU ms | recall@10 "
        "| recall >= threshold | recall genuine | brute / this (p50) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, _ in SELECTIVITIES:
        brute = nb["search"][label]["latency_p50_ms"]
        for name, system, how in (
            ("facegate", fg["search"][label], fg["search"][label]["path"]),
            (
                "FAISS",
                fa["search"][label],
                f"ef {fa['search'][label]['ef_search']}"
                + ("" if fa["search"][label]["reached"] else " (recall not reached)"),
            ),
            ("numpy", nb["search"][label], "scan"),
        ):
            lines.append(
                f"| {label} ({system['entries']:,}) | {name} | {how} | "
                f"{system['latency_p50_ms']:.2f} | {system['latency_p99_ms']:.2f} | "
                f"{system['qps']:.0f} | {system['cpu_p50_ms']:.2f} | "
                f"{system['recall_at_10']:.4f} | "
                f"{_f(system['recall_above_threshold'], 4)} | "
                f"{_f(system['recall_genuine'], 4)} | "
                f"{brute / system['latency_p50_ms']:.1f}x |"
            )
    lines += [
        "",
        f"facegate ef_search sweep, unfiltered (default {result['params']['ef_search']}; "
        f"smallest swept value with recall@10 >= 0.99: {fg['ef_search_for_recall_0_99']}):",
        "",
        "| ef_search | recall@10 | recall >= threshold | recall genuine | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for s in fg["ef_sweep"]:
        lines.append(
            f"| {s['ef_search']} | {s['recall_at_10']:.4f} | "
            f"{_f(s['recall_above_threshold'], 4)} | {_f(s['recall_genuine'], 4)} | "
            f"{s['latency_p50_ms']:.2f} | {s['latency_p99_ms']:.2f} |"
        )
    lines += [
        "",
        f"search_exact equals the fp32 ground truth on {fg['exact_agreement']:.1%} of "
        "checked probes.",
        "",
    ]
    planner = fg["planner"]
    lines += [
        f"Planner: exact scan when at most {planner['exact_max']:,} live entries pass the "
        f"filter (here a selectivity of {planner['rule_share']:.2%}); measured crossing of "
        f"the exact and HNSW curves: "
        + (
            "none in the swept range"
            if planner["crossing_share"] is None
            else f"{planner['crossing_share']:.2%}"
        )
        + f" ({result['sweep_queries']} probes per point, p50 ms).",
        "",
        "| selectivity | entries | planned path | exact p50 | HNSW p50 | HNSW recall@10 "
        "| HNSW recall genuine | planned p50 | planned recall@10 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in planner["points"]:
        lines.append(
            f"| {p['selectivity']:.2%} | {p['entries']:,} | {p['plan']} | "
            f"{p['exact_p50_ms']:.2f} | {p['hnsw_p50_ms']:.2f} | {p['hnsw_recall_at_10']:.4f} | "
            f"{_f(p['hnsw_recall_genuine'], 4)} | "
            f"{p['planned_p50_ms']:.2f} | {p['planned_recall_at_10']:.4f} |"
        )
    for sweep in fg["segment_sweep"]:
        lines += [
            "",
            f"The same gallery built with graph_segments={sweep['graph_segments']} "
            f"(in {sweep['build_s']:.0f} s), unfiltered:",
            "",
            "| ef_search | p50 ms | p99 ms | CPU ms | recall@10 | recall >= threshold "
            "| recall genuine |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in sweep["points"]:
            lines.append(
                f"| {p['ef_search']} | {p['latency_p50_ms']:.2f} | {p['latency_p99_ms']:.2f} "
                f"| {p['cpu_p50_ms']:.2f} | {p['recall_at_10']:.4f} | "
                f"{_f(p['recall_above_threshold'], 4)} | {_f(p['recall_genuine'], 4)} |"
            )
    rt = fg["grpc"]
    lines += [
        "",
        "gRPC round trip, unfiltered Search of one probe, k=10, no similarity floor (p50 / "
        f"p99 ms, q/s): Gallery.search {_lat(rt['gallery_call'])}; Shard.search in-process "
        f"(with its checks) {_lat(rt['in_process'])}; Matcher.Search through a stub on "
        f"127.0.0.1 {_lat(rt['grpc'])}: +{rt['overhead_p50_ms']:.2f} ms at the median.",
    ]
    return "\n".join(lines)


def write_docs(result: dict[str, Any]) -> None:
    threshold = result["threshold"]
    synth = result["synthetic"]
    shipped = result["shipped_model"]
    params = result["params"]
    same_dim = all(run["dim"] == shipped["dim"] for run in result["runs"].values())
    parts = [
        "### Matcher (issue 3)",
        "",
        f"`{result['command']}` ({result['machine']}). Clustered synthetic templates "
        f"(bench/synthetic.py: {synth['templates_per_cluster']} per person, cosine "
        f"statistics of the shipped model on lfw-dev: effective dimension "
        f"{synth['effective_dim']:g}, spread {synth['spread']}) of the shipped model's "
        f"dimension, {shipped['dim']} ({shipped['name']})"
        + (", which is also the 512-d case" if same_dim and shipped["dim"] == 512 else "")
        + f". {result['queries']} fresh probes of gallery persons, k={result['k']}, one "
        f"query at a time. facegate: M={params['m']}, efConstruction="
        f"{params['ef_construction']}, ef_search={params['ef_search']}, "
        f"graph segments {params['graph_segments']} (each searched on its own thread), "
        f"exact scan up to {params['exact_factor']:g} x sqrt(live) entries; numpy's "
        f"OpenBLAS gets as many threads as facegate has segments for the brute force "
        f"(facegate's own scans use one, as the matcher does); FAISS's HNSW searches "
        f"a query on one thread. CPU ms: the process CPU time per query (p50), all "
        f"threads together. FAISS: IndexHNSWFlat (inner product, the same M and "
        f"efConstruction) with an IDSelectorBitmap, efSearch raised until it reaches "
        f"facegate's recall. numpy: fp32 matrix, one row-index array per filter. "
        f"Recall@10 is against the exact fp32 top-10; recall >= threshold counts only "
        f"exact top-10 entries at or above score {threshold['score']} (similarity "
        f"{threshold['similarity']:.4f}), genuine or not; recall genuine counts only the "
        f"probe's own person's entries, the matches a user must not miss. Memory: RSS "
        f"growth while building; stats = the gallery's own estimate (Stats.memory_bytes), "
        f"both against the raw float32 vectors.",
        "",
    ]
    for key, run in result["runs"].items():
        parts += [_run_section(key, run, result), ""]
    verdicts = []
    for name, target in result["targets"].items():
        word = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        verdicts.append(f"{name} {_f(target['value'], 3)} (limit {target['limit']:g}): {word}")
    parts += [
        "Targets at 1M templates: " + "; ".join(verdicts) + ".",
    ]
    replace_section(REPO_ROOT / "docs" / "benchmarks.md", "matcher", "\n".join(parts))


if __name__ == "__main__":
    raise SystemExit(main())
