"""What the route modules share: the served state, who is calling, and the checks and draws every
handler makes the same way (so one refusal reads the same from every route)."""

from __future__ import annotations

import json
import math
from contextlib import asynccontextmanager

import numpy as np
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from jewelgan.image_files import ALPHA_FORMATS, check_format
from jewelgan.inference import Model, finish_images
from jewelgan.serve.access import KeyRing, RateLimiter
from jewelgan.serve.engine import Engine, Overloaded
from jewelgan.serve.errors import ApiError
from jewelgan.serve.jobs import JobStore
from jewelgan.serve.observability import Metrics
from jewelgan.serve.settings import ServeSettings
from jewelgan.serve.uploads import HeavyGate

MAX_PIXELS = 32 * 512 * 512  # pixels in one answer: n x size^2 (a cap on encoding time and memory)
HEAVY_PIXELS = 2 * 512 * 512  # upsampling more pixels than this in one request takes a heavy-work slot
JSON_TYPES = ("application/json",)
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")

BEARER = HTTPBearer(auto_error=False, description="An API key from `jewelgan serve-keys add`.")
HEADER_KEY = APIKeyHeader(name="X-API-Key", auto_error=False)


class ServeContext:
    """One app's state, handed to each route module's router."""

    def __init__(self, settings: ServeSettings, engine: Engine, jobs: JobStore, metrics: Metrics,
                 keyring: KeyRing | None):
        self.settings, self.engine, self.jobs, self.metrics, self.keyring = settings, engine, jobs, metrics, keyring
        self.limiter = RateLimiter(settings.rate, settings.burst)
        self.heavy = HeavyGate(settings.heavy_slots, on_refused=metrics.overloads.inc)

    async def caller(self, request: Request, cred: HTTPAuthorizationCredentials | None = Depends(BEARER),
                     key: str | None = Depends(HEADER_KEY)) -> str:
        """The API key's name (a dependency of every /v1 route), after its rate limit."""
        if self.keyring is None:
            name = "local"  # loopback only, one user: no keys, no rate limit
        else:
            name = self.keyring.identify(cred.credentials if cred else key)
            if name is None:
                raise ApiError(401, "missing or unknown API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                               "Authorization")
            wait = self.limiter.allow(name)
            if wait:
                raise ApiError(429, f"rate limit of {self.settings.rate:g} requests/s for key {name!r} reached",
                               "Authorization", retry_after=max(1, math.ceil(wait)))
        request.state.caller = name
        return name

    def pick(self, name: str | None) -> tuple[str, Model]:
        name = name or self.engine.default
        if name not in self.engine.models:
            raise ApiError(422, f"unknown model {name!r}", "model", list(self.engine.models))
        return name, self.engine.models[name]

    def check_request(self, model: Model, req, n: int) -> dict[str, str]:
        settings = self.settings
        if n > settings.max_n:
            raise ApiError(422, f"at most {settings.max_n} images per request (use POST /v1/jobs for more)", "n")
        size = req.size
        if size is not None and size > settings.max_size:
            raise ApiError(422, f"size must be <= {settings.max_size}", "size")
        check_size(model, req)
        if n * (size or model.resolution) ** 2 > MAX_PIXELS:
            raise ApiError(422, f"n x size^2 must be <= {MAX_PIXELS} pixels: ask for fewer or smaller images", "size")
        check_output(model, req)
        return check_attributes(model, req.attributes)

    async def draw(self, request: Request, name: str, z, labels, truncation: float, transparent: bool,
                   size: int | None = None, resize: bool = False, gated: bool = True) -> np.ndarray:
        """The images of z and labels at `size` (a heavy-work slot first when that is many pixels, unless the
        caller holds one already: gated=False)."""
        request.state.images = len(z)
        async with self.heavy_for(name, len(z), size) if gated else _no_limit():
            raw = await self.queued(self.engine.submit(name, z, labels, truncation, self.settings.request_timeout))
            return finish_images(await self.enlarge(name, raw, labels, size, resize), transparent)

    def heavy_for(self, name: str, n: int, size: int | None):
        """A heavy-work slot for upsampling n images to `size` when that is many pixels; else no limit."""
        model = self.engine.models[name]
        if not size or size == model.resolution or n * size ** 2 <= HEAVY_PIXELS:
            return _no_limit()
        return self.heavy.take(1, f"upsampling {n} images to {size} px")

    async def enlarge(self, name: str, raw: np.ndarray, labels, size: int | None, resize: bool) -> np.ndarray:
        """The drawn images at the requested size, upsampled on the engine's worker in queue order (the stages
        are the heavy part of a large image; two of them at once would only share the same cores)."""
        model = self.engine.models[name]
        if not size or size == model.resolution:
            return raw
        return await self.queued(self.engine.run(name, lambda: model.enlarge(raw, labels, size, resize), len(raw),
                                                 self.settings.request_timeout))

    async def queued(self, waiting):
        try:
            return await waiting
        except Overloaded as e:
            self.metrics.overloads.inc()
            raise ApiError(503, str(e), None, retry_after=e.retry_after) from None


@asynccontextmanager
async def _no_limit():
    yield


async def json_body(request: Request) -> None:
    """A dependency of the JSON routes: a body must say it is JSON (415 otherwise, rather than a misleading 422
    about the body's shape). An empty body needs no type (every field has a default or is reported missing)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in JSON_TYPES or kind.endswith("+json"):
        return
    if await request.body():
        raise ApiError(415, f"the body must be JSON with 'Content-Type: application/json' (got {kind or 'no type'})",
                       "Content-Type", list(JSON_TYPES))


async def form_body(request: Request) -> None:
    """A dependency of the upload routes: the body must be a form (415 otherwise; a form without its file is
    told which field is missing)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in FORM_TYPES:
        raise ApiError(415, f"send the photo as multipart/form-data (got {kind or 'no type'})", "Content-Type",
                       ["multipart/form-data"])


def check_output(model: Model, req) -> None:
    try:
        check_format(req.format, req.transparent)
    except ValueError as e:
        raise ApiError(422, str(e), "format", ALPHA_FORMATS if req.transparent else None) from None
    if req.transparent and not model.has_alpha:
        raise ApiError(422, "this model draws no alpha channel, so it cannot make transparent cut-outs", "transparent")


def check_size(model: Model, req) -> None:
    if req.size is not None and not req.resize and req.size not in model.sizes:
        raise ApiError(422, f"size {req.size}: this model draws {', '.join(map(str, model.sizes))} px "
                            "(send resize: true to resample to another size)", "size", model.sizes)


def check_attributes(model: Model, attrs: dict[str, str]) -> dict[str, str]:
    known = model.attributes
    for name, value in attrs.items():
        if name not in known:
            raise ApiError(422, f"unknown attribute {name!r}", "attributes", list(known))
        if value not in known[name]:
            raise ApiError(422, f"unknown value {value!r} for attribute {name!r}", f"attributes.{name}", known[name])
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
