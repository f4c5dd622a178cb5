"""Where benchmark figures go: generated sections of docs and a machine description."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def machine_summary() -> str:
    """CPU model, usable cores, memory, Python and ONNX Runtime versions, and the date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    try:
        import onnxruntime

        runtime = f", onnxruntime {onnxruntime.__version__}"
    except ImportError:
        runtime = ""
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{cpu}, {cores} cores{memory}, Python {platform.python_version()}{runtime}, {date}"


def replace_section(path: Path, name: str, body: str) -> None:
    """Put ``body`` between this section's markers in ``path``, adding them if absent."""
    start, end = f"<!-- generated:{name}:start -->", f"<!-- generated:{name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    path.write_text(text, encoding="utf-8")


def publish(result: dict[str, Any], results: Path, docs: Path, section: str, body: str) -> None:
    """Write a benchmark's JSON to ``results`` and its markdown to a section of ``docs``,
    and print the markdown."""
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    replace_section(docs, section, body)
    print(body)
