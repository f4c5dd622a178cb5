"""ONNX Runtime sessions, built once per model with providers and threads chosen here.

The CUDA provider is used automatically when the installed onnxruntime build offers
it (``facegate[gpu]`` on a GPU node) unless settings pin the providers; everything
else runs on the CPU provider with the intra-op thread count from settings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from extractor.models.manifest import ModelError

GPU_PROVIDERS = ("CUDAExecutionProvider",)


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def choose_providers(requested: Sequence[str] | None = None) -> list[str]:
    available = available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ModelError(
                f"execution providers {missing} are not available in this onnxruntime build "
                f"(available: {available})"
            )
        return list(requested)
    chosen = [p for p in GPU_PROVIDERS if p in available]
    return [*chosen, "CPUExecutionProvider"]


MODELS_IN_FLIGHT = 3
"""Detector, recognizer and pose model run at the same time (one batcher thread each)."""


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_threads() -> int:
    """Intra-op threads per model: the CPUs shared by the models that run concurrently.

    Measured on 2 cores (lfw-dev, docs/benchmarks.md): one thread per model and no
    spinning doubled throughput against two spinning threads per model, because the
    three models' pools no longer fight over the same cores.
    """
    return max(1, usable_cpus() // MODELS_IN_FLIGHT)


class OnnxModel:
    """One inference session with a single float32 input."""

    def __init__(self, path: Path, *, threads: int, providers: Sequence[str]) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelError(
                "onnxruntime is not installed: install facegate[cpu] or facegate[gpu]"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Spinning threads of one model's pool would steal the cores another model's
        # run needs; they alternate within milliseconds, so let idle threads sleep.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=list(providers))
        self.input_name: str = self.session.get_inputs()[0].name
        self.providers: list[str] = list(self.session.get_providers())

    def run(self, batch: np.ndarray) -> list[Any]:
        outputs: list[Any] = self.session.run(None, {self.input_name: batch})
        return outputs
