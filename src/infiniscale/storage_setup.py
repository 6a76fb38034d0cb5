"""The storage providers built from the settings. Kept apart from the application stack so that
`storage check` (run at every start after a crash) loads only the storage code."""

from __future__ import annotations

import uuid
from functools import partial

from infiniscale.core.registry import Provider, SpaceRegistry
from infiniscale.drivers.decomposed.tree import DecomposedStorage
from infiniscale.settings import Settings

STALE_S3_UPLOAD_AGE_S = 24 * 3600  # a multipart upload this old belongs to a process that died


def build_driver(settings: Settings, driver: str, root: str) -> DecomposedStorage:
    versioning = not settings.disable_versioning
    if driver != "s3ng":
        return DecomposedStorage(root, versioning=versioning)
    # imported here: only servers with content in S3 load the S3 client
    from infiniscale.drivers.decomposed.s3blobs import S3Blobs, S3Config

    config = S3Config(endpoint=settings.s3_endpoint, region=settings.s3_region, access_key=settings.s3_access_key,
                      secret_key=settings.s3_secret_key, bucket=settings.s3_bucket,
                      part_size=settings.s3_part_size, parallel_parts=settings.s3_parallel_parts,
                      insecure=settings.insecure)
    return DecomposedStorage(root, blobs=partial(S3Blobs, config), versioning=versioning)


def project_mount_id(settings: Settings) -> str:
    return settings.project_storage_mount_id or str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                               f"projects:{settings.storage_mount_id}"))


def build_registry(settings: Settings) -> SpaceRegistry:
    """The storage providers: one for every space, or with `project_storage_driver` a second one
    that takes the project spaces."""
    users = Provider(settings.storage_mount_id,
                     build_driver(settings, settings.storage_driver, settings.storage_root))
    if not settings.project_storage_driver:
        return SpaceRegistry([users])
    projects = Provider(project_mount_id(settings),
                        build_driver(settings, settings.project_storage_driver, settings.project_storage_root),
                        frozenset({"project"}))
    return SpaceRegistry([users, projects])


def build_storage(settings: Settings) -> DecomposedStorage:
    """The provider of the users' spaces (the only one unless project spaces have their own)."""
    return build_registry(settings).providers[0].driver  # type: ignore[return-value]


def abort_stale_s3_uploads(registry: SpaceRegistry, older_than_s: float = STALE_S3_UPLOAD_AGE_S) -> int:
    aborted = 0
    for provider in registry.providers:
        blobs = getattr(provider.driver, "blobs", None)
        if hasattr(blobs, "abort_stale_uploads"):
            aborted += blobs.abort_stale_uploads(older_than_s)  # type: ignore[union-attr]
    return aborted
