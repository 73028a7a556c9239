"""``/continue``: after logging in or signing up, finish the action the log-in interrupted.

The page shows the kept form again (same path, same fields and ``form_key``, a CSRF token of
the new session) and the page's script sends it at once; without JavaScript a button does. The
action then runs through its own route with every rule of a form: CSRF, once per ``form_key``.
"""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from pintuan.kit.routing import Router
from pintuan.web.kit.rendering import render
from pintuan.web.kit.resume import read_action
from pintuan.web.kit.session import LoggedIn

router = Router(include_in_schema=False)


@router.get("/continue", response_class=HTMLResponse)
async def continue_action(
    request: Request, principal: LoggedIn, action: str | None = None
) -> Response:
    """Send the kept action again, as the signed-in shopper; a token that is not this
    browser's, too old, or for no resumable action goes to the home page."""
    kept = read_action(request, action)
    if kept is None:
        return RedirectResponse("/", status_code=303)
    return await render(request, "continue.html", {"kept": kept})
