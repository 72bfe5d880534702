"""Cancel a request's work when its client goes away (an abandoned batch must not keep the
engine busy)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from judge_server.api.errors import ApiError

T = TypeVar("T")
DISCONNECT_POLL_S = 0.25


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Run ``work``; if the client disconnects first, cancel it, which aborts its engine
    requests and releases its admission."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise ApiError(499, "client_closed_request", "the client disconnected; work cancelled")
