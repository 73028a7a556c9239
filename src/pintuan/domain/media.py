"""The port pictures are kept behind: a folder on this machine or an S3-compatible bucket.

Names are content-addressed (a digest of the bytes), so a name never changes meaning: a store
only ever adds, and whatever is served under a name may be cached for good.
"""

from __future__ import annotations

from typing import Protocol


class MediaStore(Protocol):
    """Where stored pictures live; ``name`` is already checked to be one this site makes."""

    def put(self, name: str, data: bytes, content_type: str) -> None:
        """Keep ``data`` under ``name``; keeping the same name again changes nothing."""
        ...

    def get(self, name: str) -> bytes | None:
        """The bytes kept under ``name``, or None when there are none."""
        ...

    def has(self, name: str) -> bool:
        """Whether something is kept under ``name``."""
        ...
