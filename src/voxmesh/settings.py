"""The one settings object, built once at the edge (the CLI) and passed down.

Environment variables use the prefix ``VOXMESH_`` and ``__`` for nesting, for example
``VOXMESH_SERVER__PORT=9090`` or ``VOXMESH_JOBS__DB_URL=postgresql+asyncpg://...``.
A YAML config file (``--config``) may set the same keys; unknown keys produce a warning.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from voxmesh.errors import ConfigError

__all__ = [
    "AuthSettings",
    "GatewaySettings",
    "HardeningSettings",
    "HostCoreShare",
    "HostCoresSettings",
    "JobsSettings",
    "LimitsSettings",
    "MeshSettings",
    "MtSettings",
    "OtlpSettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "WorkerSettings",
    "load_settings",
]


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class WorkerSettings(BaseModel):
    max_queue: int = Field(64, ge=1, description="requests waiting beyond those running; more get 503")
    max_input_chars: int = Field(20_000, ge=1)
    calm_s: float = Field(
        1.0, ge=0.0,
        description="a lone request gets every core only after this long without two requests in flight "
        "(hysteresis of the core scheduler; 0 decides on the instant)")
    preempt_frac: float = Field(
        0.25, ge=0.0, le=1.0,
        description="a newcomer takes back the cores of a lone request's all-core segment that has run less "
        "than this fraction of its expected time; the segment restarts on one core (0: never)")
    calibration_rounds: int = Field(
        0, ge=0,
        description="timed runs per thread class at warm-up that seed the measured speed-ups, after "
        "calibration_discard runs thrown away (0, the default: no calibration, the start stays fast and "
        "served segments measure; 1 on a dedicated many-core host measures before the first request)")
    calibration_discard: int = Field(1, ge=0, description="calibration runs per class thrown away first")
    speedup_min: float = Field(
        1.1, ge=1.0,
        description="a thread class is granted only if it runs this many times faster than the class below it")
    speedup_min_samples: int = Field(
        3, ge=1,
        description="served segments of a thread class (their median) before its measure can hold the class back")
    speedup_refresh_s: float = Field(
        60.0, gt=0,
        description="a class that did not pay is tried again on a lone request when its measure is this old")
    # Fault injection for resilience tests: fraction of requests answered 500, added latency.
    fault_error_rate: float = Field(0.0, ge=0.0, le=1.0)
    fault_delay_ms: float = Field(0.0, ge=0.0)
    # Tests only: every time this stage runs it also sleeps fault_stage_delay_ms (a slow stage
    # on purpose, to show the stage metrics point at it); see voxmesh.observability.stages.
    fault_stage: Literal["normalize", "g2p", "inference", "prosody", "encode"] | None = None
    fault_stage_delay_ms: float = Field(0.0, ge=0.0)


class GatewaySettings(BaseModel):
    request_timeout_s: float = Field(120.0, gt=0)
    first_byte_timeout_s: float = Field(60.0, gt=0)
    idle_stream_timeout_s: float = Field(30.0, gt=0)
    retry_ratio: float = Field(0.2, ge=0)
    retry_min_per_s: float = Field(10.0, ge=0)
    retry_window_s: float = Field(10.0, gt=0)
    retry_statuses: list[int] = [500, 502, 503, 504]
    retry_body_cap: int = Field(64 * 1024, ge=0)
    retry_max_attempts: int = Field(3, ge=1, description="attempts per request, the first included")
    retry_backoff_min_s: float = Field(0.025, gt=0)
    retry_backoff_max_s: float = Field(0.250, gt=0)
    ewma_default_rtt_ms: float = Field(30.0, gt=0)
    ewma_decay_s: float = Field(10.0, gt=0)
    breaker_failures: int = Field(7, ge=1)
    breaker_min_backoff_s: float = Field(1.0, gt=0)
    breaker_max_backoff_s: float = Field(60.0, gt=0)
    breaker_jitter: float = Field(0.5, ge=0, le=1)
    max_in_flight_per_endpoint: int = Field(256, ge=1)
    mesh: Literal["builtin", "linkerd"] = "builtin"
    admin_token: str | None = None
    # public listener: "fast" serves the hot routes on asyncio Protocols + httptools and relays
    # the rest to the aiohttp app (voxmesh.gateway.fastpath); "aiohttp" serves everything with aiohttp
    server: Literal["aiohttp", "fast"] = "fast"


class MeshSettings(BaseModel):
    enabled: bool = True
    trust_domain: str = "voxmesh.local"
    cert_ttl_s: float = Field(24 * 3600, gt=0)
    rotate_fraction: float = Field(2 / 3, gt=0, lt=1)
    join_port: int | None = Field(None, ge=0, le=65535, description="HTTPS port for /mesh/join (other hosts)")
    join_host: str = "127.0.0.1"


class StorageSettings(BaseModel):
    backend: Literal["fs", "s3"] = "fs"
    s3_endpoint: str | None = None
    s3_bucket: str = "voxmesh"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"
    presign_ttl_s: int = Field(3600, gt=0)
    # fs backend: objects live in <data_dir>/objects; presigned URLs are HMAC-signed with this
    # secret (default: one generated into <data_dir>/object-url.key, shared by all processes).
    url_secret: str | None = None
    public_base_url: str = ""  # prefix for fs presigned URLs, e.g. https://voxmesh.example.com


class JobsSettings(BaseModel):
    db_url: str | None = None  # default: sqlite in the data dir
    queue: Literal["db", "rabbitmq"] = "db"
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    queue_name: str = "tts-tasks"
    runners: int = Field(1, ge=0)
    lease_s: float = Field(60.0, gt=0)
    max_attempts: int = Field(5, ge=1)
    chunk_chars: int = Field(400, ge=20)
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1)
    webhook_secret: str | None = None
    # runner: how chunks are synthesized ("http": POST {engine_url}/v1/audio/speech, normally the
    # gateway; "fake": the deterministic FakeSynthesizer, for tests and benchmarks)
    engine: Literal["http", "fake"] = "http"
    engine_url: str = "http://127.0.0.1:8080"
    fake_delay_s: float = Field(0.0, ge=0)  # FakeSynthesizer: seconds of work per 100 chars
    retry_base_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(60.0, gt=0)
    # idle runner: waits poll_interval_s for work after a chunk, doubling while none comes, up to
    # idle_poll_max_s; a submission or due retry in the same process wakes it at once
    poll_interval_s: float = Field(0.5, gt=0)
    idle_poll_max_s: float = Field(2.0, gt=0)
    prefetch: int = Field(1, ge=1)  # RabbitMQ basic.qos per runner
    max_chunks: int = Field(20_000, ge=1)  # larger inputs are refused with 413
    sample_rate: int = Field(24_000, ge=8000)  # asked of the engine for every chunk


class AuthSettings(BaseModel):
    """Who may call the gateway (``voxmesh.auth``): ``VOXMESH_AUTH__*``."""

    mode: Literal["none", "jwt", "api_keys", "jwt+api_keys"] = Field(
        "none", description="none is allowed only while the gateway binds loopback (see allow_insecure_none)")
    allow_insecure_none: bool = Field(False, description="serve mode none on a non-loopback address anyway")
    jwks_path: Path | None = None  # a JWKS file (RS256/ES256 public keys)
    jwks_url: str | None = None  # a JWKS URL: cached, refetched on an unknown kid
    jwks_cache_s: float = Field(600.0, gt=0, description="refetch the JWKS URL after this long")
    jwks_refresh_min_s: float = Field(10.0, ge=0, description="at most one refetch per this long (unknown kids)")
    hs256_secret: str | None = Field(None, min_length=32, description="HS256 shared secret (development)")
    issuer: str | None = None  # required iss when set
    audience: str | None = None  # required aud when set
    leeway_s: float = Field(30.0, ge=0, le=600)
    tenant_claim: str = "tenant"
    key_cache_s: float = Field(5.0, ge=0, description="a verified API key is re-read from the DB after this long")
    token_cache_s: float = Field(60.0, ge=0, description="a verified JWT is trusted this long (at most until exp) "
                                 "without checking its signature again; 0: verify every request")
    audit_file: Path | None = None  # default <data_dir>/audit.log; the logger voxmesh.audit always gets it too


class LimitsSettings(BaseModel):
    """Per-tenant rate limits and quotas (voxmesh.tenancy). A tenant's own row overrides these
    defaults; None means unlimited."""

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = Field("voxmesh:rl:", min_length=1)
    requests_per_minute: int | None = Field(None, ge=1)
    burst_s: float = Field(
        1.0, gt=0, le=60,
        description="the requests bucket holds this many seconds' worth of requests_per_minute (at least 1): "
        "a tenant may burst that much at once, then the rate applies")
    chars_per_day: int | None = Field(None, ge=1)
    audio_seconds_per_month: int | None = Field(None, ge=1)
    concurrent_jobs: int | None = Field(None, ge=1)
    max_job_chars: int | None = Field(None, ge=1)
    usage_max_tenants: int = Field(100, ge=1, description="tenants with their own /metrics series; the rest are 'other'")


class HardeningSettings(BaseModel):
    """Limits of the public listener and of uploads (voxmesh.gateway.fastpath, voxmesh.jobs.ingest)."""

    max_header_count: int = Field(100, ge=1)
    max_header_bytes: int = Field(16 * 1024, ge=256, description="request line plus every header, in bytes")
    head_timeout_s: float = Field(10.0, gt=0, description="time to send a whole request head (slowloris)")
    keepalive_timeout_s: float = Field(75.0, gt=0, description="an idle keep-alive connection is closed after this")
    cors_origins: list[str] = Field(default_factory=list, description="allowed CORS origins; empty: CORS off")
    zip_max_uncompressed_bytes: int = Field(100 * 1024 * 1024, ge=1)
    zip_max_files: int = Field(2_000, ge=1)
    zip_max_ratio: float = Field(100.0, gt=1)


class MtSettings(BaseModel):
    """Machine translation (llama.cpp engine, external chat servers, the translate API)."""

    model_path: Path | None = None  # any GGUF; default: the packaged gemma3-270m, assembled on first use
    model_cache_dir: Path | None = None  # where the packaged GGUF is assembled; default ~/.cache
    prompt_style: Literal["auto", "chat", "hymt", "fewshot"] = "auto"
    languages: list[str] = ["en", "zh", "ja", "ko", "fr", "de", "es", "pt", "it", "ru"]
    n_ctx_per_seq: int = Field(1024, ge=128)
    max_batch_size: int = Field(8, ge=1, description="sequences decoded together in one llama_batch")
    max_wait_ms: float = Field(5.0, ge=0, description="how long a lone request waits for company")
    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_k: int = Field(20, ge=0)
    top_p: float = Field(0.6, gt=0, le=1)
    repeat_penalty: float = Field(1.05, ge=1)
    seed: int = 0
    max_segment_chars: int = Field(400, ge=20, description="longer sentences are split at clauses")
    max_input_chars: int = Field(20_000, ge=1, description="past this the API answers 413")
    remote_base_url: str | None = None  # an external OpenAI-compatible chat server
    remote_model: str = "hy-mt"
    remote_api_key: str | None = None
    remote_timeout_s: float = Field(60.0, gt=0)


class VoicesSettings(BaseModel):
    """Enrolled voices: the voice-matching search (voxmesh.voices.fit) and upload limits."""

    top_k: int = Field(4, ge=0, description="best stock voices the blend pool is built from")
    local_steps: int = Field(12, ge=0, description="local-search candidates around the pool's winner")
    walk_steps: int = Field(0, ge=0, description="random-search steps on the shared style offset (overfits)")
    acoustic_weight: float = Field(0.1, ge=0.0, le=10.0,
                                   description="weight of the encoder-free pitch/envelope term in the score")
    max_renders: int = Field(120, ge=8, description="render budget of one fit (stock voices are rendered once "
                                                    "per model and language and shared)")
    candidates: list[str] = []  # stock voices searched first; empty: every voice of the deployment
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024)
class OtlpSettings(BaseModel):
    """OpenTelemetry trace export over OTLP/HTTP (``voxmesh[otlp]``); off while ``endpoint`` is None."""

    endpoint: str | None = None  # e.g. http://127.0.0.1:4318 (/v1/traces is added)
    service_name: str | None = None  # default: voxmesh-gateway, voxmesh-worker
    headers: dict[str, str] = {}  # e.g. {"authorization": "Bearer ..."} for a hosted collector
    timeout_s: float = Field(10.0, gt=0)


class HostCoreShare(BaseModel):
    """A deployment's share of the host core budget under contention (its ``cores:`` in the
    deployments config)."""

    model_config = ConfigDict(extra="forbid")
    weight: float = Field(1.0, gt=0, description="share of the cores beyond the guarantees, by weight")
    min: int = Field(0, ge=0, description="cores guaranteed while it wants them")


class HostCoresSettings(BaseModel):
    """One core budget for every worker on this host (voxmesh.hostcores): ``VOXMESH_HOSTCORES__*``.

    ``voxmesh up`` keeps the budget of its workers (when ``enabled``) and hands each of them
    ``file``, ``total`` and the ``shares`` of all deployments through these same settings
    (``VOXMESH_HOSTCORES__FILE``, ...); a worker leases from the budget whenever it has a
    ``file``, so one started by hand may join another's budget.
    """

    enabled: bool = Field(True, description="voxmesh up: its workers lease their threads from one budget")
    file: Path | None = Field(None, description="the lease file (voxmesh up default: one per data dir under "
                              "/dev/shm, voxmesh.hostcores.config.default_file)")
    total: int | None = Field(None, ge=1, description="cores in the budget (default: the cgroup CPU limit, else "
                              "the cores this process may run on)")
    shares: dict[str, HostCoreShare] = Field(
        default_factory=dict, description="per deployment; voxmesh up fills it from the deployments' cores:")
    wait_timeout_s: float = Field(60.0, gt=0, description="a segment waiting longer for cores fails with 503")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOXMESH_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Path(".voxmesh")
    deployments_file: Path | None = None
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, with request_id
    server: ServerSettings = ServerSettings()
    worker: WorkerSettings = WorkerSettings()
    gateway: GatewaySettings = GatewaySettings()
    mesh: MeshSettings = MeshSettings()
    storage: StorageSettings = StorageSettings()
    jobs: JobsSettings = JobsSettings()
    auth: AuthSettings = AuthSettings()
    mt: MtSettings = MtSettings()
    limits: LimitsSettings = LimitsSettings()
    hardening: HardeningSettings = HardeningSettings()
    voices: VoicesSettings = VoicesSettings()
    otlp: OtlpSettings = OtlpSettings()
    hostcores: HostCoresSettings = HostCoresSettings()

    def db_url(self) -> str:
        return self.jobs.db_url or f"sqlite+aiosqlite:///{(self.data_dir / 'voxmesh.db').resolve()}"


def _warn_unknown(data: dict[str, Any], model: type[BaseModel], prefix: str = "") -> None:
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            warnings.warn(f"unknown setting {prefix}{key!r} in config file (ignored)", stacklevel=3)
            continue
        sub = field.annotation
        if isinstance(value, dict) and isinstance(sub, type) and issubclass(sub, BaseModel):
            _warn_unknown(value, sub, f"{prefix}{key}.")


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from (lowest first) defaults, the YAML file, ``VOXMESH_*`` env, ``overrides``."""
    file_data: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {config_file} must hold a mapping at the top level")
        settings_part = loaded.get("settings", {})
        _warn_unknown(settings_part, Settings)
        file_data = settings_part
    env_present = {k for k in os.environ if k.startswith("VOXMESH_")}
    try:
        base = Settings(**file_data) if not env_present else Settings()
        if env_present and file_data:
            # env wins over the file: merge file under env
            merged = _deep_merge(file_data, base.model_dump(exclude_unset=True))
            base = Settings(**merged)
        if overrides:
            base = Settings(**_deep_merge(base.model_dump(), overrides))
    except ValueError as exc:
        raise ConfigError(f"invalid settings: {exc}".replace("\n", " ")) from exc
    return base


def _deep_merge(low: dict[str, Any], high: dict[str, Any]) -> dict[str, Any]:
    out = dict(low)
    for key, value in high.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
