"""TLS benchmark: what TLS on every hop costs a REST client, plaintext beside mTLS in one
run.

    python -m bench.tls_bench [--requests 200] [--connections 100] [--rounds 4]

Two stacks run in this process (tests/support/stack.py): one plaintext, one with the REST
listener over TLS and every gRPC hop (REST shim -> gateway -> extractor, matcher) over
mutual TLS, with certificates of a throw-away CA (tests/support/tls.py). Each has one
tenant and one gallery holding one real person; the probe is another photo of that
person. The two are measured alternately, in ``--rounds`` blocks each, so that both see
the same moments of a noisy machine:

- kept alive: POST /v1.1/face/search, one client, one keep-alive connection: latency
  p50/p99, and the service's own share per request (Server-Timing total - backend: the
  shim and the gateway, including the TLS records of the hops between them and to the
  backends; the backend's share is the extractor and matcher calls as the gateway sees
  them, TLS records included);
- new connection: the same request on a fresh connection each time (``Connection:
  close``): latency p50/p99; its p50 minus the kept-alive p50 is what opening a
  connection costs the client, handshake included;
- handshake: TCP connect plus (with TLS) the TLS handshake to the REST port alone, p50.

bench/results/tls.json - keys::

    schema: 1, machine, command: str, rounds: int
    requests: int, connections: int        # per side, over all rounds
    plaintext | tls: {
      kept_alive: {p50_ms, p99_ms, own_p50_ms},
      new_connection: {p50_ms, p99_ms},
      handshake: {p50_ms, p99_ms},
      connection_cost_p50_ms: float,        # new_connection p50 - kept_alive p50
    }
    ratios: {kept_alive_p50, own_p50, new_connection_p50}   # tls / plaintext
"""

from __future__ import annotations

import argparse
import base64
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.dataset import REPO_ROOT, faces_dir
from bench.gateway_load import percentile, server_timing
from bench.report import machine_summary, publish
from gateway.tenancy import create_tenant
from tests.support.stack import SignedClient, running_stack
from tests.support.tls import Authority, mtls_settings

RESULTS = REPO_ROOT / "bench" / "results" / "tls.json"
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
SECTION = "tls"
SIDES = ("plaintext", "tls")
PERSON = Path("test") / "face_recognition" / "obama"


@dataclass
class Side:
    """One running stack and a signed client of its REST API."""

    client: SignedClient
    rest_url: str
    ca_file: Path | None
    probe: str

    def search(self, *, close: bool) -> tuple[float, float | None]:
        """(latency ms, own ms = Server-Timing total - backend) of one search."""
        headers = {"connection": "close"} if close else None
        request = self.client.signed(
            "POST", "/v1.1/face/search", {"probe": self.probe}, headers=headers
        )
        started = time.perf_counter()
        answer = self.client.send(request)
        elapsed = (time.perf_counter() - started) * 1e3
        if answer.status_code != 200:
            raise RuntimeError(f"search answered {answer.status_code}: {answer.text}")
        timing = server_timing(answer.headers.get("server-timing", ""))
        own = None
        if "total" in timing and "backend" in timing:
            own = timing["total"] - timing["backend"]
        return elapsed, own

    def handshake_ms(self) -> float:
        """TCP connect, plus the TLS handshake when the listener speaks TLS."""
        url = urlsplit(self.rest_url)
        host, port = url.hostname or "127.0.0.1", url.port or 443
        started = time.perf_counter()
        with socket.create_connection((host, port), timeout=30) as raw:
            if self.ca_file is not None:
                context = ssl.create_default_context(cafile=str(self.ca_file))
                with context.wrap_socket(raw, server_hostname=host):
                    pass
        return (time.perf_counter() - started) * 1e3


@contextmanager
def _side(name: str, folder: Path, authority: Authority | None) -> Iterator[Side]:
    tls = None
    if authority is not None:
        tls = mtls_settings(authority, authority.issue(f"service-{name}"))
    with running_stack(folder / name, rate_per_second=0, tls=tls) as stack:
        tenant = create_tenant(stack.deps.database, stack.deps.secrets, f"tls-bench-{name}")
        client = SignedClient(stack.rest_url, tenant.tenant.access_key_id, tenant.secret_access_key)
        if authority is not None:
            client.http.close()
            trusted = ssl.create_default_context(cafile=str(authority.ca_file))
            client.http = httpx.Client(timeout=60.0, verify=trusted)
        try:
            gallery = client.call("POST", "/api/galleries", {"name": "bench", "size": 10})
            keyed = client.with_api_key(gallery.json()["apiKey"])
            photo = base64.b64encode((faces_dir() / PERSON / "obama.jpg").read_bytes())
            registered = keyed.call("POST", "/v1.1/subjects", {"face": photo.decode()})
            if registered.status_code != 201:
                raise RuntimeError(f"register answered {registered.status_code}")
            probe = base64.b64encode((faces_dir() / PERSON / "obama2.jpg").read_bytes())
            yield Side(
                keyed,
                stack.rest_url,
                None if authority is None else authority.ca_file,
                probe.decode(),
            )
        finally:
            client.close()


def _lat(values: Sequence[float]) -> dict[str, float]:
    return {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99)}


def measure(
    sides: dict[str, Side], *, requests: int, connections: int, rounds: int
) -> dict[str, Any]:
    """Every figure of both sides, measured in alternating blocks."""
    kept: dict[str, list[float]] = {name: [] for name in sides}
    own: dict[str, list[float]] = {name: [] for name in sides}
    fresh: dict[str, list[float]] = {name: [] for name in sides}
    shakes: dict[str, list[float]] = {name: [] for name in sides}
    for side in sides.values():
        for _ in range(5):  # warm-up: connections, caches, the models' first runs
            side.search(close=False)
    for number in range(rounds):
        order = list(sides) if number % 2 == 0 else list(reversed(sides))
        for name in order:
            side = sides[name]
            for _ in range(requests // rounds):
                elapsed, share = side.search(close=False)
                kept[name].append(elapsed)
                if share is not None:
                    own[name].append(share)
            for _ in range(connections // rounds):
                fresh[name].append(side.search(close=True)[0])
                shakes[name].append(side.handshake_ms())
    result: dict[str, Any] = {}
    for name in sides:
        kept_alive = _lat(kept[name]) | {"own_p50_ms": percentile(own[name], 50)}
        new_connection = _lat(fresh[name])
        result[name] = {
            "kept_alive": kept_alive,
            "new_connection": new_connection,
            "handshake": _lat(shakes[name]),
            "connection_cost_p50_ms": new_connection["p50_ms"] - kept_alive["p50_ms"],
        }
    plain, tls = result["plaintext"], result["tls"]
    result["ratios"] = {
        "kept_alive_p50": tls["kept_alive"]["p50_ms"] / plain["kept_alive"]["p50_ms"],
        "own_p50": tls["kept_alive"]["own_p50_ms"] / plain["kept_alive"]["own_p50_ms"],
        "new_connection_p50": tls["new_connection"]["p50_ms"] / plain["new_connection"]["p50_ms"],
    }
    return result


def render(result: dict[str, Any]) -> str:
    """The docs section."""
    plain, tls, ratios = result["plaintext"], result["tls"], result["ratios"]

    def row(label: str, key: str, figure: str, ratio: str | None) -> str:
        shown = "-" if ratio is None else f"{ratios[ratio]:.2f}x"
        return f"| {label} | {plain[key][figure]:.2f} | {tls[key][figure]:.2f} | {shown} |"

    return "\n".join(
        [
            "### TLS on every hop",
            "",
            f"`{result['command']}` ({result['machine']}). Two stacks in one process, "
            "measured alternately: plaintext, and TLS on the REST listener with mutual TLS "
            "on every gRPC hop (REST shim, gateway, extractor, matcher; ECDSA P-256 "
            f"certificates of a throw-away CA). {result['requests']} searches on one "
            f"kept-alive connection and {result['connections']} on a new connection each, "
            f"per side, in {result['rounds']} alternating blocks; one client.",
            "",
            "| POST /v1.1/face/search | plaintext ms | TLS ms | TLS / plaintext |",
            "|---|---|---|---|",
            row("kept-alive connection, p50", "kept_alive", "p50_ms", "kept_alive_p50"),
            row("kept-alive connection, p99", "kept_alive", "p99_ms", None),
            row(
                "the service's own share (Server-Timing total - backend), p50",
                "kept_alive",
                "own_p50_ms",
                "own_p50",
            ),
            row(
                "new connection per request, p50", "new_connection", "p50_ms", "new_connection_p50"
            ),
            row("new connection per request, p99", "new_connection", "p99_ms", None),
            row("TCP connect (+ TLS handshake), p50", "handshake", "p50_ms", None),
            "",
            "Opening a connection costs the client (new-connection p50 - kept-alive p50) "
            f"{plain['connection_cost_p50_ms']:.2f} ms in plaintext and "
            f"{tls['connection_cost_p50_ms']:.2f} ms with TLS. The internal hops keep their "
            "connections open, so after the first request they pay TLS only per record.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="kept-alive searches per side")
    parser.add_argument(
        "--connections", type=int, default=100, help="searches on a new connection, per side"
    )
    parser.add_argument("--rounds", type=int, default=4, help="alternating blocks")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.requests < args.rounds or args.connections < args.rounds:
        parser.error("--requests and --connections must be at least --rounds (>= 1)")
    given = list(sys.argv[1:] if argv is None else argv)
    with (
        tempfile.TemporaryDirectory(prefix="facegate-tls-bench-") as scratch,
        ExitStack() as stacks,
    ):
        folder = Path(scratch)
        authority = Authority(folder / "ca")
        sides = {
            "plaintext": stacks.enter_context(_side("plaintext", folder, None)),
            "tls": stacks.enter_context(_side("tls", folder, authority)),
        }
        figures = measure(
            sides, requests=args.requests, connections=args.connections, rounds=args.rounds
        )
    result = {
        "schema": 1,
        "machine": machine_summary(),
        "command": " ".join(["python -m bench.tls_bench", *given]).strip(),
        "rounds": args.rounds,
        "requests": args.requests // args.rounds * args.rounds,
        "connections": args.connections // args.rounds * args.rounds,
        **figures,
    }
    publish(result, RESULTS, DOCS, SECTION, render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
