"""Fan a search out to every matcher shard and merge the shards' hits: the library the
gateway uses to make n shards answer like one.

Entries are placed by event id (matcher/placement.py), so every shard holds a disjoint
part of each gallery, and the global top-k of a probe is the top-k of the union of each
shard's top-k: a hit missing from its shard's k best has k better hits on that shard
alone. Merging therefore needs nothing but the hits: order by similarity (desc), ties by
event id (asc) — the order a single shard uses (matcher.proto, MatcherProbeResult) — and
keep k. Every shard computes the same canonical similarity (matcher/scan.py), so hits of
different shards compare as they are. An event id seen on two shards (possible only while
entries are being moved between shards) is kept once, with its best similarity.

A shard that fails makes the whole search fail, naming the shard: silently answering
from the other shards would return a plausible but wrong top-k (a missed match), which is
worse than an error the caller can retry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import grpc

from facegate.errors import ErrorType, FacegateError, backend_failure
from facegate.v1 import matcher_pb2, matcher_pb2_grpc

DEFAULT_TIMEOUT_S = 5.0
"""Deadline of a fanned-out call: far above a shard's search time (milliseconds), short
enough that a hung shard fails a request instead of holding it."""

R = TypeVar("R")


class HitLike(Protocol):
    """What merging needs of a hit: ``Hit`` and ``MatcherHit`` both qualify."""

    @property
    def event_id(self) -> str: ...

    @property
    def similarity(self) -> float: ...


H = TypeVar("H", bound=HitLike)


def merge_hits(lists: Sequence[Sequence[H]], k: int) -> list[H]:
    """One probe's hits from several shards -> its best ``k``, each event id once."""
    ordered = sorted((h for hits in lists for h in hits), key=lambda h: (-h.similarity, h.event_id))
    merged: list[H] = []
    seen: set[str] = set()
    for hit in ordered:
        if len(merged) == k:
            break
        if hit.event_id not in seen:
            seen.add(hit.event_id)
            merged.append(hit)
    return merged


def merge_results(per_shard: Sequence[Sequence[Sequence[H]]], k: int) -> list[list[H]]:
    """``per_shard[s][p]`` = shard s's hits for probe p -> the merged hits of each probe.

    Every shard must answer every probe (ValueError otherwise: the answers would be for
    different questions).
    """
    if not per_shard:
        raise ValueError("no shard results to merge")
    probes = len(per_shard[0])
    if any(len(results) != probes for results in per_shard):
        counts = [len(results) for results in per_shard]
        raise ValueError(f"shards answered different numbers of probes: {counts}")
    return [merge_hits([results[p] for results in per_shard], k) for p in range(probes)]


class FanOut:
    """Runs one call on every shard concurrently (gRPC futures: no thread per shard) and
    gathers the answers, failing as a whole if any shard fails."""

    def __init__(
        self,
        stubs: Sequence[matcher_pb2_grpc.MatcherStub],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not stubs:
            raise ValueError("a fan-out needs at least one shard")
        self.stubs = tuple(stubs)
        self.timeout_s = timeout_s

    @property
    def shard_count(self) -> int:
        return len(self.stubs)

    def search(
        self,
        request: matcher_pb2.MatcherSearchRequest,
        *,
        timeout_s: float | None = None,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> matcher_pb2.MatcherSearchResponse:
        """The request on every shard, merged: the answer one shard holding every entry
        would give. ``metadata`` goes with every shard's call (the request id)."""
        responses = self.call_all(
            "Search",
            lambda stub, timeout: stub.Search.future(request, timeout=timeout, metadata=metadata),
            timeout_s,
        )
        for index, response in enumerate(responses):
            if len(response.results) != len(request.probes):
                raise FacegateError(
                    ErrorType.UNAVAILABLE,
                    f"matcher shard {index} of {self.shard_count} answered "
                    f"{len(response.results)} probes of {len(request.probes)}.",
                )
        merged = merge_results(
            [[list(r.hits) for r in resp.results] for resp in responses], request.k
        )
        return matcher_pb2.MatcherSearchResponse(
            results=[matcher_pb2.MatcherProbeResult(hits=hits) for hits in merged]
        )

    def call_all(
        self,
        rpc: str,
        start: Callable[[matcher_pb2_grpc.MatcherStub, float], grpc.Future[R]],
        timeout_s: float | None = None,
    ) -> list[R]:
        """``start(stub, timeout)`` on every shard at once; the responses in shard order.

        For the calls that go to every shard (Search, DeleteSubject, ClearTagBit,
        DropGallery, gallery Stats). ``rpc`` names the call in errors. A failure is
        raised as :func:`~facegate.errors.backend_failure` words it for every backend: an
        InvalidRequest from a shard is the request's fault (every shard validates alike)
        and is raised as it is, a missed deadline is Timeout, anything else Unavailable,
        naming the shard. The other calls are cancelled then.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        futures = [start(stub, timeout) for stub in self.stubs]
        responses: list[R] = []
        try:
            for index, future in enumerate(futures):
                try:
                    responses.append(future.result())
                except grpc.RpcError as error:
                    raise self._shard_error(index, rpc, error) from None
        finally:
            if len(responses) < len(futures):
                for future in futures:
                    future.cancel()
        return responses

    def _shard_error(self, index: int, rpc: str, error: grpc.RpcError) -> FacegateError:
        return backend_failure(f"Matcher shard {index} of {self.shard_count} ({rpc})", error)
