"""Test signing keys and tokens for voxmesh.auth: an RSA and an EC key with their JWKS."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.test"
AUDIENCE = "voxmesh-api"
HS_SECRET = "dev-secret-0123456789-0123456789-abcdef"


@dataclass
class Signer:
    kid: str = "k1"
    rsa_key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    ec_key: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def jwks(self) -> dict[str, Any]:
        r = json.loads(RSAAlgorithm.to_jwk(self.rsa_key.public_key()))
        e = json.loads(ECAlgorithm.to_jwk(self.ec_key.public_key()))
        return {"keys": [{**r, "kid": self.kid, "alg": "RS256", "use": "sig"},
                         {**e, "kid": self.kid + "-ec", "alg": "ES256", "use": "sig"}]}

    def token(self, *, tenant: str | None = "acme", scope: str | list[str] | None = "tts:speak", alg: str = "RS256",
              iss: str = ISSUER, aud: str = AUDIENCE, exp_in: float = 300, nbf_in: float | None = None,
              kid: str | None = None, claim: str = "scope", **extra: Any) -> str:
        now = time.time()
        claims: dict[str, Any] = {"sub": "user-1", "iss": iss, "aud": aud, "exp": int(now + exp_in), **extra}
        if tenant is not None:
            claims["tenant"] = tenant
        if scope is not None:
            claims[claim] = scope
        if nbf_in is not None:
            claims["nbf"] = int(now + nbf_in)
        if alg == "HS256":
            return jwt.encode(claims, HS_SECRET, algorithm="HS256")
        key = self.rsa_key if alg == "RS256" else self.ec_key
        default_kid = self.kid if alg == "RS256" else self.kid + "-ec"
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid or default_kid})
