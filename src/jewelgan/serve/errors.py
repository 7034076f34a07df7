"""The API's one error shape: {"error": what, "field": where, "choices": [...]} with a 4xx (or 503), for
our own refusals (ApiError), FastAPI's validation errors, unknown routes, and anything unexpected."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from jewelgan.serve.observability import redact_path

LOG = logging.getLogger("jewelgan.serve")


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, choices=None,
                 retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.field, self.choices, self.retry_after = (status, message, field, choices,
                                                                                 retry_after)

    def response(self) -> JSONResponse:
        body = {"error": self.message, "field": self.field}
        if self.choices is not None:
            body["choices"] = list(self.choices)
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else {}
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(body, status_code=self.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        def field(e) -> str:  # a JSON syntax error's loc ends in a character offset, not a field
            loc = e.get("loc", ())[1:] if e.get("type") != "json_invalid" else ()
            return ".".join(str(p) for p in loc) or "body"

        errors = [{"field": field(e), "message": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        body = {"error": f"{first['field']}: {first['message']}", "field": first["field"], "errors": errors}
        expected = (exc.errors()[0].get("ctx") or {}).get("expected") if exc.errors() else None
        if isinstance(expected, str):
            body["choices"] = [c.strip(" '") for c in expected.replace(" or ", ",").split(",") if c.strip(" '")]
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail), "field": None}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        LOG.exception("unexpected error on %s %s", request.method, redact_path(request.url.path))
        return JSONResponse({"error": "internal error (logged on the server)", "field": None}, status_code=500)
