"""QR posters: a phone-sized PNG of a team or deal with a QR code of its share link.

Drawn with Pillow, the QR code by segno. Chinese text needs a CJK font; it is looked up once
per process (``fc-match``, then the files Debian's CJK font packages install). Without one the
poster still renders with a Latin font, Chinese characters show as boxes, and the log says
once which package to install.
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import subprocess
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger("pintuan.posters")

WIDTH, HEIGHT = 750, 1334
QR_SIZE = 320
PICTURE_HEIGHT = 520
# Files installed by Debian's CJK font packages, in order of preference (the first is small).
CJK_FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
LATIN_FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
CJK_PACKAGE_HINT = (
    "No CJK font found: Chinese text on posters will show as boxes. Install Debian's "
    "fonts-wqy-microhei (apt-get install fonts-wqy-microhei) or fonts-noto-cjk."
)
_CJK_PROBE = "拼团价"
_MISSING_PROBE = "\U000f0000\U000f0001\U000f0002"  # private use: no font draws these

RED = (228, 57, 60)
INK = (34, 34, 34)
GREY = (136, 136, 136)
WHITE = (255, 255, 255)


# ---------------------------------------------------------------------------- fonts


@dataclass(frozen=True, slots=True)
class FontChoice:
    path: str | None  # None: Pillow's built-in font
    cjk: bool


def _fc_match(pattern: str) -> str | None:
    if shutil.which("fc-match") is None:
        return None
    try:
        found = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            ["fc-match", "-f", "%{file}", pattern],  # noqa: S607 - looked up on PATH on purpose
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    path = found.stdout.strip()
    return path if found.returncode == 0 and path else None


def draws_cjk(path: str) -> bool:
    """Whether the font file draws Chinese characters (rather than its missing-glyph box)."""
    try:
        font = ImageFont.truetype(path, 32)
    except OSError:
        return False
    probe = font.getmask(_CJK_PROBE)
    missing = font.getmask(_MISSING_PROBE)
    return probe.getbbox() is not None and bytes(probe) != bytes(missing)


def find_font(
    cjk_candidates: tuple[str, ...] = CJK_FONT_FILES,
    latin_candidates: tuple[str, ...] = LATIN_FONT_FILES,
    use_fontconfig: bool = True,
) -> FontChoice:
    """The best font for posters: a CJK one if any is installed, else a Latin one."""
    found = _fc_match(":lang=zh-cn") if use_fontconfig else None
    for path in ([found] if found else []) + list(cjk_candidates):
        if Path(path).is_file() and draws_cjk(path):
            return FontChoice(path, cjk=True)
    log.warning(CJK_PACKAGE_HINT)
    found = _fc_match("sans-serif") if use_fontconfig else None
    for path in ([found] if found else []) + list(latin_candidates):
        if Path(path).is_file():
            return FontChoice(path, cjk=False)
    return FontChoice(None, cjk=False)


@lru_cache(maxsize=1)
def poster_font() -> FontChoice:
    """The process's poster font, looked up (and, when missing, warned about) once."""
    return find_font()


@lru_cache(maxsize=32)
def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size)


# ---------------------------------------------------------------------------- drawing


@dataclass(frozen=True, slots=True)
class PosterContent:
    title: str
    group_price: str
    group_price_label: str
    list_price: str
    detail: str  # seats left, or the team size of a deal
    ends: str
    scan: str
    url: str
    seed: str  # picks the placeholder's colours


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: object, width: int, lines: int) -> list[str]:
    """Break ``text`` to ``width`` pixels: at spaces for Latin words, anywhere for CJK."""
    out: list[str] = []
    current = ""
    for char in text:
        candidate = current + char
        if draw.textlength(candidate, font=font) <= width:  # type: ignore[arg-type]
            current = candidate
            continue
        space = current.rfind(" ")
        if space > 0 and char != " ":
            out.append(current[:space])
            current = current[space + 1 :] + char
        else:
            out.append(current)
            current = char.lstrip()
        if len(out) == lines:
            break
    if len(out) < lines and current:
        out.append(current)
    if len(out) == lines and "".join(out).replace(" ", "") != text.replace(" ", ""):
        out[-1] = out[-1][: max(len(out[-1]) - 1, 0)] + "…"
    return out


def _placeholder(seed: str, title: str, font_path: str | None) -> Image.Image:
    """A product picture stand-in: a gradient in colours drawn from the deal's id, with the
    title's first character."""
    digest = hashlib.sha256(seed.encode()).digest()
    top = (80 + digest[0] % 150, 80 + digest[1] % 150, 80 + digest[2] % 150)
    bottom = (top[0] // 2, top[1] // 2, top[2] // 2)
    height = PICTURE_HEIGHT
    image = Image.new("RGB", (WIDTH, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        mix = y / height
        draw.line(
            [(0, y), (WIDTH, y)],
            fill=tuple(round(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True)),
        )
    initial = (title.strip() or "?")[0]
    font = _font(font_path, 260)
    draw.text((WIDTH / 2, height / 2), initial, font=font, fill=WHITE, anchor="mm")
    return image


def _qr_image(url: str) -> Image.Image:
    code = segno.make(url, error="m", micro=False)
    modules = code.symbol_size(scale=1, border=4)[0]
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=max(QR_SIZE // modules, 3), border=4)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def render_poster(content: PosterContent, font: FontChoice | None = None) -> bytes:
    """The poster as PNG bytes."""
    font = font or poster_font()
    image = Image.new("RGB", (WIDTH, HEIGHT), WHITE)
    image.paste(_placeholder(content.seed, content.title, font.path), (0, 0))
    draw = ImageDraw.Draw(image)
    margin, y = 48, PICTURE_HEIGHT + 36

    title_font = _font(font.path, 42)
    for line in _wrap(draw, content.title, title_font, WIDTH - 2 * margin, 2):
        draw.text((margin, y), line, font=title_font, fill=INK)
        y += 56

    y += 12
    label_font = _font(font.path, 30)
    draw.text((margin, y + 22), content.group_price_label, font=label_font, fill=RED)
    price_x = margin + draw.textlength(content.group_price_label, font=label_font) + 16
    price_font = _font(font.path, 64)
    draw.text((price_x, y), content.group_price, font=price_font, fill=RED)
    list_x = price_x + draw.textlength(content.group_price, font=price_font) + 20
    list_font = _font(font.path, 32)
    draw.text((list_x, y + 22), content.list_price, font=list_font, fill=GREY)
    left, top, right, bottom = draw.textbbox((list_x, y + 22), content.list_price, font=list_font)
    middle = (top + bottom) // 2
    draw.line([(left, middle), (right, middle)], fill=GREY, width=3)

    y += 96
    detail_font = _font(font.path, 34)
    draw.text((margin, y), content.detail, font=detail_font, fill=INK)
    y += 50
    draw.text((margin, y), content.ends, font=_font(font.path, 28), fill=GREY)

    qr = _qr_image(content.url)
    qr_top = HEIGHT - qr.height - 80
    image.paste(qr, ((WIDTH - qr.width) // 2, qr_top))
    draw.text(
        (WIDTH / 2, HEIGHT - 48), content.scan, font=_font(font.path, 28), fill=GREY, anchor="mm"
    )

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# ---------------------------------------------------------------------------- cache


def poster_key(content: PosterContent, font: FontChoice) -> str:
    """The cache key (and ETag) of a poster: a digest of exactly what is drawn, every text and
    the font. Whatever else a request carries (cookies, headers) cannot make a new key."""
    parts = (*(getattr(content, name) for name in PosterContent.__slots__), font.path or "")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class PosterCache:
    """Recently drawn posters by :func:`poster_key`, least recently used dropped first.

    In-process: each API process keeps its own. A key says everything a poster shows (team
    fill, the viewer's share link, language, zone), so a changed team is a new key and stale
    entries simply age out.
    """

    def __init__(self, capacity: int = 128) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: str, png: bytes) -> None:
        with self._lock:
            self._entries[key] = png
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


posters = PosterCache()
