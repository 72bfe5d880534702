"""The request body, checked as it arrives and before anything parses it.

- Size: a ``Content-Length`` over ``max_body_bytes`` is refused at once; a body without one
  (chunked) is counted while it is read and refused the moment it passes the bound. Either way
  the answer is 413 ``body_too_large`` and the rest is never read.
- Encoding and type: a body that is not UTF-8 (RFC 8259 requires it of JSON), or is declared as
  something other than JSON, is 400/415 ``invalid_json`` with what was wrong, instead of a
  parser's generic complaint further down.

Plain ASGI, like ``RequestMetrics``: the body is read here and handed on as one message; after
it the app reads the client's own ``receive``, so a route still sees a disconnect.
"""

from __future__ import annotations

from email.message import Message as MimeHeader

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from judge_server.api.errors import envelope

#: methods whose bodies the routes parse as JSON (the others' bodies are never read)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _too_large(limit: int, size: str) -> tuple[int, str, str]:
    return (
        413,
        "body_too_large",
        f"request body is {size} bytes; at most {limit:,} bytes (JUDGE_MAX_BODY_BYTES): send fewer "
        "or shorter items per request",
    )


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server (h11, httptools) refuses a malformed one itself
    return None


def _content_type(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return str(value.decode("latin-1"))
    return None


def is_json(content_type: str) -> bool:
    header = MimeHeader()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def body_problem(body: bytes, content_type: str | None) -> tuple[int, str, str] | None:
    """Why a JSON route cannot parse ``body``, or None. Like FastAPI (strict content type, a
    defence against cross-site form posts), a body must be declared as JSON."""
    if not body:
        return None  # the route says what it needed
    if content_type is None or not is_json(content_type):
        declared = repr(content_type) if content_type else "sent without a Content-Type"
        return (
            415,
            "invalid_json",
            f"request body is {declared}; send JSON with 'Content-Type: application/json'",
        )
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            400,
            "invalid_json",
            f"request body is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset "
            f"{exc.start}); JSON must be UTF-8",
        )
    return None


class BodyGuard:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)  # no route reads a body it is sent
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send, _too_large(self.max_bytes, f"{declared:,}"))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # nobody left to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                over = _too_large(self.max_bytes, f"over {self.max_bytes:,}")
                await self._refuse(scope, receive, send, over)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = body_problem(body, _content_type(scope))
        if problem is not None:
            await self._refuse(scope, receive, send, problem)
            return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, problem: tuple[int, str, str]
    ) -> None:
        status, kind, message = problem
        # An unread rest of a body would be taken for the next request: close after a 413.
        headers = {"Connection": "close"} if status == 413 else None
        response = envelope(status, kind, message, None, headers)
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # later reads wait for the disconnect, as usual
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
