"""Request metrics as plain ASGI middleware.

Plain ASGI rather than ``BaseHTTPMiddleware``: the latter wraps ``receive`` so that a route
cannot see the client disconnect, and cancelling abandoned engine work depends on seeing it.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from judge_server.metrics import Metrics


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(path, str(status)).inc()
            self.metrics.request_latency.labels(path).observe(time.perf_counter() - started)
            if status >= 400:
                self.metrics.errors.labels(f"http_{status}").inc()
