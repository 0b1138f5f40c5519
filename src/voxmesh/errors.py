"""The one exception tree of voxmesh.

Every error a user can see carries the HTTP status it maps to and an error ``type`` string
for the JSON body ``{"error": {"type", "message", "param"}}``. Third-party errors are
translated at the boundary (most specific first, ``raise ... from exc``).

    VoxmeshError                      500 internal_error
    ├── InvalidRequest                400 invalid_request_error
    │   ├── UnsupportedFormat         400
    │   └── UnsupportedLanguage       400
    ├── Unauthorized                  401 authentication_error
    ├── Forbidden                     403 permission_error
    ├── NotFound                      404 not_found_error
    │   ├── UnknownModel              404
    │   └── UnknownVoice              404
    ├── Conflict                      409 conflict_error
    ├── PayloadTooLarge               413 payload_too_large
    ├── QuotaExceeded                 429 rate_limit_error
    ├── EngineError                   500 engine_error
    ├── UpstreamError                 502 upstream_error
    ├── Overloaded                    503 overloaded_error   (Retry-After)
    │   └── NoHealthyUpstream         503
    ├── UpstreamTimeout               504 timeout_error
    └── ConfigError                   (startup only: the process exits non-zero, one line)
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "Conflict",
    "EngineError",
    "Forbidden",
    "InvalidRequest",
    "NoHealthyUpstream",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "QuotaExceeded",
    "Unauthorized",
    "UnknownModel",
    "UnknownVoice",
    "UnsupportedFormat",
    "UnsupportedLanguage",
    "UpstreamError",
    "UpstreamTimeout",
    "VoxmeshError",
]


class VoxmeshError(Exception):
    status: int = 500
    type: str = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, object]:
        return {"error": {"type": self.type, "message": self.message, "param": self.param}}

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class InvalidRequest(VoxmeshError):
    status = 400
    type = "invalid_request_error"


class UnsupportedFormat(InvalidRequest):
    pass


class UnsupportedLanguage(InvalidRequest):
    pass


class Unauthorized(VoxmeshError):
    status = 401
    type = "authentication_error"


class Forbidden(VoxmeshError):
    status = 403
    type = "permission_error"


class NotFound(VoxmeshError):
    status = 404
    type = "not_found_error"


class UnknownModel(NotFound):
    pass


class UnknownVoice(NotFound):
    pass


class Conflict(VoxmeshError):
    status = 409
    type = "conflict_error"


class PayloadTooLarge(VoxmeshError):
    status = 413
    type = "payload_too_large"


class QuotaExceeded(VoxmeshError):
    status = 429
    type = "rate_limit_error"


class EngineError(VoxmeshError):
    status = 500
    type = "engine_error"


class UpstreamError(VoxmeshError):
    status = 502
    type = "upstream_error"


class Overloaded(VoxmeshError):
    status = 503
    type = "overloaded_error"


class NoHealthyUpstream(Overloaded):
    pass


class UpstreamTimeout(VoxmeshError):
    status = 504
    type = "timeout_error"


class ConfigError(VoxmeshError):
    """Raised at start-up; the CLI prints the message on one line and exits 2."""
