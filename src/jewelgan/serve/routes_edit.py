"""POST /v1/edit: an uploaded product photo inverted into the model and shown in every value of one attribute."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from jewelgan.edit import EditError, check_invertible, edit, invert, load_photo
from jewelgan.image_files import data_url
from jewelgan.serve.context import ServeContext, form_attributes, form_body
from jewelgan.serve.errors import ApiError
from jewelgan.serve.uploads import EDIT_COST, read_upload


def edit_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter()
    settings = ctx.settings

    @router.post("/v1/edit", tags=["edit"], dependencies=[Depends(form_body)],
                 summary="Upload a product photo; get it back in every value of one attribute.")
    async def edit_photo(request: Request, photo: UploadFile = File(..., description="JPEG, PNG, WebP, ... "
                                                                          "(not stored after the answer)"),
                         attribute: str = Form("metal", description="The attribute to step through its values."),
                         attributes: str = Form("{}", description="JSON of what the photo shows, where known, "
                                                                    "e.g. {\"category\": \"ring\"}"),
                         model: str | None = Form(None), keep_detail: bool = Form(True),
                         who: str = Depends(ctx.caller)):
        name, m = ctx.pick(model)
        try:
            check_invertible(m)
        except EditError as e:
            raise ApiError(422, str(e), "model", [n for n, x in ctx.engine.models.items()
                                                  if hasattr(x.G, "synthesis")]) from None
        if attribute not in m.attributes:
            raise ApiError(422, f"unknown attribute {attribute!r}", "attribute", list(m.attributes))
        known = form_attributes(m, attributes)
        request.state.images = m.schema.num_values(attribute)

        def work():
            image, mask = read_upload(photo.file, lambda path: load_photo(path, m.resolution), EditError,
                                      settings.max_upload_pixels)
            inv = invert(m, image, mask, known, None, settings.edit_steps[0], settings.edit_steps[1])
            edits = [edit(m, inv, {attribute: v}, keep_detail)[..., :3] for v in m.attributes[attribute]]
            return image, inv, edits

        async with ctx.heavy.take(EDIT_COST, "an edit"):  # an inversion: seconds of every core
            try:
                image, inv, edits = await run_in_threadpool(work)
            except EditError as e:
                raise ApiError(422, str(e), "photo") from None

        return {"model": name, "labels": inv.labels, "label_source": inv.label_source,
                "seconds": round(inv.seconds, 2), "attribute": attribute, "original": data_url(image),
                "reconstruction": data_url(inv.reconstruction[..., :3]),
                "images": [{"value": v, "data_url": data_url(im)} for v, im in zip(m.attributes[attribute], edits)]}

    return router
