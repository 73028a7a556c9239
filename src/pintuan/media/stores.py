"""The two places pictures can be kept: a local folder (the default) and an S3-compatible bucket.

Both sit behind :class:`pintuan.domain.media.MediaStore`; ``bootstrap`` picks one from the
settings. Neither is ever asked for a name the service has not checked, so neither has to guard
against paths that climb out of the folder or the prefix.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from pintuan.config import Settings
from pintuan.domain.media import MediaStore


class LocalMediaStore:
    """Pictures as files in one folder, written whole (a reader never sees half a file)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, name: str, data: bytes, content_type: str) -> None:
        target = self.directory / name
        if target.exists():
            return  # the same name always holds the same bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, name: str) -> bytes | None:
        try:
            return (self.directory / name).read_bytes()
        except FileNotFoundError:
            return None

    def has(self, name: str) -> bool:
        return (self.directory / name).is_file()


_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3MediaStore:
    """Pictures as objects in a bucket of any S3-compatible store (AWS, MinIO, R2, Ceph …).

    The client is made on first use (making one costs a tenth of a second) and shared: boto3
    clients may be used from several threads at once.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        prefix: str = "",
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._options: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": Config(
                # Stores other than AWS mostly want path-style addresses, not bucket subdomains.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                # Plain PUT bodies: chunked checksum trailers are not understood everywhere.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        }
        self._client: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = boto3.session.Session().client("s3", **self._options)
            return self._client

    def put(self, name: str, data: bytes, content_type: str) -> None:
        self._s3().put_object(
            Bucket=self.bucket, Key=self.prefix + name, Body=data, ContentType=content_type
        )

    def get(self, name: str) -> bytes | None:
        try:
            answer = self._s3().get_object(Bucket=self.bucket, Key=self.prefix + name)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                return None
            raise
        body: bytes = answer["Body"].read()
        return body

    def has(self, name: str) -> bool:
        try:
            self._s3().head_object(Bucket=self.bucket, Key=self.prefix + name)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                return False
            raise
        return True


def media_store_for(settings: Settings) -> MediaStore:
    """The store the settings name: the bucket when one is set, else the local folder."""
    if settings.media_s3_bucket:
        secret = settings.media_s3_secret_access_key
        return S3MediaStore(
            settings.media_s3_bucket,
            endpoint_url=settings.media_s3_endpoint_url,
            region=settings.media_s3_region,
            access_key_id=settings.media_s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            prefix=settings.media_s3_prefix,
        )
    return LocalMediaStore(settings.media_dir)
