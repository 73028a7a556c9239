"""Storing pictures: check what was uploaded, strip it, resize it, keep it under its digest.

``store_image`` is the one way in, for deal pictures and for any other feature that shows
pictures (partner offers): it takes the uploaded bytes and returns an :class:`ImageRef` whose
addresses this site serves itself (``/media/…``), so pages keep ``img-src 'self'``.

What an upload must be, each refusal with its own code and nothing stored:
- at most ``media_max_bytes`` (413 ``image_too_large``);
- a JPEG, PNG, WebP or GIF by its content, whatever its name or declared type says (415
  ``image_type_not_allowed``);
- at most ``media_max_pixels`` once decoded, checked from the header before decoding, so a
  small file that would unpack into gigabytes is refused unread (422 ``image_too_many_pixels``);
- readable to its end (422 ``image_unreadable``).

What is kept is re-encoded from the pixels alone, so no EXIF (GPS position, camera serial),
ICC or XMP block of the original survives; a phone's rotation flag is applied first.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass

import anyio
from PIL import Image, ImageOps, UnidentifiedImageError

from pintuan.domain.media import MediaStore
from pintuan.errors import AppError, NotFound, field_error

MEDIA_PREFIX = "/media/"
CONTENT_TYPE = "image/webp"
# A card is two columns of a phone; 480 px squares stay sharp on a 2x screen.
THUMBNAIL_SIDE = 480
# The deal page's gallery: the longest side, never enlarged.
LARGE_SIDE = 1600
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF"})
_QUALITY = 82
_DIGEST_CHARS = 32
_NAME = re.compile(rf"^(?P<key>[0-9a-f]{{{_DIGEST_CHARS}}})-(?P<size>large|thumb)\.webp$")
LARGE_URL = re.compile(rf"^/media/[0-9a-f]{{{_DIGEST_CHARS}}}-large\.webp$")


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A stored picture: its key (a digest of its pixels as kept) and where it is served."""

    key: str
    width: int
    height: int

    @property
    def url(self) -> str:
        return large_url(self.key)

    @property
    def thumbnail_url(self) -> str:
        return thumbnail_url(self.key)


def large_url(key: str) -> str:
    """Where the large size of the picture with ``key`` is served."""
    return f"{MEDIA_PREFIX}{key}-large.webp"


def thumbnail_url(key: str) -> str:
    """Where the thumbnail of the picture with ``key`` is served."""
    return f"{MEDIA_PREFIX}{key}-thumb.webp"


def image_too_large(limit: int) -> AppError:
    return AppError(
        f"The picture is larger than {limit} bytes; send a smaller one.",
        code="image_too_large",
        status=413,
        title="Picture too large",
        extra={"max_bytes": limit},
    )


def _not_allowed(found: str | None) -> AppError:
    what = f"a {found} file" if found else "not a picture this site can read"
    return AppError(
        f"This is {what}; send a JPEG, PNG, WebP or GIF picture.",
        code="image_type_not_allowed",
        status=415,
        title="Picture type not allowed",
        extra={"allowed": sorted(ALLOWED_FORMATS)},
    )


def _unreadable() -> AppError:
    return AppError(
        "The picture could not be read to its end; it may be cut short or damaged.",
        code="image_unreadable",
        status=422,
        title="Picture unreadable",
    )


def _too_many_pixels(width: int, height: int, limit: int) -> AppError:
    return AppError(
        f"The picture is {width} by {height} pixels, more than the {limit} allowed; "
        "send a smaller one.",
        code="image_too_many_pixels",
        status=422,
        title="Picture too big",
        extra={"max_pixels": limit},
    )


def _encode(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    # No exif, icc_profile or xmp argument: the kept file carries pixels only.
    picture.save(out, "WEBP", quality=_QUALITY, method=4)
    return out.getvalue()


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard warns before it raises; ours below is stricter anyway.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(0, 0, max_pixels) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise _not_allowed(None) from exc
    if picture.format not in ALLOWED_FORMATS:
        raise _not_allowed(picture.format)
    width, height = picture.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise _too_many_pixels(width, height, max_pixels)
    if picture.format == "JPEG":
        # Let the JPEG decoder scale down while decoding (DCT scaling): a phone photo is read
        # at a quarter or an eighth of its size when that still covers the large size.
        picture.draft("RGB", (LARGE_SIDE, LARGE_SIDE))
    try:
        picture.load()  # decodes the first frame only, so an animation costs one frame
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _unreadable() from exc
    return picture


@dataclass(frozen=True, slots=True)
class PreparedImage:
    key: str
    width: int
    height: int
    large: bytes
    thumbnail: bytes


def prepare_image(data: bytes, *, max_bytes: int, max_pixels: int) -> PreparedImage:
    """Check an upload and make the two sizes kept of it. Pure CPU work, no store."""
    if len(data) > max_bytes:
        raise image_too_large(max_bytes)
    picture = _open_checked(data, max_pixels)
    try:
        upright = ImageOps.exif_transpose(picture)
    except (OSError, ValueError, SyntaxError) as exc:
        raise _unreadable() from exc
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info
    )
    pixels = upright.convert("RGBA" if has_alpha else "RGB")
    large = pixels.copy()
    large.thumbnail((LARGE_SIDE, LARGE_SIDE), Image.Resampling.LANCZOS)
    thumbnail = ImageOps.fit(pixels, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    large_bytes = _encode(large)
    return PreparedImage(
        key=hashlib.sha256(large_bytes).hexdigest()[:_DIGEST_CHARS],
        width=large.width,
        height=large.height,
        large=large_bytes,
        thumbnail=_encode(thumbnail),
    )


def store_image(store: MediaStore, data: bytes, *, max_bytes: int, max_pixels: int) -> ImageRef:
    """Check, strip and resize an uploaded picture and keep it; the way in for every feature.

    Blocking (Pillow, then the store's I/O): call it on a worker thread from async code.
    Storing the same picture twice keeps it once, under the same key.
    """
    prepared = prepare_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    # The thumbnail first: once the large one exists the picture counts as stored.
    store.put(f"{prepared.key}-thumb.webp", prepared.thumbnail, CONTENT_TYPE)
    store.put(f"{prepared.key}-large.webp", prepared.large, CONTENT_TYPE)
    return ImageRef(key=prepared.key, width=prepared.width, height=prepared.height)


def is_media_name(name: str) -> bool:
    """Whether ``name`` is one this site gives stored pictures (and so safe to look up)."""
    return _NAME.fullmatch(name) is not None


def read_media(store: MediaStore, name: str) -> bytes:
    """A stored picture's bytes by its served name; 404 ``media_not_found`` otherwise."""
    found = store.get(name) if is_media_name(name) else None
    if found is None:
        raise NotFound(f"No picture {name}.", code="media_not_found")
    return found


def key_of_url(url: str) -> str | None:
    """The key of one of this site's large-picture addresses, or None for anything else."""
    if LARGE_URL.fullmatch(url) is None:
        return None
    return url[len(MEDIA_PREFIX) : len(MEDIA_PREFIX) + _DIGEST_CHARS]


def thumbnail_of(url: str) -> str:
    """The thumbnail of one of this site's large pictures; any other address as it is."""
    key = key_of_url(url)
    return thumbnail_url(key) if key else url


def is_stored(store: MediaStore, url: str) -> bool:
    """Whether ``url`` is one of this site's large pictures and is kept in ``store``."""
    key = key_of_url(url)
    return key is not None and store.has(f"{key}-large.webp")


async def require_stored(store: MediaStore, urls: list[str], field: str) -> None:
    """Refuse picture addresses this site does not keep (uploads are what give them), naming
    the position in ``field`` of the first one missing."""
    for position, url in enumerate(urls):
        if not await anyio.to_thread.run_sync(is_stored, store, url):
            raise field_error(f"{field}.{position}", "no picture is stored at this address")
