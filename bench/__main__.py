"""``make bench``: every benchmark, each writing its JSON and its docs section.

python -m bench [--skip-models] [--skip-matcher] [--skip-gateway] [--skip-accuracy]

The extractor's figures (lfw-dev against face_recognition, and photos by size) always run.
"""

from __future__ import annotations

import argparse

from bench import (
    accuracy_api,
    compare_models,
    extractor_bench,
    face_selection,
    fpir_scale,
    gateway_bench,
    large_body,
    matcher_bench,
    photo_sizes,
    quantize,
    s3_client,
    tls_bench,
)


def main() -> int:
    parser = argparse.ArgumentParser(description="run the benchmarks")
    parser.add_argument(
        "--skip-models",
        action="store_true",
        help="skip the detector/recognizer comparison and the int8 variants",
    )
    parser.add_argument(
        "--skip-matcher", action="store_true", help="skip the matcher benchmark (1M templates)"
    )
    parser.add_argument(
        "--skip-gateway",
        action="store_true",
        help="skip the gateway benchmarks (REST API end to end at 10k and 100k events, "
        "the large-body REST path, the S3 client's CPU per object, TLS on every hop)",
    )
    parser.add_argument(
        "--skip-accuracy",
        action="store_true",
        help="skip the accuracy benchmarks: face selection rules, accuracy through the "
        "REST API (lfw-dev, real service), FPIR against gallery size",
    )
    args = parser.parse_args()
    status = extractor_bench.main([])
    status |= photo_sizes.main([])
    if not args.skip_matcher:
        status |= matcher_bench.main([])
    if not args.skip_gateway:
        status |= gateway_bench.main([])
        status |= large_body.main([])
        status |= s3_client.main([])
        status |= tls_bench.main([])
    if not args.skip_accuracy:
        status |= face_selection.main([])
        status |= accuracy_api.main([])
        status |= fpir_scale.main([])
    if not args.skip_models:
        status |= compare_models.main([])
        status |= quantize.main([])
    return status


if __name__ == "__main__":
    raise SystemExit(main())
