"""The gateway's client of the extractor: implements :class:`gateway.ports.Extractor`.

Every gRPC failure becomes a :class:`FacegateError`: the errors the extractor raises on
purpose (NoFace, PoorQuality, ...) keep their type; an extractor that cannot be reached,
or misses the deadline, becomes Unavailable or Timeout (``backend_failure``).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from extractor.scores import ScoreMap
from facegate.errors import backend_failure, image_too_large
from facegate.faces import FaceAttributes, attributes_from_proto
from facegate.logs import backend_call, request_metadata
from facegate.v1 import extractor_pb2, extractor_pb2_grpc
from gateway.adapters.convert import face_from_message
from gateway.faces import Face

_EXTRACTOR = "The extractor"


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
            raise backend_failure(_EXTRACTOR, error) from None

    def enrolment_face(self, image: bytes, *, min_quality: float | None) -> Face:
        return self._faces([image], extractor_pb2.FACE_SELECTION_SINGLE, min_quality)[0]

    def probe_face(self, image: bytes) -> Face:
        return self.probe_faces([image])[0]

    def probe_faces(self, images: Sequence[bytes]) -> list[Face]:
        """Extracted concurrently."""
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
                        raise backend_failure(_EXTRACTOR, error) from None
                    face = response.faces[0]
                    faces.append(face_from_message(face.attributes, face.template))
            finally:
                for future in pending:
                    future.cancel()
        return faces

    def all_faces(self, image: bytes, *, limit: int) -> list[FaceAttributes]:
        request = extractor_pb2.ExtractorExtractRequest(
            image=image, limit=limit, selection=extractor_pb2.FACE_SELECTION_ALL
        )
        response = self._call("Extract", request)
        assert isinstance(response, extractor_pb2.ExtractorExtractResponse)
        return [attributes_from_proto(face.attributes) for face in response.faces]

    def score_map(self) -> ScoreMap:
        """Asked once: the map is fixed per model."""
        if self._score_map is None:
            info = self._call("Info", extractor_pb2.ExtractorInfoRequest())
            assert isinstance(info, extractor_pb2.ExtractorInfoResponse)
            knots = [(knot.similarity, knot.score) for knot in info.score_calibration]
            self._score_map = ScoreMap(knots)
        return self._score_map
