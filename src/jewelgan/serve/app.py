"""The HTTP API (FastAPI, OpenAPI at /docs) and the browser studio at /.

Handlers validate, draw inputs with the library's Model.*_inputs (the very draws the CLI makes), hand
them to the Engine's shared forward pass and encode with image_files: no sampling code of their own.
Every refusal is a JSON body {"error", "field", "choices"?} with a 4xx (503 + Retry-After when busy).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import os
import secrets
import tempfile
import zipfile
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

import jewelgan
from jewelgan.inference import finish_images
from jewelgan.grid import make_grid
from jewelgan.image_files import ALPHA_FORMATS, check_format, encode_image, media_type
from jewelgan.inference import Model, describe
from jewelgan.serve.access import KeyRing, RateLimiter, read_keys
from jewelgan.serve.engine import Engine, Overloaded
from jewelgan.serve.errors import ApiError, install_error_handlers
from jewelgan.serve.jobs import STATUSES, JobError, JobStore
from jewelgan.serve.observability import AccessLog, Admission, BodyLimit, Metrics
from jewelgan.serve.schemas import GenerateRequest, InterpolateRequest, JobRequest, VariantsRequest
from jewelgan.serve.settings import ServeSettings

STATIC = Path(__file__).parent / "static"
MAX_PIXELS = 32 * 512 * 512  # pixels in one answer: n x size^2 (a cap on encoding time and memory)
INLINE_PIXELS = 4 * 128 * 128  # answers up to this are encoded on the event loop (~1 ms); bigger ones in a thread


def read_upload(data: bytes, reader, error: type[Exception]):
    """reader(path) of an uploaded file: the bytes live in a temporary file for the decoder only, deleted
    before this returns (the upload is never kept); the temporary path in an error reads "the uploaded photo"."""
    fd, path = tempfile.mkstemp(prefix="jewelgan-upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            return reader(path)
        except error as e:
            raise error(str(e).replace(path, "the uploaded photo")) from None
    finally:
        os.unlink(path)


def create_app(settings: ServeSettings | None = None, engine: Engine | None = None) -> FastAPI:
    """The ASGI app: the FastAPI app inside the body-size guard. Loads the models now, so a bad model
    fails at start, not at the first request."""
    settings = (settings or ServeSettings()).check()
    keyring = KeyRing(read_keys(settings.keys_file)) if settings.keys_file else None
    limiter = RateLimiter(settings.rate, settings.burst)
    metrics = Metrics()
    engine = engine or Engine.from_names(settings.models or None, settings.device, settings.compile,
                                         max_queue_images=settings.max_queue_images, max_batch=settings.max_batch)
    engine.on_images = lambda model, n: metrics.images.labels(model).inc(n)
    jobs = JobStore(settings.jobs_dir, engine.paths, busy=engine.busy)

    @asynccontextmanager
    async def lifespan(app):
        engine.start()  # no-ops on the first start; restarts the workers if an earlier shutdown stopped them
        jobs.start()
        yield
        jobs.stop()  # the running job stops between batches and stays queued for the next start
        engine.stop()

    app = FastAPI(title="jewelgan", version=jewelgan.__version__, lifespan=lifespan,
                  description="Generate jewelry product images: pick a model and attributes, get images, "
                              "variants of one piece, interpolations and bulk jobs.")
    app.state.engine, app.state.jobs, app.state.settings, app.state.metrics = engine, jobs, settings, metrics
    app.add_middleware(AccessLog, metrics=metrics)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    install_error_handlers(app)

    # ------------------------------------------------------------------ who is calling
    bearer = HTTPBearer(auto_error=False, description="An API key from `jewelgan serve-keys add`.")
    header_key = APIKeyHeader(name="X-API-Key", auto_error=False)

    async def caller(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(bearer),
                     key: str | None = Depends(header_key)) -> str:
        if keyring is None:
            name = "local"  # loopback only, one user: no keys, no rate limit
        else:
            name = keyring.identify(cred.credentials if cred else key)
            if name is None:
                raise ApiError(401, "missing or unknown API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                               "Authorization")
            wait = limiter.allow(name)
            if wait:
                raise ApiError(429, f"rate limit of {settings.rate:g} requests/s for key {name!r} reached",
                               "Authorization", retry_after=max(1, math.ceil(wait)))
        request.state.caller = name
        return name

    # ------------------------------------------------------------------ checks shared by the handlers
    def pick(name: str | None) -> tuple[str, Model]:
        name = name or engine.default
        if name not in engine.models:
            raise ApiError(422, f"unknown model {name!r}", "model", list(engine.models))
        return name, engine.models[name]

    def check_request(model: Model, req, n: int) -> dict[str, str]:
        if n > settings.max_n:
            raise ApiError(422, f"at most {settings.max_n} images per request (use POST /v1/jobs for more)", "n")
        size = getattr(req, "size", None)
        if size is not None and size > settings.max_size:
            raise ApiError(422, f"size must be <= {settings.max_size}", "size")
        if n * (size or model.resolution) ** 2 > MAX_PIXELS:
            raise ApiError(422, f"n x size^2 must be <= {MAX_PIXELS} pixels: ask for fewer or smaller images", "size")
        check_output(model, req)
        return check_attributes(model, req.attributes)

    def check_output(model: Model, req) -> None:
        try:
            check_format(req.format, req.transparent)
        except ValueError as e:
            raise ApiError(422, str(e), "format", ALPHA_FORMATS if req.transparent else None) from None
        if req.transparent and not model.has_alpha:
            raise ApiError(422, "this model draws no alpha channel, so it cannot make transparent cut-outs",
                           "transparent")

    def check_attributes(model: Model, attrs: dict[str, str]) -> dict[str, str]:
        known = model.attributes
        for name, value in attrs.items():
            if name not in known:
                raise ApiError(422, f"unknown attribute {name!r}", "attributes", list(known))
            if value not in known[name]:
                raise ApiError(422, f"unknown value {value!r} for attribute {name!r}", f"attributes.{name}",
                               known[name])
        return dict(attrs)

    def form_attributes(model: Model, text: str) -> dict[str, str]:
        """The `attributes` field of a multipart form: JSON of attribute: value, checked against the model."""
        try:
            known = json.loads(text)
        except json.JSONDecodeError as e:
            raise ApiError(422, f"attributes is not JSON ({e.msg})", "attributes") from None
        if not isinstance(known, dict) or not all(isinstance(v, str) for v in known.values()):
            raise ApiError(422, "attributes must be a JSON object of attribute: value", "attributes")
        return check_attributes(model, known)

    async def draw(request: Request, name: str, z, labels, truncation: float, transparent: bool) -> np.ndarray:
        request.state.images = len(z)
        return finish_images(await queued(engine.submit(name, z, labels, truncation, settings.request_timeout)),
                             transparent)

    async def queued(waiting):
        try:
            return await waiting
        except Overloaded as e:
            metrics.overloads.inc()
            raise ApiError(503, str(e), None, retry_after=e.retry_after) from None

    def answer(name: str, model: Model, images: np.ndarray, items: list[dict], req) -> Response:
        """The images as one image (a sheet for several), a zip with a manifest, or JSON with data URLs."""
        fmt = check_format(req.format, req.transparent)
        if req.size and req.size != model.resolution:
            from PIL import Image

            images = np.stack([np.asarray(Image.fromarray(im).resize((req.size, req.size), Image.LANCZOS))
                               for im in images])
        headers = {"X-Jewelgan-Model": name, "X-Jewelgan-Seeds": ",".join(str(i["seed"]) for i in items)}
        if req.output == "json":
            return JSONResponse({"model": name, "format": fmt, "images": [
                {**item, "data_url": f"data:{media_type(fmt)};base64,"
                                     + base64.b64encode(encode_image(im, fmt)).decode()}
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

    # ------------------------------------------------------------------ pages and probes
    @app.get("/", include_in_schema=False)
    async def studio():
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers.")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: models loaded, generator running, queue not full.")
    async def readyz():
        ready = engine.alive and engine.queued_images < settings.max_queue_images
        body = {"ready": ready, "models": list(engine.models), "queue_images": engine.queued_images}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics.")
    async def prometheus():
        metrics.queue.set(engine.queued_images)
        for status in STATUSES:
            metrics.jobs.labels(status).set(sum(j["status"] == status for j in jobs.jobs.values()))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------------ the API
    @app.get("/v1/info", tags=["models"], summary="Server version, whether keys are needed, and the caps.")
    async def info():
        return {"version": jewelgan.__version__, "auth": keyring is not None, "default_model": engine.default,
                "caps": {"max_n": settings.max_n, "max_size": settings.max_size, "max_job_n": settings.max_job_n,
                         "max_pixels": MAX_PIXELS, "max_body_bytes": settings.max_body_bytes}}

    def model_entry(name: str) -> dict:
        model = engine.models[name]
        card = describe(engine.paths[name]) if name in engine.paths else {}
        return {"name": name, "model": model.info["model"], "resolution": model.resolution,
                "alpha": model.has_alpha, "kimg": model.info["kimg"], "attributes": model.attributes,
                "evaluation": card.get("evaluation", {})}

    @app.get("/v1/models", tags=["models"], summary="The models served, with their attributes and values.")
    async def models(who: str = Depends(caller)):
        return {"default": engine.default, "models": [model_entry(n) for n in engine.models]}

    @app.get("/v1/models/{name}", tags=["models"], summary="One model.")
    async def one_model(name: str, who: str = Depends(caller)):
        if name not in engine.models:
            raise ApiError(404, f"no model {name!r}", "name", list(engine.models))
        return model_entry(name)

    @app.post("/v1/generate", tags=["images"], summary="n images; image i is seed + i, as `jewelgan generate` draws it.")
    async def generate(req: GenerateRequest, request: Request, who: str = Depends(caller)):
        name, model = pick(req.model)
        attrs = check_request(model, req, req.n)
        seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
        z, labels, seeds = model.sample_inputs(req.n, attrs, seed, req.truncation)
        images = await draw(request, name, z, labels, req.truncation, req.transparent)
        items = [{"seed": s, "attributes": a, "requested": attrs} for s, a in zip(seeds, decode_rows(model, labels))]
        return await respond(name, model, images, items, req)

    @app.post("/v1/variants", tags=["images"], summary="One piece (a seed) in every value of one attribute.")
    async def variants(req: VariantsRequest, request: Request, who: str = Depends(caller)):
        name, model = pick(req.model)
        if req.attribute not in model.attributes:
            raise ApiError(422, f"unknown attribute {req.attribute!r}", "attribute", list(model.attributes))
        attrs = check_request(model, req, model.schema.num_values(req.attribute))
        z, labels, values = model.variant_inputs(req.attribute, req.seed, attrs, req.truncation)
        images = await draw(request, name, z, labels, req.truncation, req.transparent)
        items = [{"seed": req.seed, "value": v, "attributes": a} for v, a in zip(values, decode_rows(model, labels))]
        return await respond(name, model, images, items, req)

    @app.post("/v1/interpolate", tags=["images"],
              summary="A strip from seed_a's image to seed_b's (both ends included; shape and attributes morph).")
    async def interpolate(req: InterpolateRequest, request: Request, who: str = Depends(caller)):
        name, model = pick(req.model)
        attrs = check_request(model, req, req.steps)
        request.state.images = req.steps
        raw, labels = await queued(engine.run(name, lambda: model.interpolate_raw(
            req.seed_a, req.seed_b, req.steps, attrs, req.truncation), req.steps, settings.request_timeout))
        images = finish_images(raw, req.transparent)
        ts = np.linspace(0, 1, req.steps).tolist()
        items = [{"seed": req.seed_a, "seed_b": req.seed_b, "t": round(t, 6), "attributes": a}
                 for t, a in zip(ts, decode_rows(model, labels))]
        return await respond(name, model, images, items, req)

    edit_slot = asyncio.Semaphore(1)  # an inversion takes seconds of CPU: one at a time, others told to retry

    @app.post("/v1/edit", tags=["edit"], summary="Upload a product photo; get it back in every value of one attribute.")
    async def edit_photo(request: Request, photo: UploadFile = File(..., description="JPEG, PNG, WebP, ... "
                                                                          "(not stored after the answer)"),
                         attribute: str = Form("metal", description="The attribute to step through its values."),
                         attributes: str = Form("{}", description="JSON of what the photo shows, where known, "
                                                                    "e.g. {\"category\": \"ring\"}"),
                         model: str | None = Form(None), keep_detail: bool = Form(True),
                         who: str = Depends(caller)):
        from jewelgan.edit import EditError, check_invertible, edit, invert, load_photo

        name, m = pick(model)
        try:
            check_invertible(m)
        except EditError as e:
            raise ApiError(422, str(e), "model", [n for n, x in engine.models.items()
                                                  if hasattr(x.G, "synthesis")]) from None
        if attribute not in m.attributes:
            raise ApiError(422, f"unknown attribute {attribute!r}", "attribute", list(m.attributes))
        known = form_attributes(m, attributes)
        if edit_slot.locked():
            raise ApiError(503, "another photo is being edited; retry shortly", None, retry_after=10)
        data = await photo.read()
        request.state.images = m.schema.num_values(attribute)

        def work():
            image, mask = read_upload(data, lambda path: load_photo(path, m.resolution), EditError)
            inv = invert(m, image, mask, known, None, settings.edit_steps[0], settings.edit_steps[1])
            edits = [edit(m, inv, {attribute: v}, keep_detail)[..., :3] for v in m.attributes[attribute]]
            return image, inv, edits

        async with edit_slot:
            try:
                image, inv, edits = await run_in_threadpool(work)
            except EditError as e:
                raise ApiError(422, str(e), "photo") from None

        def url(im):
            return "data:image/png;base64," + base64.b64encode(encode_image(im, "png")).decode()

        return {"model": name, "labels": inv.labels, "label_source": inv.label_source,
                "seconds": round(inv.seconds, 2), "attribute": attribute, "original": url(image),
                "reconstruction": url(inv.reconstruction[..., :3]),
                "images": [{"value": v, "data_url": url(im)} for v, im in zip(m.attributes[attribute], edits)]}

    @app.post("/v1/tryon", tags=["tryon"], summary="Place a generated piece on an uploaded photo.")
    async def tryon(request: Request, photo: UploadFile = File(..., description="The customer's photo (not stored "
                                                                     "after the answer; long side capped at 2,048 px)"),
                    attributes: str = Form("{}", description='JSON of the piece\'s attributes, e.g. {"category": '
                                                             '"earrings"}; the category decides where it goes'),
                    seed: int = Form(0, ge=0, le=2**62), truncation: float = Form(1.0, ge=0.0, le=1.0),
                    model: str | None = Form(None),
                    anchors: str | None = Form(None, description="JSON [[x, y], ...] in the photo's pixels; "
                                                                "default: from body landmarks, else the centre"),
                    scale: float | None = Form(None, gt=0.0, le=1.0), angle: float | None = Form(None, ge=-360, le=360),
                    who: str = Depends(caller)):
        from jewelgan.tryon import TryOnError, alpha_centroid, crop_to_piece, load_photo, pieces_for, try_on

        name, m = pick(model)
        if not m.has_alpha:
            raise ApiError(422, "this model draws no alpha channel, so it has no cut-outs to place", "model")
        attrs = form_attributes(m, attributes)
        points = None
        if anchors is not None:
            try:
                points = [(float(x), float(y)) for x, y in json.loads(anchors)]
            except (json.JSONDecodeError, TypeError, ValueError):
                raise ApiError(422, "anchors must be JSON [[x, y], ...]", "anchors") from None
            if len(points) not in (1, 2):
                raise ApiError(422, "one anchor, or two for earrings", "anchors")
        data = await photo.read()
        z, labels, _ = m.sample_inputs(1, attrs, seed, truncation)
        cutout = (await draw(request, name, z, labels, truncation, transparent=True))[0]
        category = m.schema.decode(labels[0].numpy()).get("category")

        def work():
            image = read_upload(data, load_photo, TryOnError)
            note, source, at, front = None, "given", points, None
            if at is None:
                try:
                    from jewelgan.tryon.landmarks import find_placement

                    auto = find_placement(image, category or "")
                    at, source = auto.anchors, auto.source
                    scale_, angle_ = auto.scale, auto.angle
                    front = auto.front if scale is None else None
                except TryOnError as e:  # no landmarks, no extra, or a category it cannot place: the user drags it
                    note = f"{str(e).split('; give --anchor')[0]}; placed in the middle: drag it into place"
                    h, w = image.shape[:2]
                    at = [(w * 0.4, h / 2), (w * 0.6, h / 2)] if category == "earrings" else [(w / 2, h / 2)]
                    source, scale_, angle_ = "centre", 0.1, 0.0
            else:
                scale_, angle_ = 0.1, 0.0
            # what the request gave wins over what was found
            placed = {"anchors": at, "scale": scale if scale is not None else scale_,
                      "angle": angle if angle is not None else angle_, "source": source}
            at = [tuple(a) for a in at]
            from jewelgan.tryon.landmarks import available, find_front

            if front is None and source != "centre" and available():
                front = find_front(image, category or "", at, placed["scale"])  # dragged or resized by the user
            composite, _ = try_on(image, cutout, at, placed["scale"], placed["angle"], front=front)
            pieces = []  # what the page previews at each anchor: the piece cropped, and its centre of mass
            for part in pieces_for(cutout, at):
                crop = crop_to_piece(part)
                pieces.append((crop, alpha_centroid(crop[..., 3].astype(np.float64))))
            # what covers the pieces, for the page's preview: the photo's own pixels, opaque where they are in front
            cover = None
            if front is not None and front.max() > 0:
                cover = np.dstack([image, np.round(front * 255).astype(np.uint8)])
            return image, composite, placed, note, pieces, cover

        try:
            image, composite, placed, note, pieces, cover = await run_in_threadpool(work)
        except TryOnError as e:
            raise ApiError(422, str(e), "anchors" if "anchor" in str(e) else "photo") from None

        def url(im, fmt="png"):
            return f"data:{media_type(fmt)};base64," + base64.b64encode(encode_image(im, fmt)).decode()

        return {"model": name, "seed": seed, "category": category, "placement": placed, "note": note,
                "width": int(image.shape[1]), "height": int(image.shape[0]), "photo": url(image, "jpeg"),
                "pieces": [{"data_url": url(crop), "centroid": list(c)} for crop, c in pieces],
                "cover": None if cover is None else url(cover), "composite": url(composite)}

    @app.post("/v1/jobs", tags=["jobs"], status_code=202, summary="Submit a bulk job (resumable, survives restarts).")
    async def submit_job(req: JobRequest, who: str = Depends(caller)):
        name, model = pick(req.model)
        if req.n > settings.max_job_n:
            raise ApiError(422, f"at most {settings.max_job_n} images per job", "n")
        check_output(model, req)
        attrs = check_attributes(model, req.attributes)
        request = {"model": name, "n": req.n, "seed": req.seed, "attributes": attrs, "truncation": req.truncation,
                   "transparent": req.transparent, "format": check_format(req.format, req.transparent)}
        try:
            job = jobs.submit(request, who)
        except JobError as e:
            raise ApiError(e.status, str(e), None, retry_after=30 if e.status == 503 else None) from None
        return JSONResponse(job, status_code=202, headers={"Location": f"/v1/jobs/{job['id']}"})

    @app.get("/v1/jobs", tags=["jobs"], summary="Your jobs, oldest first.")
    async def list_jobs(who: str = Depends(caller)):
        return {"jobs": jobs.list(who)}

    def job_call(fn, job_id: str, who: str):
        try:
            return fn(job_id, who)
        except JobError as e:
            raise ApiError(e.status, str(e), "job_id") from None

    @app.get("/v1/jobs/{job_id}", tags=["jobs"], summary="A job's status and progress.")
    async def get_job(job_id: str, who: str = Depends(caller)):
        return jobs.public(job_call(jobs.get, job_id, who))

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"], summary="Cancel a queued or running job.")
    async def cancel_job(job_id: str, who: str = Depends(caller)):
        return job_call(jobs.cancel, job_id, who)

    @app.get("/v1/jobs/{job_id}/download", tags=["jobs"], summary="A finished job's images and manifest as a zip.",
             response_class=FileResponse)
    async def download_job(job_id: str, who: str = Depends(caller)):
        path = await run_in_threadpool(job_call, jobs.archive, job_id, who)
        return FileResponse(path, media_type="application/zip", filename=path.name)

    if settings.study is not None:
        from jewelgan.serve.study_routes import add_study_routes
        from jewelgan.study.store import StudyStore

        add_study_routes(app, StudyStore(settings.study))

    app.state.admission = Admission(app, settings.max_inflight, metrics)
    app.state.asgi = BodyLimit(app.state.admission, settings.max_body_bytes, {"/v1/edit": settings.max_upload_bytes,
                                                                       "/v1/tryon": settings.max_upload_bytes})
    return app


def create_asgi(settings: ServeSettings | None = None) -> BodyLimit:
    """What uvicorn serves: the app wrapped in the body-size guard (outside FastAPI's own error handling,
    so an oversized body is a 413 whatever the handler was doing)."""
    return create_app(settings).state.asgi
