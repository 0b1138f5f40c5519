"""CLI for jobs, talking HTTP to the gateway (``--url``, default http://127.0.0.1:8080).

    voxmesh jobs submit book.epub --voice joe --model piper --format wav --out book.wav
    voxmesh jobs ls | status ID | cancel ID
    voxmesh batch DIR --voice joe --model piper [--out-dir DIR]

``submit`` shows a tqdm progress bar (chunks) by polling ``GET /v1/jobs/{id}`` and downloads
the result through its presigned URL. ``batch`` submits every .txt/.md/.epub in DIR, waits
for all, prints a summary and exits 1 if any job failed or could not be submitted (fit for a
Kubernetes CronJob). Uses only urllib: no event loop, no extra dependency.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

__all__ = ["ApiError", "JobsClient", "add_parser"]

_SUFFIXES = (".txt", ".md", ".markdown", ".epub")
_TERMINAL = ("succeeded", "failed", "cancelled")
_RETRYABLE = (0, 502, 503, 504)  # 0: no answer (connection refused, reset, timed out)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class JobsClient:
    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout_s

    def _req(self, method: str, path: str, body: bytes | None = None, ctype: str | None = None,
             extra: dict[str, str] | None = None) -> bytes:
        headers = {**self.headers, **(extra or {})}
        if ctype:
            headers["Content-Type"] = ctype
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                data: bytes = resp.read()
                return data
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = raw[:300].decode("utf-8", errors="replace") or exc.reason
            raise ApiError(exc.code, str(message)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(0, f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None

    def _json(self, method: str, path: str, body: bytes | None = None, ctype: str | None = None,
              extra: dict[str, str] | None = None) -> Any:
        return json.loads(self._req(method, path, body, ctype, extra))

    def submit_file(self, path: Path, fields: dict[str, str], *, attempts: int = 6, backoff_s: float = 1.0,
                    sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
        """Submit under a fresh ``Idempotency-Key``, retried while the gateway is unreachable or
        answers 502/503/504 (restarting, a database restart): a retry whose first try did reach
        the server gets that job back, never a second one. Backoff doubles from ``backoff_s``."""
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in fields.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + path.read_bytes()
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        key = {"Idempotency-Key": uuid.uuid4().hex}
        for attempt in range(attempts):
            try:
                result: dict[str, Any] = self._json("POST", "/v1/jobs", b"".join(parts),
                                                    f"multipart/form-data; boundary={boundary}", key)
                return result
            except ApiError as exc:
                if exc.status not in _RETRYABLE or attempt == attempts - 1:
                    raise
                sleep(backoff_s * 2 ** attempt)
        raise AssertionError("unreachable")

    def status(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/v1/jobs/{job_id}")
        return result

    def list(self, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        q = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        result: dict[str, Any] = self._json("GET", f"/v1/jobs{q}")
        return result

    def cancel(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("DELETE", f"/v1/jobs/{job_id}")
        return result

    def download(self, job_id: str) -> bytes:
        return self._req("GET", f"/v1/jobs/{job_id}/result")  # follows the 302 to the presigned URL

    def wait(self, job_id: str, *, poll_s: float = 1.0, progress: bool = False, timeout_s: float | None = None) -> dict[str, Any]:
        bar = None
        start = time.monotonic()
        try:
            while True:
                st = self.status(job_id)
                if progress:
                    if bar is None:
                        bar = tqdm(total=st["chunks_total"], unit="chunk", desc=job_id[:8], file=sys.stderr)
                    bar.n = st["chunks_done"]
                    bar.set_postfix(audio_s=f"{st['audio_seconds']:.0f}", eta_s=st["eta_s"], refresh=False)
                    bar.refresh()
                if st["state"] in _TERMINAL:
                    return st
                if timeout_s is not None and time.monotonic() - start > timeout_s:
                    raise ApiError(0, f"job {job_id} still {st['state']} after {timeout_s:.0f} s")
                time.sleep(poll_s)
        finally:
            if bar is not None:
                bar.close()


def _client(args: argparse.Namespace) -> JobsClient:
    return JobsClient(args.url, token=args.token)


def _fields(args: argparse.Namespace) -> dict[str, str]:
    fields = {"voice": args.voice, "model": args.model, "response_format": args.format}
    if getattr(args, "option", None):
        opts: dict[str, Any] = {}
        for item in args.option:
            key, _, value = item.partition("=")
            try:
                opts[key] = json.loads(value)
            except ValueError:
                opts[key] = value
        fields["options"] = json.dumps(opts)
    if getattr(args, "webhook_url", None):
        fields["webhook_url"] = args.webhook_url
    return fields


def _submit(args: argparse.Namespace) -> int:
    client = _client(args)
    job = client.submit_file(Path(args.file), _fields(args))
    print(f"job {job['id']}: {job['chunks_total']} chunks", file=sys.stderr)
    if args.no_wait:
        print(job["id"])
        return 0
    st = client.wait(job["id"], poll_s=args.poll, progress=not args.quiet)
    if st["state"] != "succeeded":
        print(f"job {job['id']} {st['state']}: {st.get('error') or ''}", file=sys.stderr)
        return 1
    out = Path(args.out or f"{Path(args.file).stem}.{args.format}")
    out.write_bytes(client.download(job["id"]))
    print(f"wrote {out} ({st['duration_s']:.1f} s of audio)", file=sys.stderr)
    return 0


def _ls(args: argparse.Namespace) -> int:
    page = _client(args).list(limit=args.limit)
    for j in page["data"]:
        print(f"{j['id']}  {j['state']:<9}  {j['chunks_done']:>5}/{j['chunks_total']:<5}  {j['source_name'] or ''}")
    return 0


def _status(args: argparse.Namespace) -> int:
    print(json.dumps(_client(args).status(args.id), indent=1))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    print(_client(args).cancel(args.id)["state"])
    return 0


def _batch(args: argparse.Namespace) -> int:
    client = _client(args)
    files = sorted(p for p in Path(args.dir).iterdir() if p.suffix.lower() in _SUFFIXES and p.is_file())
    if not files:
        print(f"batch: no .txt, .md or .epub files in {args.dir}", file=sys.stderr)
        return 1
    out_dir = Path(args.out_dir) if args.out_dir else None
    jobs: dict[str, Path] = {}
    results: list[tuple[Path, str, str]] = []
    for f in files:
        try:
            jobs[client.submit_file(f, _fields(args))["id"]] = f
        except ApiError as exc:
            results.append((f, "rejected", exc.message))
    for job_id, f in jobs.items():
        try:
            st = client.wait(job_id, poll_s=args.poll, timeout_s=args.timeout)
        except ApiError as exc:
            results.append((f, "error", exc.message))
            continue
        detail = st.get("error") or f"{st.get('duration_s') or 0:.1f} s audio, job {job_id}"
        if st["state"] == "succeeded" and out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{f.stem}.{args.format}").write_bytes(client.download(job_id))
        results.append((f, st["state"], detail))
    failed = [r for r in results if r[1] != "succeeded"]
    for f, state, detail in results:
        print(f"{state:<9}  {f.name}  {detail}")
    print(f"batch: {len(results) - len(failed)} succeeded, {len(failed)} failed, {len(results)} total")
    return 1 if failed else 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="http://127.0.0.1:8080", help="gateway URL")
    p.add_argument("--token", default=None, help="bearer token, if auth is enabled")


def _synth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--voice", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--format", default="wav", help="wav, pcm (mp3/opus/flac/aac where the server encodes them)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="extra synthesis option (repeatable)")
    p.add_argument("--webhook-url", default=None)
    p.add_argument("--poll", type=float, default=1.0, help="seconds between status polls")


def add_parser(subparsers: Any) -> None:
    """Register ``jobs`` and ``batch`` on the ``voxmesh`` command's subparsers."""
    jobs = subparsers.add_parser("jobs", help="long-text jobs (audiobooks)")
    sub = jobs.add_subparsers(dest="jobs_command", required=True)
    p = sub.add_parser("submit", help="submit a .txt/.md/.epub file and download the result")
    p.add_argument("file")
    p.add_argument("--out", default=None)
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _synth_args(p)
    _common(p)
    p.set_defaults(func=_run(_submit))
    p = sub.add_parser("ls", help="list jobs, newest first")
    p.add_argument("--limit", type=int, default=20)
    _common(p)
    p.set_defaults(func=_run(_ls))
    for name, fn, text in (("status", _status, "show a job"), ("cancel", _cancel, "cancel a job")):
        p = sub.add_parser(name, help=text)
        p.add_argument("id")
        _common(p)
        p.set_defaults(func=_run(fn))
    p = subparsers.add_parser("batch", help="submit every .txt/.md/.epub in DIR and wait (CronJob-friendly)")
    p.add_argument("dir")
    p.add_argument("--out-dir", default=None)
    p.add_argument("--timeout", type=float, default=None, help="give up waiting on a job after this many seconds")
    _synth_args(p)
    _common(p)
    p.set_defaults(func=_run(_batch))


def _run(fn: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return int(fn(args))
        except ApiError as exc:
            print(f"voxmesh: {exc.message}" + (f" (HTTP {exc.status})" if exc.status else ""), file=sys.stderr)
            return 1

    return wrapped
