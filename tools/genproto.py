"""Generate the gRPC/protobuf stub package ``facegate/v1`` from ``proto/facegate/v1``.

``python tools/genproto.py`` regenerates the package: message modules (``_pb2.py``),
service modules (``_pb2_grpc.py``), typed stubs for both (``.pyi``, by mypy-protobuf)
and ``__init__.py``. Files of the package that generation no longer produces are
removed, and files whose bytes are unchanged are left untouched.

``python tools/genproto.py --check`` generates into a temporary directory and exits
with status 1, listing each difference, if the package on disk is not exactly what
generation produces (CI runs it so the committed stubs cannot drift).

Run it from any directory with the project's virtual environment's Python; the
protoc plugins are taken from that environment's bin directory.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
# The package path, relative both to PROTO_ROOT (sources) and REPO_ROOT (stubs).
PACKAGE = Path("facegate") / "v1"
INIT_TEXT = '"""Generated from proto/facegate/v1 by tools/genproto.py; do not edit."""\n'
# Directories under the package that are neither generated nor drift.
IGNORED_DIRS = frozenset({"__pycache__"})


def proto_files() -> list[Path]:
    """The .proto sources, relative to PROTO_ROOT, in a stable order."""
    return sorted(path.relative_to(PROTO_ROOT) for path in (PROTO_ROOT / PACKAGE).glob("*.proto"))


def protoc_command(out_dir: Path) -> list[str]:
    """The protoc invocation that writes every generated file under ``out_dir``."""
    bin_dir = Path(sys.executable).parent
    well_known = resources.files("grpc_tools") / "_proto"
    out = str(out_dir)
    return [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out=quiet:{out}",
        f"--mypy_grpc_out=quiet:{out}",
        *(path.as_posix() for path in proto_files()),
    ]


def generate(out_dir: Path) -> dict[str, bytes]:
    """Generate the package under ``out_dir``; return its files by package-relative path."""
    if not proto_files():
        raise SystemExit(f"genproto: no .proto files in {PROTO_ROOT / PACKAGE}")
    result = subprocess.run(protoc_command(out_dir), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"genproto: protoc failed ({result.returncode}):\n{result.stderr}")
    package_dir = out_dir / PACKAGE
    (package_dir / "__init__.py").write_text(INIT_TEXT, encoding="utf-8")
    return read_package(package_dir)


def read_package(package_dir: Path) -> dict[str, bytes]:
    """The files under ``package_dir`` (skipping IGNORED_DIRS) by relative POSIX path."""
    if not package_dir.is_dir():
        return {}
    return {
        path.relative_to(package_dir).as_posix(): path.read_bytes()
        for path in sorted(package_dir.rglob("*"))
        if path.is_file() and not IGNORED_DIRS.intersection(path.relative_to(package_dir).parts)
    }


def differences(expected: dict[str, bytes], actual: dict[str, bytes]) -> list[str]:
    """One line per file of the package that is changed, missing or extra."""
    lines: list[str] = []
    for name in sorted(expected.keys() | actual.keys()):
        path = (PACKAGE / name).as_posix()
        if name not in actual:
            lines.append(f"missing: {path}")
        elif name not in expected:
            lines.append(f"extra:   {path}")
        elif expected[name] != actual[name]:
            lines.append(f"changed: {path}")
    return lines


def write_package(expected: dict[str, bytes], actual: dict[str, bytes]) -> None:
    """Make the package on disk equal ``expected``, touching only differing files."""
    package_dir = REPO_ROOT / PACKAGE
    for name in sorted(actual.keys() - expected.keys()):
        (package_dir / name).unlink()
    for name, content in sorted(expected.items()):
        if actual.get(name) != content:
            target = package_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate facegate/v1 from proto/facegate/v1.")
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if facegate/v1 differs from a fresh generation",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="genproto-") as tmp:
        expected = generate(Path(tmp))
    actual = read_package(REPO_ROOT / PACKAGE)
    diff = differences(expected, actual)
    if args.check:
        if diff:
            print(f"{PACKAGE.as_posix()} is out of date with proto/; run `make proto`:")
            print("\n".join(f"  {line}" for line in diff))
            return 1
        print(f"{PACKAGE.as_posix()} is up to date ({len(expected)} files)")
        return 0
    write_package(expected, actual)
    print(f"{PACKAGE.as_posix()}: {len(diff)} files written or removed, {len(expected)} in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
