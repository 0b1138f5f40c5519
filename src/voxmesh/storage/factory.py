"""Build the configured object store from :class:`~voxmesh.settings.Settings`."""

from __future__ import annotations

from voxmesh.settings import Settings
from voxmesh.storage.fs import FsObjectStore
from voxmesh.storage.objects import ObjectStore, UrlSigner, load_or_create_secret

__all__ = ["build_signer", "build_store"]


def build_signer(settings: Settings) -> UrlSigner:
    st = settings.storage
    secret = st.url_secret.encode() if st.url_secret else load_or_create_secret(settings.data_dir / "object-url.key")
    return UrlSigner(secret, base_url=st.public_base_url)


def build_store(settings: Settings) -> ObjectStore:
    st = settings.storage
    if st.backend == "s3":
        from voxmesh.storage.s3 import S3ObjectStore  # boto3 is slow to import; only when used

        return S3ObjectStore(
            st.s3_bucket,
            endpoint_url=st.s3_endpoint,
            access_key=st.s3_access_key,
            secret_key=st.s3_secret_key,
            region=st.s3_region,
        )
    return FsObjectStore(settings.data_dir / "objects", build_signer(settings))
