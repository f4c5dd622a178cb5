"""Gateway benchmark: the public REST API end to end against its own floor, same run.

    python -m bench.gateway_bench [--sizes 10000,100000] [--requests 200,400,400]
                                  [--baseline REF] [--out PATH] [--no-docs]

The whole service runs in a child process (bench/gateway_side.py; tests/support/stack.py:
extractor, matcher shard, gateway and REST shim on 127.0.0.1, SQLite store, rate limit
off) over a temporary data directory. One tenant, one gallery. Its subjects: ~20 real
people registered through REST (POST /v1.1/subjects with one photo each:
bench/dataset.py's face_recognition test set, then lfw-dev people with two photos or
more), and synthetic people (four templates each, bench/synthetic.py, the shipped
recognizer's dimension and statistics) written as the gateway writes an enrolment: the
subject and event rows through gateway.store.events (insert_events, create_subjects;
2,000 per transaction), then index entry upserts to the matcher.
The stack is restarted after each enrolment so that the matcher's graph is complete
when measuring (a shard merges what is pending on open). Gallery sizes count every
active event.

Measured for each size, with the real people's other photos as probes (request ``i``
uses probe ``i % probes``, every level the same mix):

- REST POST /v1.1/face/search and POST /v1.1/face/verify ({"id", "probe"}: the probe's
  own subject) with 1, 8 and 32 concurrent clients: latency p50/p99, requests/s;
- the gateway's gRPC Face.Search and Face.VerifySubject (stub, x-api-key metadata), one
  client: the REST shim's own share;
- the floor, one call at a time in the service's process: the extractor's Extract of
  the same probes through the gateway's own client (single face, with template) and the
  matcher's Search of their templates (the gateway's k and threshold);
- overhead = REST p50 (1 client) - extractor p50 - matcher p50 (search) or - extractor
  p50 (verify): what the shim and the gateway add; and the same per request: each
  request's latency minus the extractor and matcher time the gateway reports for it
  (Server-Timing: backend), whose median does not mix moments of a noisy machine. The
  issue's target: <= 3 ms (search), judged on the per-request figure;
- the REST shim's CPU per request at every level: the CPU time of its threads in the
  service's process (the uvicorn event loop thread "facegate-rest", grpc.aio's poller,
  the loop's executor: bench/rest_cpu.py) from the end of the warm-up to the last
  answer, over the measured requests. gRPC core's native threads serve the in-process
  gateway and backends too and are not counted.

``--baseline REF`` measures the service as of git revision REF too, in the same run: a
second child process runs in an export of REF (bench/revisions.py) with that tree's
service code and enrolment functions (its bench/gateway_bench.py's set_up,
enrol_synthetic, measure_floor) but this harness (bench/gateway_side.py, rest_cpu.py,
the load generator and the CPU readings from here). Same sizes, probes, requests and
warm-up; both services run at once (each on its own gallery, enrolled one after the
other), and every measurement runs on one then the other, the order alternating.

And once, on the largest gallery: GET /v1.1/tags with 8 and 32 clients, requests/s per
core of the service's process (os.sched_getaffinity).

The clients run in this process (bench/gateway_load.py), apart from the service's, one
thread and one connection each, signing every request with botocore's SigV4 before
its timer starts; they share this machine's cores with the server.

bench/results/gateway.json (or --out) - keys (stable; later work compares against them)::

    schema: 1
    machine, command: str                   # machine_summary(); the command line
    revision: str                           # HEAD's short hash, "+working tree" if dirty
    wall_s: float                           # the whole run
    server_cores: int                       # cores this process may run on
    load_generator: str                     # how the clients ran
    probes: [str]                           # probe photos, relative to faces_dir()
    requests: {"1": int, "8": int, "32": int}, warmup: int   # per level
    synthetic: {templates_per_subject, spread, effective_dim, seed, dim, model_id}
    rest_cpu_note: str                      # what rest_cpu_ms_per_request counts
    sizes: {"<n>": SIZE}                    # e.g. "100000"
    cheap: {endpoint: "GET /v1.1/tags", size: int, tags: int,
            levels: {"8" | "32": LEVEL & {rps_per_core: float}},
            transport: LEVEL}                 # GET /openapi.json, 1 client: no signature
                                              # check, no gateway call
    targets: {overhead_p50_ms: {met: bool | null, value: float | null, limit: 3.0,
                                size: int | null}}   # the worst size's search overhead
    baseline: {ref, revision: str,          # only with --baseline: REF, its short hash
               service_code: str,           # where its child imported gateway/ from
               probes, sizes, cheap, targets}   # as above, that revision's
    comparison: {"<n>": {search_server_p50_ms | search_paired_p50_ms
                           | verify_paired_p50_ms: PAIR,
                         rest_cpu_ms_per_request: {search | verify: {"1" | "8" | "32": PAIR}}},
                 cheap_rest_cpu_ms_per_request: {"8" | "32": PAIR}}   # with --baseline
    interleaving: str                       # with --baseline: how the two ran

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
                 verify_paired_p50_ms,      #   reported)
                 search_server_p50_ms},     # REST search's server_own_p50_ms
      ratios: {rest_over_grpc_search_p50, rest_over_floor_search_p50},
    }
    LAT   = {p50_ms, p99_ms, requests}
    LEVEL = {clients, requests, p50_ms, p99_ms, rps, failures,
             own_p50_ms,                    # median of latency - reported backend time
             server_own_p50_ms,             # REST: median of Server-Timing total - backend
             rest_cpu_ms_per_request,       # the REST shim's threads' CPU ms / request
             rest_cpu_ms_per_request_by_thread: {loop, aio_poller, executor}}
    PAIR  = {current, baseline: float | null, ratio: current / baseline | null}

The section "gateway" of docs/benchmarks.md is written from the same figures
(bench/gateway_report.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bench import rest_cpu, synthetic
from bench.dataset import REPO_ROOT, faces_dir, lfw_dev
from bench.gateway_load import GRPC, REST, Call, LoadSpec, Target, percentile, run_load, summarise
from bench.gateway_report import overheads, target, write_docs
from bench.gateway_side import Side, exported
from bench.report import machine_summary
from bench.revisions import current_revision, revision
from extractor.models.catalog import DEFAULT_RECOGNIZER, spec_by_name
from facegate.contract import DEFAULT_CANDIDATES, DEFAULT_THRESHOLD, MAX_CANDIDATES
from facegate.errors import FacegateError
from gateway.faces import Face, Template, attributes_json
from gateway.ports import IndexEntry
from gateway.store import events
from gateway.store.records import NewEvent
from gateway.tenancy import create_tenant
from tests.support.stack import SignedClient, Stack, b64

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
CURRENT = "current"
BASELINE = "baseline"
_T = TypeVar("_T")


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
        attributes_json=attributes_json(face.attributes),
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
            entries.append(
                IndexEntry(
                    gallery_id=gallery,
                    event_id=_event_id(row),
                    subject_id=_subject_id(row),
                    template=Template(setup.model_id, vectors[row]),
                    tag_mask=0,
                )
            )
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
    templates: list[Template] = [extractor.probe_face(p).template for p in probes]
    min_similarity = extractor.score_map().similarity(DEFAULT_THRESHOLD)
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
            min_similarity=min_similarity,
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


@dataclass
class Run:
    """One side (bench/gateway_side.py) as the driver sees it: its tenant, gallery and
    people, and where its stack now listens (each enrolment restarts it)."""

    side: Side
    setup: Setup
    service_code: str

    @property
    def label(self) -> str:
        return self.side.label

    @property
    def target(self) -> Target:
        return self.setup.target

    def calls(self) -> dict[str, list[Call]]:
        """REST search and subject verify of every probe, in rotation order."""
        probes = [b64(p.probe.read_bytes()) for p in self.setup.people]
        return {
            "search": [Call("POST", "/v1.1/face/search", {"probe": p}) for p in probes],
            "verify": [
                Call("POST", "/v1.1/face/verify", {"id": person.subject_id, "probe": p})
                for person, p in zip(self.setup.people, probes, strict=True)
            ],
        }


def start_run(side: Side, sizes: list[int]) -> Run:
    """The side's tenant, gallery and real people (``setup``)."""
    answer = side.call("setup", sizes=sizes)
    target = Target("", "", answer["access_key_id"], answer["secret_access_key"], answer["api_key"])
    people = tuple(Person(Path(r), Path(p), s) for r, p, s in answer["people"])
    setup = Setup(target, answer["gallery_id"], people, answer["model_id"], "")
    print(f"gateway: {side.label} side: service code {answer['service_code']}", flush=True)
    return Run(side, setup, answer["service_code"])


class Loads:
    """Runs load levels from this process against a side, reading the side's REST shim
    CPU time (bench/rest_cpu.py) once the clients are warm and once the last measured
    request is answered."""

    def __init__(self, requests: dict[int, int], warmup: int) -> None:
        self.requests = requests
        self.warmup = warmup

    def level(
        self, run: Run, protocol: str, calls: Sequence[Call], clients: int, requests: int
    ) -> dict[str, Any]:
        spec = LoadSpec(run.target, protocol, tuple(calls), clients, requests, self.warmup)
        before: dict[str, int] = {}
        after: dict[str, int] = {}
        measured = run_load(
            spec,
            measuring=lambda: before.update(run.side.call("cpu")),
            measured=lambda: after.update(run.side.call("cpu")),
        )
        level = summarise(measured, clients).to_dict()
        cpu = rest_cpu.per_request_ms(before, after, level["requests"])
        level["rest_cpu_ms_per_request"] = cpu.pop("total")
        level["rest_cpu_ms_per_request_by_thread"] = cpu
        return level


class Turns:
    """Runs one measurement on every side back to back, the order alternating from one
    measurement to the next, so that neither side always goes first."""

    def __init__(self, runs: Sequence[Run]) -> None:
        self.runs = list(runs)
        self._turn = 0

    def each(self, measure: Callable[[Run], _T]) -> dict[str, _T]:
        order = self.runs if self._turn % 2 == 0 else self.runs[::-1]
        self._turn += 1
        done = {run.label: measure(run) for run in order}
        return {run.label: done[run.label] for run in self.runs}


def measure_size(turns: Turns, loads: Loads, sizes: dict[str, dict[str, Any]]) -> None:
    """Fills each side's SIZE (``sizes``, by side) with its measures."""
    one = loads.requests[1]
    calls = {run.label: run.calls() for run in turns.runs}

    def level(protocol: str, name: str, clients: int) -> Callable[[Run], dict[str, Any]]:
        def measure(run: Run) -> dict[str, Any]:
            count = loads.requests[clients]
            return loads.level(run, protocol, calls[run.label][name], clients, count)

        return measure

    for label, top1 in turns.each(lambda run: genuine_top1(run.target, run.setup.people)).items():
        sizes[label]["genuine_top1"] = top1
    for label, floor in turns.each(lambda run: run.side.call("floor", rounds=one)).items():
        sizes[label]["floor"] = floor
    for size in sizes.values():
        size["grpc"] = {}
        size["rest"] = {"search": {}, "verify": {}}
    for name in ("search", "verify"):
        for label, measured in turns.each(level(GRPC, name, 1)).items():
            sizes[label]["grpc"][name] = measured
    for name in ("search", "verify"):
        for clients in CLIENTS:
            for label, measured in turns.each(level(REST, name, clients)).items():
                sizes[label]["rest"][name][str(clients)] = measured
    for label, size in sizes.items():
        size["overhead"], size["ratios"] = overheads(size)
        print(f"  {label}: overhead {json.dumps(size['overhead'])}", flush=True)


def measure_cheap(turns: Turns, loads: Loads, requests: int) -> dict[str, dict[str, Any]]:
    def level(calls: list[Call], clients: int, count: int) -> Callable[[Run], dict[str, Any]]:
        return lambda run: loads.level(run, REST, calls, clients, count)

    cheap: dict[str, dict[str, Any]] = {
        run.label: {"endpoint": "GET /v1.1/tags", "tags": len(TAGS), "levels": {}}
        for run in turns.runs
    }
    for clients in CHEAP_CLIENTS:
        for label, measured in turns.each(
            level([Call("GET", "/v1.1/tags")], clients, requests)
        ).items():
            rps_per_core = measured["rps"] / _cores()
            cheap[label]["levels"][str(clients)] = {**measured, "rps_per_core": rps_per_core}
    # No signature check, no gateway call: the HTTP server's own round trip.
    openapi = level([Call("GET", "/openapi.json")], 1, loads.requests[1])
    for label, transport in turns.each(openapi).items():
        cheap[label]["transport"] = transport
    return cheap


def run(
    sides: Sequence[Side], sizes: list[int], loads: Loads, cheap_requests: int
) -> dict[str, dict[str, Any]]:
    """Set up, enrol and measure each size in turn on every side, each side on its own
    growing gallery; every side's figures, by its label."""
    runs = [start_run(side, sizes) for side in sides]
    turns = Turns(runs)
    measured: dict[str, dict[str, Any]] = {
        run.label: {"setup": run.setup, "service_code": run.service_code, "sizes": {}}
        for run in runs
    }
    for n in sizes:
        this: dict[str, dict[str, Any]] = {}
        for run in runs:  # one at a time: an enrolment takes the machine
            print(f"gateway: {run.label}: enrolling up to {n:,} events", flush=True)
            enrolled = run.side.call("enrol", n=n)
            old = run.target
            run.setup = replace(
                run.setup,
                target=Target(
                    enrolled["rest_url"],
                    enrolled["grpc_address"],
                    old.access_key_id,
                    old.secret_access_key,
                    old.api_key,
                ),
            )
            this[run.label] = {
                "n": n,
                "synthetic": enrolled["synthetic"],
                "real": enrolled["real"],
                "enrol": enrolled["enrol"],
            }
        print(f"gateway: measuring {n:,} events ({', '.join(this)})", flush=True)
        measure_size(turns, loads, this)
        for label, size in this.items():
            measured[label]["sizes"][str(n)] = size
        if n == max(sizes):
            for label, cheap in measure_cheap(turns, loads, cheap_requests).items():
                measured[label]["cheap"] = {**cheap, "size": n}
    return measured


def _pair(current: float | None, baseline: float | None) -> dict[str, float | None]:
    ratio = None if current is None or not baseline else current / baseline
    return {"current": current, "baseline": baseline, "ratio": ratio}


def comparison(current: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Current against baseline, per size: the search overhead at p50 (Server-Timing
    total - backend; per request from the client) and REST CPU per request, each level."""
    compared: dict[str, Any] = {}
    for n, size in current["sizes"].items():
        before = baseline["sizes"].get(n)
        if before is None:
            continue
        over, over_before = size["overhead"], before["overhead"]
        compared[n] = {
            key: _pair(over.get(key), over_before.get(key))
            for key in ("search_server_p50_ms", "search_paired_p50_ms", "verify_paired_p50_ms")
        }
        compared[n]["rest_cpu_ms_per_request"] = {
            name: {
                clients: _pair(
                    level["rest_cpu_ms_per_request"],
                    before["rest"][name][clients]["rest_cpu_ms_per_request"],
                )
                for clients, level in size["rest"][name].items()
            }
            for name in ("search", "verify")
        }
    if "cheap" in current and "cheap" in baseline:
        compared["cheap_rest_cpu_ms_per_request"] = {
            clients: _pair(
                level["rest_cpu_ms_per_request"],
                baseline["cheap"]["levels"][clients]["rest_cpu_ms_per_request"],
            )
            for clients, level in current["cheap"]["levels"].items()
        }
    return compared


def _print_comparison(compared: dict[str, Any]) -> None:
    def show(pair: dict[str, float | None]) -> str:
        current, baseline, ratio = pair["current"], pair["baseline"], pair["ratio"]
        if current is None or baseline is None:
            return "-"
        return f"{current:.3f} vs {baseline:.3f} ({'-' if ratio is None else f'{ratio:.2f}x'})"

    for n, size in compared.items():
        if not n.isdigit():
            continue
        print(f"gateway {int(n):,} events, current vs baseline:")
        print(
            f"  search overhead p50 (Server-Timing total - backend) ms: "
            f"{show(size['search_server_p50_ms'])}"
        )
        for name, levels in size["rest_cpu_ms_per_request"].items():
            for clients, pair in levels.items():
                print(f"  REST CPU ms/request, {name}, {clients} clients: {show(pair)}")


def _side_result(measured: dict[str, Any], probes_root: Path) -> dict[str, Any]:
    """A side's figures as stored: its sizes, cheap endpoint and target."""
    setup: Setup = measured["setup"]
    return {
        "probes": [str(p.probe.relative_to(probes_root)) for p in setup.people],
        "service_code": measured["service_code"],
        "sizes": measured["sizes"],
        "cheap": measured["cheap"],
        "targets": {"overhead_p50_ms": target(measured["sizes"], 3.0)},
    }


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000", help="gallery sizes, comma-separated")
    parser.add_argument(
        "--requests", default="200,400,400", help="measured requests for 1, 8 and 32 clients"
    )
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per level")
    parser.add_argument("--cheap-requests", type=int, default=2000, help="per GET /tags level")
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help=(
            "also measure the service as of git revision REF (e.g. HEAD: the last commit), "
            "in the same run: same sizes, probes and load, each level run on both services "
            "back to back; written under 'baseline', with 'comparison'"
        ),
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"the JSON written (default {RESULTS})"
    )
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
    baseline_revision = revision(args.baseline) if args.baseline else None
    loads = Loads(dict(zip(CLIENTS, counts, strict=True)), args.warmup)
    started = time.perf_counter()
    with ExitStack() as stack:
        trees = [(CURRENT, REPO_ROOT)]
        if args.baseline:
            trees.append((BASELINE, stack.enter_context(exported(args.baseline))))
        sides = []
        for label, tree in trees:
            side = Side(label, tree)
            stack.callback(side.close)
            sides.append(side)
        measured = run(sides, sizes, loads, args.cheap_requests)
    given = argv if argv is not None else sys.argv[1:]
    root = faces_dir()
    current = _side_result(measured[CURRENT], root)
    setup: Setup = measured[CURRENT]["setup"]
    result: dict[str, Any] = {
        "schema": 1,
        "machine": machine_summary(),
        "command": " ".join(["python -m bench.gateway_bench", *given]).strip(),
        "revision": current_revision(),
        "server_cores": _cores(),
        "load_generator": (
            "the benchmark's own process, the service running in a child process; one "
            "thread and one keep-alive connection per client, on the same machine"
        ),
        "probes": current["probes"],
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
        "rest_cpu_note": rest_cpu.NOTE,
        "sizes": current["sizes"],
        "cheap": current["cheap"],
        "targets": current["targets"],
        "wall_s": 0.0,
    }
    if args.baseline:
        before = _side_result(measured[BASELINE], root)
        result["baseline"] = {"ref": args.baseline, "revision": baseline_revision, **before}
        result["comparison"] = comparison(current, before)
        result["interleaving"] = (
            "both services run at once, each in its own process; their enrolments one after "
            "the other; every measurement (genuine top-1, floor, each load level) run on "
            "one then the other, which goes first alternating from one to the next"
        )
    result["wall_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if not args.no_docs:
        write_docs(result)
    if "comparison" in result:
        _print_comparison(result["comparison"])
    overhead = result["targets"]["overhead_p50_ms"]
    verdict = {True: "met", False: "NOT met", None: "not measured"}[overhead["met"]]
    print(f"target overhead_p50_ms: {overhead['value']} vs {overhead['limit']}: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
