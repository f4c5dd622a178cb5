"""Execution providers and threads: CUDA automatically where the build offers it."""

from __future__ import annotations

import pytest

from extractor import runtime
from extractor.models.manifest import ModelError


def test_cuda_comes_first_when_the_build_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        runtime,
        "available_providers",
        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    assert runtime.choose_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_cpu_only_build_runs_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "available_providers", lambda: ["CPUExecutionProvider"])
    assert runtime.choose_providers() == ["CPUExecutionProvider"]


def test_pinned_providers_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "available_providers", lambda: ["CPUExecutionProvider"])
    assert runtime.choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(ModelError, match="CUDAExecutionProvider"):
        runtime.choose_providers(["CUDAExecutionProvider"])


def test_threads_share_the_cpus_between_the_three_models(monkeypatch: pytest.MonkeyPatch) -> None:
    for cpus, expected in ((1, 1), (2, 1), (6, 2), (16, 5)):
        monkeypatch.setattr(runtime, "usable_cpus", lambda cpus=cpus: cpus)
        assert runtime.default_threads() == expected


def test_the_installed_build_offers_the_cpu_provider() -> None:
    assert "CPUExecutionProvider" in runtime.available_providers()
