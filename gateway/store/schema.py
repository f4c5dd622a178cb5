"""The gateway's tables, in SQLAlchemy Core, portable across SQLite and PostgreSQL.

Conventions: ids are uuid4 strings, times are integer milliseconds since the epoch (UTC),
no boolean columns (their storage differs between the two databases). Constraint and index
names are fixed by the naming convention so that migrations can refer to them on both
databases. ``migrations/versions`` must create exactly these tables: a test compares them.
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY (its rowid),
# which is 64-bit there anyway.
AutoBigInteger = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False, unique=True),
    Column("created_ms", BigInteger, nullable=False),
)

# A tenant's SigV4 key pairs (at most two active at once, so that one can be rotated
# without downtime; migration 0005). The secret is sealed with the access key id as
# associated data (gateway/credentials.py). 0 in last_used_ms / revoked_ms: never.
access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String, primary_key=True),
    Column("tenant_id", String, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("secret_ciphertext", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_used_ms", BigInteger, nullable=False, server_default=text("0")),
    Column("revoked_ms", BigInteger, nullable=False, server_default=text("0")),
    Index(None, "tenant_id"),
)

galleries = Table(
    "galleries",
    metadata,
    Column("id", String, primary_key=True),
    Column("tenant_id", String, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String, nullable=False),
    Column("description", String, nullable=False),
    Column("size", Integer, nullable=False),
    Column("face_minimum_quality_score", Float, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    # The gallery's event rows of both statuses (its slots in use), kept by every insert
    # and removal of rows under the gallery lock: counting them took 35-60 ms at a
    # million rows, on every registration (migration 0004).
    Column("event_rows", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("tenant_id", "name"),
)

applications = Table(
    "applications",
    metadata,
    Column("id", String, primary_key=True),
    Column("tenant_id", String, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("gallery_id", String, ForeignKey("galleries.id", ondelete="CASCADE"), nullable=False),
    Column("name", String, nullable=False),
    Column("description", String, nullable=False),
    Column("api_key_hash", LargeBinary, nullable=False, unique=True),
    Column("api_key_hint", String, nullable=False),
    Column("face_minimum_quality_score", Float, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    # The key a regeneration replaced, still accepted until previous_api_key_until_ms
    # so that clients can switch over without downtime (migration 0005).
    Column("previous_api_key_hash", LargeBinary, nullable=True, unique=True),
    Column("previous_api_key_hint", String, nullable=False, server_default=text("''")),
    Column("previous_api_key_until_ms", BigInteger, nullable=False, server_default=text("0")),
    Index(None, "tenant_id", "name"),
    Index(None, "gallery_id"),
)

tags = Table(
    "tags",
    metadata,
    Column("gallery_id", String, ForeignKey("galleries.id", ondelete="CASCADE"), nullable=False),
    Column("bit", Integer, nullable=False),
    Column("name", String, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("gallery_id", "bit"),
    UniqueConstraint("gallery_id", "name"),
    CheckConstraint("bit >= 0 AND bit <= 63", name="bit_range"),
)

subjects = Table(
    "subjects",
    metadata,
    Column("gallery_id", String, ForeignKey("galleries.id", ondelete="CASCADE"), nullable=False),
    Column("id", String, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("gallery_id", "id"),
)

events = Table(
    "events",
    metadata,
    Column("row_id", AutoBigInteger, primary_key=True, autoincrement=True),
    Column("gallery_id", String, ForeignKey("galleries.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String, nullable=False),
    Column("subject_id", String, nullable=False),
    Column("status", CHAR(1), nullable=False),
    # Signed 64-bit: bit 63 is stored as the sign (see common.to_stored_mask).
    Column("tag_mask", BigInteger, nullable=False),
    Column("model_id", String, nullable=False),
    # float32 little-endian, as the extractor produces it.
    Column("template", LargeBinary, nullable=False),
    Column("attributes_json", Text, nullable=False),
    Column("last_updated_ms", BigInteger, nullable=False),
    CheckConstraint("status IN ('A', 'D')", name="status_values"),
    Index(None, "gallery_id", "last_updated_ms", "row_id"),
    Index(None, "gallery_id", "subject_id", "status", "last_updated_ms", "row_id"),
    Index(None, "gallery_id", "event_id", "status"),
    # At most one active row per event: an update retires the old row before adding one.
    Index(
        "uq_events_active_event",
        "gallery_id",
        "event_id",
        unique=True,
        sqlite_where=text("status = 'A'"),
        postgresql_where=text("status = 'A'"),
    ),
    # Never reuse a row id, so that row ids order rows by insertion for good.
    sqlite_autoincrement=True,
)

# No foreign key: a change must outlive its gallery until the matcher acknowledged it.
changes = Table(
    "changes",
    metadata,
    Column("id", AutoBigInteger, primary_key=True, autoincrement=True),
    Column("gallery_id", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("event_id", String, nullable=True),
    Column("bit", Integer, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    CheckConstraint("kind IN ('event', 'clear_tag_bit', 'drop_gallery')", name="kind_values"),
    # A reused id could let a late acknowledgement remove a newer, unreplayed change.
    sqlite_autoincrement=True,
)

# Where a gallery's bulk jobs read their files from (Jobs.SetBulkSource). The secret is
# sealed by the caller, like tenants.secret_ciphertext.
bulk_sources = Table(
    "bulk_sources",
    metadata,
    Column(
        "gallery_id",
        String,
        ForeignKey("galleries.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("uri", String, nullable=False),
    Column("endpoint_url", String, nullable=False),
    Column("region", String, nullable=False),
    Column("access_key_id", String, nullable=False),
    Column("secret_ciphertext", LargeBinary, nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
)

# A bulk registration job. Its source is copied in at creation, so that changing the
# gallery's source does not redirect a running job. No foreign key on application_id: the
# application may be deleted while its job runs.
jobs = Table(
    "jobs",
    metadata,
    Column("id", String, primary_key=True),
    Column("gallery_id", String, ForeignKey("galleries.id", ondelete="CASCADE"), nullable=False),
    Column("application_id", String, nullable=False),
    Column("source_uri", String, nullable=False),
    Column("source_endpoint_url", String, nullable=False),
    Column("source_region", String, nullable=False),
    Column("source_access_key_id", String, nullable=False),
    Column("source_secret_ciphertext", LargeBinary, nullable=True),
    Column("record_count", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    # When records of the job were last claimed: claimers serve the least recently served
    # job first (0 = never, so a new job goes first).
    Column("last_claim_ms", BigInteger, nullable=False),
    Index(None, "gallery_id"),
)

# One registration of a job. Server defaults keep the bulk insert of a new job's records
# down to the five columns that differ.
job_records = Table(
    "job_records",
    metadata,
    Column("job_id", String, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    # 0-based position in the request: the paging order.
    Column("seq", Integer, nullable=False),
    Column("id", String, nullable=False, unique=True),
    Column("filename", String, nullable=False),
    # Signed 64-bit, as events.tag_mask.
    Column("tag_mask", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("status", CHAR(1), nullable=False, server_default=text("'N'")),
    Column("register_status", String, nullable=False, server_default=text("''")),
    Column("reason", Text, nullable=False, server_default=text("''")),
    Column("subject_id", String, nullable=False, server_default=text("''")),
    Column("event_id", String, nullable=False, server_default=text("''")),
    Column("attributes_json", Text, nullable=False, server_default=text("''")),
    Column("next_attempt_ms", BigInteger, nullable=False, server_default=text("0")),
    Column("lease_until_ms", BigInteger, nullable=False, server_default=text("0")),
    Column("processed_ms", BigInteger, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("job_id", "seq"),
    CheckConstraint("status IN ('N', 'P')", name="status_values"),
    CheckConstraint("register_status IN ('', 'Success', 'Failed')", name="register_status_values"),
    # Claims look for a job's first new records: the new records of a job are one range
    # of this index in seq order, however many are processed already. It also counts a
    # job's new records and finds the jobs that have any.
    Index(None, "job_id", "status", "seq"),
)
