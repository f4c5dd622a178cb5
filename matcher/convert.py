"""Explicit conversions between the matcher's domain types and its protobuf messages,
one function per message and direction.

Written out field by field (no reflection) so a reader sees every mapping, and
tests/unit/matcher/test_convert.py walks the message descriptors so that a field added to
matcher.proto without a converter fails a test instead of being dropped silently.

Conversions do not validate: the shard validates every request (matcher/writes.py,
matcher/shard.py), whether it arrives over gRPC or from Python, so there is one place
that decides what is valid. ``*_from_proto`` only changes representation (repeated
floats become a float32 array, unset optionals become ``None``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from facegate.templates import template_to_proto
from facegate.v1 import common_pb2, matcher_pb2
from matcher.gallery import Hit
from matcher.params import IndexParams
from matcher.results import ShardStats
from matcher.writes import (
    ClearTagBit,
    Delete,
    DeleteSubject,
    DropGallery,
    ShardEntry,
    Upsert,
    Write,
    WriteKind,
)

Probe = tuple[str, np.ndarray]
"""A probe template: (model id, embedding)."""


@dataclass(frozen=True)
class SearchQuery:
    """One Search request in domain form (what :meth:`Shard.search` takes)."""

    gallery_id: str
    probes: tuple[Probe, ...]
    k: int
    min_similarity: float
    tag_mask: int = 0
    """0 = no filter; else entries sharing a bit with it (OR)."""


# ------------------------------------------------------------------ templates, entries


def template_from_proto(message: common_pb2.Template) -> Probe:
    """(model id, float32 embedding); an unset template gives ("", empty vector), which
    the shard refuses with a message."""
    return message.model_id, np.asarray(message.embedding, dtype=np.float32)


def entry_to_proto(entry: ShardEntry) -> matcher_pb2.MatcherEntry:
    return matcher_pb2.MatcherEntry(
        gallery_id=entry.gallery_id,
        event_id=entry.event_id,
        subject_id=entry.subject_id,
        template=template_to_proto(entry.model_id, entry.vector),
        tag_mask=entry.tag_mask,
    )


def entry_from_proto(message: matcher_pb2.MatcherEntry) -> ShardEntry:
    model_id, vector = template_from_proto(message.template)
    return ShardEntry(
        gallery_id=message.gallery_id,
        event_id=message.event_id,
        subject_id=message.subject_id,
        model_id=model_id,
        vector=vector,
        tag_mask=message.tag_mask,
    )


# ------------------------------------------------------------------ write requests


def upsert_request_to_proto(upsert: Upsert) -> matcher_pb2.MatcherUpsertRequest:
    return matcher_pb2.MatcherUpsertRequest(entries=[entry_to_proto(e) for e in upsert.entries])


def upsert_request_from_proto(message: matcher_pb2.MatcherUpsertRequest) -> Upsert:
    return Upsert(tuple(entry_from_proto(e) for e in message.entries))


def delete_request_to_proto(delete: Delete) -> matcher_pb2.MatcherDeleteRequest:
    return matcher_pb2.MatcherDeleteRequest(
        gallery_id=delete.gallery_id, event_ids=list(delete.event_ids)
    )


def delete_request_from_proto(message: matcher_pb2.MatcherDeleteRequest) -> Delete:
    return Delete(message.gallery_id, tuple(message.event_ids))


def delete_subject_request_to_proto(
    delete: DeleteSubject,
) -> matcher_pb2.MatcherDeleteSubjectRequest:
    return matcher_pb2.MatcherDeleteSubjectRequest(
        gallery_id=delete.gallery_id, subject_id=delete.subject_id
    )


def delete_subject_request_from_proto(
    message: matcher_pb2.MatcherDeleteSubjectRequest,
) -> DeleteSubject:
    return DeleteSubject(message.gallery_id, message.subject_id)


def clear_tag_bit_request_to_proto(clear: ClearTagBit) -> matcher_pb2.MatcherClearTagBitRequest:
    return matcher_pb2.MatcherClearTagBitRequest(gallery_id=clear.gallery_id, bit=clear.bit)


def clear_tag_bit_request_from_proto(message: matcher_pb2.MatcherClearTagBitRequest) -> ClearTagBit:
    return ClearTagBit(message.gallery_id, message.bit)


def drop_gallery_request_to_proto(drop: DropGallery) -> matcher_pb2.MatcherDropGalleryRequest:
    return matcher_pb2.MatcherDropGalleryRequest(gallery_id=drop.gallery_id)


def drop_gallery_request_from_proto(message: matcher_pb2.MatcherDropGalleryRequest) -> DropGallery:
    return DropGallery(message.gallery_id)


# ------------------------------------------------------------------ write responses

# The five write responses are one shape: the shard's sequence number after the write.
WriteResponse = TypeVar(
    "WriteResponse",
    matcher_pb2.MatcherUpsertResponse,
    matcher_pb2.MatcherDeleteResponse,
    matcher_pb2.MatcherDeleteSubjectResponse,
    matcher_pb2.MatcherClearTagBitResponse,
    matcher_pb2.MatcherDropGalleryResponse,
)


def write_response_to_proto(response_type: type[WriteResponse], sequence: int) -> WriteResponse:
    """Any of the five write responses, carrying ``sequence``."""
    return response_type(sequence=sequence)


def write_response_from_proto(message: WriteResponse) -> int:
    """The sequence number of any of the five write responses."""
    return message.sequence


# ------------------------------------------------------------------ search


def search_request_to_proto(query: SearchQuery) -> matcher_pb2.MatcherSearchRequest:
    return matcher_pb2.MatcherSearchRequest(
        gallery_id=query.gallery_id,
        probes=[template_to_proto(model_id, vector) for model_id, vector in query.probes],
        k=query.k,
        min_similarity=query.min_similarity,
        tag_mask=query.tag_mask,
    )


def search_request_from_proto(message: matcher_pb2.MatcherSearchRequest) -> SearchQuery:
    return SearchQuery(
        gallery_id=message.gallery_id,
        probes=tuple(template_from_proto(p) for p in message.probes),
        k=message.k,
        min_similarity=message.min_similarity,
        tag_mask=message.tag_mask,
    )


def hit_to_proto(hit: Hit) -> matcher_pb2.MatcherHit:
    return matcher_pb2.MatcherHit(
        event_id=hit.event_id,
        subject_id=hit.subject_id,
        similarity=hit.similarity,
    )


def hit_from_proto(message: matcher_pb2.MatcherHit) -> Hit:
    return Hit(
        event_id=message.event_id,
        subject_id=message.subject_id,
        similarity=message.similarity,
    )


def probe_result_to_proto(hits: Sequence[Hit]) -> matcher_pb2.MatcherProbeResult:
    return matcher_pb2.MatcherProbeResult(hits=[hit_to_proto(h) for h in hits])


def probe_result_from_proto(message: matcher_pb2.MatcherProbeResult) -> list[Hit]:
    return [hit_from_proto(h) for h in message.hits]


def search_response_to_proto(
    results: Sequence[Sequence[Hit]],
) -> matcher_pb2.MatcherSearchResponse:
    return matcher_pb2.MatcherSearchResponse(results=[probe_result_to_proto(r) for r in results])


def search_response_from_proto(
    message: matcher_pb2.MatcherSearchResponse,
) -> list[list[Hit]]:
    return [probe_result_from_proto(r) for r in message.results]


# ------------------------------------------------------------------ stats, snapshot


def stats_request_to_proto(gallery_id: str | None) -> matcher_pb2.MatcherStatsRequest:
    return matcher_pb2.MatcherStatsRequest(gallery_id=gallery_id)


def stats_request_from_proto(message: matcher_pb2.MatcherStatsRequest) -> str | None:
    """The gallery asked about; ``None`` (field not set) = the whole shard. An empty
    string that *is* set names a gallery, and so matches none."""
    return message.gallery_id if message.HasField("gallery_id") else None


def params_to_proto(params: IndexParams) -> matcher_pb2.HnswParameters:
    return matcher_pb2.HnswParameters(
        m=params.m,
        ef_construction=params.ef_construction,
        ef_search=params.ef_search,
        graph_segments=params.graph_segments,
    )


def params_from_proto(message: matcher_pb2.HnswParameters) -> IndexParams:
    """The HNSW parameters; the shard's planner settings (``exact_factor`` and the like) are
    not on the wire and keep their defaults."""
    return IndexParams(
        m=message.m,
        ef_construction=message.ef_construction,
        ef_search=message.ef_search,
        graph_segments=message.graph_segments,
    )


def stats_to_proto(stats: ShardStats) -> matcher_pb2.MatcherStatsResponse:
    return matcher_pb2.MatcherStatsResponse(
        shard_index=stats.shard_index,
        shard_count=stats.shard_count,
        applied_sequence=stats.applied_sequence,
        count=stats.count,
        deleted=stats.deleted,
        memory_bytes=stats.memory_bytes,
        index_parameters=params_to_proto(stats.params),
    )


def stats_from_proto(message: matcher_pb2.MatcherStatsResponse) -> ShardStats:
    return ShardStats(
        shard_index=message.shard_index,
        shard_count=message.shard_count,
        applied_sequence=message.applied_sequence,
        count=message.count,
        deleted=message.deleted,
        memory_bytes=message.memory_bytes,
        params=params_from_proto(message.index_parameters),
    )


def snapshot_response_to_proto(sequence: int, path: Path) -> matcher_pb2.MatcherSnapshotResponse:
    return matcher_pb2.MatcherSnapshotResponse(sequence=sequence, path=str(path))


def snapshot_response_from_proto(
    message: matcher_pb2.MatcherSnapshotResponse,
) -> tuple[int, Path]:
    return message.sequence, Path(message.path)


# ------------------------------------------------------------------ write-ahead log

# In the log each write is its rpc's request message (proto/ is the one serialisation
# format), tagged with a kind byte.


def write_to_log(write: Write) -> tuple[WriteKind, bytes]:
    if isinstance(write, Upsert):
        return WriteKind.UPSERT, upsert_request_to_proto(write).SerializeToString()
    if isinstance(write, Delete):
        return WriteKind.DELETE, delete_request_to_proto(write).SerializeToString()
    if isinstance(write, DeleteSubject):
        return WriteKind.DELETE_SUBJECT, delete_subject_request_to_proto(write).SerializeToString()
    if isinstance(write, ClearTagBit):
        return WriteKind.CLEAR_TAG_BIT, clear_tag_bit_request_to_proto(write).SerializeToString()
    return WriteKind.DROP_GALLERY, drop_gallery_request_to_proto(write).SerializeToString()


def write_from_log(kind: int, payload: bytes) -> Write:
    if kind == WriteKind.UPSERT:
        return upsert_request_from_proto(matcher_pb2.MatcherUpsertRequest.FromString(payload))
    if kind == WriteKind.DELETE:
        return delete_request_from_proto(matcher_pb2.MatcherDeleteRequest.FromString(payload))
    if kind == WriteKind.DELETE_SUBJECT:
        message = matcher_pb2.MatcherDeleteSubjectRequest.FromString(payload)
        return delete_subject_request_from_proto(message)
    if kind == WriteKind.CLEAR_TAG_BIT:
        clear = matcher_pb2.MatcherClearTagBitRequest.FromString(payload)
        return clear_tag_bit_request_from_proto(clear)
    if kind == WriteKind.DROP_GALLERY:
        drop = matcher_pb2.MatcherDropGalleryRequest.FromString(payload)
        return drop_gallery_request_from_proto(drop)
    raise ValueError(f"unknown write kind {kind} in the log")
