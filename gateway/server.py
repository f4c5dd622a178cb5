"""The gateway: the public gRPC API and its composition root."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc

from facegate.grpcserver import MESSAGE_OVERHEAD, add_health_and_reflection, bind, new_server
from facegate.settings import Settings
from facegate.v1 import (
    applications_pb2,
    applications_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    face_pb2,
    face_pb2_grpc,
    galleries_pb2,
    galleries_pb2_grpc,
    health_pb2,
    health_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    subjects_pb2,
    subjects_pb2_grpc,
    tags_pb2,
    tags_pb2_grpc,
)
from gateway.adapters.channel import open_channel
from gateway.adapters.extractor import ExtractorClient
from gateway.adapters.matcher import MatcherClient
from gateway.bulk import BulkJobs
from gateway.bulk_worker import BulkWorker
from gateway.credentials import SecretBox, load_master_key
from gateway.deps import GatewayDeps
from gateway.enrolment import Enrolment
from gateway.health import DependencyChecker, Readiness
from gateway.identity import Callers, CallRecorder
from gateway.replication import Replicator
from gateway.search import Matching
from gateway.servicers import (
    ApplicationsServicer,
    EventsServicer,
    FaceServicer,
    GalleriesServicer,
    HealthServicer,
    JobsServicer,
    SubjectsServicer,
    TagsServicer,
)
from gateway.store.database import Database, open_database
from gateway.tagging import Tagging
from gateway.tenancy import Tenancy

READINESS_INTERVAL_S = 2.0

PUBLIC_SERVICES = (
    subjects_pb2.DESCRIPTOR.services_by_name["Subjects"],
    events_pb2.DESCRIPTOR.services_by_name["Events"],
    face_pb2.DESCRIPTOR.services_by_name["Face"],
    tags_pb2.DESCRIPTOR.services_by_name["Tags"],
    galleries_pb2.DESCRIPTOR.services_by_name["Galleries"],
    applications_pb2.DESCRIPTOR.services_by_name["Applications"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
    jobs_pb2.DESCRIPTOR.services_by_name["Jobs"],
)


def open_store(settings: Settings) -> tuple[Database, SecretBox]:
    """The store and the box that opens tenants' secrets."""
    settings.gateway_dir.mkdir(parents=True, exist_ok=True)
    if not settings.gateway.master_key and settings.gateway.database_url:
        # A shared store needs the one key of the deployment: a key file made here would
        # seal secrets no other process can open, and open none of theirs.
        raise ValueError(
            "FACEGATE_GATEWAY_MASTER_KEY must be set when FACEGATE_GATEWAY_DATABASE_URL is"
        )
    box = SecretBox(
        load_master_key(settings.gateway.master_key, settings.gateway_dir / "master.key")
    )
    return open_database(settings.database_url), box


@dataclass
class Gateway:
    """Everything the gateway opened, to close in reverse order."""

    deps: GatewayDeps
    bulk: BulkJobs
    checker: DependencyChecker
    readiness: Readiness
    channels: list[grpc.Channel]
    worker: BulkWorker | None

    def close(self) -> None:
        self.readiness.stop()
        if self.worker is not None:
            self.worker.stop()
        self.deps.replicator.stop()
        for channel in self.channels:
            channel.close()
        self.deps.database.close()


def open_gateway(settings: Settings) -> Gateway:
    """Connect to the store, the extractor and the matcher shards, and start replaying
    any change a previous run committed but did not hand to the matchers."""
    database, box = open_store(settings)
    timeout = settings.gateway.call_timeout_s
    extractor_channel = open_channel(settings.extractor_address, settings.tls)
    matcher_channels = [
        open_channel(address, settings.tls) for address in settings.matcher_addresses
    ]
    extractor = ExtractorClient(
        extractor_channel, timeout_s=timeout, max_image_bytes=settings.extractor.max_image_bytes
    )
    matcher = MatcherClient(matcher_channels, timeout_s=timeout)
    replicator = Replicator(database, matcher)
    deps = GatewayDeps(
        database=database,
        extractor=extractor,
        matcher=matcher,
        replicator=replicator,
        secrets=box,
    )
    replicator.start(settings.gateway.replay_interval_s)
    work_arrived = threading.Event()
    bulk = BulkJobs(deps, settings.jobs, local_root=settings.bulk_root, work_arrived=work_arrived)
    worker = None
    if settings.jobs.workers > 0:
        worker = BulkWorker(
            deps,
            bulk,
            settings.jobs,
            max_image_bytes=settings.extractor.max_image_bytes,
            work_arrived=work_arrived,
        )
        worker.start()
    checker = DependencyChecker(database, extractor_channel, matcher_channels)
    readiness = Readiness(checker)
    readiness.start(READINESS_INTERVAL_S)
    return Gateway(deps, bulk, checker, readiness, [extractor_channel, *matcher_channels], worker)


def create_server(settings: Settings, gateway: Gateway) -> tuple[grpc.Server, int]:
    """The public gRPC API, bound but not started (``settings.grpc_port`` 0 = any)."""
    deps = gateway.deps
    # Face-to-face verify carries two images; each may be as large as the extractor takes,
    # so a larger one is refused with the image's own error, not at the transport.
    largest = 2 * settings.extractor.max_image_bytes + MESSAGE_OVERHEAD
    server = new_server(
        workers=settings.grpc_workers, max_message_bytes=largest, interceptors=[CallRecorder()]
    )
    tenancy = Tenancy(deps)
    callers = Callers(tenancy, region=settings.rest.region, forwarders=settings.gateway.forwarders)
    enrolment = Enrolment(deps)
    subjects_pb2_grpc.add_SubjectsServicer_to_server(SubjectsServicer(callers, enrolment), server)
    events_pb2_grpc.add_EventsServicer_to_server(EventsServicer(callers, enrolment), server)
    face_pb2_grpc.add_FaceServicer_to_server(FaceServicer(callers, Matching(deps)), server)
    tags_pb2_grpc.add_TagsServicer_to_server(TagsServicer(callers, Tagging(deps)), server)
    galleries_pb2_grpc.add_GalleriesServicer_to_server(GalleriesServicer(callers, tenancy), server)
    applications_pb2_grpc.add_ApplicationsServicer_to_server(
        ApplicationsServicer(callers, tenancy), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(gateway.checker), server)
    jobs_pb2_grpc.add_JobsServicer_to_server(JobsServicer(callers, gateway.bulk), server)
    names = [service.full_name for service in PUBLIC_SERVICES]
    gateway.readiness.attach(add_health_and_reflection(server, names), names)
    port = bind(server, settings.host, settings.grpc_port, settings.tls)
    return server, port
