"""What the production overlay promises beyond valid objects: autoscaling and disruption
budgets that point at real workloads, GPU extractors, metrics scraped from every
service, and network policies that let only the gateway reach the extractor, the
matchers and the database, and the REST shim reach nothing but the gateway (evaluated
here the way a CNI would, for the pods these manifests create)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.support.k8s import (
    REPO,
    Manifest,
    Render,
    Workload,
    container_ports,
    env_of,
    named,
    of_kind,
    selects,
    workload,
    workloads,
)

ANYONE = "<any source>"
OUTSIDE = "<another namespace or address>"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"


def policies_for(objects: list[Manifest], target: Workload, direction: str) -> list[Manifest]:
    """The NetworkPolicies that select the target's pods for Ingress or Egress."""
    return [
        p
        for p in of_kind(objects, "NetworkPolicy")
        if direction in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"]["podSelector"], target.pod_labels)
    ]


def ingress_sources(objects: list[Manifest], target: Workload, port: int) -> set[str] | None:
    """Who may open a connection to ``port`` of the target's pods: components of this
    namespace, ANYONE, or OUTSIDE; None when no policy restricts the pods at all."""
    policies = policies_for(objects, target, "Ingress")
    if not policies:
        return None
    names = {n for c in target.containers for n, p in container_ports(c).items() if p == port}
    sources: set[str] = set()
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            rule_ports = [p.get("port") for p in rule.get("ports", [])]
            if rule_ports and port not in rule_ports and not names & set(map(str, rule_ports)):
                continue
            if not rule.get("from"):
                sources.add(ANYONE)
            for peer in rule.get("from", []):
                if set(peer) == {"podSelector"}:
                    sources |= {
                        w.component
                        for w in workloads(objects)
                        if selects(peer["podSelector"], w.pod_labels)
                    }
                else:
                    sources.add(OUTSIDE)
    return sources


@pytest.fixture
def production(rendered: Render) -> list[Manifest]:
    return rendered("production")


@pytest.mark.parametrize(
    ("overlay", "component", "port"),
    [
        ("production", "extractor", 50052),
        ("production", "matcher", 50053),
        ("demo", "database", 5432),
    ],
)
def test_only_the_gateway_reaches_internal_services(
    rendered: Render, overlay: str, component: str, port: int
) -> None:
    objects = rendered(overlay)
    assert ingress_sources(objects, workload(objects, component), port) == {"gateway"}


def test_public_apis_are_open_and_the_rest_is_denied(production: list[Manifest]) -> None:
    assert ANYONE in (ingress_sources(production, workload(production, "rest"), 8080) or set())
    assert ANYONE in (ingress_sources(production, workload(production, "gateway"), 50051) or set())
    for w in workloads(production):
        assert ingress_sources(production, w, 9090) == {OUTSIDE}, f"{w.name}: metrics port"
        assert ingress_sources(production, w, 12345) == set(), f"{w.name}: not default-deny"


def test_only_the_gateway_opens_connections_beyond_the_gateway(
    production: list[Manifest],
) -> None:
    """The extractor and the matchers need no outbound connection, so they cannot reach
    PostgreSQL (outside the cluster) or anything else; the REST shim reaches the
    gateway and DNS only (it holds no secret and never opens the store); the gateway
    reaches everything it calls (store, extractor, matchers, S3)."""
    for w in workloads(production):
        egress = policies_for(production, w, "Egress")
        if w.component == "gateway":
            assert not egress, f"{w.name} must reach the store"
        elif w.component == "rest":
            rules = [rule for p in egress for rule in p["spec"].get("egress", [])]
            targets = [
                peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                for rule in rules
                for peer in rule.get("to", [])
            ]
            assert targets == ["gateway"]
            ports = sorted(p["port"] for rule in rules for p in rule.get("ports", []))
            assert ports == [53, 53, 50051]
        else:
            assert egress, f"{w.name} may open connections"
            assert all(not p["spec"].get("egress") for p in egress), f"{w.name} egress rules"


def test_production_uses_an_external_database(production: list[Manifest]) -> None:
    assert not [w for w in workloads(production) if w.component == "database"]


@pytest.mark.parametrize("component", ["rest", "gateway"])
def test_stateless_services_autoscale_on_cpu(production: list[Manifest], component: str) -> None:
    target = workload(production, component)
    hpas = [
        h
        for h in of_kind(production, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["name"] == target.name
    ]
    assert len(hpas) == 1
    hpa = hpas[0]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["kind"] == target.kind
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["minReplicas"] >= 2
    # Utilization is measured against the request: without one the HPA cannot act.
    assert all("cpu" in c["resources"]["requests"] for c in target.containers)


def test_every_budget_covers_a_workload(production: list[Manifest]) -> None:
    covered = set()
    for pdb in of_kind(production, "PodDisruptionBudget"):
        picked = [
            w for w in workloads(production) if selects(pdb["spec"]["selector"], w.pod_labels)
        ]
        assert len(picked) == 1, pdb["metadata"]["name"]
        covered.add(picked[0].component)
    assert {"rest", "gateway"} <= covered


def test_every_metrics_port_is_scraped(production: list[Manifest]) -> None:
    monitors = of_kind(production, "ServiceMonitor")
    for service in of_kind(production, "Service"):
        port_names = {p["name"] for p in service["spec"]["ports"]}
        if "metrics" not in port_names:
            continue
        labels = service["metadata"].get("labels", {})
        scraped = [
            m
            for m in monitors
            if selects(m["spec"]["selector"], labels)
            and "metrics" in {e["port"] for e in m["spec"]["endpoints"]}
        ]
        assert scraped, f"no ServiceMonitor scrapes {service['metadata']['name']}"
    services = {s["metadata"]["name"] for s in of_kind(production, "Service")}
    assert services == {f"facegate-{c}" for c in ("rest", "gateway", "extractor", "matcher")}


def test_the_extractor_runs_on_a_gpu(production: list[Manifest]) -> None:
    extractor = workload(production, "extractor")
    container = extractor.pod_spec["containers"][0]
    assert container["image"].split(":")[0].endswith("/facegate-gpu")
    for bound in ("requests", "limits"):
        assert container["resources"][bound]["nvidia.com/gpu"] == 1
    spec = extractor.pod_spec
    assert spec["nodeSelector"], "GPU pods need GPU nodes"
    assert "nvidia.com/gpu" in {t["key"] for t in spec["tolerations"]}
    for w in workloads(production):
        if w.component != "extractor":
            assert all("nvidia.com/gpu" not in c["resources"]["limits"] for c in w.containers)
            assert all("facegate-gpu" not in c["image"] for c in w.containers)


def test_prometheus_example_scrapes_the_metrics_ports(production: list[Manifest]) -> None:
    config: dict[str, Any] = yaml.safe_load(Path(PROMETHEUS_CONFIG).read_text(encoding="utf-8"))
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "facegate"]
    (discovery,) = job["kubernetes_sd_configs"]
    namespace = of_kind(production, "Namespace")[0]["metadata"]["name"]
    assert namespace in discovery["namespaces"]["names"]
    keeps = {
        tuple(r["source_labels"]): r["regex"]
        for r in job["relabel_configs"]
        if r.get("action") == "keep"
    }
    assert keeps[("__meta_kubernetes_endpoint_port_name",)] == "metrics"
    service = named(production, "Service", "facegate-gateway")
    name_label = service["metadata"]["labels"]["app.kubernetes.io/name"]
    assert keeps[("__meta_kubernetes_service_label_app_kubernetes_io_name",)] == name_label


@pytest.mark.parametrize("component", ["rest", "gateway", "extractor", "matcher"])
def test_every_service_runs_over_mtls_with_its_own_certificate(
    production: list[Manifest], component: str
) -> None:
    """Its TLS files lie in a mounted Secret that a cert-manager Certificate for the
    Service's own name fills (a directory mount: renewals reach the files)."""
    target = workload(production, component)
    container = target.pod_spec["containers"][0]
    env = env_of(container, production)
    assert env["FACEGATE_TLS_REQUIRE_CLIENT_CERT"] == "true"
    files = {env[f"FACEGATE_TLS_{name}_FILE"] for name in ("CERT", "KEY", "CA")}
    (mount,) = [
        m
        for m in container["volumeMounts"]
        if all(f.startswith(m["mountPath"] + "/") for f in files)
    ]
    assert "subPath" not in mount
    (volume,) = [v for v in target.pod_spec["volumes"] if v["name"] == mount["name"]]
    (certificate,) = [
        c
        for c in of_kind(production, "Certificate")
        if c["spec"]["secretName"] == volume["secret"]["secretName"]
    ]
    assert {Path(f).name for f in files} == {"tls.crt", "tls.key", "ca.crt"}
    names = certificate["spec"]["dnsNames"]
    assert f"facegate-{component}" in names
    assert "localhost" in names  # the exec probes' address
    assert {"server auth", "client auth"} <= set(certificate["spec"]["usages"])
    issuer = certificate["spec"]["issuerRef"]["name"]
    operations = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    assert f"`{issuer}`" in operations, "the operator creates the Issuer: documented there"


def test_only_the_rest_certificate_may_forward_signatures(production: list[Manifest]) -> None:
    """The gateway takes forwarded REST signatures only from certificates naming one of
    its forwarders: names that the REST shim's certificate holds and no other does."""
    env = env_of(workload(production, "gateway").pod_spec["containers"][0], production)
    forwarders = set(env["FACEGATE_GATEWAY_FORWARDERS"].split(","))
    assert forwarders
    for certificate in of_kind(production, "Certificate"):
        names = set(certificate["spec"]["dnsNames"])
        if certificate["spec"]["secretName"] == "facegate-rest-tls":
            assert forwarders <= names
        else:
            assert not forwarders & names, certificate["metadata"]["name"]
