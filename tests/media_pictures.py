"""Pictures made with Pillow for the tests: no binary files in the repository."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def picture(
    colour: str = "tomato",
    size: tuple[int, int] = (800, 600),
    fmt: str = "JPEG",
    *,
    exif: Image.Exif | None = None,
) -> bytes:
    """A picture with a band across it, so that orientation and cropping can be seen."""
    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).rectangle((0, 0, size[0] // 4, size[1]), fill="navy")
    out = io.BytesIO()
    if exif is not None:
        image.save(out, fmt, exif=exif)
    else:
        image.save(out, fmt)
    return out.getvalue()
