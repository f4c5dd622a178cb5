"""deploy/docker, checked without a Docker engine (none runs here or in CI): the
Dockerfiles are parsed and the properties the Kubernetes manifests rely on are
asserted: multi-stage, a non-root runtime user, ``facegate`` as entrypoint, the models
fetched at build time into the model directory the runtime stage copies and names,
the right ONNX Runtime extra, and no credentials in the image."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.k8s import REPO

DOCKER = REPO / "deploy" / "docker"
IMAGES = [("Dockerfile", "cpu"), ("Dockerfile.gpu", "gpu")]
DATA_DIR = "/var/lib/facegate"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|MASTER_KEY|DATABASE_URL|ACCESS_KEY", re.I)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int
    """Index of the FROM this instruction belongs to (-1: global ARGs before the first)."""


def parse(path: Path) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped."""
    instructions: list[Instruction] = []
    stage, pending = -1, ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), " ".join(args.split()), stage))
    return instructions


def assignments(instructions: list[Instruction], keyword: str, stage: int) -> dict[str, str]:
    """NAME=value pairs of the stage's ENV (or ARG) instructions."""
    values: dict[str, str] = {}
    for i in instructions:
        if i.keyword == keyword and i.stage == stage:
            for word in shlex.split(i.args):
                name, _, value = word.partition("=")
                values[name] = value
    return values


def final_stage(instructions: list[Instruction]) -> int:
    return max(i.stage for i in instructions)


def base_image(instructions: list[Instruction], stage: int) -> str:
    """The stage's FROM image with global ARG defaults substituted."""
    defaults = assignments(instructions, "ARG", -1)
    image = next(i.args for i in instructions if i.keyword == "FROM" and i.stage == stage)
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], image.split()[0])


@pytest.mark.parametrize(("name", "extra"), IMAGES)
def test_multi_stage_with_a_non_root_runtime(name: str, extra: str) -> None:
    instructions = parse(DOCKER / name)
    last = final_stage(instructions)
    assert last >= 1, "the build stage keeps compilers and caches out of the image"
    users = [i.args for i in instructions if i.keyword == "USER" and i.stage == last]
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user.isdigit(), "numeric, so that runAsNonRoot can check it"
    assert int(user) != 0


@pytest.mark.parametrize(("name", "extra"), IMAGES)
def test_entrypoint_is_facegate_serve(name: str, extra: str) -> None:
    instructions = parse(DOCKER / name)
    last = final_stage(instructions)
    final = {i.keyword: i.args for i in instructions if i.stage == last}
    assert json.loads(final["ENTRYPOINT"]) == ["facegate"]
    assert json.loads(final["CMD"]) == ["serve"]
    env = assignments(instructions, "ENV", last)
    assert env["FACEGATE_DATA_DIR"] == DATA_DIR, "the manifests mount a volume there"
    assert env["FACEGATE_HOST"] == "0.0.0.0"


@pytest.mark.parametrize(("name", "extra"), IMAGES)
def test_models_are_fetched_at_build_time(name: str, extra: str) -> None:
    instructions = parse(DOCKER / name)
    last = final_stage(instructions)
    fetches = [i for i in instructions if i.keyword == "RUN" and "facegate models fetch" in i.args]
    assert len(fetches) == 1
    build = fetches[0].stage
    assert build < last, "fetched in a build stage, copied into the runtime stage"
    model_dir = assignments(instructions, "ENV", build)["FACEGATE_MODEL_DIR"]
    assert assignments(instructions, "ENV", last)["FACEGATE_MODEL_DIR"] == model_dir
    alias = next(i.args for i in instructions if i.keyword == "FROM" and i.stage == build)
    alias = alias.split()[-1]
    copies = [i.args for i in instructions if i.keyword == "COPY" and i.stage == last]
    assert f"--from={alias} {model_dir} {model_dir}" in copies


@pytest.mark.parametrize(("name", "extra"), IMAGES)
def test_installs_its_onnxruntime_extra(name: str, extra: str) -> None:
    instructions = parse(DOCKER / name)
    installs = [i.args for i in instructions if i.keyword == "RUN" and "pip install" in i.args]
    assert any(f'".[{extra}]"' in args for args in installs), installs
    other = "gpu" if extra == "cpu" else "cpu"
    assert not any(f".[{other}]" in args for args in installs)


def test_base_images() -> None:
    cpu = parse(DOCKER / "Dockerfile")
    assert all(base_image(cpu, s).startswith("python:3.11-slim") for s in range(2))
    gpu = parse(DOCKER / "Dockerfile.gpu")
    runtime = base_image(gpu, final_stage(gpu))
    assert runtime.startswith("nvidia/cuda:")
    assert "-cudnn-runtime-" in runtime


@pytest.mark.parametrize(("name", "extra"), IMAGES)
def test_no_secrets_are_baked_in(name: str, extra: str) -> None:
    for i in parse(DOCKER / name):
        if i.keyword in ("ENV", "ARG"):
            names = [word.partition("=")[0] for word in shlex.split(i.args)]
            assert not [n for n in names if SECRET_NAME.search(n)], i.args
        if i.keyword in ("COPY", "ADD"):
            assert not re.search(r"\.(key|pem|env)\b|://", i.args), i.args
            assert "--from=" in i.args or not re.search(r"(^|\s)\.(\s|$)", i.args), (
                "copy named paths, not the whole context"
            )


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = set((REPO / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".git", ".venv", ".data", "**/__pycache__", "**/*.key"} <= patterns
