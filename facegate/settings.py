"""Settings: one typed object, built once in ``main()`` and passed down.

Every field can come from an environment variable (for containers) and most from a
command-line flag; flags win over the environment, which wins over the defaults here.
The variables are listed in docs/configuration.md.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from matcher.params import IndexParams

T = TypeVar("T")

ENV_PREFIX = "FACEGATE_"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "facegate"


@dataclass(frozen=True)
class ExtractorSettings:
    detector: str = ""
    """Detector model name from the manifest; empty = the manifest's default."""
    recognizer: str = ""
    """Recognizer model name from the manifest; empty = the manifest's default."""
    pose: str = ""
    """Pose model name from the manifest; empty = the manifest's default."""
    detection_max_side: int = 640
    """Longer side of the image the detector sees; larger finds smaller faces, slower."""
    detection_threshold: float = 0.8
    """Detector confidence below which a candidate is not a face."""
    max_faces: int = 20
    """Hard limit on faces returned per image (the NEC maximum)."""
    default_limit: int = 10
    """Faces returned when a request gives no limit (the NEC default)."""
    threads: int = 0
    """ONNX Runtime intra-op threads per model; 0 = usable CPUs / 3 (at least 1)."""
    providers: tuple[str, ...] = ()
    """ONNX Runtime execution providers; empty = CUDA when available, then CPU."""
    max_batch: int = 32
    """Largest micro-batch of face crops sent to the recognizer at once."""
    max_image_bytes: int = 32 * 1024 * 1024
    """Encoded images larger than this are refused."""
    max_image_pixels: int = 120_000_000
    """Decoded images larger than this (width x height, from the header) are refused."""
    max_concurrent_images: int = 0
    """Images decoded at once, bounding memory; 0 = twice the CPU count."""


@dataclass(frozen=True)
class MatcherSettings:
    """One matcher shard (``FACEGATE_MATCHER_*``). Each pod of a sharded deployment sets
    its own ``shard_index``; every pod and the gateway share ``shard_count``."""

    shard_index: int = 0
    """This shard's index i, 0..shard_count-1 (entries whose event id hashes to i)."""
    shard_count: int = 1
    """Number of shards n in the deployment (the placement rule: matcher/placement.py)."""
    data_dir: Path | None = None
    """The shard's log and snapshots; None = ``<data_dir>/matcher/shard-<shard_index>``."""
    index: IndexParams = field(default_factory=IndexParams)
    """How galleries are indexed and searched; each field is read from
    ``FACEGATE_MATCHER_<FIELD>`` like the fields here (``FACEGATE_MATCHER_EF_SEARCH``)."""
    snapshot_after_records: int = 50_000
    """Write a snapshot once the log holds this many records after the last one (or a
    tenth of the shard's entries, if that is more)."""
    build_threads: int = 1
    """Threads hnswlib uses when merging new entries and compacting."""


@dataclass(frozen=True)
class GatewaySettings:
    """The public gRPC API (``FACEGATE_GATEWAY_*``)."""

    database_url: str = ""
    """SQLAlchemy URL of the store; empty = SQLite at ``<data_dir>/gateway/facegate.db``.
    PostgreSQL: ``postgresql+psycopg://user:password@host:5432/facegate``."""
    master_key: str = ""
    """Base64 of 32 random bytes that encrypt tenants' SigV4 secrets in the store; empty =
    the key file ``<data_dir>/gateway/master.key``, created on first use. Every gateway
    and REST process of a deployment needs the same key."""
    extractor_address: str = ""
    """host:port of the extractor; empty = ``<host>:<extractor_port>``."""
    matcher_addresses: tuple[str, ...] = ()
    """host:port of each matcher shard, in shard-index order; empty = one shard at
    ``<host>:<matcher_port>``."""
    call_timeout_s: float = 30.0
    """Deadline of the gateway's own calls to the extractor and the matchers."""
    replay_interval_s: float = 1.0
    """How often changes committed to the store but not yet acknowledged by the matchers
    are sent again (after a matcher was unreachable or a gateway died mid-request)."""
    forwarders: tuple[str, ...] = ()
    """DNS names of the client certificates allowed to forward REST requests' signatures
    (the REST shim's, under mTLS); empty = any caller may (plaintext deployments)."""


@dataclass(frozen=True)
class JobsSettings:
    """Bulk registration jobs, run by the gateway (``FACEGATE_JOBS_*``)."""

    workers: int = 12
    """Records processed at once per gateway process (their faces are batched by the
    extractor; more than the raw extractor needs, as each record also waits on its
    source and the store); 0 = this gateway runs no job workers."""
    max_attempts: int = 5
    """Attempts per record before a transient failure (source or extractor unreachable)
    becomes a final one."""
    retry_base_s: float = 1.0
    """Wait before the second attempt; doubles with each further attempt."""
    retry_max_s: float = 60.0
    """Longest wait between attempts."""
    lease_s: float = 60.0
    """How long a claimed record is reserved for its worker; a record of a worker that
    died is taken up again after this."""
    local_root: Path | None = None
    """Folder of the default local source: ``<local_root>/<gallery id>/``; None =
    ``<data_dir>/bulk``."""
    max_registrations: int = 100_000
    """Most registrations in one job request."""
    local_roots: tuple[str, ...] = ()
    """Folders a gallery's file:// source may name besides its own ``<local_root>/<gallery
    id>`` (comma-separated). Sources are set with an application key, so anything
    readable here is readable by every tenant: list archives meant for import only."""
    s3_endpoints: tuple[str, ...] = ()
    """S3-compatible endpoint URLs a source may name (comma-separated; ``*`` = any);
    empty = AWS only. Keeps a source from making the workers call internal addresses."""
    s3_ambient_credentials: bool = False
    """Let S3 sources without their own keys use this process's AWS credentials (its
    environment or instance role): every tenant could then read what those can."""


@dataclass(frozen=True)
class RestSettings:
    """The NEC ID REST shim (``FACEGATE_REST_*``)."""

    region: str = "ap-southeast-2"
    """AWS region that SigV4 signatures must be scoped to."""
    gateway_address: str = ""
    """host:port of the gateway's gRPC API; empty = ``<host>:<grpc_port>``."""
    max_body_bytes: int = 10 * 1024 * 1024
    """Larger request bodies are refused with 413."""
    rate_per_second: float = 50.0
    """Requests per second each API key may sustain (token bucket); 0 = no limit."""
    rate_burst: int = 100
    """Requests an API key may send at once before the rate applies."""
    request_timeout_s: float = 30.0
    """A request still running after this long fails with Timeout (1003)."""


@dataclass(frozen=True)
class TlsSettings:
    """TLS of every gRPC server and channel and of the REST listener (``FACEGATE_TLS_*``,
    docs/operations.md "TLS"); no ``cert_file`` = plaintext everywhere."""

    cert_file: Path | None = None
    """PEM certificate chain this process serves, and presents to the services it calls."""
    key_file: Path | None = None
    """PEM private key of ``cert_file``."""
    ca_file: Path | None = None
    """PEM CA bundle that servers' and (with mTLS) clients' certificates must chain to;
    None = the system's roots, and no client certificates are accepted."""
    require_client_cert: bool = False
    """gRPC servers refuse clients without a certificate from ``ca_file`` (mTLS)."""
    rest_require_client_cert: bool = False
    """The REST listener does too (NEC ID clients usually have none; a load balancer
    that re-encrypts may)."""

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("FACEGATE_TLS_CERT_FILE and FACEGATE_TLS_KEY_FILE go together")
        wants_clients = self.require_client_cert or self.rest_require_client_cert
        if wants_clients and (self.cert_file is None or self.ca_file is None):
            raise ValueError("client certificates need FACEGATE_TLS_CERT_FILE and _CA_FILE")

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


# Nested sections of Settings and the prefix of their variables after ``FACEGATE_``.
_SECTIONS = {
    "extractor": "EXTRACTOR_",
    "matcher": "MATCHER_",
    "gateway": "GATEWAY_",
    "rest": "REST_",
    "jobs": "JOBS_",
    "tls": "TLS_",
}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    model_dir: Path | None = None
    """Where model files and manifest.json live; None = ``<data_dir>/models``."""
    host: str = "127.0.0.1"
    extractor_port: int = 50052
    matcher_port: int = 50053
    grpc_port: int = 50051
    """Port of the gateway's public gRPC API."""
    rest_port: int = 8080
    """Port of the NEC ID REST API."""
    metrics_port: int = 0
    """Prometheus /metrics port; 0 = no metrics endpoint."""
    log_format: str = "json"
    """Logs on stderr: ``json`` (one object per line, with request ids) or ``text``."""
    grpc_workers: int = 16
    extractor: ExtractorSettings = field(default_factory=ExtractorSettings)
    matcher: MatcherSettings = field(default_factory=MatcherSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    rest: RestSettings = field(default_factory=RestSettings)
    jobs: JobsSettings = field(default_factory=JobsSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)

    @property
    def models(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    @property
    def matcher_dir(self) -> Path:
        """The shard's own directory: one per shard index, so shards never share a log."""
        configured = self.matcher.data_dir
        return configured or self.data_dir / "matcher" / f"shard-{self.matcher.shard_index}"

    @property
    def gateway_dir(self) -> Path:
        return self.data_dir / "gateway"

    @property
    def bulk_root(self) -> Path:
        return self.jobs.local_root or self.data_dir / "bulk"

    @property
    def database_url(self) -> str:
        if self.gateway.database_url:
            return self.gateway.database_url
        return f"sqlite+pysqlite:///{(self.gateway_dir / 'facegate.db').resolve()}"

    @property
    def extractor_address(self) -> str:
        return self.gateway.extractor_address or f"{self.host}:{self.extractor_port}"

    @property
    def matcher_addresses(self) -> tuple[str, ...]:
        return self.gateway.matcher_addresses or (f"{self.host}:{self.matcher_port}",)

    @property
    def gateway_address(self) -> str:
        return self.rest.gateway_address or f"{self.host}:{self.grpc_port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``FACEGATE_*`` variables, then ``overrides`` (non-None only)."""
        env = os.environ if env is None else env
        top = _from_env(cls(), env, ENV_PREFIX, sections=_SECTIONS.keys())
        for name, prefix in _SECTIONS.items():
            nested = _from_env(getattr(top, name), env, ENV_PREFIX + prefix)
            top = replace(top, **{name: nested})
        section_overrides = {name: overrides.pop(name, None) or {} for name in _SECTIONS}
        top = replace(top, **{k: v for k, v in overrides.items() if v is not None})
        for name, values in section_overrides.items():
            given = {k: v for k, v in values.items() if v is not None}
            if given:
                top = replace(top, **{name: replace(getattr(top, name), **given)})
        return top


def _from_env(obj: T, env: Mapping[str, str], prefix: str, *, sections: Collection[str] = ()) -> T:
    """``obj`` with the fields ``prefix + FIELD`` sets in ``env``. A nested dataclass is
    read under the same prefix (a group of fields, such as ``MatcherSettings.index``),
    unless it is one of ``sections``: those have a prefix of their own."""
    changes: dict[str, Any] = {}
    for f in fields(obj):  # type: ignore[arg-type]
        current = getattr(obj, f.name)
        if f.name in sections:
            continue
        if is_dataclass(current):
            changes[f.name] = _from_env(current, env, prefix)
            continue
        key = prefix + f.name.upper()
        if key not in env:
            continue
        changes[f.name] = _parse(env[key], current, key)
    return replace(obj, **changes)  # type: ignore[type-var]


def _parse(raw: str, current: Any, key: str) -> Any:
    try:
        if isinstance(current, bool):
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(current, Path) or current is None:
            return Path(raw)
        return raw
    except ValueError as exc:
        raise ValueError(f"environment variable {key}={raw!r} is not valid: {exc}") from exc
