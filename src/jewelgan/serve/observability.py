"""Watching the server: Prometheus metrics, one JSON access-log line per request, and the body-size guard.

The metrics live in the app's own CollectorRegistry (not prometheus-client's global one), so several
apps in one process (tests) do not collide. Route labels are the route templates (/v1/jobs/{job_id}),
never raw paths, so a scanner probing random URLs cannot blow up the label space.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

ACCESS_LOG = logging.getLogger("jewelgan.serve.access")
disable_created_metrics()  # the *_created series double every counter's output and no dashboard reads them
# a study participant's token is their credential: the path segment after /study/ never reaches a log
SECRET_PATH = re.compile(r"^(/(?:v1/)?study/)[^/]+")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("jewelgan_requests", "HTTP requests answered", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("jewelgan_request_seconds", "Time to answer a request", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.images = Counter("jewelgan_images_generated", "Images drawn by the generator", ["model"],
                              registry=self.registry)
        self.queue = Gauge("jewelgan_queue_images", "Images waiting for the generator", registry=self.registry)
        self.overloads = Counter("jewelgan_overload_rejections", "Requests refused with 503 (queue full)",
                                 registry=self.registry)
        self.jobs = Gauge("jewelgan_jobs", "Bulk jobs by status", ["status"], registry=self.registry)


def log_access_to_stderr() -> None:
    """Write the access log (one JSON line a request, tokens redacted) to stderr: `jewelgan serve` and `jewelgan
    study serve` do, in place of uvicorn's own access log, which would print every raw path."""
    if any(getattr(h, "jewelgan_access", False) for h in ACCESS_LOG.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.jewelgan_access = True
    ACCESS_LOG.addHandler(handler)
    ACCESS_LOG.setLevel(logging.INFO)


def redact_path(path: str) -> str:
    """The path as logs may show it: a participant token replaced by {token}."""
    return SECRET_PATH.sub(r"\1{token}", path)


def route_of(scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class Admission:
    """ASGI middleware: at most `limit` API requests in flight; the next gets 503 + Retry-After at once,
    before routing or validation. Under a flood the event loop itself is the bottleneck: without this,
    requests it cannot even parse pile up in the socket backlog and wait for seconds instead of being
    told to come back."""

    def __init__(self, app, limit: int, metrics: Metrics):
        self.app, self.limit, self.metrics = app, limit, metrics
        self.inflight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        if self.inflight >= self.limit:
            self.metrics.overloads.inc()
            body = json.dumps({"error": f"server busy: {self.inflight} requests in progress", "field": None}).encode()
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                                    (b"content-length", str(len(body)).encode())]})
            return await send({"type": "http.response.body", "body": body})
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1


class AccessLog:
    """ASGI middleware: times each HTTP request, counts it, writes one JSON log line. Plain ASGI rather
    than Starlette's BaseHTTPMiddleware, whose per-request task group and streams cost about as much CPU
    as generating a 64 px image."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            route = route_of(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            state = scope.get("state") or {}
            client = scope.get("client")
            ACCESS_LOG.info(json.dumps({
                "ts": round(time.time(), 3), "method": scope["method"], "path": redact_path(scope["path"]),
                "route": route, "status": status, "ms": round(elapsed * 1000, 2),
                "client": client[0] if client else None, "key": state.get("caller"), "images": state.get("images"),
            }))


class BodyLimit:
    """ASGI middleware: refuse a request body over its cap with 413, from Content-Length when given and
    by counting the chunks otherwise, before any handler reads it. `uploads` gives paths that take files
    (a photo to edit) their own, larger cap."""

    def __init__(self, app, max_bytes: int, uploads: dict[str, int] | None = None):
        self.app, self.default_bytes, self.uploads = app, max_bytes, dict(uploads or {})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.uploads.get(scope["path"], self.default_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                return await self._refuse(send, 400, "Content-Length is not a number")
            if too_big:
                return await self._refuse(send, 413, f"request body over {limit} bytes")
        seen, exceeded, answered = 0, False, False

        async def counting_receive():
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message):
            # once the body ran over, whatever the app answers (its error handler's 500) becomes our 413
            nonlocal answered
            if exceeded:
                if message["type"] == "http.response.start" and not answered:
                    answered = True
                    await self._refuse(send, 413, f"request body over {limit} bytes")
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if not answered:
                await self._refuse(send, 413, f"request body over {limit} bytes")

    @staticmethod
    async def _refuse(send, status: int, message: str) -> None:
        body = json.dumps({"error": message, "field": "body"}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass
