"""S3 object store (production) through boto3, each blocking call run in a thread.

Works with AWS S3 and S3-compatible servers (SeaweedFS, MinIO) via ``endpoint_url`` and
path-style addressing. Presigned URLs are S3's own SigV4 query signatures and expire after
``ttl_s``. boto3 errors are translated at this boundary: a missing key -> ``NotFound``,
anything else -> ``UpstreamError``. Limit: objects are held in memory whole (no multipart).
"""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
from botocore.client import Config
from botocore.exceptions import BotoCoreError, ClientError

from voxmesh.errors import NotFound, UpstreamError
from voxmesh.storage.objects import validate_key

__all__ = ["S3ObjectStore"]

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3ObjectStore:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        prefix: str = "",
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    def _k(self, key: str) -> str:
        return self.prefix + validate_key(key)

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(getattr(self._client, method), **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise NotFound(f"object {kwargs.get('Key', '')!r} not found") from exc
            raise UpstreamError(f"S3 {method} failed: {code or exc}") from exc
        except BotoCoreError as exc:
            raise UpstreamError(f"S3 {method} failed: {exc}") from exc

    async def ensure_bucket(self) -> None:
        try:
            await self._call("head_bucket", Bucket=self.bucket)
        except (NotFound, UpstreamError):
            await self._call("create_bucket", Bucket=self.bucket)

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        await self._call("put_object", Bucket=self.bucket, Key=self._k(key), Body=bytes(data), ContentType=content_type)

    async def get(self, key: str) -> bytes:
        resp = await self._call("get_object", Bucket=self.bucket, Key=self._k(key))
        body: bytes = await asyncio.to_thread(resp["Body"].read)
        return body

    async def exists(self, key: str) -> bool:
        try:
            await self._call("head_object", Bucket=self.bucket, Key=self._k(key))
        except NotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        await self._call("delete_object", Bucket=self.bucket, Key=self._k(key))

    async def presign_get(self, key: str, ttl_s: float) -> str:
        url: str = await asyncio.to_thread(
            self._client.generate_presigned_url,
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._k(key)},
            ExpiresIn=max(1, int(ttl_s)),
        )
        return url

    async def list(self, prefix: str = "") -> list[str]:
        def _list() -> list[str]:
            out: list[str] = []
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                out.extend(item["Key"][len(self.prefix):] for item in page.get("Contents", []))
            return sorted(out)

        try:
            return await asyncio.to_thread(_list)
        except (ClientError, BotoCoreError) as exc:
            raise UpstreamError(f"S3 list failed: {exc}") from exc
