"""The immutable rows the store's functions return (times in ms since the epoch, UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventStatus = Literal["A", "D"]


@dataclass(frozen=True)
class Tenant:
    """``access_key_id`` is the key the tenant was found by (the one a call signed with),
    else its oldest active key ("" when none is active)."""

    id: str
    name: str
    access_key_id: str
    created_ms: int


@dataclass(frozen=True)
class AccessKey:
    """One SigV4 key pair of a tenant; the secret is sealed (gateway/credentials.py).
    ``last_used_ms`` and ``revoked_ms`` are 0 for never; ``last_used_ms`` is recorded at
    most once a minute (gateway/tenancy.py)."""

    access_key_id: str
    tenant_id: str
    secret_ciphertext: bytes
    created_ms: int
    last_used_ms: int
    revoked_ms: int


@dataclass(frozen=True)
class Gallery:
    """``count`` is the number of event rows the gallery holds, active and deleted: the
    slots in use out of ``size``."""

    id: str
    tenant_id: str
    name: str
    description: str
    size: int
    face_minimum_quality_score: float
    created_ms: int
    count: int


@dataclass(frozen=True)
class Application:
    """``api_key_hash`` is the sha256 of the key; the key itself is never stored. A
    regenerated application also accepts the key it replaced, ``previous_api_key_hash``,
    until ``previous_api_key_until_ms`` (None and 0 when there is none)."""

    id: str
    tenant_id: str
    gallery_id: str
    name: str
    description: str
    api_key_hash: bytes
    api_key_hint: str
    face_minimum_quality_score: float
    created_ms: int
    previous_api_key_hash: bytes | None = None
    previous_api_key_hint: str = ""
    previous_api_key_until_ms: int = 0


@dataclass(frozen=True)
class Tag:
    gallery_id: str
    bit: int
    name: str


@dataclass(frozen=True)
class EventListing:
    """What a listing of a gallery's rows shows of each (no template or attributes)."""

    row_id: int
    subject_id: str
    event_id: str
    status: EventStatus
    last_updated_ms: int


@dataclass(frozen=True)
class EventRow:
    """One slot of a gallery. ``tag_mask`` is unsigned (0..2**64-1) here, whatever the
    storage; ``template`` holds float32 little-endian values."""

    row_id: int
    gallery_id: str
    event_id: str
    subject_id: str
    status: EventStatus
    tag_mask: int
    model_id: str
    template: bytes
    attributes_json: str
    last_updated_ms: int


@dataclass(frozen=True)
class NewEvent:
    """An event to add to a gallery (gateway.store.events.insert_events)."""

    event_id: str
    subject_id: str
    tag_mask: int
    model_id: str
    template: bytes
    attributes_json: str


@dataclass(frozen=True)
class Change:
    """An outbox entry to replay into the matcher; ``kind`` is one of ``changes.KINDS``."""

    id: int
    gallery_id: str
    kind: str
    event_id: str | None
    bit: int | None


JobRecordStatus = Literal["New", "Processed"]
RegisterStatus = Literal["", "Success", "Failed"]


@dataclass(frozen=True)
class RecordOutcome:
    """What became of a job record (gateway.store.jobs.finish_records)."""

    seq: int
    register_status: Literal["Success", "Failed"]
    reason: str = ""
    subject_id: str = ""
    event_id: str = ""
    attributes_json: str = ""


@dataclass(frozen=True)
class RecordRetry:
    """A job record put back after a transient failure (gateway.store.jobs.retry_records)."""

    seq: int
    next_attempt_ms: int
    reason: str


@dataclass(frozen=True)
class BulkSource:
    """Where a gallery's bulk jobs read their files: ``uri`` is ``file:///folder`` or
    ``s3://bucket/prefix``; the S3 fields are empty for a folder or for the gateway's own
    settings. ``secret_ciphertext`` is the sealed secret of ``access_key_id``, if any."""

    gallery_id: str
    uri: str
    endpoint_url: str
    region: str
    access_key_id: str
    secret_ciphertext: bytes | None


@dataclass(frozen=True)
class JobRow:
    """A bulk registration job (its id is NEC's batchId) with the source it started with;
    ``source.gallery_id`` is the job's gallery."""

    id: str
    gallery_id: str
    application_id: str
    source: BulkSource
    record_count: int
    created_ms: int


@dataclass(frozen=True)
class JobRecordRow:
    """One registration of a job. ``seq`` is its 0-based position in the request;
    ``tag_mask`` is unsigned. A new record may be claimed when both ``next_attempt_ms``
    (a retry's back-off) and ``lease_until_ms`` (a worker's claim) are past;
    ``processed_ms`` is 0 until it is processed."""

    job_id: str
    seq: int
    id: str
    filename: str
    tag_mask: int
    attempts: int
    status: JobRecordStatus
    register_status: RegisterStatus
    reason: str
    subject_id: str
    event_id: str
    attributes_json: str
    next_attempt_ms: int
    lease_until_ms: int
    processed_ms: int
