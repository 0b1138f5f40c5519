"""A gateway and two workers on three "hosts": network namespaces joined by a bridge.

Topology (all created here, deleted in ``finally``; nothing touches the root namespace)::

    ns gw:  br0 10.X.Y.1/24 ── veth ── ns a: eth0 10.X.Y.2/24
                           └── veth ── ns b: eth0 10.X.Y.3/24

The gateway side mints two one-time tokens (CLI process), serves the join API; each worker
process joins with its token over the bridge, then serves mTLS. The gateway identity reaches
both; worker b's identity is refused by worker a; a reused token is refused.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

PY = sys.executable


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def _in(ns: str, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, PY, "-m", "voxmesh.mesh", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _start(ns: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, PY, "-m", "voxmesh.mesh", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_ready(proc: subprocess.Popen[str], timeout: float = 25.0) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=0.2):
            line = proc.stdout.readline()
            if line.startswith("READY "):
                return line.split()[1]
            if not line and proc.poll() is not None:
                break
    proc.kill()
    _, err = proc.communicate(timeout=5)
    raise AssertionError(f"process did not become ready: {err[-2000:]}")


@pytest.fixture
def namespaces() -> Iterator[tuple[list[str], str]]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to create network namespaces")
    tag = secrets.token_hex(3)
    names = [f"vxm-{role}-{tag}" for role in ("gw", "a", "b")]
    prefix = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
    created: list[str] = []
    try:
        for ns in names:
            try:
                _ip("netns", "add", ns)
            except subprocess.CalledProcessError as exc:
                pytest.skip(f"`ip netns add` is not permitted here: {exc.stderr.strip()}")
            created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        gw = names[0]
        _ip("-n", gw, "link", "add", "br0", "type", "bridge")
        _ip("-n", gw, "addr", "add", f"{prefix}.1/24", "dev", "br0")
        _ip("-n", gw, "link", "set", "br0", "up")
        for i, ns in enumerate(names[1:]):
            _ip("-n", gw, "link", "add", f"vg{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", gw, "link", "set", f"vg{i}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{prefix}.{i + 2}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        yield names, prefix
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def test_gateway_and_two_workers_join_and_talk_mtls_across_namespaces(
    namespaces: tuple[list[str], str], tmp_path: Path
) -> None:
    (gw, ns_a, ns_b), prefix = namespaces
    gw_ip, ip_a, ip_b = f"{prefix}.1", f"{prefix}.2", f"{prefix}.3"
    data = tmp_path / "gateway"
    started = time.monotonic()

    out = _in(gw, "token", "--data-dir", str(data), "--name", "worker-a", "--name", "worker-b")
    assert out.returncode == 0, out.stderr
    tokens = {t["name"]: t for t in map(json.loads, out.stdout.splitlines())}

    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(_start(gw, "serve-join", "--data-dir", str(data), "--host", gw_ip, "--port", "8443"))
        gateway_url = _wait_ready(procs[-1])
        assert gateway_url == f"https://{gw_ip}:8443"

        workers = {}
        for ns, ip, name in ((ns_a, ip_a, "worker-a"), (ns_b, ip_b, "worker-b")):
            tok = tokens[name]
            workers[name] = _start(
                ns, "worker", "--gateway-url", gateway_url, "--token", tok["token"],
                "--ca-fingerprint", tok["fingerprint"], "--name", name,
                "--key-dir", str(tmp_path / name), "--host", ip, "--port", "9443",
            )  # fmt: skip
            procs.append(workers[name])
        urls = {name: _wait_ready(proc) + "/whoami" for name, proc in workers.items()}
        assert urls == {"worker-a": f"https://{ip_a}:9443/whoami", "worker-b": f"https://{ip_b}:9443/whoami"}

        # run the three checks side by side (each is a fresh process: ~2 s of imports here)
        gateway_call = _start(
            gw, "call", "--data-dir", str(data),
            "--url", urls["worker-a"], "--expect", "worker-a", "--url", urls["worker-b"], "--expect", "worker-b",
        )  # fmt: skip
        impostor_call = _start(
            ns_b, "call", "--key-dir", str(tmp_path / "worker-b"), "--url", urls["worker-a"], "--expect", "worker-a"
        )
        tok = tokens["worker-a"]
        reused = _start(
            ns_b, "join", "--gateway-url", gateway_url, "--token", tok["token"],
            "--ca-fingerprint", tok["fingerprint"], "--name", "worker-a", "--key-dir", str(tmp_path / "again"),
        )  # fmt: skip
        procs += [gateway_call, impostor_call, reused]
        results = {n: (p, *p.communicate(timeout=30)) for n, p in
                   (("gateway", gateway_call), ("impostor", impostor_call), ("reused", reused))}  # fmt: skip

        # the gateway reaches both workers over mTLS, and each sees the gateway identity
        proc, stdout, stderr = results["gateway"]
        assert proc.returncode == 0, (stdout, stderr)
        answers = [json.loads(line) for line in stdout.splitlines()]
        assert [a["body"] for a in answers] == [
            {"server": f"spiffe://voxmesh.local/ns/default/sa/{name}", "peer": "spiffe://voxmesh.local/ns/default/sa/gateway"}
            for name in ("worker-a", "worker-b")
        ]

        # worker b holds a valid certificate of the same mesh, but it is not the gateway
        proc, _, stderr = results["impostor"]
        assert proc.returncode == 1 and ("Server disconnected" in stderr or "reset" in stderr), stderr
        worker_a = workers["worker-a"]
        worker_a.terminate()
        _, worker_a_log = worker_a.communicate(timeout=10)
        assert "sa/worker-b is not allowed here" in worker_a_log, worker_a_log

        # a token works once
        proc, _, stderr = results["reused"]
        assert proc.returncode == 1 and "already used" in stderr, stderr
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None and not stream.closed:
                    stream.close()
    assert time.monotonic() - started < 60
