"""The Matcher gRPC service: translates requests to :class:`Shard` calls and back.

The servicer decides nothing: every check (ids, dimensions, NaN or zero vectors, k,
min_similarity, tag bits, model ids) is the shard's, which raises ``FacegateError``
(InvalidRequest) for bad input; the shared interceptor (facegate/grpcserver.py) turns
that into INVALID_ARGUMENT with the ``facegate-error-type`` trailer. So the shard behaves
the same whether called over gRPC or in-process (tests, benchmarks).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from facegate.grpcserver import add_health_and_reflection, bind, new_server
from facegate.settings import Settings
from facegate.v1 import matcher_pb2, matcher_pb2_grpc
from matcher.convert import (
    clear_tag_bit_request_from_proto,
    delete_request_from_proto,
    delete_subject_request_from_proto,
    drop_gallery_request_from_proto,
    search_request_from_proto,
    search_response_to_proto,
    snapshot_response_to_proto,
    stats_request_from_proto,
    stats_to_proto,
    upsert_request_from_proto,
    write_response_to_proto,
)
from matcher.shard import Shard, ShardConfig

# Upserts carry batches of templates (a 512-d template is ~2 KiB on the wire): room for
# batches of ~30,000 per request, far above what the gateway sends.
MAX_MESSAGE_BYTES = 64 << 20


@dataclass(frozen=True)
class MatcherDeps:
    shard: Shard


class MatcherServicer(matcher_pb2_grpc.MatcherServicer):
    def __init__(self, shard: Shard) -> None:
        self.shard = shard

    def Upsert(
        self, request: matcher_pb2.MatcherUpsertRequest, context: grpc.ServicerContext
    ) -> matcher_pb2.MatcherUpsertResponse:
        sequence = self.shard.upsert(upsert_request_from_proto(request).entries)
        return write_response_to_proto(matcher_pb2.MatcherUpsertResponse, sequence)

    def Delete(
        self, request: matcher_pb2.MatcherDeleteRequest, context: grpc.ServicerContext
    ) -> matcher_pb2.MatcherDeleteResponse:
        delete = delete_request_from_proto(request)
        sequence = self.shard.delete(delete.gallery_id, delete.event_ids)
        return write_response_to_proto(matcher_pb2.MatcherDeleteResponse, sequence)

    def DeleteSubject(
        self, request: matcher_pb2.MatcherDeleteSubjectRequest, context: grpc.ServicerContext
    ) -> matcher_pb2.MatcherDeleteSubjectResponse:
        delete = delete_subject_request_from_proto(request)
        sequence = self.shard.delete_subject(delete.gallery_id, delete.subject_id)
        return write_response_to_proto(matcher_pb2.MatcherDeleteSubjectResponse, sequence)

    def ClearTagBit(
        self, request: matcher_pb2.MatcherClearTagBitRequest, context: grpc.ServicerContext
    ) -> matcher_pb2.MatcherClearTagBitResponse:
        clear = clear_tag_bit_request_from_proto(request)
        sequence = self.shard.clear_tag_bit(clear.gallery_id, clear.bit)
        return write_response_to_proto(matcher_pb2.MatcherClearTagBitResponse, sequence)

    def DropGallery(
        self, request: matcher_pb2.MatcherDropGalleryRequest, context: grpc.ServicerContext
    ) -> matcher_pb2.MatcherDropGalleryResponse:
        drop = drop_gallery_request_from_proto(request)
        sequence = self.shard.drop_gallery(drop.gallery_id)
        return write_response_to_proto(matcher_pb2.MatcherDropGalleryResponse, sequence)

    def Search(
        self, request: matcher_pb2.MatcherSearchRequest, context: grpc.ServicerContext
    ) -> matcher_pb2.MatcherSearchResponse:
        query = search_request_from_proto(request)
        results = self.shard.search(
            query.gallery_id,
            query.probes,
            k=query.k,
            min_similarity=query.min_similarity,
            tag_mask=query.tag_mask,
        )
        return search_response_to_proto(results)

    def Stats(
        self, request: matcher_pb2.MatcherStatsRequest, context: grpc.ServicerContext
    ) -> matcher_pb2.MatcherStatsResponse:
        return stats_to_proto(self.shard.stats(stats_request_from_proto(request)))

    def Snapshot(
        self, request: matcher_pb2.MatcherSnapshotRequest, context: grpc.ServicerContext
    ) -> matcher_pb2.MatcherSnapshotResponse:
        sequence, path = self.shard.snapshot()
        return snapshot_response_to_proto(sequence, path)


def shard_config(settings: Settings) -> ShardConfig:
    """The shard's configuration from the settings; ValueError (a configuration error,
    exit 2 from the CLI) for an impossible shard index or count."""
    matcher = settings.matcher
    if matcher.shard_count < 1:
        raise ValueError(
            f"FACEGATE_MATCHER_SHARD_COUNT must be at least 1, not {matcher.shard_count}"
        )
    if matcher.index.graph_segments < 1:
        raise ValueError(
            "FACEGATE_MATCHER_GRAPH_SEGMENTS must be at least 1, "
            f"not {matcher.index.graph_segments}"
        )
    if not 0 <= matcher.shard_index < matcher.shard_count:
        raise ValueError(
            f"FACEGATE_MATCHER_SHARD_INDEX must be 0..{matcher.shard_count - 1}, "
            f"not {matcher.shard_index}"
        )
    return ShardConfig(
        data_dir=settings.matcher_dir,
        index=matcher.shard_index,
        count=matcher.shard_count,
        params=matcher.index,
        snapshot_after_records=matcher.snapshot_after_records,
        build_threads=matcher.build_threads,
    )


def open_shard(settings: Settings) -> Shard:
    """Recover the shard the settings describe (it needs no model file or manifest: a
    shard compares templates, and the gallery's first entry sets their model)."""
    return Shard.open(shard_config(settings))


class ShardCollector(Collector):
    """Per-gallery template counts of the shards this process serves, read at scrape
    time (nothing to keep in step on writes)."""

    def __init__(self) -> None:
        self.shards: weakref.WeakSet[Shard] = weakref.WeakSet()

    def collect(self) -> Iterator[Metric]:
        templates = GaugeMetricFamily(
            "facegate_matcher_templates",
            "Live templates per gallery on this shard.",
            labels=["shard", "gallery"],
        )
        deleted = GaugeMetricFamily(
            "facegate_matcher_deleted_templates",
            "Deleted templates not yet compacted away, per gallery on this shard.",
            labels=["shard", "gallery"],
        )
        memory = GaugeMetricFamily(
            "facegate_matcher_memory_bytes",
            "Memory the shard's galleries hold (their own estimate).",
            labels=["shard"],
        )
        for shard in list(self.shards):
            index = str(shard.config.index)
            stats = shard.gallery_stats()
            for gallery_id, part in stats.items():
                templates.add_metric([index, gallery_id], part.count)
                deleted.add_metric([index, gallery_id], part.deleted)
            memory.add_metric([index], sum(p.memory_bytes for p in stats.values()))
        yield from (templates, deleted, memory)


SHARD_COLLECTOR = ShardCollector()
REGISTRY.register(SHARD_COLLECTOR)


def create_server(settings: Settings, deps: MatcherDeps) -> tuple[grpc.Server, int]:
    """The Matcher server, bound but not started (``settings.matcher_port`` 0 = any)."""
    SHARD_COLLECTOR.shards.add(deps.shard)
    server = new_server(workers=settings.grpc_workers, max_message_bytes=MAX_MESSAGE_BYTES)
    matcher_pb2_grpc.add_MatcherServicer_to_server(MatcherServicer(deps.shard), server)
    service_name = matcher_pb2.DESCRIPTOR.services_by_name["Matcher"].full_name
    add_health_and_reflection(server, [service_name])
    port = bind(server, settings.host, settings.matcher_port, settings.tls)
    return server, port
