"""POST /v1/tryon: a generated piece placed on an uploaded photo, with what the studio page needs to let
the user drag it (each piece cropped, the photo, and what covers the pieces)."""

from __future__ import annotations

import base64
import json

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from jewelgan.image_files import encode_image, media_type
from jewelgan.serve.context import ServeContext, form_attributes, read_upload
from jewelgan.serve.errors import ApiError


def _data_url(im, fmt: str = "png") -> str:
    return f"data:{media_type(fmt)};base64," + base64.b64encode(encode_image(im, fmt)).decode()


def _anchors(text: str | None) -> list[tuple[float, float]] | None:
    if text is None:
        return None
    try:
        points = [(float(x), float(y)) for x, y in json.loads(text)]
    except (json.JSONDecodeError, TypeError, ValueError):
        raise ApiError(422, "anchors must be JSON [[x, y], ...]", "anchors") from None
    if len(points) not in (1, 2):
        raise ApiError(422, "one anchor, or two for earrings", "anchors")
    return points


def tryon_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/tryon", tags=["tryon"], summary="Place a generated piece on an uploaded photo.")
    async def tryon(request: Request,
                    photo: UploadFile = File(..., description="The customer's photo (not stored after the answer; "
                                                              "long side capped at 2,048 px)"),
                    attributes: str = Form("{}", description='JSON of the piece\'s attributes, e.g. {"category": '
                                                             '"earrings"}; the category decides where it goes'),
                    seed: int = Form(0, ge=0, le=2**62), truncation: float = Form(1.0, ge=0.0, le=1.0),
                    model: str | None = Form(None),
                    anchors: str | None = Form(None, description="JSON [[x, y], ...] in the photo's pixels; "
                                                                "default: from body landmarks, else the centre"),
                    scale: float | None = Form(None, gt=0.0, le=1.0), angle: float | None = Form(None, ge=-360, le=360),
                    who: str = Depends(ctx.caller)):
        # scipy (under tryon's occlusion) costs a third of a second: loaded at the first try-on, not at start
        from jewelgan.tryon import TryOnError, alpha_centroid, crop_to_piece, fit_piece, load_photo, pieces_for

        name, m = ctx.pick(model)
        if not m.has_alpha:
            raise ApiError(422, "this model draws no alpha channel, so it has no cut-outs to place", "model")
        attrs = form_attributes(m, attributes)
        points = _anchors(anchors)
        data = await photo.read()
        z, labels, _ = m.sample_inputs(1, attrs, seed, truncation)
        cutout = (await ctx.draw(request, name, z, labels, truncation, transparent=True, size=max(m.sizes)))[0]
        category = m.schema.decode(labels[0].numpy()).get("category")

        def work():
            image = read_upload(data, load_photo, TryOnError)
            fitted = fit_piece(image, cutout, category, points, scale, angle, centre_if_lost=True)
            pieces = []  # what the page previews at each anchor: the piece cropped, and its centre of mass
            for part in pieces_for(cutout, fitted.anchors):
                crop = crop_to_piece(part)
                pieces.append((crop, alpha_centroid(crop[..., 3].astype(np.float64))))
            # what covers the pieces, for the page's preview: the photo's own pixels, opaque where they are in front
            cover = None
            if fitted.front is not None and fitted.front.max() > 0:
                cover = np.dstack([image, np.round(fitted.front * 255).astype(np.uint8)])
            return image, fitted, pieces, cover

        try:
            image, fitted, pieces, cover = await run_in_threadpool(work)
        except TryOnError as e:
            raise ApiError(422, str(e), "anchors" if "anchor" in str(e) else "photo") from None
        note = None
        if fitted.lost is not None:  # no landmarks, no extra, or a category it cannot place: the user drags it
            note = f"{fitted.lost.split('; give --anchor')[0]}; placed in the middle: drag it into place"
        placement = {"anchors": fitted.anchors, "scale": fitted.scale, "angle": fitted.angle, "source": fitted.source}
        return {"model": name, "seed": seed, "category": category, "placement": placement, "note": note,
                "width": int(image.shape[1]), "height": int(image.shape[0]), "photo": _data_url(image, "jpeg"),
                "pieces": [{"data_url": _data_url(crop), "centroid": list(c)} for crop, c in pieces],
                "cover": None if cover is None else _data_url(cover), "composite": _data_url(fitted.composite)}

    return router
