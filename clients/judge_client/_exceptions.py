"""Exceptions raised by the judge client.

::

    JudgeClientError
     ├── APIConnectionError              no HTTP response (DNS, refused, reset, ...)
     │    └── APITimeoutError            a connect/read/write/pool timeout
     ├── APIResponseValidationError      a 2xx response whose body breaks the contract
     └── APIStatusError                  a non-2xx response
          ├── BadRequestError            400
          ├── AuthenticationError        401
          ├── PermissionDeniedError      403
          ├── NotFoundError              404
          ├── ConflictError              409
          ├── UnprocessableEntityError   422
          ├── RateLimitError             429
          └── InternalServerError        >= 500

Per-item judge failures are not exceptions: they come back as ``ItemResult`` entries
whose ``status`` is not ``"ok"`` and whose ``reward`` is ``None``.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "JudgeClientError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnprocessableEntityError",
    "make_status_error",
    "status_error_class",
]


class JudgeClientError(Exception):
    """Base class of every exception this package raises."""


class APIConnectionError(JudgeClientError):
    """The request got no HTTP response."""

    def __init__(
        self, message: str = "Connection error.", *, request: httpx.Request | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APITimeoutError(APIConnectionError):
    """The request timed out (after any retries)."""

    def __init__(
        self, message: str = "Request timed out.", *, request: httpx.Request | None = None
    ) -> None:
        super().__init__(message, request=request)


class APIResponseValidationError(JudgeClientError):
    """The server answered 2xx but the body does not match the wire contract."""

    def __init__(self, message: str, *, body: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.body = body


class APIStatusError(JudgeClientError):
    """The server answered with a non-2xx status.

    ``error_type``, ``message`` and ``param`` come from the server's error envelope
    ``{"error": {"type", "message", "param"}}`` when it sent one; ``body`` is the decoded
    JSON (or the raw text) and ``request_id`` the ``x-request-id`` response header.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        body: object = None,
        response: httpx.Response | None = None,
    ) -> None:
        parts = [str(status_code)]
        if error_type:
            parts.append(f"[{error_type}]")
        parts.append(message)
        if param:
            parts.append(f"(param: {param})")
        if request_id:
            parts.append(f"(request id: {request_id})")
        super().__init__(" ".join(parts))
        self.message = message
        self.status_code = status_code
        self.error_type = error_type
        self.param = param
        self.request_id = request_id
        self.body = body
        self.response = response


class BadRequestError(APIStatusError):
    """400."""


class AuthenticationError(APIStatusError):
    """401."""


class PermissionDeniedError(APIStatusError):
    """403."""


class NotFoundError(APIStatusError):
    """404."""


class ConflictError(APIStatusError):
    """409."""


class UnprocessableEntityError(APIStatusError):
    """422."""


class RateLimitError(APIStatusError):
    """429."""


class InternalServerError(APIStatusError):
    """Any 5xx."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The most specific ``APIStatusError`` subclass for ``status_code``."""
    if status_code >= 500:
        return InternalServerError
    return _BY_STATUS.get(status_code, APIStatusError)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def make_status_error(response: httpx.Response) -> APIStatusError:
    """Turn a non-2xx response (body already read) into the matching exception."""
    body: object
    try:
        body = response.json()
    except ValueError:
        body = response.text

    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        error_type = _optional_str(envelope.get("type"))
        message = _optional_str(envelope.get("message")) or response.reason_phrase
        param = _optional_str(envelope.get("param"))
    else:
        # Not our envelope (a proxy page, a bare string): keep a short excerpt.
        error_type, param = None, None
        text = body if isinstance(body, str) else response.text
        message = text.strip()[:200] or response.reason_phrase

    return status_error_class(response.status_code)(
        message,
        status_code=response.status_code,
        error_type=error_type,
        param=param,
        request_id=response.headers.get("x-request-id"),
        body=body,
        response=response,
    )
