"""deploy/k8s, checked offline for every overlay.

Each rendered object is validated against the Kubernetes OpenAPI schemas bundled with
kubernetes-validate, in strict mode (an unknown or misspelt field fails), for the oldest
Kubernetes these manifests support and the newest the package knows. Custom resources
(ServiceMonitor, cert-manager's Certificate) are not in those schemas and are checked
against the small schemas below. Then the references no schema sees: Services against
pods, probes against ports, Secrets and ConfigMaps against what exists, what a
Certificate fills, or what is documented as created by the operator, and the matcher
shards against the gateway's list of them.
"""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from kubernetes_validate import utils as kubernetes_schemas  # type: ignore[import-untyped]

from tests.support.k8s import (
    REPO,
    Manifest,
    Render,
    Workload,
    container_ports,
    env_of,
    named,
    of_kind,
    overlay_names,
    probes,
    references,
    selects,
    workload,
    workloads,
)

OVERLAYS = overlay_names()
# 1.28: the first release that labels StatefulSet pods with apps.kubernetes.io/pod-index
# (the matcher's shard index comes from it).
KUBERNETES_VERSIONS = ("1.28", kubernetes_schemas.latest_version())
DATA_DIR = "/var/lib/facegate"
"""FACEGATE_DATA_DIR of the images (deploy/docker): must be writable in every pod."""
OPERATIONS_DOC = REPO / "docs" / "operations.md"
EXTERNAL = {
    ("Secret", "facegate-secrets"): {"database-url", "master-key"},
    ("Secret", "facegate-postgres"): {"password"},
}
"""Objects the operator creates before applying an overlay (docs/operations.md)."""

SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "matchExpressions": {"type": "array"},
                    },
                },
                "namespaceSelector": {"type": "object"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m)$"},
                            "scheme": {"enum": ["http", "https"]},
                        },
                    },
                },
            },
        },
    },
}
"""The fields of monitoring.coreos.com/v1 ServiceMonitor these manifests use, with the
Operator's required ones (selector, endpoints); other fields are refused so a typo
cannot pass unnoticed."""
CERTIFICATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["secretName", "issuerRef"],
            "additionalProperties": False,
            "properties": {
                "secretName": {"type": "string", "minLength": 1},
                "issuerRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "kind": {"enum": ["Issuer", "ClusterIssuer"]},
                        "group": {"type": "string"},
                    },
                },
                "duration": {"type": "string", "pattern": "^[0-9]+(h|m|s)$"},
                "renewBefore": {"type": "string", "pattern": "^[0-9]+(h|m|s)$"},
                "privateKey": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                        "size": {"type": "integer"},
                        "rotationPolicy": {"enum": ["Never", "Always"]},
                        "encoding": {"enum": ["PKCS1", "PKCS8"]},
                    },
                },
                "usages": {
                    "type": "array",
                    "items": {
                        "enum": [
                            "digital signature",
                            "key encipherment",
                            "server auth",
                            "client auth",
                        ]
                    },
                },
                "dnsNames": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "ipAddresses": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}
"""The fields of cert-manager.io/v1 Certificate these manifests use (the same rule: other
fields are refused)."""
CERTIFICATE_KEYS = {"tls.crt", "tls.key", "ca.crt"}
"""What the Secret of a Certificate from a CA Issuer holds."""
CUSTOM_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR_SCHEMA,
    ("cert-manager.io/v1", "Certificate"): CERTIFICATE_SCHEMA,
}


def facegate_workloads(objects: list[Manifest]) -> list[Workload]:
    """The four facegate services (not the demo's PostgreSQL)."""
    return [
        w for w in workloads(objects) if w.pod_labels.get("app.kubernetes.io/name") == "facegate"
    ]


def test_both_overlays_are_present() -> None:
    assert OVERLAYS == ["demo", "production"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_matches_its_schema(rendered: Render, overlay: str) -> None:
    failures: list[str] = []
    for obj in rendered(overlay):
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        custom = CUSTOM_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
        if custom is not None:
            failures += [
                f"{what}: {e.message}" for e in Draft202012Validator(custom).iter_errors(obj)
            ]
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_schemas.validate(obj, version, strict=True)
            except kubernetes_schemas.ValidationError as error:
                path = ".".join(str(p) for p in error.path)
                failures.append(f"{what} (Kubernetes {version}) at {path}: {error.message}")
            except kubernetes_schemas.SchemaNotFoundError as error:
                failures.append(f"{what}: {error.message}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_pods_that_have_their_ports(rendered: Render, overlay: str) -> None:
    objects = rendered(overlay)
    for service in of_kind(objects, "Service"):
        name, selector = service["metadata"]["name"], service["spec"].get("selector", {})
        assert selector, f"Service {name} has no selector"
        picked = [w for w in workloads(objects) if selects(selector, w.pod_labels)]
        assert picked, f"Service {name} selects no workload's pods ({selector})"
        for w in picked:
            ports: dict[str, int] = {}
            for container in w.containers:
                ports.update(container_ports(container))
            for port in service["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                found = target in ports if isinstance(target, str) else target in ports.values()
                assert found, f"Service {name} port {target} is not a port of {w.name}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_use_the_containers_ports(rendered: Render, overlay: str) -> None:
    for w in workloads(rendered(overlay)):
        for container in w.containers:
            ports = container_ports(container)
            kinds = {kind for kind, _ in probes(container)}
            assert {"readinessProbe", "livenessProbe"} <= kinds, f"{w.name}: probes missing"
            for kind, probe in probes(container):
                for handler in ("grpc", "httpGet", "tcpSocket"):
                    if handler in probe:
                        port = probe[handler]["port"]
                        ok = port in ports if isinstance(port, str) else port in ports.values()
                        assert ok, f"{w.name} {kind} uses port {port}, not in {ports}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_facegate_services_probe_grpc_health_and_rest_http(rendered: Render, overlay: str) -> None:
    """gRPC services: readiness is the standard health check. The gateway's health
    follows its dependencies (gateway/health.py), so its liveness must not: a matcher
    shard being down would restart every gateway; it checks the port instead."""
    objects = rendered(overlay)
    for w in facegate_workloads(objects):
        container = w.pod_spec["containers"][0]
        ports = container_ports(container)
        for kind, probe in probes(container):
            what = f"{w.name} {kind}"
            if w.component == "rest":
                assert probe["httpGet"]["path"] == "/openapi.json", what
                assert ports.get(probe["httpGet"]["port"]) == 8080, what
                over_tls = "FACEGATE_TLS_CERT_FILE" in env_of(container, objects)
                assert probe["httpGet"].get("scheme", "HTTP") == ("HTTPS" if over_tls else "HTTP")
            elif w.component == "gateway" and kind != "readinessProbe":
                assert ports.get(probe["tcpSocket"]["port"]) == ports["grpc"], what
            elif "exec" in probe:
                # Over TLS, which Kubernetes' grpc probe cannot speak (facegate/probe.py).
                command = probe["exec"]["command"]
                assert command == ["python", "-m", "facegate.probe", str(ports["grpc"])], what
                assert "FACEGATE_TLS_CERT_FILE" in env_of(container, objects), what
            else:
                assert probe["grpc"]["port"] == ports["grpc"], what


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_and_config_maps_exist_or_are_documented(rendered: Render, overlay: str) -> None:
    objects = rendered(overlay)
    doc = OPERATIONS_DOC.read_text(encoding="utf-8")
    for ref in references(objects):
        present = [o for o in of_kind(objects, ref.kind) if o["metadata"]["name"] == ref.name]
        issued = [c for c in of_kind(objects, "Certificate") if c["spec"]["secretName"] == ref.name]
        if ref.kind == "Secret" and issued:
            assert not ref.key or ref.key in CERTIFICATE_KEYS, f"{ref}: not in a TLS Secret"
            continue
        if present:
            data = {**present[0].get("data", {}), **present[0].get("stringData", {})}
            assert not ref.key or ref.key in data, f"{ref}: no key {ref.key}"
            continue
        keys = EXTERNAL.get((ref.kind, ref.name))
        assert keys is not None, f"{ref.user} uses {ref.kind} {ref.name}, which is not rendered"
        assert not ref.key or ref.key in keys, f"{ref}: key not among the documented {keys}"
        for text in (ref.name, *sorted(keys)):
            assert text in doc, f"docs/operations.md never names {text}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_matcher_shards_match_the_gateways_list(rendered: Render, overlay: str) -> None:
    objects = rendered(overlay)
    matcher = workload(objects, "matcher")
    assert matcher.kind == "StatefulSet"
    shards = matcher.replicas
    env = env_of(matcher.pod_spec["containers"][0], objects)
    assert env["FACEGATE_MATCHER_SHARD_COUNT"] == str(shards)
    assert (
        env["FACEGATE_MATCHER_SHARD_INDEX"] == "<metadata.labels['apps.kubernetes.io/pod-index']>"
    )

    headless = named(objects, "Service", matcher.manifest["spec"]["serviceName"])
    assert headless["spec"].get("clusterIP") == "None", "pods get DNS names only if headless"
    assert selects(headless["spec"]["selector"], matcher.pod_labels)
    port = container_ports(matcher.pod_spec["containers"][0])["grpc"]
    expected = [f"{matcher.name}-{i}.{headless['metadata']['name']}:{port}" for i in range(shards)]
    gateway_env = env_of(workload(objects, "gateway").pod_spec["containers"][0], objects)
    assert gateway_env["FACEGATE_GATEWAY_MATCHER_ADDRESSES"].split(",") == expected


@pytest.mark.parametrize(
    ("user", "variable", "target"),
    [
        ("gateway", "FACEGATE_GATEWAY_EXTRACTOR_ADDRESS", "extractor"),
        ("rest", "FACEGATE_REST_GATEWAY_ADDRESS", "gateway"),
    ],
)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_addresses_lead_to_their_service(
    rendered: Render, overlay: str, user: str, variable: str, target: str
) -> None:
    objects = rendered(overlay)
    env = env_of(workload(objects, user).pod_spec["containers"][0], objects)
    address = env[variable]
    # dns:/// so that gRPC resolves every pod of the headless Service and balances.
    assert address.startswith("dns:///"), address
    host, port = address.removeprefix("dns:///").rsplit(":", 1)
    service = named(objects, "Service", host)
    assert service["spec"].get("clusterIP") == "None"
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}
    assert selects(service["spec"]["selector"], workload(objects, target).pod_labels)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_facegate_containers_run_their_service(rendered: Render, overlay: str) -> None:
    objects = rendered(overlay)
    components = set()
    for w in facegate_workloads(objects):
        container = w.pod_spec["containers"][0]
        assert container["args"] == ["serve", w.component], w.name
        env = env_of(container, objects)
        assert env["FACEGATE_HOST"] == "0.0.0.0", w.name
        assert env["FACEGATE_METRICS_PORT"] == str(container_ports(container)["metrics"])
        components.add(w.component)
    assert components == {"rest", "gateway", "extractor", "matcher"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down_and_sized(rendered: Render, overlay: str) -> None:
    objects = rendered(overlay)
    ours = {w.name for w in facegate_workloads(objects)}
    for w in workloads(objects):
        assert w.pod_spec["securityContext"]["runAsNonRoot"] is True, w.name
        assert w.pod_spec.get("automountServiceAccountToken") is False, w.name
        for container in w.containers:
            what = f"{w.name}/{container['name']}"
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1], f"{what}: image {image} has no tag"
            assert not image.endswith(":latest"), what
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, what
            assert security["capabilities"]["drop"] == ["ALL"], what
            assert security["readOnlyRootFilesystem"] is True, what
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{what}: /tmp is not writable"
            if w.name in ours:
                assert DATA_DIR in mounts, f"{what}: {DATA_DIR} is not writable"
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), what


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_matcher_state_is_on_a_claim_per_shard(rendered: Render, overlay: str) -> None:
    matcher = workload(rendered(overlay), "matcher")
    claims = {t["metadata"]["name"] for t in matcher.manifest["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in matcher.pod_spec["containers"][0]["volumeMounts"]}
    assert mounts[DATA_DIR] in claims
