"""The gateway's client of the n matcher shards: implements
:class:`gateway.ports.TemplateIndex`. Writes go to the shard that holds the event
(placement by hash), searches and gallery-wide changes to all of them; every gRPC
failure becomes a :class:`FacegateError` naming the shard (``backend_failure``)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from facegate.errors import backend_failure
from facegate.logs import backend_call, request_metadata
from facegate.v1 import matcher_pb2, matcher_pb2_grpc
from gateway.adapters.convert import template_message
from gateway.faces import Template
from gateway.ports import IndexEntry, IndexHit
from matcher.merge import FanOut
from matcher.placement import split_by_shard


def entry_message(entry: IndexEntry) -> matcher_pb2.MatcherEntry:
    return matcher_pb2.MatcherEntry(
        gallery_id=entry.gallery_id,
        event_id=entry.event_id,
        subject_id=entry.subject_id,
        tag_mask=entry.tag_mask,
        template=template_message(entry.template),
    )


class MatcherClient:
    def __init__(self, channels: Sequence[grpc.Channel], *, timeout_s: float) -> None:
        self._stubs = [matcher_pb2_grpc.MatcherStub(channel) for channel in channels]
        self._fan_out = FanOut(self._stubs, timeout_s=timeout_s)
        self._timeout_s = timeout_s

    def upsert(self, entries: Sequence[IndexEntry]) -> None:
        for index, group in enumerate(
            split_by_shard(entries, lambda e: e.event_id, len(self._stubs))
        ):
            if group:
                request = matcher_pb2.MatcherUpsertRequest(
                    entries=[entry_message(entry) for entry in group]
                )
                self._on_shard(index, "Upsert", request)

    def delete(self, gallery_id: str, event_ids: Sequence[str]) -> None:
        for index, group in enumerate(split_by_shard(event_ids, str, len(self._stubs))):
            if group:
                request = matcher_pb2.MatcherDeleteRequest(gallery_id=gallery_id, event_ids=group)
                self._on_shard(index, "Delete", request)

    def clear_tag_bit(self, gallery_id: str, bit: int) -> None:
        request = matcher_pb2.MatcherClearTagBitRequest(gallery_id=gallery_id, bit=bit)
        metadata = request_metadata()
        self._fan_out.call_all(
            "ClearTagBit",
            lambda stub, timeout: stub.ClearTagBit.future(
                request, timeout=timeout, metadata=metadata
            ),
        )

    def drop_gallery(self, gallery_id: str) -> None:
        request = matcher_pb2.MatcherDropGalleryRequest(gallery_id=gallery_id)
        metadata = request_metadata()
        self._fan_out.call_all(
            "DropGallery",
            lambda stub, timeout: stub.DropGallery.future(
                request, timeout=timeout, metadata=metadata
            ),
        )

    def search(
        self, gallery_id: str, probe: Template, *, k: int, min_similarity: float, tag_mask: int
    ) -> list[IndexHit]:
        request = matcher_pb2.MatcherSearchRequest(
            gallery_id=gallery_id,
            probes=[template_message(probe)],
            k=k,
            min_similarity=min_similarity,
            tag_mask=tag_mask,
        )
        with backend_call():
            response = self._fan_out.search(request, metadata=request_metadata())
        return [
            IndexHit(hit.event_id, hit.subject_id, hit.similarity)
            for hit in response.results[0].hits
        ]

    def _on_shard(self, index: int, rpc: str, request: object) -> None:
        try:
            with backend_call():
                getattr(self._stubs[index], rpc)(
                    request, timeout=self._timeout_s, metadata=request_metadata()
                )
        except grpc.RpcError as error:
            raise backend_failure(f"Matcher shard {index}", error) from None
