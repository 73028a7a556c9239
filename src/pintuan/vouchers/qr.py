"""A voucher's code as a QR image, for the shopper to show and the counter's camera to read."""

from __future__ import annotations

import segno


def qr_svg(code: str) -> str:
    """The code (as stored: ten characters, no dash) as an SVG QR image."""
    svg: str = segno.make(code, error="m", micro=False).svg_inline(scale=6, border=2)
    return svg
