"""Bulk jobs: submit, list, follow, cancel or delete, and download (each caller sees only their own)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from jewelgan.image_files import check_format
from jewelgan.serve.context import ServeContext, check_attributes, check_output, check_size, json_body
from jewelgan.serve.errors import ApiError
from jewelgan.serve.jobs import JobError
from jewelgan.serve.schemas import JobRequest


def job_call(fn, job_id: str, who: str):
    """fn(job_id, who) of the JobStore, its refusal as the API's error."""
    try:
        return fn(job_id, who)
    except JobError as e:
        raise ApiError(e.status, str(e), "job_id") from None


def jobs_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter()
    jobs, settings, caller = ctx.jobs, ctx.settings, ctx.caller

    @router.post("/v1/jobs", tags=["jobs"], status_code=202, dependencies=[Depends(json_body)],
                 summary="Submit a bulk job (resumable, survives restarts).")
    async def submit_job(req: JobRequest, who: str = Depends(caller)):
        name, model = ctx.pick(req.model)
        if req.n > settings.max_job_n:
            raise ApiError(422, f"at most {settings.max_job_n} images per job", "n")
        check_output(model, req)
        check_size(model, req)
        attrs = check_attributes(model, req.attributes)
        request = {"model": name, "n": req.n, "seed": req.seed, "attributes": attrs, "truncation": req.truncation,
                   "transparent": req.transparent, "format": check_format(req.format, req.transparent),
                   **({"size": req.size, "resize": req.resize} if req.size else {})}
        try:
            job = jobs.submit(request, who)
        except JobError as e:
            raise ApiError(e.status, str(e), "n" if e.status == 429 else None,
                           retry_after=30 if e.status in (429, 503) else None) from None
        return JSONResponse(job, status_code=202, headers={"Location": f"/v1/jobs/{job['id']}"})

    @router.get("/v1/jobs", tags=["jobs"], summary="Your jobs, oldest first.")
    async def list_jobs(who: str = Depends(caller)):
        return {"jobs": jobs.list(who)}

    @router.get("/v1/jobs/{job_id}", tags=["jobs"], summary="A job's status and progress.")
    async def get_job(job_id: str, who: str = Depends(caller)):
        return jobs.public(job_call(jobs.get, job_id, who))

    @router.delete("/v1/jobs/{job_id}", tags=["jobs"],
                   summary="Cancel a queued or running job; delete a finished one with its files.")
    async def delete_job(job_id: str, who: str = Depends(caller)):
        return await run_in_threadpool(job_call, jobs.delete, job_id, who)

    @router.get("/v1/jobs/{job_id}/download", tags=["jobs"], summary="A finished job's images and manifest as a zip.",
                response_class=FileResponse)
    async def download_job(job_id: str, who: str = Depends(caller)):
        path = await run_in_threadpool(job_call, jobs.archive, job_id, who)
        return FileResponse(path, media_type="application/zip", filename=f"jewelgan-{job_id}.zip")

    return router
