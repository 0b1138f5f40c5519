"""Validate custom resources as the API server would, from the upstream CRD files.

``../shared/k8s/crds`` (pinned upstream commits, see its README) is read in place, never
copied. For each served version of each CRD:

* the ``openAPIV3Schema`` becomes a strict JSON Schema: ``x-kubernetes-int-or-string`` ->
  integer or string, ``nullable`` -> also null, and every object that lists ``properties``
  rejects unknown fields unless ``x-kubernetes-preserve-unknown-fields`` (the API server
  prunes or, with strict field validation, rejects them);
* schema defaults are applied (the API server defaults before it validates);
* every ``x-kubernetes-validations`` CEL rule is evaluated with cel-python on the defaulted
  object. Rules that use Kubernetes-only CEL libraries (``isURL``, ``quantity``, ...) or
  ``oldSelf`` (transition rules, updates only) cannot run here and are counted as skipped.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = ["CelReport", "CrdSet", "load_crds", "to_json_schema"]

_DROP = {"description", "format", "default", "example", "externalDocs"}


def to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in _DROP or key == "nullable":
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = value if isinstance(value, bool) else to_json_schema(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [to_json_schema(v) for v in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


@dataclass
class CelReport:
    passed: int = 0
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill schema defaults into ``value`` (a copy), as the API server's defaulting does."""
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for k in list(value):
                if k not in (schema.get("properties") or {}):
                    value[k] = apply_defaults(extra, value[k])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], v) for v in value]
    return value


@functools.cache
def _cel_env() -> Any:
    import celpy

    return celpy.Environment()


def _walk_rules(schema: dict[str, Any], value: Any, path: str) -> Iterator[tuple[str, str, str, Any]]:
    for rule in schema.get("x-kubernetes-validations") or []:
        yield path, rule["rule"], rule.get("message", ""), value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name, sub in props.items():
            if name in value:
                yield from _walk_rules(sub, value[name], f"{path}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for k, v in value.items():
                if k not in props:
                    yield from _walk_rules(extra, v, f"{path}[{k}]")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            yield from _walk_rules(schema["items"], v, f"{path}[{i}]")


def evaluate_cel(schema: dict[str, Any], obj: Any) -> CelReport:
    import celpy
    from celpy.adapter import json_to_cel

    report = CelReport()
    env = _cel_env()
    for path, rule, message, value in _walk_rules(schema, obj, ""):
        if "oldSelf" in rule:
            report.skipped.append(f"{path}: transition rule {rule!r}")
            continue
        try:
            program = env.program(env.compile(rule))
            result = program.evaluate({"self": json_to_cel(value)})
        except Exception as exc:  # a Kubernetes-only CEL library function, or a construct cel-python lacks
            report.skipped.append(f"{path}: {rule!r}: {type(exc).__name__}")
            continue
        if isinstance(result, celpy.CELEvalError):
            report.skipped.append(f"{path}: {rule!r}: {result}")
        elif bool(result):
            report.passed += 1
        else:
            report.failed.append(f"{path or '.'}: {message or rule}")
    return report


class CrdSet:
    """(apiVersion, kind) -> the CRD version's raw openAPIV3Schema."""

    def __init__(self, schemas: dict[tuple[str, str], dict[str, Any]], sources: dict[tuple[str, str], str]) -> None:
        self.schemas = schemas
        self.sources = sources

    def covers(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) in self.schemas

    @functools.cache  # noqa: B019 - one CrdSet per session
    def _validator(self, api_version: str, kind: str) -> jsonschema.Draft7Validator:
        schema = to_json_schema(self.schemas[(api_version, kind)])
        # the API server always accepts the root's type and object metadata (it checks
        # metadata itself); Linkerd's schemas list only `spec`
        props = schema.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
        return jsonschema.Draft7Validator(schema)

    def errors(self, obj: dict[str, Any]) -> list[str]:
        """Structural errors, then CEL rule failures, of one custom resource (empty: valid)."""
        key = (obj["apiVersion"], obj["kind"])
        raw = self.schemas[key]
        defaulted = apply_defaults(raw, copy.deepcopy(obj))
        errs = [f"{'.'.join(str(p) for p in e.absolute_path) or '.'}: {e.message}"
                for e in self._validator(*key).iter_errors(defaulted)]
        if errs:
            return errs
        return evaluate_cel(raw, defaulted).failed

    def cel(self, obj: dict[str, Any]) -> CelReport:
        raw = self.schemas[(obj["apiVersion"], obj["kind"])]
        return evaluate_cel(raw, apply_defaults(raw, copy.deepcopy(obj)))


def load_crds(folder: Path) -> CrdSet:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    sources: dict[tuple[str, str], str] = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            group, kind = spec["group"], spec["names"]["kind"]
            for ver in spec["versions"]:
                if not ver.get("served", True):
                    continue
                key = (f"{group}/{ver['name']}", kind)
                if key in schemas:
                    continue  # the first file wins (gateway API's own file sorts before Linkerd's copy)
                schemas[key] = ver["schema"]["openAPIV3Schema"]
                sources[key] = path.name
    return CrdSet(schemas, sources)
