"""The models served and the images drawn with them: generate, variants of one piece, interpolations.

Handlers draw inputs with the library's Model.*_inputs (the very draws the CLI makes), hand them to the
Engine's shared forward pass and encode with image_files: no sampling code of their own.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import zipfile

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

import jewelgan
from jewelgan.grid import make_grid
from jewelgan.image_files import check_format, encode_image, media_type
from jewelgan.inference import Model, describe, finish_images
from jewelgan.serve.context import MAX_PIXELS, ServeContext, json_body
from jewelgan.serve.errors import ApiError
from jewelgan.serve.schemas import GenerateRequest, InterpolateRequest, VariantsRequest

INLINE_PIXELS = 4 * 128 * 128  # answers up to this are encoded on the event loop (~1 ms); bigger ones in a thread


def answer(name: str, model: Model, images: np.ndarray, items: list[dict], req) -> Response:
    """The images as one image (a sheet for several), a zip with a manifest, or JSON with data URLs."""
    fmt = check_format(req.format, req.transparent)
    headers = {"X-Jewelgan-Model": name, "X-Jewelgan-Seeds": ",".join(str(i["seed"]) for i in items)}
    if req.output == "json":
        return JSONResponse({"model": name, "format": fmt, "images": [
            {**item, "data_url": f"data:{media_type(fmt)};base64," + base64.b64encode(encode_image(im, fmt)).decode()}
            for item, im in zip(items, images)]}, headers=headers)
    if req.output == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            lines = []
            for k, (item, im) in enumerate(zip(items, images)):
                file = f"{k:04d}-{item['seed']:08d}.{fmt}"
                zf.writestr(file, encode_image(im, fmt))
                lines.append(json.dumps({"file": file, **item, "model": name, "step": model.info["step"],
                                         "truncation": req.truncation}))
            zf.writestr("manifest.jsonl", "\n".join(lines) + "\n")
        return Response(buf.getvalue(), media_type="application/zip", headers={
            **headers, "Content-Disposition": 'attachment; filename="jewelgan.zip"'})
    if len(images) == 1:
        data = encode_image(images[0], fmt)
    else:
        data = encode_image(np.asarray(make_grid(images, ncol=min(len(images), 8))), fmt)
    return Response(data, media_type=media_type(fmt), headers=headers)


async def respond(name: str, model: Model, images: np.ndarray, items: list[dict], req) -> Response:
    if len(images) * (req.size or model.resolution) ** 2 <= INLINE_PIXELS:
        return answer(name, model, images, items, req)  # a thread hop would cost more than the encoding
    return await run_in_threadpool(answer, name, model, images, items, req)


def decode_rows(model: Model, labels) -> list[dict]:
    return [model.schema.decode(row) for row in labels.numpy()]


def generate_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter()
    engine, settings, caller = ctx.engine, ctx.settings, ctx.caller

    @router.get("/v1/info", tags=["models"], summary="Server version, whether keys are needed, and the caps.")
    async def info():
        return {"version": jewelgan.__version__, "auth": ctx.keyring is not None, "default_model": engine.default,
                "caps": {"max_n": settings.max_n, "max_size": settings.max_size, "max_job_n": settings.max_job_n,
                         "max_pixels": MAX_PIXELS, "max_body_bytes": settings.max_body_bytes,
                         "max_upload_bytes": settings.max_upload_bytes,
                         "max_upload_pixels": settings.max_upload_pixels}}

    def model_entry(name: str) -> dict:
        model = engine.models[name]
        card = describe(engine.paths[name]) if name in engine.paths else {}
        return {"name": name, "model": model.info["model"], "resolution": model.resolution, "sizes": model.sizes,
                "alpha": model.has_alpha, "kimg": model.info["kimg"], "attributes": model.attributes,
                "evaluation": card.get("evaluation", {})}

    @router.get("/v1/models", tags=["models"], summary="The models served, with their attributes and values.")
    async def models(who: str = Depends(caller)):
        return {"default": engine.default, "models": [model_entry(n) for n in engine.models]}

    @router.get("/v1/models/{name}", tags=["models"], summary="One model.")
    async def one_model(name: str, who: str = Depends(caller)):
        if name not in engine.models:
            raise ApiError(404, f"no model {name!r}", "name", list(engine.models))
        return model_entry(name)

    @router.post("/v1/generate", tags=["images"], dependencies=[Depends(json_body)],
                 summary="n images; image i is seed + i, as `jewelgan generate` draws it.")
    async def generate(req: GenerateRequest, request: Request, who: str = Depends(caller)):
        name, model = ctx.pick(req.model)
        attrs = ctx.check_request(model, req, req.n)
        seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
        z, labels, seeds = model.sample_inputs(req.n, attrs, seed, req.truncation)
        images = await ctx.draw(request, name, z, labels, req.truncation, req.transparent, req.size, req.resize)
        items = [{"seed": s, "attributes": a, "requested": attrs} for s, a in zip(seeds, decode_rows(model, labels))]
        return await respond(name, model, images, items, req)

    @router.post("/v1/variants", tags=["images"], dependencies=[Depends(json_body)],
                 summary="One piece (a seed) in every value of one attribute.")
    async def variants(req: VariantsRequest, request: Request, who: str = Depends(caller)):
        name, model = ctx.pick(req.model)
        if req.attribute not in model.attributes:
            raise ApiError(422, f"unknown attribute {req.attribute!r}", "attribute", list(model.attributes))
        attrs = ctx.check_request(model, req, model.schema.num_values(req.attribute))
        z, labels, values = model.variant_inputs(req.attribute, req.seed, attrs, req.truncation)
        images = await ctx.draw(request, name, z, labels, req.truncation, req.transparent, req.size, req.resize)
        items = [{"seed": req.seed, "value": v, "attributes": a} for v, a in zip(values, decode_rows(model, labels))]
        return await respond(name, model, images, items, req)

    @router.post("/v1/interpolate", tags=["images"], dependencies=[Depends(json_body)],
                 summary="A strip from seed_a's image to seed_b's (both ends included; shape and attributes morph).")
    async def interpolate(req: InterpolateRequest, request: Request, who: str = Depends(caller)):
        name, model = ctx.pick(req.model)
        attrs = ctx.check_request(model, req, req.steps)
        request.state.images = req.steps
        async with ctx.heavy_for(name, req.steps, req.size):
            raw, labels = await ctx.queued(engine.run(name, lambda: model.interpolate_raw(
                req.seed_a, req.seed_b, req.steps, attrs, req.truncation), req.steps, settings.request_timeout))
            images = finish_images(await ctx.enlarge(name, raw, labels, req.size, req.resize), req.transparent)
        ts = np.linspace(0, 1, req.steps).tolist()
        items = [{"seed": req.seed_a, "seed_b": req.seed_b, "t": round(t, 6), "attributes": a}
                 for t, a in zip(ts, decode_rows(model, labels))]
        return await respond(name, model, images, items, req)

    return router
