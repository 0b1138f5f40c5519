"""The guard's added latency per request, by credential: ``Guard.check`` alone, in process.

    python benchmarks/auth_guard.py [--n 5000] [--out benchmarks/reports/auth_guard.md]

Rows: mode none (the default); JWT RS256 / ES256 (key from a JWKS file, cached) and HS256 with
the signature checked on every request (``token_cache_s=0``); a repeated JWT served from the
verified-token cache; an API key (cached after its first lookup, ``auth.key_cache_s``) and an
API key looked up in SQLite every time (``key_cache_s=0``: the cost of a cache miss). Each row times
``n`` checks of a speech request after 200 warm-up checks; p50/p99 in microseconds. This is
the guard only: the HTTP cost of a request is measured end to end by benchmarks/tenants.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from voxmesh.auth.guard import Call, Guard
from voxmesh.auth.store import TenantStore
from voxmesh.settings import Settings

SECRET = "bench-secret-0123456789-0123456789-abc"


async def _time(guard: Guard, auth: str | None, n: int) -> tuple[float, float]:
    call = Call("POST", "/v1/audio/speech", "/v1/audio/speech", "127.0.0.1", auth)
    for _ in range(200):
        await guard.check(call)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await guard.check(call)
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))]


async def run(n: int) -> list[tuple[str, float, float]]:
    tmp = Path(tempfile.mkdtemp(prefix="voxmesh-bench-auth-"))
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ek = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [{**json.loads(RSAAlgorithm.to_jwk(rk.public_key())), "kid": "r", "alg": "RS256"},
                     {**json.loads(ECAlgorithm.to_jwk(ek.public_key())), "kid": "e", "alg": "ES256"}]}
    (tmp / "jwks.json").write_text(json.dumps(jwks))
    claims = {"tenant": "acme", "scope": "tts:speak", "exp": int(time.time()) + 3600, "iss": "i", "aud": "a"}
    rs = jwt.encode(claims, rk, algorithm="RS256", headers={"kid": "r"})
    es = jwt.encode(claims, ek, algorithm="ES256", headers={"kid": "e"})
    hs = jwt.encode(claims, SECRET, algorithm="HS256")
    auth = {"mode": "jwt+api_keys", "jwks_path": str(tmp / "jwks.json"), "hs256_secret": SECRET,
            "issuer": "i", "audience": "a"}
    url = f"sqlite+aiosqlite:///{tmp / 'meta.db'}"
    cached = await TenantStore.open(url, key_cache_s=3600)
    cold = await TenantStore.open(url, key_cache_s=0)
    _, key = await cached.create_key("acme", frozenset({"tts:speak"}))
    rows = []
    try:
        rows.append(("mode none", *await _time(Guard(Settings(data_dir=tmp)), None, n)))
        verify = Guard(Settings(data_dir=tmp, auth={**auth, "token_cache_s": 0}), store=cached)
        for name, token in (("JWT RS256, signature checked (JWKS key cached)", rs),
                            ("JWT ES256, signature checked (JWKS key cached)", es), ("JWT HS256, signature checked", hs)):
            rows.append((name, *await _time(verify, f"Bearer {token}", n)))
        guard = Guard(Settings(data_dir=tmp, auth=auth), store=cached)
        for name, token in (("JWT RS256, repeated token (token_cache_s=60)", rs), ("API key (key_cache_s)", key)):
            rows.append((name, *await _time(guard, f"Bearer {token}", n)))
        cold_guard = Guard(Settings(data_dir=tmp, auth=auth), store=cold)
        rows.append(("API key (SQLite lookup every time)", *await _time(cold_guard, f"Bearer {key}", max(200, n // 5))))
    finally:
        await cached.close()
        await cold.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = asyncio.run(run(args.n))
    lines = ["| credential | p50 (us) | p99 (us) |", "|---|---:|---:|"]
    lines += [f"| {name} | {p50:.1f} | {p99:.1f} |" for name, p50, p99 in rows]
    report = "\n".join([
        "# Auth guard latency", "",
        f"`python benchmarks/auth_guard.py --n {args.n}` on {platform.machine()}, Python {platform.python_version()}, "
        "one process, a machine shared with other jobs (2 cores).", "",
        *lines, "",
        "Guard.check only (route scope, credential, scope check, admission hooks: none here).", "",
    ])  # fmt: skip
    print(report)
    if args.out is not None:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
