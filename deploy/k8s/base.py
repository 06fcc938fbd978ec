"""The Kubernetes base as code: writes deploy/k8s/base/*.yaml and its kustomization.yaml.

    .venv/bin/python deploy/k8s/base.py          # write the base
    .venv/bin/python deploy/k8s/base.py --check  # exit 1 when the committed base differs

Every process runs the command tools/devstack starts it with (tests/deploy checks that): the nameko services
`python -m shared.runner <service>`, relays `python -m shared.bus.relay <service>`, the SFU `python -m sfu`,
the gateway under gunicorn, the migration `python -m shared.store.migrate` then `python -m shared.bus.topology`.
Engines are operators' resources: RabbitmqCluster (RabbitMQ Cluster Operator) and a CloudNativePG Cluster.
Secrets are referenced, never written here (README "Running in production").
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
BASE = HERE / "base"
SERVICES = ("identity", "school", "messaging", "calls", "ejournal_bridge")


def image(kind: str) -> str:
    """The image of a process kind: deploy/images/Dockerfile's target of that name (tests/deploy checks that
    its CMD is the Deployment's command)."""
    return f"sfera/{dns(kind)}"


METRICS_PORT = 9100
PART_OF = {"app.kubernetes.io/part-of": "sfera"}
SECURITY = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                      "capabilities": {"drop": ["ALL"]}}
GATEWAY_ARGV = ["gunicorn", "-c", "python:gateway.gunicorn_conf",
                "--worker-class", "gateway.gunicorn_worker.GatewayThreadWorker", "--workers", "1",
                "--threads", "128", "--bind", "0.0.0.0:8080", "--graceful-timeout", "5", "--no-control-socket",
                "gateway.app:create_app()"]  # no access log: the gateway logs each request itself


# the realtime socket (issue #17): the asyncio server, thousands of sockets a process; the Ingress routes its path here
REALTIME_ARGV = ["python", "-m", "gateway.realtime_server", "--host", "0.0.0.0", "--port", "8080"]


def dns(name: str) -> str:
    return name.replace("_", "-")


def labels(name: str, component: str) -> dict:
    return {"app.kubernetes.io/name": dns(name), "app.kubernetes.io/component": component, **PART_OF}


def env_from() -> list[dict]:
    return [{"configMapRef": {"name": "sfera-config"}}, {"secretRef": {"name": "sfera-secrets"}}]


def pg_password() -> dict:
    # CloudNativePG writes the application role's credentials into <cluster>-app
    return {"name": "SFERA_PG_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sfera-db-app", "key": "password"}}}


def s3_credentials() -> list[dict]:
    # The blob store's S3 credentials (shared/blobs.py) by reference to the secret sfera-blobs; optional, so the
    # dev overlay (files, SFERA_BLOB_STORE=local) runs without it, and absent keys mean boto3's own chain.
    return [{"name": name, "valueFrom": {"secretKeyRef": {"name": "sfera-blobs", "key": name, "optional": True}}}
            for name in ("SFERA_S3_ACCESS_KEY", "SFERA_S3_SECRET_KEY")]


# Liveness on the services' and relays' port (shared/observability/http.py) and the SFU nodes' (sfu/server.py):
# /livez, the process answers and nothing else is checked, so an outage of the broker or the store makes their
# pods unready (/healthz), not restarted all at once (they reconnect by themselves; an SFU node restarted would
# cut every call it carries). The other servers have /healthz alone.
LIVENESS_PATH = {"metrics": "/livez", "signaling": "/livez"}


def probes(port: int | str, path: str = "/healthz") -> dict:
    check = {"httpGet": {"path": path, "port": port}}
    live = {"httpGet": {"path": LIVENESS_PATH.get(port, path), "port": port}}
    return {"readinessProbe": {**check, "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3},
            "livenessProbe": {**live, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 6,
                              "initialDelaySeconds": 20}}


def container(name: str, image: str, argv: list[str], ports: list[dict], cpu: str, memory: str,
              probe_port: int | str, env: list[dict] | None = None) -> dict:
    return {
        "name": dns(name), "image": image, "command": argv, "ports": ports,
        "envFrom": env_from(), "env": [pg_password(), *s3_credentials(), *(env or [])],
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
        **probes(probe_port), "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "var", "mountPath": "/var/lib/sfera"}],
    }


def deployment(name: str, component: str, replicas: int, spec_container: dict, **pod: object) -> dict:
    meta_labels = labels(name, component)
    selector = {"app.kubernetes.io/name": dns(name), **PART_OF}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": dns(name), "labels": meta_labels},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": meta_labels,
                             "annotations": {"prometheus.io/scrape": "true",
                                             "prometheus.io/port": str(spec_container["ports"][0]["containerPort"])}},
                "spec": {
                    "securityContext": SECURITY, "terminationGracePeriodSeconds": 15,
                    "automountServiceAccountToken": False,
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                   "whenUnsatisfiable": "ScheduleAnyway",
                                                   "labelSelector": {"matchLabels": selector}}],
                    "containers": [spec_container],
                    "volumes": [{"name": "tmp", "emptyDir": {}},
                                {"name": "var", "persistentVolumeClaim": {"claimName": "sfera-files"}}],
                    **pod,
                },
            },
        },
    }


def pdb(name: str, **budget: object) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": dns(name)},
            "spec": {**budget, "selector": {"matchLabels": {"app.kubernetes.io/name": dns(name), **PART_OF}}}}


def hpa(name: str, low: int, high: int) -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": dns(name)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": dns(name)},
                     "minReplicas": low, "maxReplicas": high,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 70}}}]}}


def service(name: str, ports: list[tuple[str, int]]) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": dns(name), "labels": labels(name, "api")},
            "spec": {"selector": {"app.kubernetes.io/name": dns(name), **PART_OF},
                     "ports": [{"name": n, "port": p, "targetPort": p, "protocol": "TCP"} for n, p in ports]}}


def metrics_port() -> list[dict]:
    return [{"name": "metrics", "containerPort": METRICS_PORT}]


def workloads() -> list[dict]:
    docs: list[dict] = []
    # the probes and Prometheus come from outside the pod: all addresses (the processes' default is loopback)
    metrics_env = [{"name": "SFERA_METRICS_PORT", "value": str(METRICS_PORT)},
                   {"name": "SFERA_METRICS_HOST", "value": "0.0.0.0"}]
    for name in SERVICES:
        argv = ["python", "-m", "shared.runner", name]
        docs.append(deployment(name, "service", 2, container(name, image(name), argv, metrics_port(), "250m", "512Mi",
                                                             "metrics", metrics_env)))
        docs.append(pdb(name, maxUnavailable=1))
        docs.append(hpa(name, 2, 8))
        relay = f"{name}-relay"
        argv = ["python", "-m", "shared.bus.relay", name]
        # one relay publishes (a PostgreSQL advisory lock), the other stands by to take over within a second
        docs.append(deployment(relay, "relay", 2, container(relay, image(relay), argv, metrics_port(), "100m", "256Mi",
                                                            "metrics", metrics_env)))
        docs.append(pdb(relay, maxUnavailable=1))
    gateway = container("gateway", image("gateway"), GATEWAY_ARGV, [{"name": "http", "containerPort": 8080}],
                        "500m", "768Mi", "http")
    docs += [deployment("gateway", "gateway", 3, gateway), pdb("gateway", minAvailable=2), hpa("gateway", 3, 12),
             service("gateway", [("http", 8080)])]
    realtime = container("realtime", image("realtime"), REALTIME_ARGV, [{"name": "http", "containerPort": 8080}],
                         "500m", "1Gi", "http")
    docs += [deployment("realtime", "realtime", 2, realtime), pdb("realtime", minAvailable=1),
             hpa("realtime", 2, 8), service("realtime", [("http", 8080)])]
    docs += sfu_nodes()
    migrate = container("migrate", image("migrate"), ["python", "-m", "shared.store.migrate"], [], "250m", "256Mi", 0)
    topology = container("topology", image("migrate"), ["python", "-m", "shared.bus.topology"], [], "100m", "256Mi", 0)
    for step in (migrate, topology):
        for key in ("ports", "readinessProbe", "livenessProbe"):
            step.pop(key)
        step["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    docs.append({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sfera-migrate", "labels": labels(
            "migrate", "migration")},
        "spec": {"backoffLimit": 3, "ttlSecondsAfterFinished": 86400, "template": {
            "metadata": {"labels": labels("migrate", "migration")},
            "spec": {"restartPolicy": "OnFailure", "securityContext": SECURITY,
                     "automountServiceAccountToken": False, "initContainers": [migrate],
                     "containers": [topology], "volumes": [{"name": "tmp", "emptyDir": {}}]}}},
    })
    return docs


# SFU nodes (issue #17): a StatefulSet of SFU_NODES pods, one a machine. Each pod is a node of its own: its name
# (sfu-0, sfu-1, ...) is its SFERA_SFU_NODE, stable across restarts (it consumes its command queue again), and
# its signaling socket is reached at wss://<name>.<SFERA_SFU_NODE_DOMAIN>/ws, the public URL it tells calls in
# its heartbeats: the Ingress routes that host to a Service selecting that pod alone. Media go over UDP on the
# machine's own addresses (aiortc gathers host candidates on ephemeral ports), hence the host network and the
# anti-affinity (one signaling port 8300 a machine). More nodes: raise SFU_NODES and run this file.
SFU_NODES = 3
SFU_PORT = 8300
SFU_NODE_DOMAIN = "sfu.sfera.example.org"


def sfu_node_names(count: int = SFU_NODES) -> list[str]:
    return [f"sfu-{n}" for n in range(count)]


def sfu_nodes() -> list[dict]:
    env = [{"name": "SFERA_SFU_HOST", "value": "0.0.0.0"}, {"name": "SFERA_SFU_PORT", "value": str(SFU_PORT)},
           {"name": "SFERA_SFU_NODE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "SFERA_SFU_NODE_DOMAIN", "valueFrom": {"configMapKeyRef": {
               "name": "sfera-config", "key": "SFERA_SFU_NODE_DOMAIN"}}},
           # Kubernetes expands $(NAME) from the variables above
           {"name": "SFERA_SFU_PUBLIC_URL", "value": "wss://$(SFERA_SFU_NODE).$(SFERA_SFU_NODE_DOMAIN)/ws"}]
    sfu = container("sfu", image("sfu"), ["python", "-m", "sfu"], [{"name": "signaling", "containerPort": SFU_PORT}],
                    "1", "1Gi", "signaling", env)
    selector = {"app.kubernetes.io/name": "sfu", **PART_OF}
    nodes = deployment("sfu", "sfu", SFU_NODES, sfu, hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet",
                       affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                           "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": selector}}]}})
    nodes["kind"] = "StatefulSet"
    spec = nodes["spec"]
    del spec["strategy"]
    spec["template"]["spec"].pop("topologySpreadConstraints")  # the anti-affinity spreads them
    # a node restarted is a new boot: calls marks its participants gone and they rejoin (on it or another node);
    # pods start and stop side by side, updated one at a time
    spec.update({"serviceName": "sfu-nodes", "podManagementPolicy": "Parallel",
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}})
    headless = service("sfu-nodes", [("signaling", SFU_PORT)])
    headless["spec"].update({"clusterIP": "None", "selector": selector})
    docs = [nodes, pdb("sfu", maxUnavailable=1), headless,
            service("sfu", [("signaling", SFU_PORT)])]  # any node: SFERA_SFU_URL while no node reports
    for name in sfu_node_names():
        one = service(name, [("signaling", SFU_PORT)])
        one["spec"]["selector"] = {"statefulset.kubernetes.io/pod-name": name}
        one["metadata"]["labels"]["app.kubernetes.io/component"] = "sfu-node"
        docs.append(one)
    return docs


def config() -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sfera-config"}, "data": {
            "SFERA_ENV": "production", "PERSISTENCE": "postgres", "SFERA_VAR_DIR": "/var/lib/sfera",
            "SFERA_PG_HOST": "sfera-db-rw", "SFERA_PG_PORT": "5432", "SFERA_PG_DB": "sfera", "SFERA_PG_USER": "sfera",
            "SFERA_PUBLIC_URL": "https://sfera.example.org", "SFERA_SFU_URL": "wss://sfu.sfera.example.org/ws",
            "SFERA_SFU_ICE_SERVERS": "turn:turn.sfera.example.org:3478?transport=udp",
            "SFERA_SFU_NODE_DOMAIN": SFU_NODE_DOMAIN,
            "SFERA_CORS_ORIGINS": "https://sfera.example.org",
            "SFERA_SMS_ADAPTER": "http", "SFERA_MAIL_ADAPTER": "smtp", "SFERA_TRUST_FORWARDED_FOR": "yes",
            "SFERA_LOG_LEVEL": "INFO"}},
        # Uploaded files (documents, images, attachments, recordings) are files under SFERA_VAR_DIR shared by
        # every replica: a ReadWriteMany volume (an S3-backed CSI driver or NFS class); see README.
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "sfera-files"},
         "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Gi"}}}},
    ]


def engines() -> list[dict]:
    return [
        {"apiVersion": "rabbitmq.com/v1beta1", "kind": "RabbitmqCluster", "metadata": {"name": "sfera-rabbitmq"},
         "spec": {
             "replicas": 3,
             "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
             "persistence": {"storage": "20Gi"},
             "rabbitmq": {
                 "additionalPlugins": ["rabbitmq_prometheus"],
                 # per-queue metrics: consumer lag and dead letters (deploy/prometheus/alerts.yml)
                 "additionalConfig": "prometheus.return_per_object_metrics = true\n"
                                     "default_queue_type = quorum\n"},
             "override": {"statefulSet": {"spec": {"template": {"spec": {"topologySpreadConstraints": [{
                 "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
                 "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "sfera-rabbitmq"}}}]}}}}},
         }},
        {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "sfera-db"},
         "spec": {
             "instances": 3,
             "imageName": "ghcr.io/cloudnative-pg/postgresql:16.4",
             "primaryUpdateStrategy": "unsupervised",
             "storage": {"size": "50Gi"},
             "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
             "bootstrap": {"initdb": {"database": "sfera", "owner": "sfera"}},
             "monitoring": {"enablePodMonitor": True},
             "backup": {"retentionPolicy": "30d", "barmanObjectStore": {
                 "destinationPath": "s3://sfera-backups/sfera-db", "endpointURL": "https://s3.example.org",
                 "s3Credentials": {
                     "accessKeyId": {"name": "sfera-db-backup", "key": "ACCESS_KEY_ID"},
                     "secretAccessKey": {"name": "sfera-db-backup", "key": "ACCESS_SECRET_KEY"}},
                 "wal": {"compression": "gzip"}}},
         }},
        {"apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup", "metadata": {"name": "sfera-db-daily"},
         "spec": {"schedule": "0 0 3 * * *", "backupOwnerReference": "self", "cluster": {"name": "sfera-db"}}},
    ]


def coturn() -> list[dict]:
    argv = ["turnserver", "--use-auth-secret", "--static-auth-secret=$(SFERA_TURN_SECRET)",
            "--realm=sfera", "--listening-port=3478", "--min-port=49160", "--max-port=49200",
            "--no-cli", "--no-tls", "--no-dtls", "--fingerprint", "--log-file=stdout",
            "--denied-peer-ip=10.0.0.0-10.255.255.255", "--denied-peer-ip=172.16.0.0-172.31.255.255",
            "--denied-peer-ip=192.168.0.0-192.168.255.255"]
    selector = {"app.kubernetes.io/name": "coturn", **PART_OF}
    return [{
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coturn", "labels": labels("coturn", "turn")},
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": labels("coturn", "turn")}, "spec": {
                     # TURN allocates relay ports 49160-49200/udp on the node's public address
                     "hostNetwork": True, "automountServiceAccountToken": False,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{
                         "name": "coturn", "image": "coturn/coturn:4.6.2", "command": argv,
                         "env": [{"name": "SFERA_TURN_SECRET", "valueFrom": {"secretKeyRef": {
                             "name": "sfera-secrets", "key": "SFERA_TURN_SECRET"}}}],
                         "ports": [{"name": "turn-udp", "containerPort": 3478, "protocol": "UDP"},
                                   {"name": "turn-tcp", "containerPort": 3478, "protocol": "TCP"}],
                         "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                         "readinessProbe": {"tcpSocket": {"port": 3478}, "periodSeconds": 10},
                         "livenessProbe": {"tcpSocket": {"port": 3478}, "periodSeconds": 20},
                         "securityContext": CONTAINER_SECURITY}]}}},
    }]


def edge() -> list[dict]:
    tls_hosts = ["sfera.example.org", SFU_NODE_DOMAIN, *(f"{n}.{SFU_NODE_DOMAIN}" for n in sfu_node_names())]
    return [{
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "sfera", "annotations": {
            "cert-manager.io/cluster-issuer": "letsencrypt",
            # WebSockets (realtime and SFU signaling) stay open for a lesson: long read/send timeouts
            "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
            "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
            "nginx.ingress.kubernetes.io/proxy-body-size": "60m",
            # no access log here: its lines hold whole paths and queries, so tokens (a parent link's for 7 days, an
            # invite's, the realtime socket's access_token); the gateway logs every request by its route's template
            "nginx.ingress.kubernetes.io/enable-access-log": "false"}},
        "spec": {"ingressClassName": "nginx", "tls": [{"hosts": tls_hosts, "secretName": "sfera-tls"}], "rules": [
            {"host": tls_hosts[0], "http": {"paths": [
                # the realtime socket to the asyncio server, every other path to the gateway: one origin
                {"path": "/api/v1/realtime", "pathType": "Exact", "backend": {
                    "service": {"name": "realtime", "port": {"number": 8080}}}},
                {"path": "/", "pathType": "Prefix", "backend": {
                    "service": {"name": "gateway", "port": {"number": 8080}}}}]}},
            # any node at sfu.<domain>, each node at its own host (its public URL)
            *({"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": name, "port": {"number": SFU_PORT}}}}]}}
              for host, name in zip(tls_hosts[1:], ["sfu", *sfu_node_names()], strict=True))]},
    }]


def network_policies() -> list[dict]:
    def policy(name: str, pod: dict, sources: list[dict], ports: list[int]) -> dict:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name},
                "spec": {"podSelector": {"matchLabels": pod}, "policyTypes": ["Ingress"],
                         "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": p} for p in ports]}]}}

    ns = lambda name: {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}  # noqa: E731
    sfera = {"podSelector": {"matchLabels": PART_OF}}
    return [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny-ingress"},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        policy("gateway-from-ingress", {"app.kubernetes.io/name": "gateway"}, [ns("ingress-nginx")], [8080]),
        policy("realtime-from-ingress", {"app.kubernetes.io/name": "realtime"}, [ns("ingress-nginx")], [8080]),
        policy("sfu-signaling-from-ingress", {"app.kubernetes.io/name": "sfu"}, [ns("ingress-nginx")], [8300]),
        policy("metrics-from-monitoring", PART_OF, [ns("monitoring")], [METRICS_PORT, 8080, 8300]),
        policy("rabbitmq-from-sfera", {"app.kubernetes.io/name": "sfera-rabbitmq"},
               [sfera, {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "sfera-rabbitmq"}}}],
               [5672, 4369, 25672]),
        policy("rabbitmq-from-operator-and-monitoring", {"app.kubernetes.io/name": "sfera-rabbitmq"},
               [ns("rabbitmq-system"), ns("monitoring")], [15672, 15692]),
        policy("postgres-from-sfera", {"cnpg.io/cluster": "sfera-db"},
               [sfera, {"podSelector": {"matchLabels": {"cnpg.io/cluster": "sfera-db"}}}], [5432]),
        policy("postgres-from-operator-and-monitoring", {"cnpg.io/cluster": "sfera-db"},
               [ns("cnpg-system"), ns("monitoring")], [8000, 9187]),
    ]


FILES = {
    "config.yaml": config, "workloads.yaml": workloads, "engines.yaml": engines, "coturn.yaml": coturn,
    "edge.yaml": edge, "network-policies.yaml": network_policies,
}
HEADER = "# Generated by deploy/k8s/base.py: edit that, then run it.\n"


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:
        return True


def render() -> dict[Path, str]:
    out = {BASE / name: HEADER + yaml.dump_all(build(), Dumper=_Dumper, sort_keys=False, width=120)
           for name, build in FILES.items()}
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": list(FILES)}
    out[BASE / "kustomization.yaml"] = HEADER + yaml.dump(kustomization, sort_keys=False)
    return out


def main(argv: list[str]) -> int:
    rendered = render()
    stale = [p for p, text in rendered.items() if not p.exists() or p.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path} is stale: run python deploy/k8s/base.py", file=sys.stderr)
        return 1 if stale else 0
    BASE.mkdir(exist_ok=True)
    for path, text in rendered.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
