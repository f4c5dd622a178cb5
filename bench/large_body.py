"""The large-body REST path: what the shim and the gateway add to a search with a 4 MB probe.

    python -m bench.large_body [--requests 40] [--warmup 4] [--baseline REF] [--no-docs]

Starts the real service (``python -m facegate serve``, bench/rest_service.py), enrols a
few real people through REST, then sends ``POST /v1.1/face/search`` one at a time, signed
by botocore's SigV4 before its timer starts, alternating two probes:

- large: a real photo (obama3.jpg of the face_recognition test set) upscaled twice
  (about 13 MP) and encoded as JPEG, 4:4:4, at the lowest quality that reaches 4 MB; its
  body is about 5.8 MB of base64 inside JSON;
- small: a 250 px lfw-dev photo, as the floor the large body is compared with.

For each probe: client latency p50/p99; the service's own ``Server-Timing`` (``total``:
the shim's time from the request's arrival to its answer; ``backend``: what the gateway
spent waiting on the extractor and the matcher, which includes the gateway -> extractor
hop); overhead = total - backend per request, p50 and p99; and the server process's CPU
time per request (/proc/<pid>/stat, all its threads: the extractor's decode too).
``--baseline REF`` measures the service as of git revision REF (``git archive``) the
same way in the same run, before the working tree's.

Then the stages of the large probe's path, each timed in this process on the same body
by calling the function the request path calls (CPU time of the calling thread; process
CPU time where the work spans threads), median of ``--stage-rounds``:

- body read: gateway.rest.body.read_body over ASGI messages of 64 KiB (uvicorn's flow
  control pauses reading at that size), joining them and the payload's SHA-256 (process
  CPU time: large bodies are hashed on a worker thread while they arrive);
- SigV4: facegate.sigv4.verify of the botocore-signed request, given that hash;
- JSON parse: gateway.rest.app's parser of the body;
- REST -> proto: the search route's builder (base64 decode, FaceSearchRequest);
- gRPC shim -> gateway: one Face.Search call on a grpc.aio channel, as the shim makes it,
  to a server built like the gateway's whose servicer reads the probe and answers empty
  (process CPU time: serialisation, HTTP/2 on loopback, parsing on the server's thread);
- gRPC gateway -> extractor: gateway.adapters.extractor.ExtractorClient.probe_face of the image
  to a server built like the extractor's whose servicer reads the image and answers a face.

Each row also gives the image-sized copies it makes (from the code) and the peak of new
Python-heap memory while it runs (tracemalloc; protobuf's arena is not Python heap).

bench/results/large_body.json - keys::

    schema: 1
    machine, command: str
    probes: {large | small: {photo, bytes, body_bytes, pixels, quality}}
    requests, warmup: int                     # per probe and variant
    variants: {"current" | "baseline": {revision: str, large | small: LEVEL}}
    stages: [{stage, copies, cpu_ms, peak_mb}]   # large probe, current tree
    targets: {overhead_p50_ms: {value, limit, met}}   # current, large probe

    LEVEL = {requests, failures, latency_p50_ms, latency_p99_ms, total_p50_ms,
             backend_p50_ms, overhead_p50_ms, overhead_p99_ms, server_cpu_ms}

The section "large-body" of docs/benchmarks.md is written from the same figures.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from bench.dataset import REPO_ROOT, faces_dir, lfw_dev
from bench.gateway_load import percentile, server_timing
from bench.jobs_report import process_cpu_s
from bench.large_body_stages import SEARCH, measure_stages
from bench.report import machine_summary, publish
from bench.rest_service import Service, running_service
from bench.revisions import current_revision, revision, source_tree
from facegate.allocator import tune_allocator
from tests.support.stack import SignedClient, b64

RESULTS = REPO_ROOT / "bench" / "results" / "large_body.json"
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
SECTION = "large-body"
LARGE_SOURCE = Path("test/face_recognition/obama/obama3.jpg")
LARGE_BYTES = 4_000_000
ENROL = (
    "test/face_recognition/obama/obama.jpg",
    "test/face_recognition/biden/biden.jpg",
    "test/face_recognition/kit_harington/john1.jpeg",
    "test/face_recognition/rose_leslie/img1.jpg",
)
TARGET_OVERHEAD_MS = 8.0


@dataclass(frozen=True)
class Probe:
    photo: str
    image: bytes
    pixels: int
    quality: int | None

    def summary(self) -> dict[str, Any]:
        body = len(_body(self.image))
        return {
            "photo": self.photo,
            "bytes": len(self.image),
            "body_bytes": body,
            "pixels": self.pixels,
            "quality": self.quality,
        }


def _body(image: bytes) -> bytes:
    return b'{"probe": "' + b64(image).encode("ascii") + b'"}'


def large_probe() -> Probe:
    """The source photo at twice its size, at the lowest JPEG quality reaching 4 MB."""
    with Image.open(faces_dir() / LARGE_SOURCE) as opened:
        photo = opened.convert("RGB")
    big = photo.resize((photo.width * 2, photo.height * 2), Image.Resampling.LANCZOS)
    encoded = b""
    for quality in range(90, 101):
        out = io.BytesIO()
        big.save(out, "JPEG", quality=quality, subsampling=0)
        encoded = out.getvalue()
        if len(encoded) >= LARGE_BYTES:
            break
    return Probe(str(LARGE_SOURCE), encoded, big.width * big.height, quality)


def small_probe() -> tuple[Path, Probe]:
    """A photo to enrol and another of the same person, 250 px, to search with."""
    by_identity: dict[str, list[Path]] = {}
    for image in lfw_dev():
        by_identity.setdefault(image.identity, []).append(image.path)
    enrol, probe = next(sorted(p)[:2] for p in by_identity.values() if len(p) >= 2)
    with Image.open(probe) as opened:
        pixels = opened.width * opened.height
    return enrol, Probe(str(probe.relative_to(faces_dir())), probe.read_bytes(), pixels, None)


# ------------------------------------------------------------------ end to end


def _level(rows: list[tuple[float, dict[str, float], float]], failures: int) -> dict[str, Any]:
    latency = [r[0] for r in rows]
    timed = [r[1] for r in rows if "total" in r[1] and "backend" in r[1]]
    overhead = [t["total"] - t["backend"] for t in timed]

    def p50(values: list[float]) -> float | None:
        return round(percentile(values, 50), 3) if values else None

    return {
        "requests": len(rows),
        "failures": failures,
        "latency_p50_ms": p50(latency),
        "latency_p99_ms": round(percentile(latency, 99), 3) if latency else None,
        "total_p50_ms": p50([t["total"] for t in timed]),
        "backend_p50_ms": p50([t["backend"] for t in timed]),
        "overhead_p50_ms": p50(overhead),
        "overhead_p99_ms": round(percentile(overhead, 99), 3) if overhead else None,
        "server_cpu_ms": round(sum(r[2] for r in rows) / len(rows), 2) if rows else None,
    }


def measure_service(
    service: Service, probes: dict[str, Probe], enrol: list[Path], requests: int, warmup: int
) -> dict[str, Any]:
    client = SignedClient(
        service.rest_url,
        service.access_key_id,
        service.secret_access_key,
        api_key=service.api_key,
    )
    rows: dict[str, list[tuple[float, dict[str, float], float]]] = {k: [] for k in probes}
    failures = dict.fromkeys(probes, 0)
    try:
        for path in enrol:
            answer = client.call("POST", "/v1.1/subjects", {"face": b64(path.read_bytes())})
            if answer.status_code != 201:
                print(f"large_body: {path.name} not enrolled: {answer.text}", file=sys.stderr)
        for round_ in range(warmup + requests):
            for kind, probe in probes.items():
                request = client.signed("POST", SEARCH, {"probe": b64(probe.image)})
                cpu = process_cpu_s(service.pid)
                started = time.perf_counter()
                response = client.send(request)
                elapsed_ms = (time.perf_counter() - started) * 1000
                cpu_ms = (process_cpu_s(service.pid) - cpu) * 1000
                if round_ < warmup:
                    continue
                if response.status_code not in (200, 404):
                    failures[kind] += 1
                    continue
                timing = server_timing(response.headers.get("server-timing", ""))
                rows[kind].append((elapsed_ms, timing, cpu_ms))
    finally:
        client.close()
    return {kind: _level(rows[kind], failures[kind]) for kind in probes}


# ------------------------------------------------------------------ report


def markdown(result: dict[str, Any]) -> str:
    probes = result["probes"]
    lines = [
        f"Machine: {result['machine']}. Command: `{result['command']}`.",
        "",
        f"POST /v1.1/face/search through `facegate serve`, one request at a time, "
        f"{result['requests']} per probe (after {result['warmup']} unmeasured), large and "
        f"small alternating. Large probe: {probes['large']['photo']} upscaled to "
        f"{probes['large']['pixels'] / 1e6:.1f} MP, JPEG quality {probes['large']['quality']}, "
        f"{probes['large']['bytes'] / 1e6:.2f} MB ({probes['large']['body_bytes'] / 1e6:.2f} MB "
        f"body); small: {probes['small']['photo']}, {probes['small']['bytes'] / 1e3:.0f} kB. "
        "Overhead = Server-Timing total - backend (the extractor and matcher calls), per "
        "request; server CPU: the server process's CPU time per request, all threads.",
        "",
        "| tree | probe | latency p50 / p99 (ms) | total p50 | backend p50 | "
        "overhead p50 / p99 (ms) | server CPU (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, variant in result["variants"].items():
        for kind in ("large", "small"):
            v = variant[kind]
            lines.append(
                f"| {name} ({variant['revision']}) | {kind} | {v['latency_p50_ms']} / "
                f"{v['latency_p99_ms']} | {v['total_p50_ms']} | {v['backend_p50_ms']} | "
                f"{v['overhead_p50_ms']} / {v['overhead_p99_ms']} | {v['server_cpu_ms']} |"
            )
    target = result["targets"]["overhead_p50_ms"]
    verdict = {True: "met", False: "not met", None: "not measured"}[target["met"]]
    lines += [
        "",
        f"Target: overhead p50 <= {target['limit']:g} ms with the large probe: "
        f"{target['value']} ms, {verdict}.",
        "",
        "Stages of the large probe's path, each run in the benchmark's process on the same "
        "body through the function the request path calls (median CPU ms; the gRPC hops in "
        "process CPU time, since client, HTTP/2 and server share the work over threads). "
        "Copies: image-sized copies the stage makes, read from the code; peak: new "
        "Python-heap memory at the stage's peak (tracemalloc; protobuf's arena is not "
        "counted). The gateway -> extractor hop is inside `backend`.",
        "",
        "| stage | copies | CPU (ms) | peak (MB) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {s['stage']} | {s['copies']} | {s['cpu_ms']} | {s['peak_mb']} |"
        for s in result["stages"]
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40, help="measured per probe")
    parser.add_argument("--warmup", type=int, default=4, help="unmeasured per probe")
    parser.add_argument("--stage-rounds", type=int, default=30, help="runs of each stage")
    parser.add_argument("--baseline", help="also measure the service as of this git revision")
    parser.add_argument("--no-docs", action="store_true", help="only the JSON")
    args = parser.parse_args(argv)
    tune_allocator()  # the stages run in this process: as in `facegate serve`
    enrol_small, small = small_probe()
    probes = {"large": large_probe(), "small": small}
    enrol = [faces_dir() / p for p in ENROL] + [enrol_small]
    variants: dict[str, Any] = {}
    trees: list[tuple[str, str, Callable[[], Any]]] = []
    if args.baseline:
        trees.append(("baseline", revision(args.baseline), lambda: source_tree(args.baseline)))
    trees.append(("current", current_revision(), _here))
    for name, label, tree in trees:
        print(f"large_body: measuring {name} ({label})", flush=True)
        with (
            tree() as source,
            tempfile.TemporaryDirectory() as work,
            running_service(Path(work), source) as service,
        ):
            measured = measure_service(service, probes, enrol, args.requests, args.warmup)
        variants[name] = {"revision": label, **measured}
    print("large_body: stages", flush=True)
    stages = measure_stages(probes["large"].image, args.stage_rounds)
    value = variants["current"]["large"]["overhead_p50_ms"]
    given = argv if argv is not None else sys.argv[1:]
    result = {
        "schema": 1,
        "machine": machine_summary(),
        "command": " ".join(["python -m bench.large_body", *given]),
        "probes": {kind: probe.summary() for kind, probe in probes.items()},
        "requests": args.requests,
        "warmup": args.warmup,
        "variants": variants,
        "stages": stages,
        "targets": {
            "overhead_p50_ms": {
                "value": value,
                "limit": TARGET_OVERHEAD_MS,
                "met": None if value is None else value <= TARGET_OVERHEAD_MS,
            }
        },
    }
    if args.no_docs:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(markdown(result))
    else:
        publish(result, RESULTS, DOCS, SECTION, markdown(result))
    return 0


@contextmanager
def _here() -> Iterator[Path]:
    yield REPO_ROOT


if __name__ == "__main__":
    raise SystemExit(main())
