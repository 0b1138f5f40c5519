"""Every route both gateway servers serve has an explicit entry in the scope table."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from voxmesh.auth import scopes
from voxmesh.auth.routes import setup_admin_routes
from voxmesh.auth.scopes import ADMIN, AUTHENTICATED, METRICS, PUBLIC, ROUTES, SIGNED, scope_for
from voxmesh.gateway.app import Catalog, Gateway, build_gateway_app
from voxmesh.gateway.fastpath.routes import HotRoutes
from voxmesh.jobs.routes import setup_job_routes
from voxmesh.settings import Settings


class _Plane:
    def set_split(self, model: str, weights: dict[str, float]) -> None:
        pass


class _Service:
    settings = Settings()


def _app() -> web.Application:
    gw = Gateway(Settings(), _Plane(), Catalog())
    return build_gateway_app(gw, setup=[lambda app: setup_job_routes(app, _Service()),  # type: ignore[arg-type]
                                        lambda app: setup_admin_routes(app, None)])  # type: ignore[arg-type]


def _app_routes() -> set[tuple[str, str]]:
    out = set()
    for route in _app().router.routes():
        if route.method == "HEAD":
            continue  # add_get's HEAD twin: GET's scope
        assert route.resource is not None
        out.add((route.method, route.resource.canonical))
    return out


def test_every_aiohttp_route_has_an_entry() -> None:
    routes = _app_routes()
    assert len(routes) > 20
    missing = sorted(r for r in routes if r not in ROUTES)
    assert not missing, f"add these routes to voxmesh.auth.scopes.ROUTES: {missing}"


def test_every_fast_path_hot_route_has_an_entry_equal_to_the_apps() -> None:
    hot = HotRoutes(Catalog(), None, None, 0)  # type: ignore[arg-type]
    assert hot.routes
    for method, path in hot.routes:
        assert (method, path) in ROUTES, f"hot route {method} {path} has no scope"
    app_routes = _app_routes()
    assert set(hot.routes) <= app_routes  # the same route, the same scope, whichever server answers


def test_scope_of_each_kind_of_route() -> None:
    assert scope_for("GET", "/healthz") == PUBLIC
    assert scope_for("HEAD", "/healthz") == PUBLIC
    assert scope_for("GET", "/openapi.json") == PUBLIC
    assert scope_for("GET", "/docs/assets/{name}") == PUBLIC
    assert scope_for("GET", "/dashboard/{path}") == METRICS
    assert scope_for("GET", "/dashboard/panels/{file}") == METRICS
    assert scope_for("GET", "/v1/objects/{key}") == SIGNED
    assert scope_for("POST", "/v1/audio/speech") == "tts:speak"
    assert scope_for("GET", "/languages") == "mt:translate"
    assert scope_for("DELETE", "/v1/jobs/{id}") == "jobs:write"
    assert scope_for("GET", "/v1/jobs/{id}/result") == "jobs:read"
    assert scope_for("DELETE", "/v1/audio/voices/{voice_id}") == "voices:write"
    assert scope_for("GET", "/v1/usage") == AUTHENTICATED
    assert scope_for("PUT", "/admin/splits/{model}") == ADMIN


def test_unknown_routes_fail_closed() -> None:
    assert scope_for("GET", None) == AUTHENTICATED  # no route: a 404 only for a caller with a credential
    assert scope_for("POST", "/v1/something-new") == ADMIN  # a route someone forgot to declare
    assert scope_for("PUT", "/v1/audio/speech") == AUTHENTICATED  # known path, wrong method: 405 to be


@pytest.mark.parametrize("value,expected", [
    ("tts:speak  mt:translate", {"tts:speak", "mt:translate"}),
    (["jobs:read", "jobs:write admin"], {"jobs:read", "jobs:write", "admin"}),
    (None, set()), (42, set()),
])  # fmt: skip
def test_parse_scopes(value: object, expected: set[str]) -> None:
    assert scopes.parse_scopes(value) == expected


def test_readme_lists_every_scope() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    for scope in sorted(scopes.ALL_SCOPES):
        assert f"`{scope}`" in readme, scope
