"""The gateway's clients of its internal services: one extractor, n matcher shards.

Both turn every gRPC failure into a :class:`FacegateError`: the errors the services
raise on purpose (NoFace, PoorQuality, ...) keep their type; a service that cannot be
reached, or misses the deadline, becomes Unavailable or Timeout, never a bare RpcError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
import numpy as np

from extractor.scores import ScoreMap
from facegate.errors import backend_failure, image_too_large
from facegate.logs import backend_call, request_metadata
from facegate.v1 import (
    common_pb2,
    extractor_pb2,
    extractor_pb2_grpc,
    matcher_pb2,
    matcher_pb2_grpc,
)
from matcher.merge import FanOut
from matcher.placement import split_by_shard

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def open_channel(address: str) -> grpc.Channel:
    # A restarted service should be used again within a couple of seconds, not after
    # gRPC's default reconnect backoff (which grows to two minutes).
    return grpc.insecure_channel(
        address,
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
            # A name resolving to several pods (a headless Service: dns:///host:port)
            # spreads calls over all of them instead of pinning one connection.
            ("grpc.lb_policy_name", "round_robin"),
        ],
    )


@dataclass(frozen=True)
class Face:
    """One face of a probe or registration image: its NEC attributes and template."""

    attributes: common_pb2.FaceAttributes
    template: common_pb2.Template

    @property
    def vector(self) -> np.ndarray:
        return np.asarray(self.template.embedding, dtype=np.float32)


class ExtractorClient:
    def __init__(self, channel: grpc.Channel, *, timeout_s: float, max_image_bytes: int) -> None:
        self._stub = extractor_pb2_grpc.ExtractorStub(channel)
        self._timeout_s = timeout_s
        # The extractor refuses larger messages at the transport, which would read as
        # "extractor unavailable"; the caller should hear that the image is too large.
        self._max_image_bytes = max_image_bytes
        self._score_map: ScoreMap | None = None

    def _call(self, rpc: str, request: object) -> object:
        try:
            with backend_call():
                return getattr(self._stub, rpc)(
                    request, timeout=self._timeout_s, metadata=request_metadata()
                )
        except grpc.RpcError as error:
            raise backend_failure("The extractor", error) from None

    def enrolment_face(self, image: bytes, *, min_quality: float | None) -> Face:
        """The face to enrol: the most prominent one, which no other face may rival in
        size (NoFace / MultipleFaces / PoorQuality otherwise)."""
        return self._faces([image], extractor_pb2.FACE_SELECTION_SINGLE, min_quality)[0]

    def probe_face(self, image: bytes) -> Face:
        """The most prominent face of a probe (NoFace when there is none)."""
        return self.probe_faces([image])[0]

    def probe_faces(self, images: Sequence[bytes]) -> list[Face]:
        """:meth:`probe_face` of several images, extracted concurrently."""
        return self._faces(images, extractor_pb2.FACE_SELECTION_PROMINENT, None)

    def _faces(
        self,
        images: Sequence[bytes],
        selection: extractor_pb2.FaceSelection.ValueType,
        min_quality: float | None,
    ) -> list[Face]:
        requests = []
        for image in images:
            if len(image) > self._max_image_bytes:
                raise image_too_large(len(image), self._max_image_bytes)
            request = extractor_pb2.ExtractorExtractRequest(
                image=image, selection=selection, with_templates=True
            )
            if min_quality is not None:
                request.min_quality = min_quality
            requests.append(request)
        metadata = request_metadata()
        faces: list[Face] = []
        with backend_call():
            pending = [
                self._stub.Extract.future(r, timeout=self._timeout_s, metadata=metadata)
                for r in requests
            ]
            try:
                for future in pending:
                    try:
                        response = future.result()
                    except grpc.RpcError as error:
                        raise backend_failure("The extractor", error) from None
                    face = response.faces[0]
                    faces.append(Face(face.attributes, face.template))
            finally:
                for future in pending:
                    future.cancel()
        return faces

    def all_faces(self, image: bytes, *, limit: int) -> list[common_pb2.FaceAttributes]:
        """Attributes of up to ``limit`` faces, largest first (no templates)."""
        request = extractor_pb2.ExtractorExtractRequest(
            image=image, limit=limit, selection=extractor_pb2.FACE_SELECTION_ALL
        )
        response = self._call("Extract", request)
        assert isinstance(response, extractor_pb2.ExtractorExtractResponse)
        return [face.attributes for face in response.faces]

    def score_map(self) -> ScoreMap:
        """The recognizer's similarity -> score map (asked once: it is fixed per model)."""
        if self._score_map is None:
            info = self._call("Info", extractor_pb2.ExtractorInfoRequest())
            assert isinstance(info, extractor_pb2.ExtractorInfoResponse)
            knots = [(knot.similarity, knot.score) for knot in info.score_calibration]
            self._score_map = ScoreMap(knots)
        return self._score_map

    def best_score(self, probe: Face, references: Sequence[np.ndarray]) -> int:
        """The highest score of the probe against references of the same model."""
        if not references:
            raise ValueError("no references")
        similarities = np.stack(references) @ probe.vector
        return self.score_map().score(float(similarities.max()))


@dataclass(frozen=True)
class ScoredHit:
    """An event a search found, with its score on the recognizer's map."""

    event_id: str
    subject_id: str
    score: int


class MatcherClient:
    """The n matcher shards as one: writes go to the shard that holds the event,
    searches and gallery-wide changes to all of them.

    The shards compare cosine similarities only; ``score_map`` (the extractor's, asked
    when a search needs it) turns a search's score threshold into a similarity and its
    hits' similarities into scores.
    """

    def __init__(
        self,
        channels: Sequence[grpc.Channel],
        *,
        timeout_s: float,
        score_map: Callable[[], ScoreMap],
    ) -> None:
        self._stubs = [matcher_pb2_grpc.MatcherStub(channel) for channel in channels]
        self._fan_out = FanOut(self._stubs, timeout_s=timeout_s)
        self._timeout_s = timeout_s
        self._score_map = score_map

    @property
    def shard_count(self) -> int:
        return len(self._stubs)

    def upsert(self, entries: Sequence[matcher_pb2.MatcherEntry]) -> None:
        for index, group in enumerate(
            split_by_shard(entries, lambda e: e.event_id, self.shard_count)
        ):
            if group:
                self._on_shard(index, "Upsert", matcher_pb2.MatcherUpsertRequest(entries=group))

    def delete(self, gallery_id: str, event_ids: Sequence[str]) -> None:
        for index, group in enumerate(split_by_shard(event_ids, str, self.shard_count)):
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
        self,
        gallery_id: str,
        probe: common_pb2.Template,
        *,
        k: int,
        threshold: int,
        tag_mask: int,
    ) -> list[ScoredHit]:
        score_map = self._score_map()
        request = matcher_pb2.MatcherSearchRequest(
            gallery_id=gallery_id,
            probes=[probe],
            k=k,
            min_similarity=score_map.similarity(threshold),
            tag_mask=tag_mask,
        )
        with backend_call():
            response = self._fan_out.search(request, metadata=request_metadata())
        return [
            ScoredHit(hit.event_id, hit.subject_id, score_map.score(hit.similarity))
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
