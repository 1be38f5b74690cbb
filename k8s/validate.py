"""Checks the rendered manifests; k8s/validate.sh runs it with the tools venv's Python.

    validate.py manifests RENDERED.yaml...   schemas, the suite's own rules, the queries
    validate.py policy CHECKOV.json WAIVERS  checkov's findings against the waiver list

Every problem is printed; the exit status is 1 when there is any.
"""

from __future__ import annotations

import copy
import fnmatch
import ipaddress
import json
import os
import re
import sys
from pathlib import Path

import kubernetes_validate
import promql_parser
import yaml

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "aftersales"
PART_OF = ("app.kubernetes.io/part-of", "aftersales")

# Kubernetes versions every object must validate against (oldest supported, newest).
K8S_VERSIONS = os.environ.get("K8S_VERSIONS", "1.31 1.35").split()

# Custom resources: no schema for them ships with kubernetes-validate (it knows the core
# API only) and no package reachable here carries the Prometheus Operator's CRDs, so
# they skip the schema step and get the structural checks in check_monitoring instead.
NO_SCHEMA = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}

# The services: gRPC port, health name for readiness, whether they own a database.
SERVICES = {
    "tickets": (50051, "aftersales.tickets.v1.TicketService", True),
    "returns": (50052, "aftersales.returns.v1.ReturnService", True),
    "dispatch": (50053, "aftersales.dispatch.v1.DispatchService", True),
    "care": (50054, "aftersales.care.v1.CareService", True),
    "gateway": (50055, "aftersales.partner.v1.PartnerService", False),
    "webhooks": (50056, "aftersales.webhooks.v1.WebhookService", True),
}
METRICS_PORT = 9090
GATEWAY_HTTP_PORT = 8080

# Secrets the operator creates outside these manifests (README "Secrets"), with the keys
# the manifests read. A render that does not generate them must refer to no others.
EXTERNAL_SECRETS = {
    "tickets-database": {"url"},
    "returns-database": {"url"},
    "dispatch-database": {"url"},
    "care-database": {"url"},
    "webhooks-database": {"url"},
    "care-encryption": {"encryption-keys", "active-key-id", "search-key"},
    "dispatch-encryption": {"encryption-keys", "active-key-id"},
    "webhooks-encryption": {"encryption-keys", "active-key-id"},
    "care-oauth-client": {"client-id", "client-secret"},
    "gateway-oauth-client": {"client-id", "client-secret"},
    "aftersales-redis": {"url", "cluster-nodes"},
    "gateway-carriers": {"secrets"},
    "gateway-tls": {"tls.crt", "tls.key"},
}

# Variables that hold credentials or keys. They come from a Secret (secretKeyRef), never
# from a ConfigMap or a literal value in a manifest.
SECRET_ENV = {"DATABASE_URL", "REDIS_URL", "REDIS_CLUSTER_NODES", "GATEWAY_CARRIER_SECRETS", "CARE_ENCRYPTION_KEYS",
              "CARE_SEARCH_KEY", "DISPATCH_ENCRYPTION_KEYS", "WEBHOOKS_ENCRYPTION_KEYS", "CARE_CLIENT_ID",
              "CARE_CLIENT_SECRET", "GATEWAY_CLIENT_ID", "GATEWAY_CLIENT_SECRET"} | {f"{s.upper()}_DATABASE_URL" for s in SERVICES}

# Secrets a service refuses to start without (besides DATABASE_URL and its Redis, REDIS_URL
# or REDIS_CLUSTER_NODES with components/redis-cluster): care, dispatch and webhooks on
# PostgreSQL need their keys. `aftersales migrate <service>` reads the service's whole
# configuration first, so its migration Job needs them as well.
SERVICE_SECRET_ENV = {
    "care": {"CARE_ENCRYPTION_KEYS", "CARE_SEARCH_KEY"},
    "dispatch": {"DISPATCH_ENCRYPTION_KEYS"},
    "webhooks": {"WEBHOOKS_ENCRYPTION_KEYS"},
}

# Calls between the suite's pods: (caller, variable naming the upstream, callee). The
# variable must name the callee's headless Service on its gRPC port, and the
# NetworkPolicies must admit the call at both ends. Events travel through Redis streams,
# not between pods, so they need no entry here.
CALLS = [
    ("gateway", "GATEWAY_DISPATCH_URL", "dispatch"),
    ("gateway", "GATEWAY_RETURNS_URL", "returns"),
    ("gateway", "GATEWAY_WEBHOOKS_URL", "webhooks"),
    ("care", "CARE_TICKETS_URL", "tickets"),
]

# Where the policies admit the platform's own traffic (README "NetworkPolicies").
NAMESPACE_LABELS = {"kubernetes.io/metadata.name": NAMESPACE}
KUBE_DNS = ({"k8s-app": "kube-dns"}, {"kubernetes.io/metadata.name": "kube-system"})
PROMETHEUS_NS = {"kubernetes.io/metadata.name": "monitoring"}
OTLP_NS = {"kubernetes.io/metadata.name": "observability"}
POSTGRES_PORT, REDIS_PORT, OTLP_PORT = 5432, 6379, 4317

# Services that connect to hosts outside the suite that others choose (webhooks: the
# endpoint URLs partners register), with the port: their egress must admit that port to
# the internet, but never to the ranges below. The service refuses a URL pointing inside
# itself (SSRF rules, k8s/README.md "Webhooks"); the NetworkPolicy is the second line.
# An ipBlock narrower than a whole range (one private provider's /32, added on purpose)
# is not flagged; one that holds a whole range, or the metadata address, without an
# `except` for it is.
OUTBOUND = {"webhooks": 443}
REFUSED_RANGES = {
    "0.0.0.0/8": '"this network"', "10.0.0.0/8": "private", "100.64.0.0/10": "CGNAT",
    "127.0.0.0/8": "loopback", "169.254.0.0/16": "link-local, cloud metadata", "172.16.0.0/12": "private",
    "192.168.0.0/16": "private", "::1/128": "loopback", "fc00::/7": "unique local", "fe80::/10": "link-local",
    "::ffff:0:0/96": "IPv4-mapped", "64:ff9b::/96": "NAT64",
}
METADATA_ADDRESS = ipaddress.ip_address("169.254.169.254")

# Metric names the suite exports (the Rust side's contract), and the ones alerts and
# panels may read from Prometheus itself, kube-state-metrics and cAdvisor.
APP_COUNTERS_GAUGES = {
    "grpc_server_requests_total", "sla_clocks_pending", "sla_clocks_fired_total",
    "sla_breaches_total", "outbox_backlog", "outbox_oldest_age_seconds",
    "event_consumer_lag", "event_consumer_pending", "db_pool_connections",
    "db_pool_max_connections", "redis_commands_total", "http_server_requests_total",
    "gateway_rate_limited_total", "webhook_delivery_attempts_total",
    "webhook_endpoints_disabled_total", "parts_low_stock_total",
}
APP_HISTOGRAMS = {
    "grpc_server_request_duration_seconds", "sla_firing_lateness_seconds",
    "http_server_request_duration_seconds", "webhook_delivery_attempt_duration_seconds",
}
# Names of the contract the code registers but does not report yet. An alert or panel
# that reads one must say so (its runbook section, the panel's title or description:
# "not exported"), so nobody trusts its silence. Remove a name once the code reports it.
NOT_YET_EXPORTED: set[str] = set()
PLATFORM_METRICS = {
    "up", "kube_deployment_spec_replicas", "kube_deployment_status_replicas_available",
    "kube_job_status_failed", "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
}
KNOWN_METRICS = (
    APP_COUNTERS_GAUGES
    | PLATFORM_METRICS
    | {h + s for h in APP_HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
)

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                  "StorageClass", "CustomResourceDefinition", "PriorityClass"}
WORKLOADS = {"Deployment", "StatefulSet", "Job"}
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def __call__(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


def load(path: str) -> list[dict]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def ident(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def labels_match(selector: dict, labels: dict) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def pod_labels(obj: dict) -> dict:
    return obj["spec"]["template"]["metadata"].get("labels") or {}


def dockerfile_user() -> tuple[int, int] | None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        m = re.match(r"^\s*USER\s+(\d+)(?::(\d+))?\s*$", line)
        if m:
            return int(m.group(1)), int(m.group(2) or m.group(1))
    return None


def readme_sections() -> dict[str, str]:
    """GitHub's heading anchors of k8s/README.md, each with its section's text."""
    sections: dict[str, str] = {}
    current = None
    in_code = False
    for line in (ROOT / "k8s" / "README.md").read_text().splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"^#+\s+(.*)$", line)
        if m:
            text = m.group(1).strip().lower()
            text = re.sub(r"[^\w\- ]", "", text)
            current = text.replace(" ", "-")
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def readme_anchors() -> set[str]:
    return set(readme_sections())


# --- schemas -----------------------------------------------------------------------------

def check_schemas(render: str, objs: list[dict], problems: Problems) -> None:
    for obj in objs:
        key = (obj.get("apiVersion"), obj.get("kind"))
        if key in NO_SCHEMA:
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                problems(f"{render} {ident(obj)}", f"no Kubernetes {version} schema for {key[0]} {key[1]}")
            except kubernetes_validate.ValidationError as e:
                path = "/".join(str(p) for p in e.path)
                problems(f"{render} {ident(obj)}", f"Kubernetes {version} schema: {path}: {e.message}")


def schema_canary(objs: list[dict], problems: Problems) -> None:
    """The schema step must reject an unknown field: proves it is strict and running."""
    deployment = next((o for o in objs if o["kind"] == "Deployment"), None)
    if deployment is None:
        return
    broken = copy.deepcopy(deployment)
    pod_spec(broken)["containers"][0]["readOnlyRootFilesystm"] = True
    try:
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)
    except kubernetes_validate.ValidationError:
        return
    problems("schema canary", "a misspelt field passed the schema check: validation is not strict")


# --- the suite's own rules ---------------------------------------------------------------

def rules_canary(render: str, objs: list[dict], problems: Problems) -> None:
    """The suite's rules must reject a broken copy of the render: care's call to tickets
    not admitted, a key in a ConfigMap, a migration Job without the keys it needs, care
    without Redis, and (where webhooks is rendered) webhooks' HTTPS egress without its
    exceptions."""
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    if not {("Deployment", "care"), ("NetworkPolicy", "care"), ("Job", "care-migrate")} <= names:
        return
    webhooks = {("Deployment", "webhooks"), ("NetworkPolicy", "webhooks")} <= names
    broken = copy.deepcopy(objs)
    for o in broken:
        name = o["metadata"]["name"]
        if o["kind"] == "NetworkPolicy" and name == "care":
            o["spec"]["egress"] = [r for r in o["spec"].get("egress") or [] if not r.get("to")]
        if o["kind"] == "ConfigMap" and name.startswith("care-config"):
            o.setdefault("data", {})["CARE_SEARCH_KEY"] = "bm90LWEtc2VjcmV0LWF0LWFsbA=="
        if o["kind"] == "Job" and name == "care-migrate":
            c = pod_spec(o)["containers"][0]
            c["env"] = [e for e in c.get("env", []) if e["name"] != "CARE_SEARCH_KEY"]
        if o["kind"] == "Deployment" and name == "care":
            c = pod_spec(o)["containers"][0]
            c["env"] = [e for e in c.get("env", []) if not e["name"].startswith("REDIS_")]
        if o["kind"] == "NetworkPolicy" and name == "webhooks":
            for rule in o["spec"].get("egress") or []:
                for peer in rule.get("to") or []:
                    (peer.get("ipBlock") or {}).pop("except", None)
    found = Problems()
    check_suite(render, broken, found)
    expected = ["reach tickets:50051", "holds CARE_SEARCH_KEY", "no CARE_SEARCH_KEY from a Secret",
                "no REDIS_URL or REDIS_CLUSTER_NODES"]
    if webhooks:
        expected.append("admits TCP 443 to 169.254.0.0/16")
    for text in expected:
        if not any(text in item for item in found.items):
            problems(f"{render} rules canary", f"a broken copy passed the suite's rules (no problem saying {text!r}): a check is not working")


def check_suite(render: str, objs: list[dict], problems: Problems) -> None:
    def p(obj_or_where, message):
        where = obj_or_where if isinstance(obj_or_where, str) else ident(obj_or_where)
        problems(f"{render} {where}", message)

    by_kind: dict[str, dict[str, dict]] = {}
    for obj in objs:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    configmaps = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})
    workloads = [o for o in objs if o["kind"] in WORKLOADS]
    uid = dockerfile_user()
    if uid is None:
        p("Dockerfile", "no numeric USER uid:gid line")

    for obj in objs:
        meta = obj["metadata"]
        if obj["kind"] not in CLUSTER_SCOPED and meta.get("namespace") != NAMESPACE:
            p(obj, f"namespace is {meta.get('namespace')!r}, not {NAMESPACE!r}")
        if (meta.get("labels") or {}).get(PART_OF[0]) != PART_OF[1]:
            p(obj, f"no label {PART_OF[0]}={PART_OF[1]}")

    # References from pods to ConfigMaps and Secrets.
    def secret_ref(obj, name, key, optional=False):
        if name in secrets:
            data = {**(secrets[name].get("data") or {}), **(secrets[name].get("stringData") or {})}
            if key is not None and key not in data and not optional:
                p(obj, f"Secret {name} has no key {key!r}")
        elif name not in EXTERNAL_SECRETS:
            p(obj, f"Secret {name} is neither rendered nor a documented external Secret")
        elif key is not None and key not in EXTERNAL_SECRETS[name]:
            p(obj, f"external Secret {name} is documented without key {key!r}")

    for obj in workloads:
        spec = pod_spec(obj)
        for c in spec.get("initContainers", []) + spec["containers"]:
            for ef in c.get("envFrom", []):
                if "configMapRef" in ef and ef["configMapRef"]["name"] not in configmaps:
                    p(obj, f"envFrom ConfigMap {ef['configMapRef']['name']} is not rendered")
                if "secretRef" in ef:
                    secret_ref(obj, ef["secretRef"]["name"], None)
            for env in c.get("env", []):
                src = env.get("valueFrom") or {}
                if "secretKeyRef" in src:
                    ref = src["secretKeyRef"]
                    secret_ref(obj, ref["name"], ref["key"], ref.get("optional", False))
                if "configMapKeyRef" in src and src["configMapKeyRef"]["name"] not in configmaps:
                    p(obj, f"ConfigMap {src['configMapKeyRef']['name']} is not rendered")
        for v in spec.get("volumes", []):
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                p(obj, f"volume ConfigMap {v['configMap']['name']} is not rendered")
            if "secret" in v:
                secret_ref(obj, v["secret"]["secretName"], None)

    # Credentials and keys only ever come from Secrets.
    for cm in configmaps.values():
        for key in sorted(set(cm.get("data") or {}) & SECRET_ENV):
            p(cm, f"holds {key}: a secret belongs in a Secret (secretKeyRef), not a ConfigMap")
    for obj in workloads:
        spec = pod_spec(obj)
        for c in spec.get("initContainers", []) + spec["containers"]:
            for e in c.get("env", []):
                if e["name"] in SECRET_ENV and "valueFrom" not in e:
                    p(obj, f"container {c['name']}: {e['name']} is written into the manifest; it must come from a Secret")

    def from_secret(container: dict) -> set[str]:
        """Variables a container reads from a Secret that must exist (not optional)."""
        return {e["name"] for e in container.get("env", [])
                if "secretKeyRef" in (e.get("valueFrom") or {})
                and not e["valueFrom"]["secretKeyRef"].get("optional", False)}

    # Every pod: non-root (the image's uid for the suite's own), read-only, no
    # capabilities, no service account token.
    for obj in workloads:
        spec = pod_spec(obj)
        psc = spec.get("securityContext") or {}
        if spec.get("automountServiceAccountToken") is not False:
            p(obj, "automountServiceAccountToken is not false")
        if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            p(obj, "pod seccompProfile is not RuntimeDefault")
        if psc.get("runAsNonRoot") is not True:
            p(obj, "pod runAsNonRoot is not true")
        for c in spec["containers"]:
            csc = c.get("securityContext") or {}
            if csc.get("readOnlyRootFilesystem") is not True:
                p(obj, f"container {c['name']}: root filesystem is writable")
            if csc.get("allowPrivilegeEscalation") is not False:
                p(obj, f"container {c['name']}: allowPrivilegeEscalation is not false")
            if (csc.get("capabilities") or {}).get("drop") != ["ALL"]:
                p(obj, f"container {c['name']}: capabilities are not dropped (ALL)")
            res = c.get("resources") or {}
            if not (res.get("requests") or {}).get("cpu") or not (res.get("limits") or {}).get("memory"):
                p(obj, f"container {c['name']}: no CPU request or memory limit")
            if c["image"].split("@")[0].rsplit(":", 1)[-1] in ("latest", c["image"]):
                p(obj, f"container {c['name']}: image {c['image']} has no fixed tag")
            ours = c["image"].split("@")[0].rsplit(":", 1)[0].rsplit("/", 1)[-1] == "aftersales"
            if ours and uid and (psc.get("runAsUser"), psc.get("runAsGroup")) != uid:
                p(obj, f"runAsUser/runAsGroup {psc.get('runAsUser')}/{psc.get('runAsGroup')} differ from the Dockerfile's USER {uid[0]}:{uid[1]}")

    # The service Deployments.
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind.get("HorizontalPodAutoscaler", {}).values()}
    for svc, (port, health, has_db) in SERVICES.items():
        dep = by_kind.get("Deployment", {}).get(svc)
        if dep is None:
            p(f"Deployment/{svc}", "missing")
            continue
        spec = pod_spec(dep)
        c = spec["containers"][0]
        if c.get("args") != ["serve", svc]:
            p(dep, f"args are {c.get('args')}, not ['serve', '{svc}']")
        ports = {cp.get("name"): cp["containerPort"] for cp in c.get("ports", [])}
        if ports.get("grpc") != port:
            p(dep, f"container port 'grpc' is {ports.get('grpc')}, not {port}")
        if ports.get("metrics") != METRICS_PORT:
            p(dep, f"container port 'metrics' is {ports.get('metrics')}, not {METRICS_PORT}")
        if svc == "gateway" and ports.get("http") != GATEWAY_HTTP_PORT:
            p(dep, f"container port 'http' is {ports.get('http')}, not {GATEWAY_HTTP_PORT}")
        ready = (c.get("readinessProbe") or {}).get("grpc")
        live = (c.get("livenessProbe") or {}).get("grpc")
        if not ready or ready.get("port") != port or ready.get("service") != health:
            p(dep, f"readiness must be a grpc probe on {port} for {health}: {ready}")
        if not live or live.get("port") != port or live.get("service", "") != "":
            p(dep, f"liveness must be a grpc probe on {port} for the empty service name: {live}")
        env: dict[str, str] = {}
        for ef in c.get("envFrom", []):
            cm = configmaps.get((ef.get("configMapRef") or {}).get("name", ""))
            if cm:
                env.update(cm.get("data") or {})
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
        env_names = set(env) | {e["name"] for e in c.get("env", [])}
        grace = int(env.get("SHUTDOWN_HEALTH_GRACE_MS", 2000)) + int(env.get("SHUTDOWN_DRAIN_TIMEOUT_MS", 20000))
        tgps = spec.get("terminationGracePeriodSeconds", 30)
        if tgps * 1000 < grace + 5000:
            p(dep, f"terminationGracePeriodSeconds {tgps} s leaves under 5 s beyond health grace + drain ({grace} ms)")
        addr_var = f"{svc.upper()}_GRPC_ADDR"
        if not env.get(addr_var, "").endswith(f":{port}"):
            p(dep, f"{addr_var} is {env.get(addr_var)!r}, not on port {port}")
        if not env.get("METRICS_ADDR", "").endswith(f":{METRICS_PORT}"):
            p(dep, f"METRICS_ADDR is {env.get('METRICS_ADDR')!r}, not on port {METRICS_PORT}")
        if svc == "gateway" and not env.get("GATEWAY_HTTP_ADDR", "").endswith(f":{GATEWAY_HTTP_PORT}"):
            p(dep, f"GATEWAY_HTTP_ADDR is {env.get('GATEWAY_HTTP_ADDR')!r}")
        needed = {"OTEL_SERVICE_NAME", "LOG_FORMAT"} | ({"DATABASE_URL"} if has_db else set())
        for name in sorted(needed - env_names):
            p(dep, f"no {name} in the environment")
        must_be_secret = SERVICE_SECRET_ENV.get(svc, set()) | ({"DATABASE_URL"} if has_db else set())
        for name in sorted(must_be_secret - from_secret(c)):
            p(dep, f"{name} must come from a Secret (secretKeyRef, not optional)")
        # Redis: one server (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES, which wins
        # when both are set), from a Secret key that must exist. Without either the
        # service would keep its deadlines and events inside each pod.
        redis_vars = {"REDIS_URL", "REDIS_CLUSTER_NODES"}
        if not redis_vars & env_names:
            p(dep, "no REDIS_URL or REDIS_CLUSTER_NODES in the environment")
        elif not redis_vars & from_secret(c):
            p(dep, "REDIS_URL or REDIS_CLUSTER_NODES must come from a Secret (secretKeyRef, not optional)")
        if env.get("OTEL_SERVICE_NAME", svc) != svc:
            p(dep, f"OTEL_SERVICE_NAME is {env.get('OTEL_SERVICE_NAME')!r}")
        if not spec.get("topologySpreadConstraints"):
            p(dep, "no topologySpreadConstraints")
        if svc in hpas and "replicas" in dep["spec"]:
            p(dep, "sets replicas while an HPA scales it (every apply would reset the count)")
        if svc not in hpas and "replicas" not in dep["spec"]:
            p(dep, "has neither an HPA nor replicas")
        if not any(labels_match(pdb["spec"]["selector"], pod_labels(dep))
                   for pdb in by_kind.get("PodDisruptionBudget", {}).values()):
            p(dep, "no PodDisruptionBudget selects its pods")
        if has_db:
            job = by_kind.get("Job", {}).get(f"{svc}-migrate")
            if job is None:
                p(f"Job/{svc}-migrate", "missing")
            else:
                jc = pod_spec(job)["containers"][0]
                if jc.get("args") != ["migrate", svc]:
                    p(job, f"args are {jc.get('args')}, not ['migrate', '{svc}']")
                if jc["image"] != c["image"]:
                    p(job, f"image {jc['image']} differs from the Deployment's {c['image']}")
                if (job["metadata"].get("labels") or {}).get("app.kubernetes.io/component") != "migration":
                    p(job, "no label app.kubernetes.io/component=migration")
                if jc.get("envFrom"):
                    p(job, "uses envFrom: it must apply on its own, before generated ConfigMaps exist")
                for name in sorted((SERVICE_SECRET_ENV.get(svc, set()) | {"DATABASE_URL"}) - from_secret(jc)):
                    p(job, f"no {name} from a Secret: `aftersales migrate {svc}` reads the service's whole configuration")
                sa = by_kind.get("ServiceAccount", {}).get(pod_spec(job).get("serviceAccountName", "default"))
                if sa is None or (sa["metadata"].get("labels") or {}).get("app.kubernetes.io/component") != "migration":
                    p(job, "its ServiceAccount is missing or not labelled component=migration")

    for name, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        ref = hpa["spec"]["scaleTargetRef"]
        if ref["name"] not in by_kind.get(ref["kind"], {}):
            p(hpa, f"scales {ref['kind']}/{ref['name']}, which is not rendered")

    # Services select pods and name their ports.
    for svc in by_kind.get("Service", {}).values():
        sel = svc["spec"].get("selector") or {}
        targets = [w for w in workloads if w["kind"] != "Job" and labels_match({"matchLabels": sel}, pod_labels(w))]
        if not targets:
            p(svc, f"selector {sel} matches no Deployment or StatefulSet")
        for port in svc["spec"]["ports"]:
            tp = port.get("targetPort", port["port"])
            names = {cp.get("name") for w in targets for c in pod_spec(w)["containers"] for cp in c.get("ports", [])}
            nums = {cp["containerPort"] for w in targets for c in pod_spec(w)["containers"] for cp in c.get("ports", [])}
            if (isinstance(tp, str) and tp not in names) or (isinstance(tp, int) and tp not in nums):
                p(svc, f"targetPort {tp} is no container port of its pods")
        if svc["metadata"]["name"] in SERVICES and svc["metadata"]["name"] != "gateway":
            if svc["spec"].get("clusterIP") != "None":
                p(svc, "a gRPC service's Service must be headless (client-side balancing)")

    # NetworkPolicies: default deny both ways; outside traffic only to the gateway's HTTP.
    policies = list(by_kind.get("NetworkPolicy", {}).values())
    if not any(np["spec"].get("podSelector") == {} and set(np["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
               and not np["spec"].get("ingress") and not np["spec"].get("egress") for np in policies):
        p("NetworkPolicy", "no default deny of all ingress and egress")
    for np in policies:
        sel = np["spec"].get("podSelector") or {}
        selected = [w for w in workloads if labels_match(sel, pod_labels(w))]
        if sel and not selected:
            p(np, f"podSelector {sel} selects no pod")
        for rule in np["spec"].get("ingress") or []:
            open_to_all = not rule.get("from") or any(
                (f.get("ipBlock") or {}).get("cidr") in ("0.0.0.0/0", "::/0") for f in rule["from"])
            if not open_to_all:
                continue
            ports = {pp.get("port") for pp in rule.get("ports") or [{}]}
            names = {pod_labels(w).get("app.kubernetes.io/name") for w in selected} if sel else {"*"}
            if names != {"gateway"} or ports != {GATEWAY_HTTP_PORT}:
                p(np, f"admits traffic from anywhere to {sorted(map(str, names))} on {sorted(map(str, ports))}: only the gateway's HTTP port may be open")
    for w in workloads:
        if not any(np["spec"].get("podSelector") and labels_match(np["spec"]["podSelector"], pod_labels(w))
                   for np in policies):
            p(w, "no NetworkPolicy of its own selects its pods")

    check_reachability(by_kind, policies, p)
    check_outbound(by_kind, policies, p)

    # Ingress: only to the gateway's HTTP port.
    for ing in by_kind.get("Ingress", {}).values():
        for rule in ing["spec"].get("rules", []):
            for path in (rule.get("http") or {}).get("paths", []):
                b = path["backend"]["service"]
                if b["name"] != "gateway" or b["port"] not in ({"name": "http"}, {"number": GATEWAY_HTTP_PORT}):
                    p(ing, f"routes to {b}: only gateway:http may be exposed")
        for tls in ing["spec"].get("tls", []):
            secret_ref(ing, tls["secretName"], None)

    check_monitoring(render, by_kind, p)


# --- network reachability ------------------------------------------------------------------
#
# A small evaluator of NetworkPolicy semantics (policies add up; a pod no policy of a
# direction selects is open in that direction), enough for the suite's policies: pod and
# namespace selectors, ipBlock (taken to mean "outside the cluster"), numbered ports.
# A peer is ("pod", pod labels, namespace labels) or ("external",).

def policy_types(np: dict) -> set[str]:
    spec = np["spec"]
    if "policyTypes" in spec:
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if "egress" in spec else set())


def peer_matches(rule_peer: dict, peer: tuple) -> bool:
    if "ipBlock" in rule_peer:
        return peer[0] == "external"
    if peer[0] == "external":
        return False
    _, pod_labels_, ns_labels = peer
    ns_sel = rule_peer.get("namespaceSelector")
    ns_ok = ns_labels == NAMESPACE_LABELS if ns_sel is None else labels_match(ns_sel, ns_labels)
    pod_sel = rule_peer.get("podSelector")
    return ns_ok and (pod_sel is None or labels_match(pod_sel, pod_labels_))


def port_matches(rule_ports: list | None, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for rp in rule_ports:
        if rp.get("protocol", "TCP") != protocol:
            continue
        first = rp.get("port")
        if first is None or first == port or (isinstance(first, int) and first <= port <= rp.get("endPort", first)):
            return True
    return False


def admits(policies: list[dict], direction: str, subject: dict, peer: tuple, port: int, protocol: str = "TCP") -> bool:
    """Whether traffic between the pod labelled `subject` and `peer` passes the policies
    of `subject`'s own side: its Egress policies (direction "Egress") or Ingress ones."""
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    selecting = [np for np in policies
                 if direction in policy_types(np) and labels_match(np["spec"].get("podSelector") or {}, subject)]
    if not selecting:
        return True
    for np in selecting:
        for rule in np["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(peer_matches(rp, peer) for rp in peers)) and port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def check_reachability(by_kind: dict, policies: list[dict], p) -> None:
    """Every connection the suite needs is admitted at both ends; nothing else is asked."""
    deployments = by_kind.get("Deployment", {})
    services = by_kind.get("Service", {})

    def pod(name: str) -> tuple | None:
        w = deployments.get(name) or by_kind.get("StatefulSet", {}).get(name)
        return ("pod", pod_labels(w), NAMESPACE_LABELS) if w else None

    def need(obj: dict, what: str, src: dict, dst: tuple, port: int, protocol: str = "TCP") -> None:
        if not admits(policies, "Egress", src, dst, port, protocol):
            p(obj, f"the NetworkPolicies do not let its pods reach {what} (egress, {protocol} {port})")
        if dst[0] == "pod" and dst[2] == NAMESPACE_LABELS and not admits(
                policies, "Ingress", dst[1], ("pod", src, NAMESPACE_LABELS), port, protocol):
            p(obj, f"the NetworkPolicies of {what} do not admit its pods (ingress, {protocol} {port})")

    # In-cluster backends (dev) by their pods; managed ones (prod) outside the cluster.
    postgres = pod("postgres") or ("external",)
    redis = pod("redis") or ("external",)
    dns = ("pod",) + KUBE_DNS
    for svc, (port, _health, has_db) in SERVICES.items():
        dep = deployments.get(svc)
        if dep is None:
            continue
        labels = pod_labels(dep)
        need(dep, "cluster DNS", labels, dns, 53, "UDP")
        need(dep, "Redis", labels, redis, REDIS_PORT)
        if has_db:
            need(dep, "PostgreSQL", labels, postgres, POSTGRES_PORT)
            job = by_kind.get("Job", {}).get(f"{svc}-migrate")
            if job is not None:
                need(job, "cluster DNS", pod_labels(job), dns, 53, "UDP")
                need(job, "PostgreSQL", pod_labels(job), postgres, POSTGRES_PORT)
        if not admits(policies, "Ingress", labels, ("pod", {}, PROMETHEUS_NS), METRICS_PORT):
            p(dep, f"the NetworkPolicies do not admit Prometheus (namespace monitoring) on {METRICS_PORT}")
        if container_env(by_kind, dep).get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            need(dep, "the OTLP collector (namespace observability)", labels, ("pod", {}, OTLP_NS), OTLP_PORT)

    for caller, var, callee in CALLS:
        dep, target = deployments.get(caller), deployments.get(callee)
        if dep is None or target is None:
            continue
        port = SERVICES[callee][0]
        env = container_env(by_kind, dep)
        want = f"http://{callee}:{port}"
        if env.get(var) != want:
            p(dep, f"{var} is {env.get(var)!r}, not {want!r} (the {callee} Service, gRPC port)")
        svc = services.get(callee)
        if svc is None or port not in {pp["port"] for pp in svc["spec"]["ports"]}:
            p(dep, f"calls {callee}:{port}, but no Service {callee} has that port")
        need(dep, f"{callee}:{port}", pod_labels(dep), pod(callee), port)


def check_outbound(by_kind: dict, policies: list[dict], p) -> None:
    """A service that connects where others point it (OUTBOUND) reaches the internet on
    its port, and no egress rule of its lets that port into the refused ranges."""
    for svc, port in OUTBOUND.items():
        dep = by_kind.get("Deployment", {}).get(svc)
        if dep is None:
            continue
        labels = pod_labels(dep)
        if not admits(policies, "Egress", labels, ("external",), port):
            p(dep, f"the NetworkPolicies do not let its pods reach public addresses (egress, TCP {port})")
        for np in policies:
            if "Egress" not in policy_types(np) or not labels_match(np["spec"].get("podSelector") or {}, labels):
                continue
            for rule in np["spec"].get("egress") or []:
                if not port_matches(rule.get("ports"), port, "TCP"):
                    continue
                if not rule.get("to"):
                    p(dep, f"NetworkPolicy {np['metadata']['name']} admits TCP {port} to every address, the cloud "
                           f"metadata and private ranges included: admit it with an ipBlock that excepts them")
                    continue
                for peer in rule["to"]:
                    if "ipBlock" in peer:
                        block_problems(dep, np, peer["ipBlock"], port, p)


def block_problems(dep: dict, np: dict, block: dict, port: int, p) -> None:
    """The refused ranges (and the metadata address) an ipBlock admits whole."""
    cidr = ipaddress.ip_network(block["cidr"], strict=False)
    excepts = [ipaddress.ip_network(e, strict=False) for e in block.get("except") or []]

    def excepted(net) -> bool:
        return any(net.version == e.version and net.subnet_of(e) for e in excepts)

    where = f"NetworkPolicy {np['metadata']['name']} admits TCP {port}"
    for text, what in REFUSED_RANGES.items():
        refused = ipaddress.ip_network(text)
        if refused.version == cidr.version and refused.subnet_of(cidr) and not excepted(refused):
            p(dep, f"{where} to {refused} ({what}) through ipBlock {cidr}: add it to the block's except")
    meta = ipaddress.ip_network(METADATA_ADDRESS)
    if meta.version == cidr.version and meta.subnet_of(cidr) and not excepted(meta):
        p(dep, f"{where} to the cloud metadata address {METADATA_ADDRESS} through ipBlock {cidr}")


def container_env(by_kind: dict, workload: dict) -> dict[str, str]:
    """The literal environment of a workload's first container (ConfigMaps and values)."""
    c = pod_spec(workload)["containers"][0]
    env: dict[str, str] = {}
    for ef in c.get("envFrom", []):
        cm = by_kind.get("ConfigMap", {}).get((ef.get("configMapRef") or {}).get("name", ""))
        if cm:
            env.update(cm.get("data") or {})
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
    return env


# --- monitoring: structure and queries ---------------------------------------------------

def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def check_query(where: str, expr: str, recorded: set[str], p) -> set[str]:
    """Problems of one query; returns the metric names it reads."""
    try:
        names = metric_names(expr)
    except Exception as e:  # the parser raises ValueError with the position
        p(where, f"PromQL does not parse: {e}: {expr!r}")
        return set()
    for name in sorted(names - KNOWN_METRICS - recorded):
        p(where, f"unknown metric {name} (not in the suite's metric contract)")
    return names


def strict_keys(where: str, obj: dict, allowed: set[str], p) -> None:
    for key in sorted(set(obj) - allowed):
        p(where, f"unexpected field {key!r}")


def check_monitoring(render: str, by_kind: dict, p) -> None:
    services = by_kind.get("Service", {})
    recorded: set[str] = set()
    for rule_obj in by_kind.get("PrometheusRule", {}).values():
        for g in rule_obj["spec"].get("groups", []):
            for r in g.get("rules", []):
                if "record" in r:
                    recorded.add(r["record"])
    sections = readme_sections()
    anchors = set(sections)

    for sm in by_kind.get("ServiceMonitor", {}).values():
        where = ident(sm)
        strict_keys(where, sm, {"apiVersion", "kind", "metadata", "spec"}, p)
        spec = sm.get("spec") or {}
        strict_keys(where + " spec", spec, {"selector", "namespaceSelector", "endpoints", "jobLabel",
                                            "targetLabels", "podTargetLabels", "sampleLimit"}, p)
        ns = (spec.get("namespaceSelector") or {}).get("matchNames") or [NAMESPACE]
        if NAMESPACE not in ns:
            p(where, f"namespaceSelector {ns} misses {NAMESPACE}")
        selected = [s for s in services.values() if labels_match(spec.get("selector") or {}, s["metadata"].get("labels") or {})]
        missing = set(SERVICES) - {s["metadata"]["name"] for s in selected}
        if missing:
            p(where, f"selects no Service for {sorted(missing)}")
        if not spec.get("endpoints"):
            p(where, "no endpoints")
        for ep in spec.get("endpoints", []):
            strict_keys(where + " endpoint", ep, {"port", "path", "scheme", "interval", "scrapeTimeout",
                                                  "honorLabels", "relabelings", "metricRelabelings"}, p)
            for key in ("interval", "scrapeTimeout"):
                if key in ep and not DURATION.match(ep[key]):
                    p(where, f"{key} {ep[key]!r} is no duration")
            for s in selected:
                if ep.get("port") not in {pp.get("name") for pp in s["spec"]["ports"]}:
                    p(where, f"Service {s['metadata']['name']} has no port named {ep.get('port')!r}")

    for rule_obj in by_kind.get("PrometheusRule", {}).values():
        where = ident(rule_obj)
        strict_keys(where, rule_obj, {"apiVersion", "kind", "metadata", "spec"}, p)
        strict_keys(where + " spec", rule_obj.get("spec") or {}, {"groups"}, p)
        group_names = set()
        for g in rule_obj["spec"].get("groups", []):
            gw = f"{where} group {g.get('name')}"
            strict_keys(gw, g, {"name", "interval", "rules", "limit", "partial_response_strategy"}, p)
            if g.get("name") in group_names:
                p(gw, "duplicate group name")
            group_names.add(g.get("name"))
            if "interval" in g and not DURATION.match(g["interval"]):
                p(gw, f"interval {g['interval']!r} is no duration")
            for r in g.get("rules", []):
                name = r.get("alert") or r.get("record")
                rw = f"{gw} rule {name}"
                strict_keys(rw, r, {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}, p)
                if ("alert" in r) == ("record" in r):
                    p(rw, "needs exactly one of alert and record")
                if "for" in r and not DURATION.match(str(r["for"])):
                    p(rw, f"for {r['for']!r} is no duration")
                reads = check_query(rw, str(r.get("expr", "")), recorded, p)
                if "alert" in r:
                    if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                        p(rw, "no severity label (critical, warning or info)")
                    ann = r.get("annotations") or {}
                    for key in ("summary", "description", "runbook_url"):
                        if not ann.get(key):
                            p(rw, f"no {key} annotation")
                    anchor = ann.get("runbook_url", "").partition("#")[2]
                    if ann.get("runbook_url") and anchor not in anchors:
                        p(rw, f"runbook_url anchor #{anchor} is no heading of k8s/README.md")
                    silent = sorted(reads & NOT_YET_EXPORTED)
                    if silent and anchor in sections and "not exported" not in sections[anchor].lower():
                        p(rw, f"reads {silent}, which the services do not export yet, and its runbook section does not say so")

    for cm in by_kind.get("ConfigMap", {}).values():
        if (cm["metadata"].get("labels") or {}).get("grafana_dashboard") != "1":
            continue
        for fname, text in (cm.get("data") or {}).items():
            where = f"{ident(cm)} {fname}"
            try:
                dash = json.loads(text)
            except json.JSONDecodeError as e:
                p(where, f"not JSON: {e}")
                continue
            for key in ("uid", "title", "panels", "schemaVersion"):
                if key not in dash:
                    p(where, f"no {key}")
            ids = [pan.get("id") for pan in dash.get("panels", [])]
            if len(ids) != len(set(ids)):
                p(where, "panel ids repeat")
            n_targets = 0
            for pan in dash.get("panels", []):
                for t in pan.get("targets", []):
                    n_targets += 1
                    expr = t.get("expr", "")
                    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
                    expr = re.sub(r"\$\{?(\w+)\}?", "x", expr)
                    reads = check_query(f"{where} panel {pan.get('title')!r}", expr, recorded, p)
                    said = f"{pan.get('title', '')} {pan.get('description', '')}".lower()
                    if reads & NOT_YET_EXPORTED and "not exported" not in said:
                        p(f"{where} panel {pan.get('title')!r}", f"reads {sorted(reads & NOT_YET_EXPORTED)}, which the services do not export yet, and neither its title nor its description says so")
            if n_targets == 0:
                p(where, "no queries")


# --- checkov findings against the waivers ------------------------------------------------

def policy(checkov_json: str, waivers_file: str) -> int:
    """Waiver lines: CHECK_ID  RENDER_GLOB  RESOURCE_GLOB  reason… ('#' starts a comment)."""
    waivers = []
    for line in Path(waivers_file).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        check, render_glob, resource_glob, reason = (line.split(None, 3) + [""])[:4]
        if not reason:
            print(f"waiver without a reason: {line}")
            return 1
        waivers.append([check, render_glob, resource_glob, reason, 0])

    reports = json.loads(Path(checkov_json).read_text())
    reports = reports if isinstance(reports, list) else [reports]
    unwaived, canary_hits, passed_by_file = [], set(), {}
    for report in reports:
        for chk in report["results"].get("passed_checks", []):
            f = os.path.basename(chk["file_path"])
            passed_by_file[f] = passed_by_file.get(f, 0) + 1
        for chk in report["results"].get("failed_checks", []):
            f = os.path.basename(chk["file_path"])
            if f.startswith("canary"):
                canary_hits.add(chk["check_id"])
                continue
            render = f.rsplit(".", 1)[0]
            for w in waivers:
                if w[0] == chk["check_id"] and fnmatch.fnmatch(render, w[1]) and fnmatch.fnmatch(chk["resource"], w[2]):
                    w[4] += 1
                    break
            else:
                unwaived.append(f"{render}: {chk['check_id']} {chk.get('check_name', '')} — {chk['resource']}")

    status = 0
    expected_canary = {"CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_23"}
    if not expected_canary <= canary_hits:
        print(f"checkov canary: expected {sorted(expected_canary)} to fail on the canary pod, got {sorted(canary_hits)}: is checkov scanning?")
        status = 1
    for render, n in sorted(passed_by_file.items()):
        if render.startswith("canary"):
            continue
        print(f"  checkov {render}: {n} checks passed")
    for w in waivers:
        print(f"  waived {w[4]:3d} × {w[0]} on {w[1]} {w[2]}: {w[3]}")
    for w in waivers:
        if w[4] == 0:
            print(f"stale waiver (matches no finding; remove it): {w[0]} {w[1]} {w[2]}")
            status = 1
    for u in unwaived:
        print(f"UNWAIVED {u}")
    if unwaived:
        status = 1
    return status


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "policy":
        return policy(argv[1], argv[2])
    if not argv or argv[0] != "manifests":
        print(__doc__)
        return 2
    problems = Problems()
    total = 0
    for path in argv[1:]:
        render = Path(path).stem
        objs = load(path)
        total += len(objs)
        check_schemas(render, objs, problems)
        check_suite(render, objs, problems)
        schema_canary(objs, problems)
        rules_canary(render, objs, problems)
        print(f"  {render}: {len(objs)} objects")
    for item in problems.items:
        print(f"FAIL {item}")
    if problems.items:
        print(f"{len(problems.items)} problem(s) in the rendered manifests")
        return 1
    print(f"  {total} objects valid against Kubernetes {', '.join(K8S_VERSIONS)} (strict) and the suite's rules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
