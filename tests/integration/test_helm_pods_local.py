"""The rendered pods' own commands, run here: the gateway and a worker start from the exact
container arguments, environment and config files the chart renders (only what a pod gets
from the cluster is swapped: file paths of the mounted ConfigMap, the listen address, ports,
the Service URL -> the worker's loopback URL). Their probes answer as the kubelet expects and
a speech request goes through the gateway to the worker. No image or cluster is involved:
this is the part of "does the pod start" that does not need one."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.helm_kit import Obj, objects, parse, render

pytestmark = pytest.mark.slow

VALUES = {
    "workers": {"deployments": [{"name": "tone", "engine": "tone", "options": {"ms_per_char": 5}, "threads": 1,
                                 "replicas": {"min": 1, "max": 1}}]},
    "aliases": {"tts-1": "tone", "tts-1-hd": None},
}
SERVICE_URL = "http://vm-voxmesh-tone.voxmesh.svc.cluster.local:8000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _container(objs: list[Obj], name: str) -> dict[str, Any]:
    dep = next(o for o in objects(objs, "Deployment") if o["metadata"]["name"] == name)
    return dict(dep["spec"]["template"]["spec"]["containers"][0])


def _args(container: dict[str, Any], files: dict[str, Path], port: int) -> list[str]:
    out = []
    args = list(container["args"])
    for i, a in enumerate(args):
        if a in files:
            a = str(files[a])
        elif a == "0.0.0.0":
            a = "127.0.0.1"
        elif i > 0 and args[i - 1] == "--port":
            a = str(port)
        out.append(a)
    return out


def _wait_200(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s")


@contextlib.contextmanager
def run(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "voxmesh", *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_rendered_gateway_and_worker_start_probe_and_serve(tmp_path: Path) -> None:
    objs = parse(render(VALUES))
    (cm,) = [o for o in objects(objs, "ConfigMap") if o["metadata"]["name"] == "vm-voxmesh-config"]
    wport, gport = _free_port(), _free_port()
    files = {}
    for key, text in cm["data"].items():
        data = yaml.safe_load(text)
        data["settings"]["data_dir"] = str(tmp_path / f"data-{key}")
        body = yaml.safe_dump(data).replace(SERVICE_URL, f"http://127.0.0.1:{wport}")
        (tmp_path / key).write_text(body)
        files[f"/etc/voxmesh/{key}"] = tmp_path / key
    assert SERVICE_URL in cm["data"]["gateway.yaml"]

    base = {k: v for k, v in os.environ.items() if not k.startswith("VOXMESH_")}
    worker = _container(objs, "vm-voxmesh-tone")
    gateway = _container(objs, "vm-voxmesh-gateway")
    env_w = base | {e["name"]: e["value"] for e in worker.get("env", [])} | {"HOME": str(tmp_path)}
    env_g = base | {e["name"]: e["value"] for e in gateway.get("env", [])} | {"HOME": str(tmp_path)}
    assert env_g["VOXMESH_GATEWAY__MESH"] == "linkerd"

    with run(_args(worker, files, wport), env_w, tmp_path / "worker.log") as wp:
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            _wait_200(f"http://127.0.0.1:{wport}{worker[probe]['httpGet']['path']}", wp, 60)
        with run(_args(gateway, files, gport), env_g, tmp_path / "gateway.log") as gp:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                _wait_200(f"http://127.0.0.1:{gport}{gateway[probe]['httpGet']['path']}", gp, 60)
            req = urllib.request.Request(
                f"http://127.0.0.1:{gport}/v1/audio/speech", method="POST",
                data=b'{"model": "tts-1", "input": "From one machine to a cluster.", "voice": "low", '
                     b'"response_format": "pcm"}',
                headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    status, audio = r.status, r.read()
            except urllib.error.HTTPError as exc:
                raise AssertionError(f"{exc.code}: {exc.read()[:300]!r}\n{(tmp_path / 'gateway.log').read_text()[-2000:]}") from exc
            with urllib.request.urlopen(f"http://127.0.0.1:{wport}/metrics", timeout=5) as r:
                metrics = r.read().decode()
    assert status == 200 and len(audio) > 1000
    # the series the rendered ScaledObject queries, labelled with the deployment's name
    assert 'voxmesh_worker_requests_total{model="tone",code="200"} 1' in metrics
