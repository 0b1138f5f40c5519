"""What the API server's semantics, the admission webhooks and the controllers would find in
a set of rendered objects, as plain functions: objects in, a list of problems out (empty:
fine). The chart tests run each over every scenario and over ``voxmesh deploy render``, and
run each against a broken object too, so that none of them can pass by finding nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from tests.integration.helm_kit import NAMESPACE, Obj, pod_specs

__all__ = ["CHECKS", "KNOWN_LINKERD", "run_checks"]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _known_linkerd() -> frozenset[str]:
    from tests.integration.helm_kit import SHARED_K8S

    path = SHARED_K8S / "linkerd_known_annotations.txt"
    if not path.is_file():
        return frozenset()
    return frozenset(line.strip() for line in path.read_text().splitlines() if line.strip())


KNOWN_LINKERD = _known_linkerd()
ROUTE_PREFIXES = ("retry.linkerd.io/", "timeout.linkerd.io/", "balancer.linkerd.io/", "balancer.alpha.linkerd.io/")


def _name(o: Obj) -> str:
    return f"{o['kind']}/{o['metadata']['name']}"


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _pods(objs: list[Obj]) -> list[tuple[Obj, Obj]]:
    return list(pod_specs(objs))


def _selected(objs: list[Obj], selector: dict[str, str]) -> list[tuple[Obj, Obj]]:
    return [(w, t) for w, t in _pods(objs) if _matches(selector, t["metadata"].get("labels", {}))]


def _container_ports(template: Obj) -> dict[str | int, int]:
    ports: dict[str | int, int] = {}
    for c in template["spec"]["containers"]:
        for p in c.get("ports", []):
            ports[p["containerPort"]] = p["containerPort"]
            if "name" in p:
                ports[p["name"]] = p["containerPort"]
    return ports


def check_names(objs: list[Obj]) -> list[str]:
    out = []
    seen: set[tuple[str, str]] = set()
    for o in objs:
        name = o["metadata"]["name"]
        label_kinds = {"Service", "Deployment", "CronJob"}
        rule = DNS1123_LABEL if o["kind"] in label_kinds else DNS1123_SUBDOMAIN
        limit = 52 if o["kind"] == "CronJob" else (63 if o["kind"] in label_kinds else 253)
        if not rule.match(name) or len(name) > limit:
            out.append(f"{_name(o)}: not a valid {o['kind']} name (DNS-1123, at most {limit})")
        key = (o["kind"], name)
        if key in seen:
            out.append(f"{_name(o)}: rendered twice")
        seen.add(key)
    return out


def check_selectors(objs: list[Obj]) -> list[str]:
    out = []
    for w, t in _pods(objs):
        if w["kind"] == "Deployment":
            sel = w["spec"]["selector"]["matchLabels"]
            if not _matches(sel, t["metadata"]["labels"]):
                out.append(f"{_name(w)}: selector {sel} does not match its pod labels")
            others = [x for x, _ in _selected(objs, sel) if x is not w]
            if others:
                out.append(f"{_name(w)}: its selector also selects {[_name(x) for x in others]}")
        sa = t["spec"].get("serviceAccountName")
        if sa and sa not in {o["metadata"]["name"] for o in objs if o["kind"] == "ServiceAccount"}:
            out.append(f"{_name(w)}: serviceAccountName {sa} is not rendered")
    for o in objs:
        if o["kind"] == "Service" and not _selected(objs, o["spec"].get("selector", {})):
            out.append(f"{_name(o)}: selects no pods")
        if o["kind"] == "PodDisruptionBudget" and not _selected(objs, o["spec"]["selector"]["matchLabels"]):
            out.append(f"{_name(o)}: selects no pods")
        if o["kind"] == "Server" and not _selected(objs, o["spec"]["podSelector"]["matchLabels"]):
            out.append(f"{_name(o)}: selects no pods")
        if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject"):
            ref = o["spec"]["scaleTargetRef"]["name"]
            if ref not in {w["metadata"]["name"] for w in objs if w["kind"] == "Deployment"}:
                out.append(f"{_name(o)}: scaleTargetRef {ref} is not a rendered Deployment")
        if o["kind"] == "Canary" and o["spec"]["targetRef"]["name"] not in {
                w["metadata"]["name"] for w in objs if w["kind"] == "Deployment"}:
            out.append(f"{_name(o)}: targetRef is not a rendered Deployment")
        if o["kind"] == "Canary":
            templates = {m["metadata"]["name"] for m in objs if m["kind"] == "MetricTemplate"}
            for metric in o["spec"]["analysis"].get("metrics", []):
                ref = metric.get("templateRef", {}).get("name")
                if ref is not None and ref not in templates:
                    out.append(f"{_name(o)}: metric {metric['name']} uses MetricTemplate {ref}, not rendered")
    return out


def check_ports(objs: list[Obj]) -> list[str]:
    out = []
    for w, t in _pods(objs):
        ports = _container_ports(t)
        for c in t["spec"]["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                p = c.get(probe, {}).get("httpGet")
                if p is not None and p["port"] not in ports:
                    out.append(f"{_name(w)}: {probe} port {p['port']!r} is not a container port")
    for o in objs:
        if o["kind"] == "Service":
            for sp in o["spec"]["ports"]:
                for w, t in _selected(objs, o["spec"]["selector"]):
                    if sp["targetPort"] not in _container_ports(t):
                        out.append(f"{_name(o)}: targetPort {sp['targetPort']!r} not on {_name(w)}")
        if o["kind"] == "Server":
            for w, t in _selected(objs, o["spec"]["podSelector"]["matchLabels"]):
                if o["spec"]["port"] not in _container_ports(t):
                    out.append(f"{_name(o)}: port {o['spec']['port']!r} not on {_name(w)}")
        if o["kind"] == "Ingress":
            for rule in o["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    svc = path["backend"]["service"]
                    if not _service_port(objs, svc["name"], svc["port"].get("name") or svc["port"].get("number")):
                        out.append(f"{_name(o)}: backend {svc} is not a rendered Service port")
    return out


def _service_port(objs: list[Obj], name: str, port: Any) -> bool:
    for o in objs:
        if o["kind"] == "Service" and o["metadata"]["name"] == name:
            return any(port in (p["port"], p.get("name")) for p in o["spec"]["ports"])
    return False


def check_httproutes(objs: list[Obj]) -> list[str]:
    out = []
    for o in objs:
        if o["kind"] != "HTTPRoute":
            continue
        for ref in o["spec"]["parentRefs"]:
            if ref.get("kind") != "Service" or not _service_port(objs, ref["name"], ref.get("port")):
                out.append(f"{_name(o)}: parentRef {ref} is not a rendered Service port")
        for rule in o["spec"]["rules"]:
            refs = rule.get("backendRefs", [])
            for ref in refs:
                if not _service_port(objs, ref["name"], ref["port"]):
                    out.append(f"{_name(o)}: backendRef {ref['name']}:{ref['port']} is not a rendered Service port")
            total = sum(r.get("weight", 1) for r in refs)
            if total != 100:
                out.append(f"{_name(o)}: backend weights sum to {total}, not 100")
    return out


def check_authorization(objs: list[Obj]) -> list[str]:
    out = []
    servers = {o["metadata"]["name"] for o in objs if o["kind"] == "Server"}
    authns = {o["metadata"]["name"]: o for o in objs if o["kind"] == "MeshTLSAuthentication"}
    sas = {o["metadata"]["name"] for o in objs if o["kind"] == "ServiceAccount"}
    gateway_sas = {t["spec"]["serviceAccountName"] for w, t in _pods(objs)
                   if t["metadata"]["labels"].get("app.kubernetes.io/component") == "gateway"}
    covered: set[str] = set()
    for o in objs:
        if o["kind"] != "AuthorizationPolicy":
            continue
        target = o["spec"]["targetRef"]
        if target["kind"] != "Server" or target["name"] not in servers:
            out.append(f"{_name(o)}: targetRef {target} is not a rendered Server")
        covered.add(target["name"])
        for ref in o["spec"]["requiredAuthenticationRefs"]:
            authn = authns.get(ref["name"])
            if ref["kind"] != "MeshTLSAuthentication" or authn is None:
                out.append(f"{_name(o)}: {ref} is not a rendered MeshTLSAuthentication")
                continue
            local = {r["name"] for r in authn["spec"].get("identityRefs", []) if "namespace" not in r}
            if local != gateway_sas:
                out.append(f"{_name(o)}: in-namespace identities {sorted(local)} are not exactly the gateway's "
                           f"ServiceAccounts {sorted(gateway_sas)}")
            if not local <= sas:
                out.append(f"{_name(o)}: identities {sorted(local - sas)} are not rendered ServiceAccounts")
            if authn["spec"].get("identities"):
                out.append(f"{_name(o)}: raw identity strings {authn['spec']['identities']} (use identityRefs)")
    for s in servers - covered:
        out.append(f"Server/{s}: no AuthorizationPolicy (its port would refuse everyone, probes aside)")
    return out


def check_single_autoscaler(objs: list[Obj]) -> list[str]:
    hpa = {o["spec"]["scaleTargetRef"]["name"] for o in objs if o["kind"] == "HorizontalPodAutoscaler"}
    keda = {o["spec"]["scaleTargetRef"]["name"] for o in objs if o["kind"] == "ScaledObject"}
    return [f"Deployment/{n}: scaled by an HPA and a KEDA ScaledObject" for n in sorted(hpa & keda)]


def _min_replicas(objs: list[Obj], deployment: Obj) -> int:
    name = deployment["metadata"]["name"]
    for o in objs:
        if o["kind"] == "HorizontalPodAutoscaler" and o["spec"]["scaleTargetRef"]["name"] == name:
            return int(o["spec"].get("minReplicas", 1))
        if o["kind"] == "ScaledObject" and o["spec"]["scaleTargetRef"]["name"] == name:
            return int(o["spec"].get("minReplicaCount", 0))
    return int(deployment["spec"].get("replicas", 1))


def check_pdbs(objs: list[Obj]) -> list[str]:
    out = []
    for o in objs:
        if o["kind"] != "PodDisruptionBudget":
            continue
        spec = o["spec"]
        for w, _ in _selected(objs, spec["selector"]["matchLabels"]):
            least = _min_replicas(objs, w)
            if "minAvailable" in spec and int(spec["minAvailable"]) >= least:
                out.append(f"{_name(o)}: minAvailable {spec['minAvailable']} leaves no pod of {_name(w)} "
                           f"(at least {least}) free to drain")
            if "maxUnavailable" in spec and int(spec["maxUnavailable"]) < 1:
                out.append(f"{_name(o)}: maxUnavailable {spec['maxUnavailable']} blocks every drain")
    return out


def check_linkerd_annotations(objs: list[Obj]) -> list[str]:
    out = []
    if not KNOWN_LINKERD:
        return ["../shared/k8s/linkerd_known_annotations.txt is missing"]

    def walk(where: str, kind: str, annotations: dict[str, str]) -> None:
        for key in annotations:
            if "linkerd.io/" not in key:
                continue
            if key not in KNOWN_LINKERD:
                out.append(f"{where}: {key} is not an annotation Linkerd reads")
            elif key.startswith(ROUTE_PREFIXES) and kind not in ("Service", "HTTPRoute"):
                out.append(f"{where}: {key} belongs on a Service or HTTPRoute, not a {kind}")
            elif key.startswith("config.") and kind not in ("Pod", "Namespace"):
                out.append(f"{where}: {key} is read from pods (or the namespace), not a {kind}")

    for o in objs:
        walk(_name(o), o["kind"], o["metadata"].get("annotations") or {})
    for w, t in _pods(objs):
        walk(f"{_name(w)} pod template", "Pod", t["metadata"].get("annotations") or {})
    return out


def check_cronjobs(objs: list[Obj]) -> list[str]:
    from zoneinfo import ZoneInfo

    from croniter import croniter

    out = []
    for o in objs:
        if o["kind"] != "CronJob":
            continue
        if not croniter.is_valid(o["spec"]["schedule"]) or len(o["spec"]["schedule"].split()) != 5:
            out.append(f"{_name(o)}: schedule {o['spec']['schedule']!r} is not a 5-field cron expression")
        tz = o["spec"].get("timeZone")
        if tz:
            try:
                ZoneInfo(tz)
            except Exception:
                out.append(f"{_name(o)}: timeZone {tz!r} is not a tz database name")
    return out


def check_security(objs: list[Obj]) -> list[str]:
    out = []
    for w, t in _pods(objs):
        pod = t["spec"].get("securityContext", {})
        if not pod.get("runAsNonRoot"):
            out.append(f"{_name(w)}: pod is not runAsNonRoot")
        for c in t["spec"]["containers"]:
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation", True):
                out.append(f"{_name(w)}/{c['name']}: root filesystem writable or privilege escalation allowed")
            if "resources" not in c or "requests" not in c["resources"]:
                out.append(f"{_name(w)}/{c['name']}: no resource requests")
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            if c["name"] != "pause" and "/tmp" not in mounts:
                out.append(f"{_name(w)}/{c['name']}: read-only root and no writable /tmp")
    return out


def _cpu(q: Any) -> float:
    s = str(q)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


def _mem(q: Any) -> float:
    s = str(q)
    for suffix, mult in (("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("Ti", 2**40)):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * mult
    return float(s)


def pod_requests(template: Obj) -> tuple[float, float]:
    """CPU cores and memory bytes one pod requests, the Linkerd proxy's included."""
    cpu = mem = 0.0
    for c in template["spec"]["containers"]:
        req = c.get("resources", {}).get("requests", {})
        cpu += _cpu(req.get("cpu", 0))
        mem += _mem(req.get("memory", 0))
    ann = template["metadata"].get("annotations") or {}
    if ann.get("linkerd.io/inject") == "enabled":
        cpu += _cpu(ann.get("config.linkerd.io/proxy-cpu-request", 0))
        mem += _mem(ann.get("config.linkerd.io/proxy-memory-request", 0))
    return cpu, mem


def fits_nodes(objs: list[Obj], node_cpu: float, node_mem: float, count: int) -> list[str]:
    """First-fit-decreasing: the minimum replicas of every Deployment onto ``count`` nodes."""
    pods = []
    for w, t in _pods(objs):
        if w["kind"] == "Deployment":
            pods += [(_name(w), *pod_requests(t))] * max(1, _min_replicas(objs, w))
    nodes = [[node_cpu, node_mem] for _ in range(count)]
    out = []
    for name, cpu, mem in sorted(pods, key=lambda p: -p[1]):
        for n in nodes:
            if n[0] >= cpu - 1e-9 and n[1] >= mem:
                n[0] -= cpu
                n[1] -= mem
                break
        else:
            out.append(f"{name}: {cpu:g} CPU / {mem / 2**30:.2f} GiB does not fit on {count} nodes of "
                       f"{node_cpu:g} CPU / {node_mem / 2**30:g} GiB")
    return out


def check_commands(objs: list[Obj]) -> list[str]:
    """Every container's arguments parse with voxmesh's own CLI (runners: their module exists)."""
    import contextlib
    import importlib
    import io

    from voxmesh.cli import build_parser

    out = []
    for w, t in _pods(objs):
        for c in t["spec"]["containers"]:
            if c["name"] == "pause":
                continue
            if c.get("command"):
                module = c["command"][-1]
                try:
                    importlib.import_module(module)
                except ImportError:
                    out.append(f"{_name(w)}/{c['name']}: command module {module} does not exist")
                continue
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err):
                    build_parser().parse_args(c["args"])
            except SystemExit:
                out.append(f"{_name(w)}/{c['name']}: voxmesh rejects {c['args']}: {err.getvalue().strip()[-200:]}")
    return out


def check_gateway_config(objs: list[Obj]) -> list[str]:
    """The gateway's deployments file is one `voxmesh up` accepts, and its URLs reach Services."""
    from voxmesh.deployments import DeploymentsConfig
    from voxmesh.settings import Settings

    out = []
    flagger = {o["spec"]["targetRef"]["name"] for o in objs if o["kind"] == "Canary"}
    for o in objs:
        if o["kind"] != "ConfigMap" or "gateway.yaml" not in o.get("data", {}):
            continue
        data = yaml.safe_load(o["data"]["gateway.yaml"])
        try:
            cfg = DeploymentsConfig.model_validate(data)
            Settings(**cfg.settings)
        except ValueError as exc:
            out.append(f"{_name(o)}: gateway.yaml is not a valid deployments file: {exc}")
            continue
        for d in cfg.deployments:
            assert d.external is not None
            for url in d.external.urls:
                m = re.match(r"^http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)$", url)
                if m is None or m.group(2) != NAMESPACE:
                    continue  # outside the release (an external model server)
                if not (_service_port(objs, m.group(1), int(m.group(3))) or m.group(1) in flagger):
                    out.append(f"{_name(o)}: {d.name} -> {url} is not a rendered Service port")
        config = yaml.safe_load(o["data"].get("config.yaml", "{}"))
        try:
            Settings(**config.get("settings", {}))
        except ValueError as exc:
            out.append(f"{_name(o)}: config.yaml settings are invalid: {exc}")
    return out


CHECKS: dict[str, Callable[[list[Obj]], list[str]]] = {
    "names": check_names,
    "selectors": check_selectors,
    "ports": check_ports,
    "httproutes": check_httproutes,
    "authorization": check_authorization,
    "single_autoscaler": check_single_autoscaler,
    "pdbs": check_pdbs,
    "linkerd_annotations": check_linkerd_annotations,
    "cronjobs": check_cronjobs,
    "security": check_security,
    "commands": check_commands,
    "gateway_config": check_gateway_config,
}


def run_checks(objs: list[Obj], names: Iterable[str] = CHECKS) -> list[str]:
    return [p for n in names for p in CHECKS[n](objs)]


def values_file_node(chart: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((chart / "values.yaml").read_text())["nodeSize"])
