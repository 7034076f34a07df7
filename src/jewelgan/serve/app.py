"""The HTTP API (FastAPI, OpenAPI at /docs) and the browser studio at /: the shared state built once and
the routes of each area included from their modules (routes_ops, routes_generate, routes_edit,
routes_tryon, routes_jobs, and study_routes with --study).

Every refusal is a JSON body {"error", "field", "choices"?} with a 4xx (503 + Retry-After when busy).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

import jewelgan
from jewelgan.serve.access import KeyRing, read_keys
from jewelgan.serve.context import ServeContext
from jewelgan.serve.engine import Engine
from jewelgan.serve.errors import install_error_handlers
from jewelgan.serve.jobs import JobStore
from jewelgan.serve.observability import AccessLog, Admission, BodyLimit, Metrics
from jewelgan.serve.routes_cutout import cutout_router
from jewelgan.serve.routes_edit import edit_router
from jewelgan.serve.routes_generate import generate_router
from jewelgan.serve.routes_jobs import jobs_router
from jewelgan.serve.routes_ops import STATIC, ops_router
from jewelgan.serve.routes_tryon import tryon_router
from jewelgan.serve.settings import ServeSettings, SettingsError

AREAS = (ops_router, generate_router, edit_router, cutout_router, tryon_router, jobs_router)  # in the order /docs lists them


def create_app(settings: ServeSettings | None = None, engine: Engine | None = None) -> FastAPI:
    """The ASGI app: the FastAPI app inside the body-size guard. Loads the models now, so a bad model
    fails at start, not at the first request."""
    settings = (settings or ServeSettings()).check()
    keyring = KeyRing(read_keys(settings.keys_file)) if settings.keys_file else None
    admin = admin_key(settings, keyring)
    metrics = Metrics()
    engine = engine or Engine.from_names(settings.models or None, settings.device, settings.compile,
                                         max_queue_images=settings.max_queue_images, max_batch=settings.max_batch)
    engine.on_images = lambda model, n: metrics.images.labels(model).inc(n)
    jobs = JobStore(settings.jobs_dir, engine.paths, busy=engine.busy, max_jobs_per_key=settings.max_jobs_per_key,
                    max_images_per_key=settings.max_job_images_per_key, slice_s=settings.job_slice,
                    ttl_s=settings.job_ttl, admin=admin)

    @asynccontextmanager
    async def lifespan(app):
        engine.start()  # no-ops on the first start; restarts the workers if an earlier shutdown stopped them
        jobs.start()
        yield
        jobs.stop()  # the running job stops between batches and stays queued for the next start
        engine.stop()

    docs = {} if settings.docs_open() else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="jewelgan", version=jewelgan.__version__, lifespan=lifespan, **docs,
                  description="Generate jewelry product images: pick a model and attributes, get images, "
                              "variants of one piece, interpolations and bulk jobs.")
    app.state.engine, app.state.jobs, app.state.settings, app.state.metrics = engine, jobs, settings, metrics
    app.add_middleware(AccessLog, metrics=metrics)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_error_handlers(app)

    ctx = app.state.ctx = ServeContext(settings, engine, jobs, metrics, keyring)
    for area in AREAS:
        app.include_router(area(ctx))
    if not settings.docs_open():
        add_keyed_docs(app, ctx)
    if settings.study is not None:
        from jewelgan.serve.study_routes import add_study_routes
        from jewelgan.study.store import StudyStore

        add_study_routes(app, StudyStore(settings.study))

    app.state.admission = Admission(app, settings.max_inflight, metrics)
    app.state.asgi = BodyLimit(app.state.admission, settings.max_body_bytes, {"/v1/edit": settings.max_upload_bytes,
                                                                       "/v1/tryon": settings.max_upload_bytes})
    return app


def admin_key(settings: ServeSettings, keyring: KeyRing | None) -> str | None:
    """With keys, the key that takes over the jobs made without keys: --admin-key, else the file's first key."""
    if keyring is None:
        return None
    names = list(keyring.hashes.values())
    if settings.admin_key is not None and settings.admin_key not in names:
        raise SettingsError(f"--admin-key {settings.admin_key!r}: no such key in {settings.keys_file} "
                            f"(keys: {', '.join(names)})")
    return settings.admin_key or names[0]


def add_keyed_docs(app: FastAPI, ctx: ServeContext) -> None:
    """/openapi.json, /docs and /redoc for key holders only (the default with keys: a public server does not
    hand out its map)."""
    keyed = [Depends(ctx.caller)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=keyed)
    async def openapi():
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=keyed)
    async def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - API docs")

    @app.get("/redoc", include_in_schema=False, dependencies=keyed)
    async def redoc():
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - API docs")


def create_asgi(settings: ServeSettings | None = None) -> BodyLimit:
    """What uvicorn serves: the app wrapped in the body-size guard (outside FastAPI's own error handling,
    so an oversized body is a 413 whatever the handler was doing)."""
    return create_app(settings).state.asgi
