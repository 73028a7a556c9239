"""Pages kept whole as text with holes, for visitors who are not signed in.

Rendering the home page's templates (the layout, the tabs, the region list, every label in the
reader's language) cost about a millisecond a request, for text that is the same for every
visitor who is not signed in and asks the same page in the same language and time zone: only
the CSRF token, the slate's impression id, its cards and its "more" link differ. A ``PageFrames``
renders such a page once per key with a stand-in for each of those values, keeps the text cut
at the stand-ins, and answers each request by joining the parts with its own values, escaped as
the template would have escaped them (a ``Markup`` value goes in as it is, and so does
``bytes``: markup already in UTF-8). The parts are kept in UTF-8, so that an answer is joined
as bytes: a page with one character past Latin-1 (the language menu's 中文) is text of two bytes
a character, and encoding 25 KB of it took longer than everything else the frame does.

What a frame's text depends on is the caller's ``key`` plus what ``page_context`` derives from
the request: locale, time zone, path and query, the notice asked for, whether the time-zone
cookie is set. A page kept in frames must not show anything else of the request or the moment
(``now``) outside its holes, nor call ``form_key()`` (a key per render); the tests of each such
page compare its frame with a full render. A signed-in viewer always gets a full render.

``pagecache`` keeps the deal and team pages differently: their whole text (with the token and
form keys as stand-ins) shows stored data, so it is shared for a second at most and dropped when
the outbox names its deal or team. A frame shows no stored data outside its key and its holes,
so it is kept until the process drops its frames. Both fill the CSRF stand-in the same way
(``rendering.csrf_values``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Hashable, Mapping
from typing import Any, cast

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from pintuan.web.kit.i18n import TZ_COOKIE
from pintuan.web.kit.rendering import csrf_values, finish_page, page_context, templates

# Random per process, so no title or name shown on a page can contain it.
_MARK = "frame" + secrets.token_hex(8)
_CSRF = "csrf_token"


def _mark(name: str) -> str:
    return f"{_MARK}{name}{_MARK}"


_HOLE = re.compile(re.escape(_MARK) + r"(\w+)" + re.escape(_MARK))


class FramedPageError(Exception):
    """The page cannot be kept as a frame (it asked for a per-render form key)."""


def _no_form_key() -> str:
    raise FramedPageError("a page kept in frames cannot carry per-render form keys")


class PageFrames:
    """Frames of pages by key, at most ``max_frames`` (all dropped when full)."""

    def __init__(self, max_frames: int = 512) -> None:
        self.max_frames = max_frames
        self._kept: dict[Hashable, tuple[bytes | str, ...]] = {}
        self.rendered = 0  # frames rendered (misses), for the tests

    async def render(
        self,
        request: Request,
        template_name: str,
        context: Mapping[str, Any],
        *,
        key: Hashable,
        holes: Mapping[str, str | Markup | bytes],
    ) -> HTMLResponse:
        """The page ``template_name`` with ``context`` (whose text ``key`` decides) and
        ``holes`` filled with this request's values; the same text and headers as
        ``rendering.render`` gives."""
        values = await page_context(request)
        if values["viewer"] is not None or values["unread_notices"]:
            raise FramedPageError("a signed-in viewer's page is rendered whole")
        token = values[_CSRF]
        frame_key = (
            template_name,
            key,
            tuple(sorted(holes)),
            values["locale"],
            values["time_zone"],
            values["current_path"],
            values["notice"],
            request.method,
            TZ_COOKIE in request.cookies,
        )
        parts = self._kept.get(frame_key)
        if parts is None:
            parts = self._frame(template_name, {**values, **context}, holes)
            if len(self._kept) >= self.max_frames:
                self._kept.clear()
            self._kept[frame_key] = parts
        filled = {**holes, _CSRF: token}
        html = b"".join(
            _utf8(filled[cast(str, part)]) if index % 2 else cast(bytes, part)
            for index, part in enumerate(parts)
        )
        return finish_page(request, HTMLResponse(html))

    def _frame(
        self, template_name: str, values: dict[str, Any], holes: Mapping[str, object]
    ) -> tuple[bytes | str, ...]:
        self.rendered += 1
        stand_in = _mark(_CSRF)
        values.update({name: _mark(name) for name in holes})
        values.update(csrf_values(stand_in), form_key=_no_form_key)
        text = templates.get_template(template_name).render(values)
        # Text (in UTF-8) and hole names alternate: text, name, text, ..., text.
        return tuple(
            part if index % 2 else part.encode() for index, part in enumerate(_HOLE.split(text))
        )


def _utf8(value: str | Markup | bytes) -> bytes:
    """A hole's value in the page: escaped as the template escapes it, in UTF-8."""
    return value if isinstance(value, bytes) else str(escape(value)).encode()
