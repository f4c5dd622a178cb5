"""Earlier revisions of this repository, for benchmarks that compare against them."""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.dataset import REPO_ROOT


@contextmanager
def source_tree(revision: str) -> Iterator[Path]:
    """The repository as of ``revision``, exported (the working tree is not touched)."""
    with tempfile.TemporaryDirectory(prefix="facegate-baseline-") as folder:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", revision],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        yield Path(folder)


def revision(ref: str) -> str:
    """The short hash of ``ref``."""
    return subprocess.run(
        ["git", "rev-parse", "--short", ref],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def current_revision() -> str:
    """The short hash of HEAD, marked when the working tree differs from it."""
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, check=False
    )
    return revision("HEAD") + ("+working tree" if dirty.stdout.strip() else "")
