"""The gateway benchmark's derived figures and its section of docs/benchmarks.md.

Pure functions of the measured figures (bench/gateway_bench.py documents their keys), so
that they can be tested without running a benchmark.
"""

from __future__ import annotations

from typing import Any

from bench.dataset import REPO_ROOT
from bench.report import replace_section

SECTION = "gateway"


def overheads(size: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, float]]:
    """What the REST shim and the gateway add to the extractor and matcher, at p50 with one
    client, and the REST search against its peers (gRPC, the floor) as ratios."""
    extract = size["floor"]["extract"]["p50_ms"]
    match = size["floor"]["matcher"]["p50_ms"]
    rest_search = size["rest"]["search"]["1"]["p50_ms"]
    grpc_search = size["grpc"]["search"]["p50_ms"]
    overhead = {
        "search_p50_ms": rest_search - extract - match,
        "search_grpc_p50_ms": grpc_search - extract - match,
        "rest_shim_p50_ms": rest_search - grpc_search,
        "verify_p50_ms": size["rest"]["verify"]["1"]["p50_ms"] - extract,
        # Per request (its latency minus its own extractor and matcher time, reported by
        # the service): no subtraction of medians measured at other moments.
        "search_paired_p50_ms": size["rest"]["search"]["1"].get("own_p50_ms"),
        "search_server_p50_ms": size["rest"]["search"]["1"].get("server_own_p50_ms"),
        "search_grpc_paired_p50_ms": size["grpc"]["search"].get("own_p50_ms"),
        "verify_paired_p50_ms": size["rest"]["verify"]["1"].get("own_p50_ms"),
    }
    ratios = {
        "rest_over_grpc_search_p50": rest_search / grpc_search,
        "rest_over_floor_search_p50": rest_search / (extract + match),
    }
    return overhead, ratios


def target(sizes: dict[str, Any], limit: float) -> dict[str, Any]:
    """The search overhead target, judged on the worst size (None when none ran): the
    shim-plus-gateway time per request as the service measures it (total - backend)
    where reported, else per request from the client, else the difference of medians."""
    if not sizes:
        return {"met": None, "value": None, "limit": limit, "size": None}

    def judged(size: dict[str, Any]) -> float:
        over = size["overhead"]
        for key in ("search_server_p50_ms", "search_paired_p50_ms", "search_p50_ms"):
            if over.get(key) is not None:
                return float(over[key])
        raise ValueError("no search overhead")

    worst = max(sizes.values(), key=judged)
    value = judged(worst)
    return {"met": value <= limit, "value": value, "limit": limit, "size": worst["n"]}


def _level(level: dict[str, Any]) -> str:
    return f"{level['p50_ms']:.1f} / {level['p99_ms']:.1f} | {level['rps']:.1f}"


def _failures(levels: list[dict[str, Any]]) -> int:
    return sum(int(level["failures"]) for level in levels)


def size_section(size: dict[str, Any]) -> str:
    """The tables of one gallery size."""
    floor, over, ratios = size["floor"], size["overhead"], size["ratios"]
    lines = [
        f"#### {size['n']:,} enrolled events ({size['synthetic']:,} synthetic, "
        f"{size['real']} real)",
        "",
        f"Enrolment of this size's new rows: store {size['enrol']['store_s']:.1f} s, matcher "
        f"{size['enrol']['matcher_s']:.1f} s; restart (graph completed) "
        f"{size['enrol']['restart_s']:.1f} s. Probes whose search answers their own subject "
        f"first: {size['genuine_top1']:.0%}.",
        "",
        "| call | clients | p50 / p99 ms | requests/s |",
        "|---|---|---|---|",
    ]
    for name, label in (("search", "REST POST /v1.1/face/search"), ("verify", "REST verify")):
        for clients, level in size["rest"][name].items():
            lines.append(f"| {label} | {clients} | {_level(level)} |")
    for name, label in (("search", "gRPC Face.Search"), ("verify", "gRPC Face.VerifySubject")):
        lines.append(f"| {label} | 1 | {_level(size['grpc'][name])} |")
    for name, label in (("extract", "floor: extractor Extract"), ("matcher", "floor: matcher")):
        lines.append(
            f"| {label} | 1 | {floor[name]['p50_ms']:.2f} / {floor[name]['p99_ms']:.2f} | - |"
        )
    levels = [*size["rest"]["search"].values(), *size["rest"]["verify"].values()]
    levels += list(size["grpc"].values())
    lines += [
        "",
        f"Overhead at p50, one client: search {over['search_p50_ms']:.2f} ms over the "
        f"extractor + matcher floor (gRPC Face.Search {over['search_grpc_p50_ms']:.2f} ms, so "
        f"the REST shim's share is {over['rest_shim_p50_ms']:.2f} ms); verify "
        f"{over['verify_p50_ms']:.2f} ms over the extractor. REST search / gRPC search "
        f"{ratios['rest_over_grpc_search_p50']:.3f}x, / floor "
        f"{ratios['rest_over_floor_search_p50']:.3f}x. Failed requests: {_failures(levels)}.",
    ]
    if over.get("search_paired_p50_ms") is not None:
        lines += [
            "",
            "Per request (latency minus that request's own extractor and matcher time, which "
            "the gateway reports: REST `Server-Timing: backend`, gRPC trailing metadata "
            f"`facegate-backend-ms`), p50: REST search {over['search_paired_p50_ms']:.2f} ms, "
            f"gRPC search {_ms(over.get('search_grpc_paired_p50_ms'))}, REST verify "
            f"{_ms(over.get('verify_paired_p50_ms'))}. Measured by the service itself "
            "(Server-Timing total - backend: from the request's arrival to its answer, "
            f"without the client and the loopback): REST search "
            f"{_ms(over.get('search_server_p50_ms'))}.",
        ]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def cheap_section(cheap: dict[str, Any], cores: int) -> str:
    lines = [
        f"Cheap endpoint, {cheap['endpoint']} ({cheap['tags']} tags, {cheap['size']:,}-event "
        f"gallery), {cores} server cores:",
        "",
        "| clients | p50 / p99 ms | requests/s | requests/s per core |",
        "|---|---|---|---|",
    ]
    for clients, level in cheap["levels"].items():
        lines.append(f"| {clients} | {_level(level)} | {level['rps_per_core']:.1f} |")
    transport = cheap["transport"]
    lines += [
        "",
        f"HTTP round trip alone (GET /openapi.json: no signature check, no gateway call; one "
        f"client): p50 {transport['p50_ms']:.2f} ms, p99 {transport['p99_ms']:.2f} ms.",
    ]
    return "\n".join(lines)


def _pair_cell(pair: dict[str, float | None], digits: int = 2) -> str:
    current, baseline, ratio = pair["current"], pair["baseline"], pair["ratio"]
    if current is None or baseline is None:
        return "- | - | -"
    shown = "-" if ratio is None else f"{ratio:.2f}x"
    return f"{current:.{digits}f} | {baseline:.{digits}f} | {shown}"


def rest_cpu_section(result: dict[str, Any]) -> str:
    """REST CPU per request at each level (and against the baseline revision, when one
    ran): what the REST process's own threads spend on a request."""
    lines = [
        "REST process CPU per request (ms; " + result.get("rest_cpu_note", "") + "):",
        "",
    ]
    compared = result.get("comparison")
    if compared is None:
        lines += ["| size | call | clients | REST CPU ms |", "|---|---|---|---|"]
        for n, size in result["sizes"].items():
            for name in ("search", "verify"):
                for clients, level in size["rest"][name].items():
                    cpu = level.get("rest_cpu_ms_per_request")
                    lines.append(f"| {int(n):,} | {name} | {clients} | {_ms(cpu)} |")
        return "\n".join(lines)
    baseline = result["baseline"]
    lines[0] = (
        f"Against revision {baseline['revision']} (`--baseline {baseline['ref']}`), same run "
        f"({result['interleaving']}). " + lines[0]
    )
    lines += [
        "| size | figure | this tree | baseline | ratio |",
        "|---|---|---|---|---|",
    ]
    for n, size in compared.items():
        if not n.isdigit():
            continue
        label = f"{int(n):,}"
        lines.append(
            f"| {label} | search overhead p50 ms (Server-Timing total - backend) | "
            f"{_pair_cell(size['search_server_p50_ms'])} |"
        )
        lines.append(
            f"| {label} | search overhead p50 ms (per request, client side) | "
            f"{_pair_cell(size['search_paired_p50_ms'])} |"
        )
        for name, levels in size["rest_cpu_ms_per_request"].items():
            for clients, pair in levels.items():
                lines.append(
                    f"| {label} | REST CPU ms/request, {name}, {clients} clients | "
                    f"{_pair_cell(pair, 3)} |"
                )
    for clients, pair in compared.get("cheap_rest_cpu_ms_per_request", {}).items():
        lines.append(
            f"| - | REST CPU ms/request, GET /v1.1/tags, {clients} clients | "
            f"{_pair_cell(pair, 3)} |"
        )
    return "\n".join(lines)


def render(result: dict[str, Any]) -> str:
    """The generated section's text."""
    requests = ", ".join(f"{count} with {c}" for c, count in result["requests"].items())
    synth = result["synthetic"]
    parts = [
        "### Gateway (REST API end to end)",
        "",
        f"`{result['command']}` ({result['machine']}; revision "
        f"{result.get('revision', '-')}). Every service in one process "
        f"(extractor, matcher shard, gateway, REST shim; SQLite store; rate limit off). "
        f"Synthetic people: {synth['templates_per_subject']} templates each of "
        f"{synth['model_id']} ({synth['dim']}-d, bench/synthetic.py statistics), written "
        f"through the store and the matcher as the gateway does; real people registered "
        f"through REST, probed with another photo of theirs ({len(result['probes'])} "
        f"probes in rotation). Measured requests per level: {requests} clients, after "
        f"{result['warmup']} unmeasured. Clients: {result['load_generator']}; every "
        f"request signed with SigV4 before its timer starts.",
        "",
    ]
    for size in result["sizes"].values():
        parts += [size_section(size), ""]
    parts += [cheap_section(result["cheap"], result["server_cores"]), ""]
    parts += [rest_cpu_section(result), ""]
    t = result["targets"]["overhead_p50_ms"]
    verdict = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
    value = "-" if t["value"] is None else f"{t['value']:.2f} ms"
    parts.append(
        f"Target: REST search overhead over extractor + matcher <= {t['limit']:g} ms at p50, "
        "per request as the service measures it (Server-Timing total - backend) "
        f"(worst size: {value}): {verdict}."
    )
    return "\n".join(parts)


def write_docs(result: dict[str, Any]) -> None:
    replace_section(REPO_ROOT / "docs" / "benchmarks.md", SECTION, render(result))
