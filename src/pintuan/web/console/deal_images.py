"""The deal editor's pictures: upload several at once, move one earlier or later, remove one.

Plain forms like the rest of the console (CSRF token, ``form_key``), calling the same services
as ``/v1/deals/{deal_id}/images``. An upload is checked, resized and stored first (stored
pictures are content-addressed, so a repeat stores nothing new) and then added to the deal in
one transaction, once per form; a refused picture leaves the deal as it was and the editor says
which file and why.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from pintuan.deals import images
from pintuan.deals import service as deals
from pintuan.errors import AppError, NotFound
from pintuan.kit.routing import Router
from pintuan.media.service import ImageRef, image_too_large, store_image
from pintuan.web.console import merchant as console
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import request_locale
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import StaffOfMerchant

router = Router(prefix="/console", include_in_schema=False)

# One form may carry a few pictures; the body limit of upload paths has room for this many.
FILES_PER_UPLOAD = 4


def _editor_url(merchant_id: str, deal_id: str, done: str) -> str:
    return f"/console/merchants/{merchant_id}/deals/{deal_id}?done={done}#pictures"


def _check_deal(session: Session, principal: Any, merchant_id: str, deal_id: str) -> None:
    deal = deals.deal_to_change(session, principal, deal_id)
    if deal.merchant_id != merchant_id:
        raise NotFound(f"No deal {deal_id}.", code="deal_not_found")


async def _refused(
    request: Request, merchant_id: str, deal_id: str, refused: AppError, principal: Any
) -> Response:
    """Back to the editor, with the reason by the pictures."""
    message = error_message(refused, request_locale(request, principal))
    return await console.deal_editor_with_picture_error(
        request, principal, merchant_id, deal_id, message, refused.status
    )


@router.post("/merchants/{merchant_id}/deals/{deal_id}/images", dependencies=[CsrfProtected])
async def upload_pictures(
    request: Request, merchant_id: str, deal_id: str, principal: StaffOfMerchant
) -> Response:
    """Add the chosen pictures, in the order chosen, after the deal's others."""
    services = services_of(request)
    settings = services.settings
    try:
        await services.db.read(_check_deal, principal, merchant_id, deal_id)
        form = await request.form()
        uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
        if not uploads:
            raise AppError(
                "Choose one or more pictures to upload.", code="image_missing", status=422
            )
        if len(uploads) > FILES_PER_UPLOAD:
            raise AppError(
                f"Upload at most {FILES_PER_UPLOAD} pictures at a time.",
                code="too_many_files",
                status=422,
                extra={"max_files": FILES_PER_UPLOAD},
            )
        store = services.media_store()

        def keep(data: bytes) -> ImageRef:
            return store_image(
                store,
                data,
                max_bytes=settings.media_max_bytes,
                max_pixels=settings.media_max_pixels,
            )

        refs: list[ImageRef] = []
        for upload in uploads:
            data = await upload.read(settings.media_max_bytes + 1)
            if len(data) > settings.media_max_bytes:
                raise image_too_large(settings.media_max_bytes)
            refs.append(await anyio.to_thread.run_sync(keep, data))

        def work(session: Session) -> dict[str, Any]:
            _check_deal(session, principal, merchant_id, deal_id)
            for ref in refs:
                images.add_deal_image(session, principal, deal_id, ref)
            return {"added": len(refs)}

        await run_form_write(request, services, principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.code == "deal_not_found":
            raise
        return await _refused(request, merchant_id, deal_id, refused, principal)
    return RedirectResponse(_editor_url(merchant_id, deal_id, "pictures_added"), status_code=303)


async def _change(
    request: Request,
    merchant_id: str,
    deal_id: str,
    principal: Any,
    change: Any,
    done: str,
) -> Response:
    services = services_of(request)

    def work(session: Session) -> dict[str, Any]:
        _check_deal(session, principal, merchant_id, deal_id)
        change(session)
        return {}

    try:
        await run_form_write(request, services, principal, work)
    except AppError as refused:
        if refused.status >= 500 or refused.code == "deal_not_found":
            raise
        return await _refused(request, merchant_id, deal_id, refused, principal)
    return RedirectResponse(_editor_url(merchant_id, deal_id, done), status_code=303)


@router.post(
    "/merchants/{merchant_id}/deals/{deal_id}/images/{image_id}/move",
    dependencies=[CsrfProtected],
)
async def move_picture(
    request: Request, merchant_id: str, deal_id: str, image_id: str, principal: StaffOfMerchant
) -> Response:
    """Move a picture one place earlier (``step=-1``) or later (``step=1``)."""
    step = -1 if (await form_fields(request)).get("step") == "-1" else 1
    return await _change(
        request,
        merchant_id,
        deal_id,
        principal,
        lambda session: images.move_deal_image(session, principal, deal_id, image_id, step),
        "picture_moved",
    )


@router.post(
    "/merchants/{merchant_id}/deals/{deal_id}/images/{image_id}/remove",
    dependencies=[CsrfProtected],
)
async def remove_picture(
    request: Request, merchant_id: str, deal_id: str, image_id: str, principal: StaffOfMerchant
) -> Response:
    """Take a picture off the deal."""
    return await _change(
        request,
        merchant_id,
        deal_id,
        principal,
        lambda session: images.remove_deal_image(session, principal, deal_id, image_id),
        "picture_removed",
    )
