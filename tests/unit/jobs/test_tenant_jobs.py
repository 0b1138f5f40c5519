"""Jobs belong to their tenant: reads, listings, cancel, results and the chunk cache."""

from __future__ import annotations

import pytest

from voxmesh.errors import NotFound

from .conftest import Stack


async def test_jobs_are_scoped_to_their_tenant(stack: Stack) -> None:
    a = await stack.service.create(text="Shared words here.", voice="v", model="m", tenant="acme")
    b = await stack.service.create(text="Shared words here.", voice="v", model="m", tenant="globex")
    await stack.drain()
    assert (await stack.service.get(a.id, "acme")).state == "succeeded"
    for call in (stack.service.get, stack.service.cancel, stack.service.result, stack.service.result_url,
                 stack.service.chapters):
        with pytest.raises(NotFound):
            await call(b.id, "acme")  # type: ignore[operator]
    assert [j.id for j in (await stack.service.list(tenant="acme"))[0]] == [a.id]
    assert {j.id for j in (await stack.service.list())[0]} == {a.id, b.id}  # no tenant: operators, runners
    keys_a = [c.cache_key for c in await stack.db.job_chunks(a.id)]
    keys_b = [c.cache_key for c in await stack.db.job_chunks(b.id)]
    assert keys_a != keys_b  # the same text is not shared across tenants
    again = await stack.service.create(text="Shared words here.", voice="v", model="m", tenant="acme")
    assert [c.cache_key for c in await stack.db.job_chunks(again.id)] == keys_a  # but reused within one
