"""The Kubernetes manifests of deploy/k8s: every overlay renders with `kubectl kustomize`, every rendered
object is valid against the Kubernetes schemas (npm's kubernetes-models, offline), and the rules the
deployment promises hold in what would be applied (docs/DEPLOY.md, "Kubernetes").

Nothing here talks to a cluster. The overlays' Secrets come from files the operator writes and git
ignores; the test renders a copy of the committed tree with throwaway files made from their .examples.
"""

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
# Installed by scripts/deps.sh (npm, pinned); another prefix through the environment.
MODELS = os.environ.get("DATASITE_K8S_MODELS", "/opt/datasite-k8s-models")
VALIDATOR = Path(__file__).with_name("validate_k8s.mjs")
DEFAULT_ADMIN_PASSWORD = "changethis"
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}
# Where the API's and the workers' traffic may go: DNS, PostgreSQL, the object store (in-cluster MinIO,
# or an external store over HTTPS).
WORKER_EGRESS_PORTS = {53, 5432, 9000, 443}
DATABASE_PORT = 5432


def committed_copy(destination):
    """deploy/k8s without an operator's real secret files, with throwaway ones from the .examples."""

    def skip_real_secrets(directory, names):
        if Path(directory).name != "secrets":
            return []
        return [n for n in names if not (n.endswith(".example") or n == ".gitignore")]

    shutil.copytree(K8S, destination, ignore=skip_real_secrets)
    for example in destination.glob("overlays/*/secrets/*.example"):
        # One random value per overlay, so a password and the URL that carries it agree.
        value = example.parent.parent.name + secrets.token_hex(12)
        text = example.read_text().replace("REPLACE_WITH_RANDOM", value)
        example.with_suffix("").write_text(text)
    return destination


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return committed_copy(tmp_path_factory.mktemp("k8s") / "k8s")


@pytest.fixture(scope="module")
def rendered(tree):
    """Overlay name -> its rendered objects."""
    # Debian 12 ships no kustomize new enough for these files (its kubernetes-client 1.20 has
    # kustomize 2.0, which reads neither `patches` nor directories under `resources`): without a
    # kubectl of 1.27 or later the whole test skips, saying so, as the S3 tests do without s3rver.
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the manifests can't be rendered (install kubectl "
                    "1.27 or later; Debian 12's kubernetes-client is too old)")
    version = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True,
                             text=True, timeout=30)
    try:
        client = json.loads(version.stdout)["clientVersion"]
        minor = int("".join(ch for ch in client["minor"] if ch.isdigit()))
    except (ValueError, KeyError):
        minor = 0
    if minor < 27:
        pytest.skip("kubectl is older than 1.27 (its kustomize can't read these files): "
                    + (version.stdout or version.stderr).strip()[:200])
    out = {}
    for overlay in OVERLAYS:
        run = subprocess.run(["kubectl", "kustomize", str(tree / "overlays" / overlay)],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, f"{overlay}: kubectl kustomize failed:\n{run.stderr}"
        out[overlay] = [d for d in yaml.safe_load_all(run.stdout) if d]
    return out


def of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def named(objects, kind, name):
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_templates(objects):
    """(object name, pod template) of every object that makes pods."""
    out = []
    for o in objects:
        if o["kind"] in POD_KINDS:
            out.append((f'{o["kind"]}/{o["metadata"]["name"]}', o["spec"]["template"]))
        elif o["kind"] == "CronJob":
            out.append((f'CronJob/{o["metadata"]["name"]}',
                        o["spec"]["jobTemplate"]["spec"]["template"]))
        elif o["kind"] == "Pod":
            out.append((f'Pod/{o["metadata"]["name"]}', o))
    return out


def containers(pod_spec):
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


def components(selector):
    """The app.kubernetes.io/component values of this datasite's pods a pod selector is limited to;
    None when it is not (a selector on the component alone would take another app's pods labelled
    so: it must name app.kubernetes.io/name datasite too)."""
    key = "app.kubernetes.io/component"
    if (selector or {}).get("matchLabels", {}).get("app.kubernetes.io/name") != "datasite":
        return None
    if key in (selector or {}).get("matchLabels", {}):
        return {selector["matchLabels"][key]}
    for e in (selector or {}).get("matchExpressions", []):
        if e["key"] == key and e["operator"] == "In":
            return set(e["values"])
    return None


def selects(selector, labels):
    """Whether a label selector matches labels (matchLabels and In/NotIn/Exists/DoesNotExist)."""
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        has = e["key"] in labels
        ok = {"In": has and labels.get(e["key"]) in e.get("values", []),
              "NotIn": not has or labels.get(e["key"]) not in e.get("values", []),
              "Exists": has, "DoesNotExist": not has}[e["operator"]]
        if not ok:
            return False
    return True


def rule_ports(rule):
    """The port numbers a NetworkPolicy rule allows; None when it allows every port."""
    if not rule.get("ports"):
        return None
    return {p.get("port") for p in rule["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_against_the_kubernetes_schemas(rendered, overlay):
    if not (Path(MODELS) / "node_modules" / "kubernetes-models" / "package.json").exists():
        pytest.skip(f"npm's kubernetes-models is not installed under {MODELS} (scripts/deps.sh "
                    "installs it): the rendered objects are not validated against the schemas")
    objects = rendered[overlay]
    for o in objects:
        # kustomize folds long base64 values over lines; the API server's decoder skips the line
        # breaks, the schema's "byte" pattern does not.
        for k, v in (o.get("data") or {}).items() if o["kind"] == "Secret" else []:
            o["data"][k] = re.sub(r"\s", "", v)
    run = subprocess.run(["node", str(VALIDATOR), MODELS], input=json.dumps(objects),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode in (0, 1), f"the validator could not run: {run.stderr}"
    problems = [f'{o["kind"]}/{o["metadata"]["name"]}: {why}'
                for o, why in zip(objects, json.loads(run.stdout)) if why is not None]
    assert not problems, "\n".join(problems)
    assert len(objects) >= 10  # the whole overlay was read, not an empty render


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_as_non_root_on_a_read_only_root_without_privilege(rendered, overlay):
    problems = []
    for name, template in pod_templates(rendered[overlay]):
        spec = template["spec"]
        pod_sc = spec.get("securityContext", {})
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"{name}: shares a host namespace")
        for c in containers(spec):
            sc = c.get("securityContext", {})
            where = f"{name} container {c['name']}"
            if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
                problems.append(f"{where}: runAsNonRoot is not true")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                problems.append(f"{where}: runs as uid 0")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{where}: privileged")
            caps = sc.get("capabilities", {})
            if caps.get("drop") != ["ALL"] or caps.get("add"):
                problems.append(f"{where}: capabilities are not exactly drop: [ALL]")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_resource_requests_and_limits(rendered, overlay):
    problems = []
    for name, template in pod_templates(rendered[overlay]):
        for c in containers(template["spec"]):
            resources = c.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(kind, {}):
                        problems.append(f"{name} container {c['name']}: no {kind}.{resource}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_has_readiness_and_liveness_probes_on_their_paths(rendered, overlay):
    api = named(rendered[overlay], "Deployment", "datasite-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container.get(probe, {}).get("httpGet")
        assert get is not None, f"the API has no HTTP {probe}"
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == 8080, f"{probe} asks another port"
    assert container["args"][0] == "serve"
    env = {e["name"]: e for e in container.get("env", [])}
    assert "secretKeyRef" in env["DATASITE_ROOT_PASSWORD"]["valueFrom"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_pod_disruption_budget_keeps_api_replicas(rendered, overlay):
    objects = rendered[overlay]
    api = named(objects, "Deployment", "datasite-api")
    labels = api["spec"]["template"]["metadata"]["labels"]
    budgets = [b for b in of_kind(objects, "PodDisruptionBudget")
               if selects(b["spec"]["selector"], labels)]
    assert len(budgets) == 1, "no PodDisruptionBudget selects the API's pods"
    spec = budgets[0]["spec"]
    replicas = api["spec"]["replicas"]
    assert replicas >= 2
    # At least one replica kept, and at least one may go (else a node drain never ends).
    assert 1 <= spec.get("minAvailable", 0) < replicas


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_default_deny_network_policy_covers_the_namespace(rendered, overlay):
    deny = [p for p in of_kind(rendered[overlay], "NetworkPolicy")
            if p["spec"]["podSelector"] == {}
            and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny, "no NetworkPolicy denies all ingress and egress of every pod"
    # A policy over every pod that allows something would undo it.
    for p in of_kind(rendered[overlay], "NetworkPolicy"):
        if p["spec"]["podSelector"] == {}:
            assert not p["spec"].get("ingress") and not p["spec"].get("egress"), p["metadata"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_api_and_the_workers_reach_the_database(rendered, overlay):
    objects = rendered[overlay]
    policies = of_kind(objects, "NetworkPolicy")
    # Egress: a rule that lets a pod reach the database's port (or every port) belongs to a policy
    # over API or worker pods only (DNS rules name port 53 and pass).
    for p in policies:
        for rule in p["spec"].get("egress", []):
            ports = rule_ports(rule)
            if ports is None or DATABASE_PORT in ports:
                chosen = components(p["spec"]["podSelector"])
                assert chosen is not None and chosen <= {"api", "worker"}, (
                    f'{p["metadata"]["name"]} lets {chosen or "every pod"} reach the database port')
    # Ingress to an in-cluster database: only from API and worker pods of this namespace.
    databases = [t for _, t in pod_templates(objects)
                 if t["metadata"]["labels"].get("app.kubernetes.io/component") == "postgres"]
    for template in databases:
        labels = template["metadata"]["labels"]
        for p in policies:
            if not selects(p["spec"]["podSelector"], labels):
                continue
            for rule in p["spec"].get("ingress", []):
                peers = rule.get("from")
                assert peers, f'{p["metadata"]["name"]} lets anyone reach the database'
                for peer in peers:
                    assert set(peer) == {"podSelector"}, (
                        f'{p["metadata"]["name"]}: the database reached from {peer}')
                    chosen = components(peer["podSelector"])
                    assert chosen is not None and chosen <= {"api", "worker"}, (
                        f'{p["metadata"]["name"]}: the database reached by {chosen or "every pod"}')
    if overlay == "dev":
        assert databases, "the dev overlay runs its PostgreSQL in the cluster"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_reach_only_dns_the_database_and_the_object_store(rendered, overlay):
    objects = rendered[overlay]
    worker = named(objects, "Deployment", "datasite-worker")
    labels = worker["spec"]["template"]["metadata"]["labels"]
    allowed = set()
    for p in of_kind(objects, "NetworkPolicy"):
        if selects(p["spec"]["podSelector"], labels):
            assert not p["spec"].get("ingress"), f'{p["metadata"]["name"]}: workers take no connection'
            for rule in p["spec"].get("egress", []):
                ports = rule_ports(rule)
                assert ports is not None, f'{p["metadata"]["name"]}: workers may reach every port'
                allowed |= ports
    assert allowed <= WORKER_EGRESS_PORTS, f"workers may reach ports {allowed - WORKER_EGRESS_PORTS}"
    assert {53, DATABASE_PORT} <= allowed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_holds_the_default_admin_password(tree, rendered, overlay):
    found = []
    for o in of_kind(rendered[overlay], "Secret"):
        values = [base64.b64decode(re.sub(r"\s", "", v)).decode()
                  for v in (o.get("data") or {}).values()]
        values += list((o.get("stringData") or {}).values())
        if any(DEFAULT_ADMIN_PASSWORD in v.lower() for v in values):
            found.append(o["metadata"]["name"])
    assert not found, f"Secrets holding the default admin password: {found}"
    api = named(rendered[overlay], "Deployment", "datasite-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert all(DEFAULT_ADMIN_PASSWORD not in json.dumps(e).lower() for e in container.get("env", []))
    for example in (tree / "overlays" / overlay / "secrets").glob("*.example"):
        assert DEFAULT_ADMIN_PASSWORD not in example.read_text().lower(), example.name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_worker_pod_gives_the_sandbox_what_it_needs_and_no_more(rendered, overlay):
    objects = rendered[overlay]
    worker = named(objects, "Deployment", "datasite-worker")
    spec = worker["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert spec.get("hostUsers") is False, "procMount Unmasked needs a user namespace of the pod's own"
    assert container["securityContext"].get("procMount") == "Unmasked"
    assert "livenessProbe" not in container and "ports" not in container
    # The limits the worker must share with the API come from the API's own ConfigMap keys.
    env = {e["name"]: e for e in container["env"]}
    config = [c for c in of_kind(objects, "ConfigMap")
              if c["metadata"]["name"].startswith("datasite-config")]
    assert len(config) == 1
    for flag in ("MAX_RESULT_BYTES", "MAX_STORAGE_BYTES", "USER_QUOTA_BYTES", "MOCK_RESULTS_KEPT"):
        ref = env[f"DATASITE_WORKER_{flag}"]["valueFrom"]["configMapKeyRef"]
        assert ref == {"name": config[0]["metadata"]["name"], "key": f"DATASITE_{flag}"}
        assert config[0]["data"][f"DATASITE_{flag}"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_mount_no_service_account_token(rendered, overlay):
    objects = rendered[overlay]
    for account in of_kind(objects, "ServiceAccount"):
        assert account.get("automountServiceAccountToken") is False, account["metadata"]["name"]
    for name, template in pod_templates(objects):
        assert template["spec"].get("automountServiceAccountToken") is False, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_key_a_pod_reads_exists(rendered, overlay):
    # A missing key leaves the pod in CreateContainerConfigError, which no schema shows.
    objects = rendered[overlay]
    data = {(o["kind"], o["metadata"]["name"]): set(o.get("data") or {}) | set(o.get("stringData") or {})
            for o in objects if o["kind"] in ("ConfigMap", "Secret")}
    problems = []
    for name, template in pod_templates(objects):
        for c in containers(template["spec"]):
            for e in c.get("env", []):
                for ref_kind, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    ref = e.get("valueFrom", {}).get(ref_kind)
                    if ref and ref["key"] not in data.get((kind, ref["name"]), set()):
                        problems.append(f'{name}/{c["name"]}: {e["name"]} reads a missing '
                                        f'{kind} {ref["name"]} key {ref["key"]}')
            for source in c.get("envFrom", []):
                for ref_kind, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    ref = source.get(ref_kind)
                    if ref and (kind, ref["name"]) not in data:
                        problems.append(f'{name}/{c["name"]}: no {kind} {ref["name"]}')
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_host_is_an_allowed_host(rendered, overlay):
    # The server answers 421 to a Host it was not given with --allowed-host.
    objects = rendered[overlay]
    (config,) = [c for c in of_kind(objects, "ConfigMap")
                 if c["metadata"]["name"].startswith("datasite-config")]
    allowed = set(config["data"].get("DATASITE_ALLOWED_HOST", "").split(","))
    (ingress,) = of_kind(objects, "Ingress")
    hosts = {r["host"] for r in ingress["spec"]["rules"]}
    assert hosts and hosts <= allowed, f"Ingress hosts {hosts} not in DATASITE_ALLOWED_HOST {allowed}"
    tls_hosts = {h for t in ingress["spec"].get("tls", []) for h in t["hosts"]}
    assert hosts <= tls_hosts, "the Ingress serves a host without TLS"


def image_env():
    """The ENV of deploy/Containerfile: what a pod of the image has under its own env."""
    text = (ROOT / "deploy" / "Containerfile").read_text().replace("\\\n", " ")
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env


# The directories `datasite serve` and `datasite worker` write to, by the variables that name them.
WRITTEN_DIRS = {"serve": ("DATASITE_DATA_DIR", "DATASITE_STORAGE_DIR"),
                "worker": ("DATASITE_WORKER_DATA_DIR", "DATASITE_WORKER_STORAGE_DIR")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_directory_a_datasite_writes_is_on_a_writable_volume(rendered, overlay):
    # The root file system is read-only: a directory the process writes (as the image's ENV, the
    # ConfigMap and the pod's env name it, in that order of precedence, lowest first) must be on a
    # mounted volume. The image's DATASITE_DATA_DIR once put the API's data directory on the root.
    objects = rendered[overlay]
    configs = {o["metadata"]["name"]: o.get("data") or {} for o in of_kind(objects, "ConfigMap")}
    problems = []
    for name, template in pod_templates(objects):
        for c in containers(template["spec"]):
            if not str(c.get("image", "")).rsplit("/", 1)[-1].startswith("datasite"):
                continue
            env = dict(image_env())
            for source in c.get("envFrom", []):
                env.update(configs.get(source.get("configMapRef", {}).get("name"), {}))
            env.update({e["name"]: e["value"] for e in c.get("env", []) if "value" in e})
            mounts = [m["mountPath"].rstrip("/") + "/" for m in c.get("volumeMounts", [])
                      if not m.get("readOnly")]
            command = "worker" if "worker" in c.get("command", []) + c.get("args", []) else "serve"
            for var in WRITTEN_DIRS[command]:
                if var in env and not any((env[var].rstrip("/") + "/").startswith(m) for m in mounts):
                    problems.append(f'{name}/{c["name"]}: {var}={env[var]} is on no writable volume')
    assert not problems, "\n".join(problems)
