"""The developer's console: the webhook endpoints of the apps a signed-in person owns, and each
endpoint's latest deliveries with their attempts, status codes and timings.

Any signed-in person may open it; it shows only the apps they own (none: a short explanation).
"""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from pintuan.kit.routing import Router
from pintuan.web.kit.i18n import N_
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn
from pintuan.webhooks import service as webhooks

router = Router(prefix="/console/developer", include_in_schema=False)

LATEST = 10
DELIVERY_STATUSES: dict[str, str] = {
    "pending": N_("Waiting"),
    "delivered": N_("Delivered"),
    "failed": N_("Given up"),
}
DELIVERY_TONES = {"pending": "", "delivered": "good", "failed": "bad"}
APP_STATUSES: dict[str, str] = {
    "pending": N_("Waiting for review"),
    "approved": N_("Approved"),
    "suspended": N_("Suspended"),
}


@router.get("/webhooks", response_class=HTMLResponse)
async def webhook_overview(request: Request, principal: LoggedIn) -> Response:
    apps = await services_of(request).db.read(
        webhooks.developer_webhooks, principal.user_id, LATEST
    )
    return await render(
        request,
        "developer/webhooks.html",
        {
            "apps": apps,
            "delivery_statuses": DELIVERY_STATUSES,
            "delivery_tones": DELIVERY_TONES,
            "app_statuses": APP_STATUSES,
        },
    )
