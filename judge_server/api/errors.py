"""One error envelope, and the one place that maps exceptions to it.

Every non-2xx answer is ``{"error": {"type", "message", "param"}}``. Client mistakes are 4xx;
a 500 means a bug in judge-server, and is logged with its traceback. The service's domain errors
get their HTTP status here and nowhere else (``HTTP_STATUS``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from judge_server.service.errors import (
    RETRY_AFTER_S,
    GenerationFailed,
    GenerationRefused,
    GenerationTimedOut,
    InvalidRubric,
    NotReady,
    Overloaded,
    RubricNotFound,
    RubricsReadOnly,
    RubricStoreUnavailable,
    ServiceError,
    TooManyItems,
    TooManyRubrics,
    TooMuchWork,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        type: str,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.type = type
        self.message = message
        self.param = param
        self.headers = headers


def envelope(
    status_code: int,
    type: str,
    message: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"type": type, "message": printable(message), "param": param}}
    if param is not None:
        body["error"]["param"] = printable(param)
    return JSONResponse(body, status_code=status_code, headers=headers)


def printable(text: str) -> str:
    """``text`` as UTF-8 can carry it: a lone surrogate echoed from the input becomes its
    escape, so an error about bad text cannot itself fail to serialise."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


HTTP_STATUS: dict[type[ServiceError], int] = {
    RubricNotFound: 404,
    RubricsReadOnly: 409,  # the request is fine; the server's directory is not writable
    TooManyRubrics: 409,  # the request is fine; the server holds as many names as it may
    TooManyItems: 413,
    TooMuchWork: 413,
    InvalidRubric: 422,
    GenerationRefused: 422,
    Overloaded: 429,
    GenerationFailed: 502,  # the judge model wrote something invalid (bad gateway: upstream)
    NotReady: 503,
    RubricStoreUnavailable: 503,  # a change waits for the store; scoring goes on from memory
    GenerationTimedOut: 504,  # the judge model took longer than the request's timeout_s
}
#: refusals that pass: the client should come back (busy, still starting, the store away);
#: their subclasses (Draining) too
RETRY_LATER = frozenset({Overloaded, NotReady, RubricStoreUnavailable})


def _loc_to_param(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or None


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return envelope(exc.status_code, exc.type, exc.message, exc.param, exc.headers)


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    status = next((code for kind, code in HTTP_STATUS.items() if isinstance(exc, kind)), None)
    if status is None:  # a ServiceError without a status here is a bug in judge-server
        return await _unhandled(_, exc)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if isinstance(exc, tuple(RETRY_LATER)) else None
    if status == 503:  # not serving here (starting, draining, dead): retry on a new connection,
        headers = {**(headers or {}), "Connection": "close"}  # which may reach another replica
    return envelope(status, exc.type, exc.message, exc.param, headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    param = _loc_to_param(tuple(first.get("loc", ())))
    if first.get("type") == "json_invalid":
        return envelope(400, "invalid_json", _json_problem(first), None)
    if first.get("type") == "missing" and tuple(first.get("loc", ())) == ("body",):
        return envelope(400, "invalid_json", "request body is empty; send a JSON object", None)
    message = "; ".join(
        f"{_loc_to_param(tuple(e.get('loc', ()))) or 'body'}: {e.get('msg')}" for e in errors[:5]
    )
    if len(errors) > 5:
        message += f"; and {len(errors) - 5} more"
    return envelope(422, "invalid_request", message, param)


def _json_problem(error: Any) -> str:
    """The parser's own words and where: 'Expecting value at character 17'."""
    why = (error.get("ctx") or {}).get("error")
    loc = tuple(error.get("loc", ()))
    at = f", character {loc[-1]}" if len(loc) > 1 and isinstance(loc[-1], int) else ""
    if not why:
        return "request body is not valid JSON"
    return f"request body is not valid JSON ({why}{at})"


#: what FastAPI answers (400) when reading or decoding a body fails other than as bad JSON
FASTAPI_BODY_ERROR = "There was an error parsing the body"


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == FASTAPI_BODY_ERROR:
        return envelope(400, "invalid_json", "request body could not be read as JSON", None)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return envelope(exc.status_code, kind, str(exc.detail), None, headers)


async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return envelope(500, "internal_error", "internal server error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
