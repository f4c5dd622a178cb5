"""The Extractor gRPC service: translates requests to :class:`FaceExtractor` calls."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from extractor.convert import extraction_to_proto, selection_from_proto, template_from_proto
from extractor.pipeline import FaceExtractor
from facegate.contract import DEFAULT_THRESHOLD
from facegate.grpcserver import MESSAGE_OVERHEAD, add_health_and_reflection, bind, new_server
from facegate.settings import Settings
from facegate.v1 import extractor_pb2, extractor_pb2_grpc


@dataclass(frozen=True)
class ExtractorDeps:
    extractor: FaceExtractor


class ExtractorServicer(extractor_pb2_grpc.ExtractorServicer):
    def __init__(self, extractor: FaceExtractor) -> None:
        self.extractor = extractor

    def Extract(
        self, request: extractor_pb2.ExtractorExtractRequest, context: grpc.ServicerContext
    ) -> extractor_pb2.ExtractorExtractResponse:
        extraction = self.extractor.extract(
            request.image,
            limit=request.limit,
            selection=selection_from_proto(request.selection),
            min_quality=request.min_quality if request.HasField("min_quality") else None,
            with_templates=request.with_templates,
        )
        return extraction_to_proto(extraction)

    def Compare(
        self, request: extractor_pb2.ExtractorCompareRequest, context: grpc.ServicerContext
    ) -> extractor_pb2.ExtractorCompareResponse:
        model_id, dim = self.extractor.model_id, self.extractor.embedding_dim
        a = template_from_proto(request.a, model_id=model_id, dimension=dim, name="a")
        b = template_from_proto(request.b, model_id=model_id, dimension=dim, name="b")
        similarity, score = self.extractor.compare(a, b)
        return extractor_pb2.ExtractorCompareResponse(similarity=similarity, score=score)

    def Info(
        self, request: extractor_pb2.ExtractorInfoRequest, context: grpc.ServicerContext
    ) -> extractor_pb2.ExtractorInfoResponse:
        return extractor_pb2.ExtractorInfoResponse(
            detector_model_id=self.extractor.detector_id,
            recognizer_model_id=self.extractor.model_id,
            embedding_dim=self.extractor.embedding_dim,
            score_calibration=[
                extractor_pb2.CalibrationKnot(similarity=s, score=v)
                for s, v in self.extractor.score_map.knots
            ],
            default_threshold=DEFAULT_THRESHOLD,
        )


def create_server(settings: Settings, deps: ExtractorDeps) -> tuple[grpc.Server, int]:
    """The Extractor server, bound but not started (``settings.extractor_port`` 0 = any)."""
    server = new_server(
        workers=settings.grpc_workers,
        max_message_bytes=settings.extractor.max_image_bytes + MESSAGE_OVERHEAD,
    )
    extractor_pb2_grpc.add_ExtractorServicer_to_server(ExtractorServicer(deps.extractor), server)
    service_name = extractor_pb2.DESCRIPTOR.services_by_name["Extractor"].full_name
    add_health_and_reflection(server, [service_name])
    port = bind(server, settings.host, settings.extractor_port, settings.tls)
    return server, port
