"""The documented bodies agree with what the handlers use."""

from __future__ import annotations

import dataclasses

from voxmesh.api.bodies import CanaryStart
from voxmesh.gateway.canary import CanaryConfig


def test_the_canary_body_documents_canary_config_field_for_field() -> None:
    """``POST /admin/canaries`` hands all but model/primary/canary to ``CanaryConfig(**rest)``:
    the document names the same fields, with the dataclass's defaults and types."""
    default = CanaryConfig()
    tuning = {f.name: getattr(default, f.name) for f in dataclasses.fields(CanaryConfig)}
    schema = CanaryStart.model_json_schema()
    props = schema["properties"]
    assert set(props) == {"model", "primary", "canary", *tuning}
    assert sorted(schema["required"]) == ["canary", "model", "primary"]
    assert {name: props[name]["default"] for name in tuning} == tuning
    json_type = {int: "integer", float: "number"}
    assert {name: props[name]["type"] for name in tuning} == {n: json_type[type(v)] for n, v in tuning.items()}
    body = CanaryStart.model_validate({"model": "voice", "primary": "v1", "canary": "v2"}).model_dump()
    assert CanaryConfig(**{name: body[name] for name in tuning}) == default
