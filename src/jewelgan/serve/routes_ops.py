"""Operations: the studio page at /, liveness, readiness (no API key on any) and Prometheus metrics (open
without keys; with keys only with --public-metrics, else for key holders)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from jewelgan.serve.context import ServeContext
from jewelgan.serve.jobs import STATUSES

STATIC = Path(__file__).parent / "static"


def ops_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter()
    engine, jobs, metrics = ctx.engine, ctx.jobs, ctx.metrics

    @router.get("/", include_in_schema=False)
    async def studio():
        return FileResponse(STATIC / "index.html")

    @router.get("/healthz", tags=["operations"], summary="Liveness: the process answers.")
    async def healthz():
        return {"status": "ok"}

    @router.get("/readyz", tags=["operations"], summary="Readiness: models loaded, generator running, queue not full.")
    async def readyz():
        ready = engine.alive and engine.queued_images < ctx.settings.max_queue_images
        body = {"ready": ready, "models": list(engine.models), "queue_images": engine.queued_images}
        return JSONResponse(body, status_code=200 if ready else 503)

    keyed = [] if ctx.settings.metrics_open() else [Depends(ctx.caller)]

    @router.get("/metrics", tags=["operations"], summary="Prometheus metrics.", dependencies=keyed)
    async def prometheus():
        metrics.queue.set(engine.queued_images)
        listed = list(jobs.jobs.values())
        for status in STATUSES:
            metrics.jobs.labels(status).set(sum(j["status"] == status for j in listed))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
