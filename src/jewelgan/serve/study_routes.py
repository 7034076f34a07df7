"""The human study's routes: a participant's page, their calibration, the next image, their answers.

The token in the link is the participant's only credential (no API key: participants are not API
users). An image is known by its random id; whether it is generated never leaves the server for test
images. Mounted by `jewelgan serve --study FILE` or served alone by `jewelgan study serve FILE`.
"""

from __future__ import annotations

import base64
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from jewelgan.serve.context import json_body
from jewelgan.serve.errors import ApiError, install_error_handlers
from jewelgan.serve.observability import AccessLog, Metrics
from jewelgan.study.store import StudyError, StudyStore

STATIC = Path(__file__).parent / "static"
TOKEN = r"^[A-Za-z0-9_-]{8,64}$"


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    image: str = Field(..., min_length=1, max_length=64, description="The id /next gave.")
    real: bool = Field(..., description="true: the participant thinks the image is a real photo.")
    quality: int | None = Field(None, ge=1, le=5, description="Optional detail quality, 1 (poor) to 5 (excellent).")
    ms: int = Field(..., ge=0, le=3_600_000, description="Milliseconds from showing the image to the answer.")


def _png_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def add_study_routes(app: FastAPI, store: StudyStore) -> None:
    def call(fn, *args):
        try:
            return fn(*args)
        except StudyError as e:
            raise ApiError(e.status, str(e), e.field) from None

    @app.get("/study/{token}", include_in_schema=False)
    async def study_page(token: str):
        return FileResponse(STATIC / "study.html")

    @app.get("/v1/study/{token}/calibration", tags=["study"], summary="The labelled examples shown first.")
    async def calibration(token: str):
        items = await run_in_threadpool(call, store.calibration, token)
        return {"examples": [{"kind": c["kind"], "data_url": _png_url(c["png"])} for c in items]}

    @app.get("/v1/study/{token}/next", tags=["study"], summary="The next image to judge, or done.")
    async def next_image(token: str):
        item = await run_in_threadpool(call, store.next_image, token)
        if item.get("done"):
            return item
        return {"image": item["image"], "index": item["index"], "total": item["total"],
                "answered": item["answered"], "data_url": _png_url(item["png"])}

    @app.post("/v1/study/{token}/answers", tags=["study"], status_code=201, dependencies=[Depends(json_body)],
              summary="One answer (stored durably before this returns; one per image).")
    async def answer(token: str, body: Answer):
        count = await run_in_threadpool(call, store.answer, token, body.image, body.real, body.quality, body.ms)
        return {"answered": count}


def create_study_app(path: str | Path) -> FastAPI:
    """A server for the study alone (no model loaded): `jewelgan study serve FILE`."""
    store = StudyStore(path)
    app = FastAPI(title="jewelgan study", description="Real or generated? A human study of jewelgan's images.")
    install_error_handlers(app)
    app.add_middleware(AccessLog, metrics=Metrics())  # one JSON line a request, the token redacted
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_study_routes(app, store)
    app.state.study = store
    return app
