"""Authentication failures with their RFC 6750 ``WWW-Authenticate`` challenges.

    Unauthorized (voxmesh.errors)     401
    └── Unauthenticated               401  Bearer realm="voxmesh"[, error="invalid_token"]
    Forbidden (voxmesh.errors)        403
    └── MissingScope                  403  Bearer ... error="insufficient_scope", scope="..."

``reason`` is a short machine word for the audit log (never a credential).
"""

from __future__ import annotations

from voxmesh.errors import Forbidden, Unauthorized

__all__ = ["MissingScope", "Unauthenticated"]

REALM = 'Bearer realm="voxmesh"'


class Unauthenticated(Unauthorized):
    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def headers(self) -> dict[str, str]:
        if self.reason == "missing":
            return {"WWW-Authenticate": REALM}
        return {"WWW-Authenticate": f'{REALM}, error="invalid_token"'}


class MissingScope(Forbidden):
    def __init__(self, message: str, *, scope: str, subject: str | None = None, tenant: str | None = None) -> None:
        super().__init__(message)
        self.scope = scope
        self.reason = "scope"
        self.subject = subject
        self.tenant = tenant

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{self.scope}"'}
