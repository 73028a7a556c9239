"""HTTP endpoints of a deal's pictures: list, upload, remove, reorder."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import File, Request, Response, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal, MaybePrincipal
from pintuan.deals import images
from pintuan.deals import service as deals
from pintuan.deals.models import Deal
from pintuan.errors import field_error
from pintuan.idempotency.http import run_steps_write, run_write
from pintuan.kit.routing import Router
from pintuan.kit.schemas import StrictModel
from pintuan.media.service import image_too_large, large_url, store_image, thumbnail_url
from pintuan.services import Services, ServicesDep

router = Router(prefix="/v1/deals/{deal_id}/images", tags=["deals"])

ImageId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class DealImageOut(BaseModel):
    id: str
    url: str
    thumbnail_url: str


class DealImagesOut(BaseModel):
    deal_id: str
    data: list[DealImageOut]

    @classmethod
    def of(cls, deal: Deal) -> DealImagesOut:
        return cls(
            deal_id=deal.id,
            data=[
                DealImageOut(id=key, url=large_url(key), thumbnail_url=thumbnail_url(key))
                for key in images.image_keys(deal)
            ],
        )


class ImageOrderIn(StrictModel):
    image_ids: Annotated[list[ImageId], Field(max_length=images.MAX_IMAGES)]


async def read_upload(upload: UploadFile | None, services: Services) -> bytes:
    """The uploaded file's bytes, read no further than the limit."""
    if upload is None:
        raise field_error("file", "attach the picture as the multipart field 'file'")
    limit = services.settings.media_max_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise image_too_large(limit)
    return data


@router.get("", response_model=DealImagesOut)
async def list_deal_images(
    deal_id: str, principal: MaybePrincipal, services: ServicesDep
) -> DealImagesOut:
    """The deal's pictures in the order shown; the first is the one on its card."""
    return DealImagesOut.of(await services.db.read(deals.visible_deal, principal, deal_id))


@router.post("", status_code=201, response_model=DealImagesOut)
async def upload_deal_image(
    deal_id: str,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
    file: Annotated[UploadFile | None, File(description="A JPEG, PNG, WebP or GIF")] = None,
) -> Response:
    """Add a picture (multipart field ``file``) last among the deal's, for its merchant's staff.

    The picture is checked by its content, stripped of its metadata and kept in two sizes
    (a square thumbnail and a large one, WebP) under a digest of its content; the answer lists
    the deal's pictures with their addresses on this site.
    """

    async def steps() -> DealImagesOut:
        # Refuse a caller who may not change the deal before any costly work on the upload.
        await services.db.read(deals.deal_to_change, principal, deal_id)
        data = await read_upload(file, services)
        image = await anyio.to_thread.run_sync(
            lambda: store_image(
                services.media_store(),
                data,
                max_bytes=services.settings.media_max_bytes,
                max_pixels=services.settings.media_max_pixels,
            )
        )
        deal = await services.db.run(images.add_deal_image, principal, deal_id, image)
        return DealImagesOut.of(deal)

    return await run_steps_write(request, services, principal, steps, status_code=201)


@router.delete("/{image_id}", response_model=DealImagesOut)
async def remove_deal_image(
    deal_id: str, image_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> DealImagesOut:
    """Take a picture off the deal."""
    deal = await services.db.run(images.remove_deal_image, principal, deal_id, image_id)
    return DealImagesOut.of(deal)


@router.put("/order", response_model=DealImagesOut)
async def reorder_deal_images(
    deal_id: str,
    body: ImageOrderIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Put the deal's pictures in a new order: ``image_ids`` names each of them once."""

    def work(session: Session) -> DealImagesOut:
        return DealImagesOut.of(
            images.reorder_deal_images(session, principal, deal_id, body.image_ids)
        )

    return await run_write(request, services, principal, work)
