"""Gateway benchmark: the public REST API end to end against its own floor, same run.

    python -m bench.gateway_bench [--sizes 10000,100000] [--requests 200,400,400]

The whole service runs in this process (tests/support/stack.py: extractor, matcher shard,
gateway and REST shim on 127.0.0.1, SQLite store, rate limit off) over a temporary data
directory. One tenant, one gallery. Its subjects: ~20 real people registered through
REST (POST /v1.1/subjects with one photo each: bench/dataset.py's face_recognition test
set, then lfw-dev people with two photos or more), and synthetic people (four templates
each, bench/synthetic.py, the shipped recognizer's dimension and statistics) written as
the gateway writes an enrolment: the subject and event rows through
gateway.store.events (insert_events, create_subjects; 2,000 per transaction), then
MatcherEntry upserts to the matcher.
The stack is restarted after each enrolment so that the matcher's graph is complete
when measuring (a shard merges what is pending on open). Gallery sizes count every
active event.

Measured for each size, with the real people's other photos as probes (request ``i``
uses probe ``i % probes``, every level the same mix):

- REST POST /v1.1/face/search and POST /v1.1/face/verify ({"id", "probe"}: the probe's
  own subject) with 1, 8 and 32 concurrent clients: latency p50/p99, requests/s;
- the gateway's gRPC Face.Search and Face.VerifySubject (stub, x-api-key metadata), one
  client: the REST shim's own share;
- the floor, one call at a time in this process: the extractor's Extract of the same
  probes through the gateway's own client (single face, with template) and the matcher's
  Search of their templates (the gateway's k and threshold);
- overhead = REST p50 (1 client) - extractor p50 - matcher p50 (search) or - extractor
  p50 (verify): what the shim and the gateway add; and the same per request: each
  request's latency minus the extractor and matcher time the gateway reports for it
  (Server-Timing: backend), whose median does not mix moments of a noisy machine. The
  issue's target: <= 3 ms (search), judged on the per-request figure.

And once, on the largest gallery: GET /v1.1/tags with 8 and 32 clients, requests/s per
core of this process (os.sched_getaffinity).

The clients run in a separate process (multiprocessing "spawn"; bench/gateway_load.py),
one thread and one connection each, signing every request with botocore's SigV4 before
its timer starts; they share this machine's cores with the server.

bench/results/gateway.json - keys (stable; later work compares against them)::

    schema: 1
    machine, command: str                   # machine_summary(); the command line
    server_cores: int                       # cores this process may run on
    load_generator: str                     # how the clients ran
    probes: [str]                           # probe photos, relative to faces_dir()
    requests: {"1": int, "8": int, "32": int}, warmup: int   # per level
    synthetic: {templates_per_subject, spread, effective_dim, seed, dim, model_id}
    sizes: {"<n>": SIZE}                    # e.g. "100000"
    cheap: {endpoint: "GET /v1.1/tags", size: int, tags: int,
            levels: {"8" | "32": LEVEL & {rps_per_core: float}},
            transport: LEVEL}                 # GET /openapi.json, 1 client: no signature
                                              # check, no gateway call
    targets: {overhead_p50_ms: {met: bool | null, value: float | null, limit: 3.0,
                                size: int | null}}   # the worst size's search overhead

    SIZE = {
      n: int, synthetic: int, real: int,    # active events: n = synthetic + real
      enrol: {store_s, matcher_s, restart_s: float},   # rows added for this size
      genuine_top1: float,                  # share of probes whose first candidate is
                                            # their own subject (REST search)
      floor: {extract: LAT, matcher: LAT},  # one call at a time, this process
      rest: {search | verify: {"1" | "8" | "32": LEVEL}},
      grpc: {search | verify: LEVEL},       # one client
      overhead: {search_p50_ms,             # REST - extract - matcher, p50, 1 client
                 search_grpc_p50_ms,        # gRPC - extract - matcher: the gateway's
                 rest_shim_p50_ms,          # REST - gRPC search: the shim's
                 verify_p50_ms,             # REST verify - extract
                 search_paired_p50_ms,      # per request: REST latency - its backend
                 search_grpc_paired_p50_ms, #   time; gRPC; REST verify (null: not
                 verify_paired_p50_ms},     #   reported)
      ratios: {rest_over_grpc_search_p50, rest_over_floor_search_p50},
    }
    LAT   = {p50_ms, p99_ms, requests}
    LEVEL = {clients, requests, p50_ms, p99_ms, rps, failures,
             own_p50_ms}                    # median of latency - reported backend time

The section "gateway" of docs/benchmarks.md is written from the same figures
(bench/gateway_report.py).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import json_format

from bench import synthetic
from bench.dataset import REPO_ROOT, faces_dir, lfw_dev
from bench.gateway_load import GRPC, REST, Call, LoadSpec, Target, percentile, run_load, summarise
from bench.gateway_report import overheads, target, write_docs
from bench.report import machine_summary
from extractor.models.catalog import DEFAULT_RECOGNIZER, spec_by_name
from facegate.contract import DEFAULT_CANDIDATES, DEFAULT_THRESHOLD, MAX_CANDIDATES
from facegate.errors import FacegateError
from facegate.v1 import common_pb2, matcher_pb2
from gateway.backends import Face
from gateway.store import events
from gateway.store.records import NewEvent
from gateway.tenancy import create_tenant
from tests.support.stack import SignedClient, Stack, b64, running_stack

RESULTS = REPO_ROOT / "bench" / "results" / "gateway.json"
CLIENTS = (1, 8, 32)
CHEAP_CLIENTS = (8, 32)
REAL_SUBJECTS = 20
TAGS = ("passport", "licence", "staff")
SEED = 0
STORE_BATCH = 2_000
MATCHER_BATCH = 5_000
FLOOR_WARMUP = 10
SEARCH_K = min(MAX_CANDIDATES, 2 * DEFAULT_CANDIDATES)
"""What the gateway asks the matcher for with the default limit (gateway/search.py)."""


@dataclass(frozen=True)
class Person:
    """A real person: the photo registered, the photo probed, and (once registered) the
    subject id."""

    registered: Path
    probe: Path
    subject_id: str = ""


@dataclass(frozen=True)
class Setup:
    target: Target
    gallery_id: str
    people: tuple[Person, ...]
    model_id: str
    attributes_json: str
    """A real face's attributes, stored with every synthetic event."""


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def candidate_people() -> list[Person]:
    """People with two photos or more: the face_recognition test set, then lfw-dev."""
    people = []
    root = faces_dir() / "test" / "face_recognition"
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name[0] not in "_."):
        photos = sorted(p for p in folder.iterdir() if p.is_file())
        if len(photos) >= 2:
            people.append(Person(photos[0], photos[1]))
    by_identity: dict[str, list[Path]] = {}
    for image in lfw_dev():
        by_identity.setdefault(image.identity, []).append(image.path)
    people += [Person(p[0], p[1]) for p in by_identity.values() if len(p) >= 2]
    return people


def set_up(stack: Stack) -> Setup:
    """Tenant, gallery (sized for every size), the real people registered through REST."""
    tenant = create_tenant(stack.deps.database, stack.deps.secrets, "bench")
    client = SignedClient(stack.rest_url, tenant.tenant.access_key_id, tenant.secret_access_key)
    try:
        response = client.call(
            "POST", "/api/galleries", {"name": "bench", "size": 1_000_000, "description": ""}
        )
        if response.status_code != 200:
            raise RuntimeError(f"gallery not created: {response.text}")
        created = response.json()
        keyed = client.with_api_key(created["apiKey"])
        for tag in TAGS:
            if keyed.call("POST", f"/v1.1/tags/{tag}").status_code != 200:
                raise RuntimeError(f"tag {tag} not created")
        people: list[Person] = []
        face: Face | None = None
        for person in candidate_people():
            try:
                face = stack.deps.extractor.probe_face(person.probe.read_bytes())
            except FacegateError:
                continue  # no face, several faces: not a probe
            answer = keyed.call(
                "POST", "/v1.1/subjects", {"face": b64(person.registered.read_bytes())}
            )
            if answer.status_code == 201:
                people.append(Person(person.registered, person.probe, answer.json()["id"]))
            if len(people) == REAL_SUBJECTS:
                break
    finally:
        client.close()
    if not people or face is None:
        raise RuntimeError("no real person could be registered")
    return Setup(
        target=Target(
            stack.rest_url,
            stack.grpc_address,
            tenant.tenant.access_key_id,
            tenant.secret_access_key,
            created["apiKey"],
        ),
        gallery_id=created["id"],
        people=tuple(people),
        model_id=face.template.model_id,
        attributes_json=json_format.MessageToJson(face.attributes, indent=None),
    )


def synthetic_vectors(n: int, dim: int) -> np.ndarray:
    """``n`` templates, four per person, each person's rows consecutive (row // 4)."""
    per = synthetic.TEMPLATES_PER_CLUSTER
    clusters = max(1, -(-n // per))
    x = synthetic.clustered_templates(n, dim, clusters=clusters, seed=SEED)
    return x[np.argsort(np.arange(n) % clusters, kind="stable")]


def _subject_id(row: int) -> str:
    return str(uuid.UUID(int=(1 << 64) | row // synthetic.TEMPLATES_PER_CLUSTER))


def _event_id(row: int) -> str:
    return str(uuid.UUID(int=(2 << 64) | row))


def enrol_synthetic(stack: Stack, setup: Setup, vectors: np.ndarray, rows: range) -> dict[str, Any]:
    """Store rows, then matcher entries, for synthetic rows ``rows``; seconds spent.

    The rows go through the store functions the gateway's registrations use
    (gateway.store.events.insert_events and create_subjects), many per transaction.
    """
    database, gallery = stack.deps.database, setup.gallery_id
    start = time.perf_counter()
    for lo in range(rows.start, rows.stop, STORE_BATCH):
        batch = range(lo, min(rows.stop, lo + STORE_BATCH))
        now = time.time_ns() // 1_000_000
        new = [
            NewEvent(
                event_id=_event_id(row),
                subject_id=_subject_id(row),
                tag_mask=0,
                model_id=setup.model_id,
                template=np.asarray(vectors[row], dtype="<f4").tobytes(),
                attributes_json=setup.attributes_json,
            )
            for row in batch
        ]
        with database.write() as conn:
            added = events.insert_events(conn, gallery, new, now)
            if len(added.rows) != len(new):
                raise RuntimeError(f"gallery {gallery} is full: size {added.gallery_size}")
            events.create_subjects(conn, gallery, sorted({e.subject_id for e in new}), now)
    stored = time.perf_counter()
    for lo in range(rows.start, rows.stop, MATCHER_BATCH):
        entries = []
        for row in range(lo, min(rows.stop, lo + MATCHER_BATCH)):
            entry = matcher_pb2.MatcherEntry(
                gallery_id=gallery, event_id=_event_id(row), subject_id=_subject_id(row)
            )
            entry.template.model_id = setup.model_id
            entry.template.embedding.extend(vectors[row].tolist())
            entries.append(entry)
        stack.deps.matcher.upsert(entries)
    return {"store_s": stored - start, "matcher_s": time.perf_counter() - stored}


def _lat(values: Sequence[float]) -> dict[str, Any]:
    return {
        "p50_ms": percentile(values, 50),
        "p99_ms": percentile(values, 99),
        "requests": len(values),
    }


def measure_floor(stack: Stack, setup: Setup, probes: list[bytes], rounds: int) -> dict[str, Any]:
    """Extract and matcher Search through the gateway's own clients, interleaved per probe."""
    extractor, matcher = stack.deps.extractor, stack.deps.matcher
    templates: list[common_pb2.Template] = [extractor.probe_face(p).template for p in probes]
    extract_ms: list[float] = []
    match_ms: list[float] = []
    for number in range(-FLOOR_WARMUP, rounds):
        index = number % len(probes)
        start = time.perf_counter()
        extractor.probe_face(probes[index])
        extracted = time.perf_counter()
        matcher.search(
            setup.gallery_id,
            templates[index],
            k=SEARCH_K,
            threshold=DEFAULT_THRESHOLD,
            tag_mask=0,
        )
        matched = time.perf_counter()
        if number >= 0:
            extract_ms.append((extracted - start) * 1e3)
            match_ms.append((matched - extracted) * 1e3)
    return {"extract": _lat(extract_ms), "matcher": _lat(match_ms)}


def genuine_top1(target: Target, people: Sequence[Person]) -> float:
    """Share of probes whose REST search answers their own subject first."""
    client = SignedClient(
        target.rest_url, target.access_key_id, target.secret_access_key, api_key=target.api_key
    )
    try:
        hits = 0
        for person in people:
            answer = client.call(
                "POST", "/v1.1/face/search", {"probe": b64(person.probe.read_bytes())}
            )
            candidates = answer.json().get("candidates", []) if answer.status_code == 200 else []
            hits += bool(candidates) and candidates[0]["id"] == person.subject_id
        return hits / len(people)
    finally:
        client.close()


class Loads:
    """Runs load levels in the load-generator process."""

    def __init__(self, pool: ProcessPoolExecutor, requests: dict[int, int], warmup: int) -> None:
        self._pool = pool
        self.requests = requests
        self.warmup = warmup

    def level(
        self, target: Target, protocol: str, calls: Sequence[Call], clients: int, requests: int
    ) -> dict[str, Any]:
        spec = LoadSpec(target, protocol, tuple(calls), clients, requests, self.warmup)
        return summarise(self._pool.submit(run_load, spec).result(), clients).to_dict()


def _retarget(setup: Setup, stack: Stack) -> Target:
    old = setup.target
    return Target(
        stack.rest_url, stack.grpc_address, old.access_key_id, old.secret_access_key, old.api_key
    )


def measure_size(stack: Stack, setup: Setup, loads: Loads) -> dict[str, Any]:
    target = _retarget(setup, stack)
    probes = [p.probe.read_bytes() for p in setup.people]
    searches = [Call("POST", "/v1.1/face/search", {"probe": b64(p)}) for p in probes]
    verifies = [
        Call("POST", "/v1.1/face/verify", {"id": person.subject_id, "probe": b64(p)})
        for person, p in zip(setup.people, probes, strict=True)
    ]
    result: dict[str, Any] = {"genuine_top1": genuine_top1(target, setup.people)}
    one = loads.requests[1]
    result["floor"] = measure_floor(stack, setup, probes, one)
    result["grpc"] = {
        name: loads.level(target, GRPC, calls, 1, one)
        for name, calls in (("search", searches), ("verify", verifies))
    }
    result["rest"] = {
        name: {str(c): loads.level(target, REST, calls, c, loads.requests[c]) for c in CLIENTS}
        for name, calls in (("search", searches), ("verify", verifies))
    }
    result["overhead"], result["ratios"] = overheads(result)
    print(f"  overhead {json.dumps(result['overhead'])}", flush=True)
    return result


def measure_cheap(stack: Stack, setup: Setup, loads: Loads, requests: int) -> dict[str, Any]:
    target = _retarget(setup, stack)
    calls = [Call("GET", "/v1.1/tags")]
    levels: dict[str, Any] = {}
    for clients in CHEAP_CLIENTS:
        level = loads.level(target, REST, calls, clients, requests)
        levels[str(clients)] = {**level, "rps_per_core": level["rps"] / _cores()}
    # No signature check, no gateway call: the HTTP server's own round trip.
    transport = loads.level(target, REST, [Call("GET", "/openapi.json")], 1, loads.requests[1])
    return {
        "endpoint": "GET /v1.1/tags",
        "tags": len(TAGS),
        "levels": levels,
        "transport": transport,
    }


def run(sizes: list[int], loads: Loads, cheap_requests: int) -> tuple[Setup, dict[str, Any]]:
    """Enrol and measure each size in turn, on one growing gallery."""
    dim = spec_by_name(DEFAULT_RECOGNIZER).embedding_dim
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="facegate-gwbench-") as tmp:
        data_dir = Path(tmp)
        with running_stack(data_dir, rate_per_second=0) as stack:
            setup = set_up(stack)
        real = len(setup.people)
        vectors = synthetic_vectors(max(sizes) - real, dim)
        done = 0
        for n in sizes:
            print(f"gateway: enrolling up to {n:,} events", flush=True)
            with running_stack(data_dir, rate_per_second=0) as stack:
                enrol = enrol_synthetic(stack, setup, vectors, range(done, n - real))
            start = time.perf_counter()
            with running_stack(data_dir, rate_per_second=0) as stack:
                enrol["restart_s"] = time.perf_counter() - start
                done = n - real
                print(f"gateway: measuring {n:,} events", flush=True)
                size = {"n": n, "synthetic": done, "real": real, "enrol": enrol}
                results[str(n)] = {**size, **measure_size(stack, setup, loads)}
                if n == max(sizes):
                    cheap = measure_cheap(stack, setup, loads, cheap_requests)
    return setup, {"sizes": results, "cheap": {**cheap, "size": max(sizes)}}


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="gallery sizes, comma-separated")
    parser.add_argument(
        "--requests", default="200,400,400", help="measured requests for 1, 8 and 32 clients"
    )
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per level")
    parser.add_argument("--cheap-requests", type=int, default=2000, help="per GET /tags level")
    parser.add_argument(
        "--no-docs", action="store_true", help="write only the JSON, not docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    counts = [int(r) for r in args.requests.split(",")]
    if len(counts) != len(CLIENTS):
        parser.error(f"--requests needs {len(CLIENTS)} counts")
    if sizes[0] <= REAL_SUBJECTS:
        parser.error(f"sizes must exceed the {REAL_SUBJECTS} real subjects")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        loads = Loads(pool, dict(zip(CLIENTS, counts, strict=True)), args.warmup)
        setup, measured = run(sizes, loads, args.cheap_requests)
    given = argv if argv is not None else sys.argv[1:]
    root = faces_dir()
    result: dict[str, Any] = {
        "schema": 1,
        "machine": machine_summary(),
        "command": " ".join(["python -m bench.gateway_bench", *given]).strip(),
        "server_cores": _cores(),
        "load_generator": (
            "one separate process (multiprocessing spawn), one thread and one keep-alive "
            "connection per client, on the same machine as the server"
        ),
        "probes": [str(p.probe.relative_to(root)) for p in setup.people],
        "requests": {str(c): loads.requests[c] for c in CLIENTS},
        "warmup": args.warmup,
        "synthetic": {
            "templates_per_subject": synthetic.TEMPLATES_PER_CLUSTER,
            "spread": synthetic.DEFAULT_SPREAD,
            "effective_dim": synthetic.DEFAULT_EFFECTIVE_DIM,
            "seed": SEED,
            "dim": spec_by_name(DEFAULT_RECOGNIZER).embedding_dim,
            "model_id": setup.model_id,
        },
        **measured,
    }
    result["targets"] = {"overhead_p50_ms": target(result["sizes"], 3.0)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    if not args.no_docs:
        write_docs(result)
    overhead = result["targets"]["overhead_p50_ms"]
    verdict = {True: "met", False: "NOT met", None: "not measured"}[overhead["met"]]
    print(f"target overhead_p50_ms: {overhead['value']} vs {overhead['limit']}: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
