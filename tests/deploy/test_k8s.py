"""Kubernetes manifests (issue #18): the base is what deploy/k8s/base.py writes; each overlay renders (our
kustomize subset, and the same objects as `kubectl kustomize` where kubectl exists) into objects valid against
Kubernetes' schemas (kubernetes-validate, offline); operators' resources checked structurally; probes,
resources, budgets, autoscalers, services and secrets refer to what exists; every process starts with the
command tools/devstack starts it with."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.rules import ROOT, generator
from tools.devstack.stack import Stack, StackConfig

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
KUBERNETES = "1.31.0"
# README "Running in production"
SECRETS = {"sfera-secrets", "sfera-db-app", "sfera-db-backup", "sfera-blobs", "sfera-tls"}
render = generator(K8S / "render.py")["render"]


def objects(overlay: str) -> list[dict]:
    return render(K8S / "overlays" / overlay)


def by_kind(objs: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def workloads(objs: list[dict]) -> dict[str, dict]:
    """Deployments and StatefulSets (the SFU nodes) by name."""
    return {**by_kind(objs, "Deployment"), **by_kind(objs, "StatefulSet")}


def pod_labels(workload: dict) -> list[dict]:
    """The labels of each pod a workload runs: a StatefulSet's pods also carry their own name."""
    labels = workload["spec"]["template"]["metadata"]["labels"]
    if workload["kind"] != "StatefulSet":
        return [labels]
    name = workload["metadata"]["name"]
    return [{**labels, "statefulset.kubernetes.io/pod-name": f"{name}-{n}"}
            for n in range(workload["spec"]["replicas"])]


def test_the_base_is_what_its_generator_writes():
    for path, text in generator(K8S / "base.py")["render"]().items():
        assert path.read_text() == text, f"{path} is stale: run .venv/bin/python deploy/k8s/base.py"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_against_the_kubernetes_schemas(overlay):
    custom = []
    for obj in objects(overlay):
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            custom.append(obj["kind"])
    assert sorted(set(custom)) == ["Cluster", "RabbitmqCluster", "ScheduledBackup"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its kustomize) is not on this machine")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_our_renderer_agrees_with_kustomize(overlay):
    out = subprocess.run(["kubectl", "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    theirs = sorted(json.dumps(o, sort_keys=True) for o in yaml.safe_load_all(out) if o)
    assert sorted(json.dumps(o, sort_keys=True) for o in objects(overlay)) == theirs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_operators_resources_are_well_formed(overlay):
    objs = objects(overlay)
    rabbit = by_kind(objs, "RabbitmqCluster")["sfera-rabbitmq"]
    assert rabbit["apiVersion"] == "rabbitmq.com/v1beta1"
    assert set(rabbit["spec"]) <= {"replicas", "resources", "persistence", "rabbitmq", "override", "image"}
    assert "prometheus.return_per_object_metrics = true" in rabbit["spec"]["rabbitmq"]["additionalConfig"]
    db = by_kind(objs, "Cluster")["sfera-db"]
    assert db["apiVersion"] == "postgresql.cnpg.io/v1"
    assert db["spec"]["bootstrap"]["initdb"] == {"database": "sfera", "owner": "sfera"}
    assert isinstance(db["spec"]["instances"], int) and db["spec"]["storage"]["size"]
    backup = by_kind(objs, "ScheduledBackup")["sfera-db-daily"]
    assert backup["spec"]["cluster"]["name"] == "sfera-db" and len(backup["spec"]["schedule"].split()) == 6
    config = by_kind(objs, "ConfigMap")["sfera-config"]["data"]
    assert (config["SFERA_PG_HOST"], config["SFERA_PG_DB"]) == ("sfera-db-rw", "sfera")  # CloudNativePG's service
    if overlay == "production":
        assert rabbit["spec"]["replicas"] == 3 and db["spec"]["instances"] == 3
        assert db["spec"]["backup"]["barmanObjectStore"]["destinationPath"].startswith("s3://")
        assert not backup["spec"].get("suspend")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_have_probes_resources_budgets_and_referenced_secrets(overlay):
    objs = objects(overlay)
    deployments = workloads(objs)
    services = by_kind(objs, "Service")
    budgets = {o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for o in by_kind(
        objs, "PodDisruptionBudget").values()}
    for name, hpa in by_kind(objs, "HorizontalPodAutoscaler").items():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments, name
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"][
            "metadata"]["labels"].items(), name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for c in pod["containers"]:
            assert c["readinessProbe"] and c["livenessProbe"], name
            if name != "coturn":
                assert c["readinessProbe"]["httpGet"]["path"] == "/healthz", name
            assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"], name
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
        if name != "coturn":
            assert name in budgets, f"{name} has no PodDisruptionBudget"
    for name, svc in services.items():
        assert any(svc["spec"]["selector"].items() <= labels.items()
                   for d in deployments.values() for labels in pod_labels(d)), name
    for rule in by_kind(objs, "Ingress")["sfera"]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] in services, backend
    text = json.dumps(objs)
    referenced = {ref["name"] for o in objs for ref in _secret_refs(o)}
    assert referenced <= SECRETS and "sfera-secrets" in referenced, referenced
    assert '"kind": "Secret"' not in text  # secrets are given by reference, never in the manifests


def pod_environment(obj: dict, container: dict, secret_value: str, pod_name: str = "pod") -> dict[str, str]:
    """What a container's process sees in its environment: the ConfigMap sfera-config, then its own env
    (a secret's key given as ``secret_value``, a ConfigMap key its value, the pod's name by fieldRef, and
    $(NAME) expanded from the variables before it as Kubernetes does)."""
    config = by_kind(obj, "ConfigMap")["sfera-config"]["data"]
    env = dict(config)
    for item in container["env"]:
        source = item.get("valueFrom", {})
        if "configMapKeyRef" in source:
            value = config[source["configMapKeyRef"]["key"]]
        elif "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.name", item
            value = pod_name
        elif source:
            value = secret_value
        else:
            value = re.sub(r"\$\(([A-Z0-9_]+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"])
        env[item["name"]] = value
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_sfu_node_is_reached_at_the_public_url_it_reports(overlay, monkeypatch):
    """SFU nodes (issue #17): every pod of the StatefulSet is a node named after the pod (stable across restarts),
    whose public URL (what the SFU's own settings read from its environment and tell calls in heartbeats) is a
    host the Ingress sends to a Service selecting that pod alone; one node a machine (host network)."""
    import sfu.__main__ as sfu_main

    objs = objects(overlay)
    nodes = by_kind(objs, "StatefulSet")["sfu"]
    pods = pod_labels(nodes)
    assert len(pods) == {"dev": 1, "production": 3}[overlay]
    pod = nodes["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    (anti,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert anti["labelSelector"]["matchLabels"].items() <= pods[0].items()
    services = by_kind(objs, "Service")
    routes = {rule["host"]: path["backend"]["service"]["name"]
              for rule in by_kind(objs, "Ingress")["sfera"]["spec"]["rules"] for path in rule["http"]["paths"]}
    tls = {host for entry in by_kind(objs, "Ingress")["sfera"]["spec"]["tls"] for host in entry["hosts"]}
    (container,) = pod["containers"]
    urls = set()
    for labels in pods:
        name = labels["statefulset.kubernetes.io/pod-name"]
        env = pod_environment(objs, container, "secret", pod_name=name)
        for key in [k for k in list(os.environ) if k.startswith("SFERA_SFU")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        port = int(env["SFERA_SFU_PORT"])
        assert sfu_main.node_name(port) == name
        url = sfu_main.public_url(env["SFERA_SFU_HOST"], port)
        assert url.startswith("wss://") and url.endswith("/ws"), url
        host = url.removeprefix("wss://").split("/")[0]
        assert host in tls, host
        service = services[routes[host]]
        selected = [p for p in pods if service["spec"]["selector"].items() <= p.items()]
        assert selected == [labels], (host, service["metadata"]["name"])
        urls.add(url)
    assert len(urls) == len(pods)
    # sfu.<domain> (SFERA_SFU_URL, used while no node reports) reaches any node
    any_node = services[routes[env["SFERA_SFU_URL"].removeprefix("wss://").split("/")[0]]]
    assert all(any_node["spec"]["selector"].items() <= p.items() for p in pods)


def test_production_keeps_files_in_s3_with_credentials_by_secret_reference(monkeypatch):
    """The production overlay's environment makes shared/blobs.py build its S3 store (the names it reads), the
    credentials from the secret sfera-blobs; the dev overlay keeps files (no bucket needed)."""
    from shared import blobs

    for overlay, expected in (("production", blobs.S3BlobStore), ("dev", blobs.LocalBlobStore)):
        objs = objects(overlay)
        for name, deployment in workloads(objs).items():
            if name == "coturn":
                continue
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]
                    if "secretKeyRef" in e.get("valueFrom", {})}
            for key in ("SFERA_S3_ACCESS_KEY", "SFERA_S3_SECRET_KEY"):
                assert refs[key]["name"] == "sfera-blobs" and refs[key]["key"] == key, (overlay, name)
            for key in [k for k in list(os.environ) if k.startswith(("SFERA_S3_", "SFERA_BLOB"))]:
                monkeypatch.delenv(key)
            for key, value in pod_environment(objs, container, f"secret-of-{name}").items():
                monkeypatch.setenv(key, value)
            store = blobs.blob_store()
            assert type(store) is expected, (overlay, name)
            if expected is blobs.S3BlobStore:
                assert store.bucket == "sfera-files"
                assert store.client.meta.endpoint_url == "https://s3.example.org"
                assert store.client._request_signer._credentials.access_key == f"secret-of-{name}"


def _secret_refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("secretKeyRef", "secretRef") and isinstance(value, dict):
                yield value
            elif key == "secretName":
                yield {"name": value}
            elif key in ("accessKeyId", "secretAccessKey"):
                yield value
            else:
                yield from _secret_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _secret_refs(item)


def devstack_commands() -> dict[str, list[str]]:
    """What tools/devstack starts each process with (captured, nothing spawned)."""
    stack = Stack(StackConfig(var_dir=Path("/nonexistent"), realtime_server="gthread"))  # gunicorn alone
    stack._spawn = lambda managed: managed
    commands = {}
    for name in ("identity", "school", "messaging", "calls", "ejournal_bridge"):
        commands[name.replace("_", "-")] = stack.start_service(name).argv
        commands[f"{name.replace('_', '-')}-relay"] = stack.start_relay(name).argv
    commands["sfu"] = stack.start_sfu().argv
    commands["gateway"] = stack.start_gateway().argv
    return commands


def normalized(argv: list[str]) -> list[str]:
    """The program by its name, addresses and thread counts left out (they differ by design)."""
    out, skip = [Path(argv[0]).name.replace("python3", "python")], False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg in ("--bind", "--threads"):
            skip = True
            continue
        out.append(arg)
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_process_starts_with_the_command_devstack_uses(overlay):
    deployments = workloads(objects(overlay))
    for name, argv in devstack_commands().items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert normalized(container["command"]) == normalized(argv), name
    job = by_kind(objects(overlay), "Job")["sfera-migrate"]["spec"]["template"]["spec"]
    assert [c["command"] for c in job["initContainers"] + job["containers"]] == [
        ["python", "-m", "shared.store.migrate"], ["python", "-m", "shared.bus.topology"]]  # as Stack.prepare


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_realtime_socket_goes_to_the_asyncio_server_on_the_gateways_host(overlay):
    """One origin (issue #17): the Ingress sends /api/v1/realtime to gateway.realtime_server, the rest to gunicorn."""
    objs = objects(overlay)
    site = by_kind(objs, "Ingress")["sfera"]["spec"]["rules"][0]
    routes = {p["path"]: (p["pathType"], p["backend"]["service"]["name"]) for p in site["http"]["paths"]}
    assert routes == {"/api/v1/realtime": ("Exact", "realtime"), "/": ("Prefix", "gateway")}
    # an outside audit: the ingress's access log held tokens (paths of parent and invite links, the socket's query)
    assert by_kind(objs, "Ingress")["sfera"]["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/enable-access-log"] == "false"
    (container,) = by_kind(objs, "Deployment")["realtime"]["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["python", "-m", "gateway.realtime_server"]
    assert by_kind(objs, "Service")["realtime"]["spec"]["ports"][0]["port"] == 8080


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_kubelet_and_prometheus_reach_the_metrics_port_of_services_and_relays(overlay):
    """The probes (httpGet to the pod's address) and Prometheus' scrape (the pod annotation's port) reach
    /healthz and /metrics of the nameko services and relays: their server listens on every address in a pod, on
    the port the probes name. Before: it listened on 127.0.0.1 alone (a pod never ready, its liveness failing)."""
    from shared.config import settings

    objs = objects(overlay)
    checked = 0
    for name, deployment in by_kind(objs, "Deployment").items():
        pod = deployment["spec"]["template"]
        for c in pod["spec"]["containers"]:
            if c["readinessProbe"].get("httpGet", {}).get("port") != "metrics":
                continue
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            config = settings(pod_environment(objs, c, "secret"))
            assert config.metrics_port == ports["metrics"] == int(pod["metadata"]["annotations"]["prometheus.io/port"])
            assert config.metrics_host == "0.0.0.0", (name, config.metrics_host)
            # liveness is cheap and checks nothing outside the process (shared/observability/http.py's /livez): a
            # broker or store outage makes the pods unready, it does not restart them all (they reconnect)
            assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}, name
            checked += 1
    assert checked == 10  # five services, five relays


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_sfu_node_is_restarted_only_when_it_does_not_answer(overlay):
    """The SFU's /healthz fails while its broker link is down (sfu/server.py): as liveness it would restart every
    node in a broker outage, cutting every call. Liveness is /livez; readiness /healthz."""
    (node,) = [c for o in by_kind(objects(overlay), "StatefulSet").values()
               for c in o["spec"]["template"]["spec"]["containers"] if c["command"] == ["python", "-m", "sfu"]]
    assert node["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "signaling"}
    assert node["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "signaling"}
