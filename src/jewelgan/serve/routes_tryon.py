"""POST /v1/tryon: a generated piece placed on an uploaded photo, with what the studio page needs to let
the user drag it (each piece cropped, the photo, and what covers the pieces)."""

from __future__ import annotations

import json

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from jewelgan.image_files import data_url
from jewelgan.serve.context import ServeContext, form_attributes, form_body
from jewelgan.serve.errors import ApiError
from jewelgan.serve.uploads import read_upload


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


def plain_note(lost: str) -> str:
    """Why automatic placement failed, in words for the person whose photo it is (no install commands, no CLI
    flags), and what to do: the piece is in the middle, they drag it."""
    if "optional extra" in lost:
        why = "This server cannot look for faces or hands in photos"
    elif lost.startswith("no "):  # "no face found in the photo, so there are no ear lobes ..."
        why = lost.split(", so")[0].split(";")[0]
        why = why[0].upper() + why[1:]
    elif "automatic placement knows" in lost:
        why = "Only earrings, pendants and rings are placed automatically"
    else:
        why = "The piece could not be placed automatically"
    return f"{why}, so the piece is in the middle of your photo: drag it into place, and use Size and Turn to fit it."


def tryon_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/tryon", tags=["tryon"], dependencies=[Depends(form_body)],
                 summary="Place a generated piece on an uploaded photo.")
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
        name, m = ctx.pick(model)
        if not m.has_alpha:
            raise ApiError(422, "this model draws no alpha channel, so it has no cut-outs to place", "model")
        attrs = form_attributes(m, attributes)
        points = _anchors(anchors)
        async with ctx.heavy.take(1, "a try-on"):  # the photo's decoding and compositing: one slot
            return await _place(request, ctx, name, m, attrs, points, photo, seed, truncation, scale, angle)

    return router


async def _place(request: Request, ctx: ServeContext, name: str, m, attrs: dict, points, photo: UploadFile, seed: int,
                 truncation: float, scale: float | None, angle: float | None) -> dict:
    """Draw the piece, read the photo and place the piece on it: the answer of POST /v1/tryon."""
    # scipy (under tryon's occlusion) costs a third of a second: loaded at the first try-on, not at start
    from jewelgan.tryon import TryOnError, alpha_centroid, crop_to_piece, fit_piece, load_photo, pieces_for

    try:  # the photo first: a refused upload costs no drawing
        image = await run_in_threadpool(read_upload, photo.file, load_photo, TryOnError,
                                        ctx.settings.max_upload_pixels)
    except TryOnError as e:
        raise ApiError(422, str(e), "photo") from None
    z, labels, _ = m.sample_inputs(1, attrs, seed, truncation)
    cutout = (await ctx.draw(request, name, z, labels, truncation, transparent=True, size=max(m.sizes),
                             gated=False))[0]  # this request holds a heavy-work slot already
    category = m.schema.decode(labels[0].numpy()).get("category")

    def work():
        fitted = fit_piece(image, cutout, category, points, scale, angle, centre_if_lost=True)
        pieces = []  # what the page previews at each anchor: the piece cropped, and its centre of mass
        for part in pieces_for(fitted.cutout, fitted.anchors):  # the piece as placed (a ring wrapped, ...)
            crop = crop_to_piece(part)
            pieces.append((crop, alpha_centroid(crop[..., 3].astype(np.float64))))
        # what covers the pieces, for the page's preview: the photo's own pixels, opaque where they are in front
        cover = None
        if fitted.front is not None and fitted.front.max() > 0:
            cover = np.dstack([image, np.round(fitted.front * 255).astype(np.uint8)])
        return fitted, pieces, cover

    try:
        fitted, pieces, cover = await run_in_threadpool(work)
    except TryOnError as e:
        raise ApiError(422, str(e), "anchors" if "anchor" in str(e) else "photo") from None
    note = None if fitted.lost is None else plain_note(fitted.lost)
    # the page drags pieces by their middles: where found pieces hang from a lobe or a chain, it gets the
    # middles they landed at, so a drag and a download start from the picture it shows
    anchors = [list(p.centroid) for p in fitted.placements] if fitted.hung else fitted.anchors
    placement = {"anchors": anchors, "scale": fitted.scale, "angle": fitted.angle, "source": fitted.source}
    return {"model": name, "seed": seed, "category": category, "placement": placement, "note": note,
            "width": int(image.shape[1]), "height": int(image.shape[0]), "photo": data_url(image, "jpeg"),
            "pieces": [{"data_url": data_url(crop), "centroid": list(c)} for crop, c in pieces],
            "cover": None if cover is None else data_url(cover), "composite": data_url(fitted.composite)}
