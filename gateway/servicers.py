"""The public gRPC services. Each method only translates: metadata and request message
-> domain call (gateway/enrolment.py, search.py, tagging.py, tenancy.py) -> response
message. Errors are FacegateErrors, mapped to gRPC statuses by the shared interceptor.

Who is calling is decided by :class:`gateway.identity.Callers`, from the call's metadata.
"""

from __future__ import annotations

import grpc
from google.protobuf import json_format

from facegate.contract import (
    DEFAULT_CANDIDATES,
    DEFAULT_THRESHOLD,
    MAX_LIST_PAGE,
)
from facegate.faces import attributes_to_proto
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
from gateway.bulk import BulkJobs, Registration
from gateway.enrolment import Enrolment
from gateway.health import OK, UNAVAILABLE, DependencyChecker
from gateway.identity import Callers
from gateway.search import Matching, SearchStatistics
from gateway.sources import SourceConfig
from gateway.store.records import Application, EventListing, Gallery, JobRecordRow
from gateway.tagging import Tagging
from gateway.tenancy import Tenancy

# ------------------------------------------------------------------ records -> protos


def subject_entry(row: EventListing) -> subjects_pb2.SubjectEntry:
    entry = subjects_pb2.SubjectEntry(
        id=row.subject_id,
        event_id=row.event_id,
        status=subjects_pb2.EVENT_STATUS_ACTIVE
        if row.status == "A"
        else subjects_pb2.EVENT_STATUS_DELETED,
    )
    entry.last_updated.FromMilliseconds(row.last_updated_ms)
    return entry


def application_message(
    application: Application, api_key: str | None = None
) -> applications_pb2.Application:
    """``api_key``: the full key, known only when it was just made; else the hint."""
    return applications_pb2.Application(
        id=application.id,
        name=application.name,
        description=application.description,
        api_key=api_key or application.api_key_hint,
        face_minimum_quality_score=application.face_minimum_quality_score,
        gallery_id=application.gallery_id,
    )


def gallery_message(
    gallery: Gallery,
    applications: list[applications_pb2.Application] | None = None,
    statistics: SearchStatistics | None = None,
) -> galleries_pb2.Gallery:
    return galleries_pb2.Gallery(
        id=gallery.id,
        name=gallery.name,
        description=gallery.description,
        size=gallery.size,
        count=gallery.count,
        face_minimum_quality_score=gallery.face_minimum_quality_score,
        applications=applications or [],
        statistics=None if statistics is None else statistics_message(statistics),
    )


def statistics_message(statistics: SearchStatistics) -> galleries_pb2.GalleryStatistics:
    return galleries_pb2.GalleryStatistics(
        active_events=statistics.active_events,
        threshold_fpir_1e2=statistics.threshold_fpir_1e2,
        threshold_fpir_1e3=statistics.threshold_fpir_1e3,
    )


# ------------------------------------------------------------------ gallery-scoped


class SubjectsServicer(subjects_pb2_grpc.SubjectsServicer):
    def __init__(self, callers: Callers, enrolment: Enrolment) -> None:
        self._callers = callers
        self._enrolment = enrolment

    def List(
        self, request: subjects_pb2.SubjectsListRequest, context: grpc.ServicerContext
    ) -> subjects_pb2.SubjectsListResponse:
        rows, total = self._enrolment.list_rows(
            self._callers.application(context),
            start=request.start if request.HasField("start") else 0,
            length=request.length if request.HasField("length") else MAX_LIST_PAGE,
            descending=request.dir == subjects_pb2.SORT_DIRECTION_DESC,
        )
        return subjects_pb2.SubjectsListResponse(
            subjects=[subject_entry(row) for row in rows], total=total
        )

    def Register(
        self, request: subjects_pb2.SubjectsRegisterRequest, context: grpc.ServicerContext
    ) -> subjects_pb2.SubjectsRegisterResponse:
        done = self._enrolment.register_subject(
            self._callers.application(context), request.face, list(request.tags)
        )
        return subjects_pb2.SubjectsRegisterResponse(
            id=done.subject_id,
            event_id=done.event_id,
            attributes=attributes_to_proto(done.attributes),
        )

    def Update(
        self, request: subjects_pb2.SubjectsUpdateRequest, context: grpc.ServicerContext
    ) -> subjects_pb2.SubjectsUpdateResponse:
        done = self._enrolment.update_subject(
            self._callers.application(context), request.id, request.face, list(request.tags)
        )
        return subjects_pb2.SubjectsUpdateResponse(
            id=done.subject_id,
            event_id=done.event_id,
            attributes=attributes_to_proto(done.attributes),
        )

    def Unregister(
        self, request: subjects_pb2.SubjectsUnregisterRequest, context: grpc.ServicerContext
    ) -> subjects_pb2.SubjectsUnregisterResponse:
        self._enrolment.unregister_subject(self._callers.application(context), request.id)
        return subjects_pb2.SubjectsUnregisterResponse()


class EventsServicer(events_pb2_grpc.EventsServicer):
    def __init__(self, callers: Callers, enrolment: Enrolment) -> None:
        self._callers = callers
        self._enrolment = enrolment

    def List(
        self, request: events_pb2.EventsListRequest, context: grpc.ServicerContext
    ) -> events_pb2.EventsListResponse:
        event_ids = self._enrolment.list_events(
            self._callers.application(context), request.subject_id
        )
        return events_pb2.EventsListResponse(
            id=request.subject_id, events=[events_pb2.EventEntry(id=e) for e in event_ids]
        )

    def Register(
        self, request: events_pb2.EventsRegisterRequest, context: grpc.ServicerContext
    ) -> events_pb2.EventsRegisterResponse:
        done = self._enrolment.register_event(
            self._callers.application(context),
            request.subject_id,
            request.face,
            list(request.tags),
        )
        return events_pb2.EventsRegisterResponse(
            id=done.subject_id,
            event_id=done.event_id,
            attributes=attributes_to_proto(done.attributes),
        )

    def Update(
        self, request: events_pb2.EventsUpdateRequest, context: grpc.ServicerContext
    ) -> events_pb2.EventsUpdateResponse:
        done = self._enrolment.update_event(
            self._callers.application(context),
            request.subject_id,
            request.event_id,
            request.face,
            list(request.tags),
        )
        return events_pb2.EventsUpdateResponse(
            id=done.subject_id,
            event_id=done.event_id,
            attributes=attributes_to_proto(done.attributes),
        )

    def Unregister(
        self, request: events_pb2.EventsUnregisterRequest, context: grpc.ServicerContext
    ) -> events_pb2.EventsUnregisterResponse:
        self._enrolment.unregister_event(
            self._callers.application(context), request.subject_id, request.event_id
        )
        return events_pb2.EventsUnregisterResponse()


class FaceServicer(face_pb2_grpc.FaceServicer):
    def __init__(self, callers: Callers, matching: Matching) -> None:
        self._callers = callers
        self._matching = matching

    def Extract(
        self, request: face_pb2.FaceExtractRequest, context: grpc.ServicerContext
    ) -> face_pb2.FaceExtractResponse:
        faces = self._matching.extract(
            request.image, limit=request.limit if request.HasField("limit") else None
        )
        return face_pb2.FaceExtractResponse(
            faces=[face_pb2.ExtractedFace(attributes=attributes_to_proto(a)) for a in faces]
        )

    def Search(
        self, request: face_pb2.FaceSearchRequest, context: grpc.ServicerContext
    ) -> face_pb2.FaceSearchResponse:
        result = self._matching.search(
            self._callers.application(context),
            request.probe,
            threshold=request.threshold if request.HasField("threshold") else DEFAULT_THRESHOLD,
            limit=request.limit if request.HasField("limit") else DEFAULT_CANDIDATES,
            tag_names=list(request.tags),
        )
        return face_pb2.FaceSearchResponse(
            candidates=[
                face_pb2.Candidate(
                    id=c.subject_id,
                    score=c.score,
                    events=[
                        face_pb2.CandidateEvent(id=e.event_id, score=e.score) for e in c.events
                    ],
                )
                for c in result.candidates
            ],
            attributes=attributes_to_proto(result.attributes),
        )

    def VerifySubject(
        self, request: face_pb2.FaceVerifySubjectRequest, context: grpc.ServicerContext
    ) -> face_pb2.FaceVerifySubjectResponse:
        score = self._matching.verify_subject(
            self._callers.application(context), request.id, request.probe
        )
        return face_pb2.FaceVerifySubjectResponse(id=request.id, score=score)

    def VerifyFaces(
        self, request: face_pb2.FaceVerifyFacesRequest, context: grpc.ServicerContext
    ) -> face_pb2.FaceVerifyFacesResponse:
        return face_pb2.FaceVerifyFacesResponse(
            score=self._matching.verify_faces(request.face, request.probe)
        )


class TagsServicer(tags_pb2_grpc.TagsServicer):
    def __init__(self, callers: Callers, tagging: Tagging) -> None:
        self._callers = callers
        self._tagging = tagging

    def List(
        self, request: tags_pb2.TagsListRequest, context: grpc.ServicerContext
    ) -> tags_pb2.TagsListResponse:
        return tags_pb2.TagsListResponse(
            names=self._tagging.list(self._callers.application(context))
        )

    def Create(
        self, request: tags_pb2.TagsCreateRequest, context: grpc.ServicerContext
    ) -> tags_pb2.TagsCreateResponse:
        self._tagging.create(self._callers.application(context), request.name)
        return tags_pb2.TagsCreateResponse()

    def Rename(
        self, request: tags_pb2.TagsRenameRequest, context: grpc.ServicerContext
    ) -> tags_pb2.TagsRenameResponse:
        self._tagging.rename(self._callers.application(context), request.old_name, request.new_name)
        return tags_pb2.TagsRenameResponse()

    def Delete(
        self, request: tags_pb2.TagsDeleteRequest, context: grpc.ServicerContext
    ) -> tags_pb2.TagsDeleteResponse:
        self._tagging.delete(self._callers.application(context), request.name)
        return tags_pb2.TagsDeleteResponse()


def job_record(row: JobRecordRow) -> jobs_pb2.JobRecord:
    record = jobs_pb2.JobRecord(
        id=row.id,
        filename=row.filename,
        attempts=row.attempts,
        event_id=row.event_id,
        subject_id=row.subject_id,
        register_status={
            "": jobs_pb2.REGISTER_STATUS_UNSPECIFIED,
            "Success": jobs_pb2.REGISTER_STATUS_SUCCESS,
            "Failed": jobs_pb2.REGISTER_STATUS_FAILED,
        }[row.register_status],
        reason=row.reason,
        status=jobs_pb2.JOB_RECORD_STATUS_NEW
        if row.status == "New"
        else jobs_pb2.JOB_RECORD_STATUS_PROCESSED,
    )
    if row.attributes_json:
        json_format.Parse(row.attributes_json, record.attributes)
    return record


class JobsServicer(jobs_pb2_grpc.JobsServicer):
    def __init__(self, callers: Callers, bulk: BulkJobs) -> None:
        self._callers = callers
        self._bulk = bulk

    def BulkRegister(
        self, request: jobs_pb2.JobsBulkRegisterRequest, context: grpc.ServicerContext
    ) -> jobs_pb2.JobsBulkRegisterResponse:
        batch_id = self._bulk.submit(
            self._callers.application(context),
            [Registration(r.filename, tuple(r.tags)) for r in request.registrations],
        )
        return jobs_pb2.JobsBulkRegisterResponse(batch_id=batch_id)

    def GetBulkRegisterProgress(
        self, request: jobs_pb2.JobsGetBulkRegisterProgressRequest, context: grpc.ServicerContext
    ) -> jobs_pb2.JobsGetBulkRegisterProgressResponse:
        page = self._bulk.progress(
            self._callers.application(context), request.batch_id, request.paging_id
        )
        return jobs_pb2.JobsGetBulkRegisterProgressResponse(
            batch_id=page.batch_id,
            processed=[job_record(row) for row in page.records],
            last_evaluated_key=page.last_evaluated_key,
        )

    def SetBulkSource(
        self, request: jobs_pb2.JobsSetBulkSourceRequest, context: grpc.ServicerContext
    ) -> jobs_pb2.JobsSetBulkSourceResponse:
        self._bulk.set_source(
            self._callers.application(context),
            SourceConfig(
                uri=request.uri,
                endpoint_url=request.endpoint_url,
                region=request.region,
                access_key_id=request.access_key_id,
                secret_access_key=request.secret_access_key,
            ),
        )
        return jobs_pb2.JobsSetBulkSourceResponse()


# ---------------------------------------------------------------- tenant management


class GalleriesServicer(galleries_pb2_grpc.GalleriesServicer):
    def __init__(self, callers: Callers, tenancy: Tenancy) -> None:
        self._callers = callers
        self._tenancy = tenancy

    def List(
        self, request: galleries_pb2.GalleriesListRequest, context: grpc.ServicerContext
    ) -> galleries_pb2.GalleriesListResponse:
        found = self._tenancy.list_galleries(self._callers.tenant(context))
        return galleries_pb2.GalleriesListResponse(galleries=[gallery_message(g) for g in found])

    def Get(
        self, request: galleries_pb2.GalleriesGetRequest, context: grpc.ServicerContext
    ) -> galleries_pb2.GalleriesGetResponse:
        gallery, applications, statistics = self._tenancy.get_gallery(
            self._callers.tenant(context), request.id
        )
        return galleries_pb2.GalleriesGetResponse(
            gallery=gallery_message(
                gallery, [application_message(a) for a in applications], statistics
            )
        )

    def Create(
        self, request: galleries_pb2.GalleriesCreateRequest, context: grpc.ServicerContext
    ) -> galleries_pb2.GalleriesCreateResponse:
        gallery, created = self._tenancy.create_gallery(
            self._callers.tenant(context),
            name=request.name,
            description=request.description,
            size=request.size,
            face_minimum_quality_score=request.face_minimum_quality_score
            if request.HasField("face_minimum_quality_score")
            else None,
        )
        application = application_message(created.application, created.api_key)
        return galleries_pb2.GalleriesCreateResponse(
            gallery=gallery_message(gallery, [application]), api_key=created.api_key
        )

    def Update(
        self, request: galleries_pb2.GalleriesUpdateRequest, context: grpc.ServicerContext
    ) -> galleries_pb2.GalleriesUpdateResponse:
        gallery = self._tenancy.update_gallery(
            self._callers.tenant(context),
            request.id,
            name=request.name if request.HasField("name") else None,
            description=request.description if request.HasField("description") else None,
            size=request.size if request.HasField("size") else None,
        )
        return galleries_pb2.GalleriesUpdateResponse(gallery=gallery_message(gallery))

    def Delete(
        self, request: galleries_pb2.GalleriesDeleteRequest, context: grpc.ServicerContext
    ) -> galleries_pb2.GalleriesDeleteResponse:
        self._tenancy.delete_gallery(self._callers.tenant(context), request.id)
        return galleries_pb2.GalleriesDeleteResponse()


class ApplicationsServicer(applications_pb2_grpc.ApplicationsServicer):
    def __init__(self, callers: Callers, tenancy: Tenancy) -> None:
        self._callers = callers
        self._tenancy = tenancy

    def List(
        self, request: applications_pb2.ApplicationsListRequest, context: grpc.ServicerContext
    ) -> applications_pb2.ApplicationsListResponse:
        found = self._tenancy.list_applications(self._callers.tenant(context))
        return applications_pb2.ApplicationsListResponse(
            applications=[application_message(a) for a in found]
        )

    def Get(
        self, request: applications_pb2.ApplicationsGetRequest, context: grpc.ServicerContext
    ) -> applications_pb2.ApplicationsGetResponse:
        found = self._tenancy.get_application(self._callers.tenant(context), request.id)
        return applications_pb2.ApplicationsGetResponse(application=application_message(found))

    def Create(
        self, request: applications_pb2.ApplicationsCreateRequest, context: grpc.ServicerContext
    ) -> applications_pb2.ApplicationsCreateResponse:
        created = self._tenancy.create_application(
            self._callers.tenant(context),
            gallery_id=request.gallery_id,
            name=request.name,
            description=request.description,
            face_minimum_quality_score=request.face_minimum_quality_score
            if request.HasField("face_minimum_quality_score")
            else None,
        )
        return applications_pb2.ApplicationsCreateResponse(
            application=application_message(created.application, created.api_key)
        )

    def Update(
        self, request: applications_pb2.ApplicationsUpdateRequest, context: grpc.ServicerContext
    ) -> applications_pb2.ApplicationsUpdateResponse:
        updated = self._tenancy.update_application(
            self._callers.tenant(context),
            request.id,
            name=request.name if request.HasField("name") else None,
            description=request.description if request.HasField("description") else None,
            face_minimum_quality_score=request.face_minimum_quality_score
            if request.HasField("face_minimum_quality_score")
            else None,
        )
        return applications_pb2.ApplicationsUpdateResponse(application=application_message(updated))

    def Delete(
        self, request: applications_pb2.ApplicationsDeleteRequest, context: grpc.ServicerContext
    ) -> applications_pb2.ApplicationsDeleteResponse:
        self._tenancy.delete_application(self._callers.tenant(context), request.id)
        return applications_pb2.ApplicationsDeleteResponse()


class HealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self, checker: DependencyChecker) -> None:
        self._checker = checker

    def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        statuses = self._checker.check()
        return health_pb2.HealthCheckResponse(
            status=OK if all(s.ok for s in statuses) else UNAVAILABLE,
            dependencies=[
                health_pb2.DependencyHealth(name=s.name, status=s.status, detail=s.detail)
                for s in statuses
            ],
        )
