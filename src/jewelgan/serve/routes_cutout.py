"""POST /v1/cutout: an uploaded product photo cut out by the jewelry matte, at the photo's own size."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from jewelgan.image_files import data_url
from jewelgan.matte.predict import MatteError
from jewelgan.serve.context import ServeContext, form_body
from jewelgan.serve.errors import ApiError
from jewelgan.serve.uploads import full_size_reader, read_upload


def cutout_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter()
    settings = ctx.settings

    @router.post("/v1/cutout", tags=["edit"], dependencies=[Depends(form_body)],
                 summary="Upload a product photo; get the piece back as a transparent PNG (and its shadow).")
    async def cutout(request: Request, photo: UploadFile = File(..., description="JPEG, PNG, WebP, ... (not "
                                                                      "stored after the answer)"),
                     shadow: bool = Form(False, description="Also return the shadow as its own layer."),
                     who: str = Depends(ctx.caller)):
        from jewelgan.matte.predict import shipped_matte

        request.state.images = 1

        def work():
            photo_rgb = read_upload(photo.file, full_size_reader(MatteError), MatteError, settings.max_upload_pixels)
            result = shipped_matte()(photo_rgb)
            return {"width": int(result.alpha.shape[1]), "height": int(result.alpha.shape[0]),
                    "cutout": data_url(result.cutout()), "shadow": data_url(result.shadow_layer()) if shadow else None}

        async with ctx.heavy.take(1, "a cut-out"):
            try:
                return await run_in_threadpool(work)
            except MatteError as e:
                raise ApiError(422, str(e), "photo") from None

    return router
