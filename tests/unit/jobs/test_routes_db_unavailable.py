"""The jobs API while its database restarts: a 503 with Retry-After (retry as is), not a 500
(found by benchmarks/chaos.py's pg-restart). A data or query mistake stays a 500."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from voxmesh.api.errors import error_middleware
from voxmesh.jobs.routes import setup_job_routes
from voxmesh.settings import Settings


class _Service:
    settings = Settings()

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def get(self, job_id: str, tenant: str | None = None) -> Any:
        raise self.exc


async def _get(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    app = web.Application(middlewares=[error_middleware])
    setup_job_routes(app, _Service(exc))  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/v1/jobs/abc")
        return resp.status, await resp.json(), dict(resp.headers)


async def test_a_restarting_database_is_a_503_with_retry_after() -> None:
    for exc in (OperationalError("SELECT", {}, Exception("the database system is starting up")),
                DBAPIError("SELECT", {}, Exception("connection was closed in the middle of operation")),
                ConnectionRefusedError(111, "Connect call failed")):
        status, body, headers = await _get(exc)
        assert status == 503, exc
        assert "jobs database is unavailable" in body["error"]["message"]
        assert headers["Retry-After"] == "2"


async def test_an_integrity_error_stays_a_500() -> None:
    status, _, _ = await _get(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert status == 500
