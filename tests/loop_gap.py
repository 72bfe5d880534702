"""How long the event loop goes unserved while some work runs: the check that nothing
CPU-heavy holds it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def max_loop_gap(work: Awaitable[T]) -> tuple[T | BaseException, float]:
    """Run ``work`` while a ticker measures the longest the event loop went unserved."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        result: T | BaseException = await work
    except Exception as exc:
        result = exc
    done.set()
    await ticker
    return result, max(gaps)
