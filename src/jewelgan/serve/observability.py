"""Watching the server: Prometheus metrics, one JSON access-log line per request, and the body-size guard.

The metrics live in the app's own CollectorRegistry (not prometheus-client's global one), so several
apps in one process (tests) do not collide. Route labels are the route templates (/v1/jobs/{job_id}),
never raw paths, so a scanner probing random URLs cannot blow up the label space.
"""

from __future__ import annotations

import json
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

ACCESS_LOG = logging.getLogger("jewelgan.serve.access")
disable_created_metrics()  # the *_created series double every counter's output and no dashboard reads them
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


def route_of(scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def access_middleware(metrics: Metrics):
    """An http middleware: times the request, counts it, writes one JSON log line."""

    async def middleware(request, call_next):
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            elapsed = time.perf_counter() - start
            route = route_of(request.scope)
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.latency.labels(route).observe(elapsed)
            ACCESS_LOG.info(json.dumps({
                "ts": round(time.time(), 3), "method": request.method, "path": request.url.path, "route": route,
                "status": status, "ms": round(elapsed * 1000, 2),
                "client": request.client.host if request.client else None,
                "key": getattr(request.state, "caller", None), "images": getattr(request.state, "images", None),
            }))

    return middleware


class BodyLimit:
    """ASGI middleware: refuse a request body over max_bytes with 413, from Content-Length when given and
    by counting the chunks otherwise, before any handler reads it."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                return await self._refuse(send, 400, "Content-Length is not a number")
            if too_big:
                return await self._refuse(send, 413, f"request body over {self.max_bytes} bytes")
        seen, exceeded, answered = 0, False, False

        async def counting_receive():
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message):
            # once the body ran over, whatever the app answers (its error handler's 500) becomes our 413
            nonlocal answered
            if exceeded:
                if message["type"] == "http.response.start" and not answered:
                    answered = True
                    await self._refuse(send, 413, f"request body over {self.max_bytes} bytes")
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if not answered:
                await self._refuse(send, 413, f"request body over {self.max_bytes} bytes")

    @staticmethod
    async def _refuse(send, status: int, message: str) -> None:
        body = json.dumps({"error": message, "field": "body"}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass
