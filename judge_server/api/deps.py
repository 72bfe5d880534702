"""``Annotated`` dependency aliases, so route signatures read like declarations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from judge_server.service import JudgeService

T = TypeVar("T")


def on_loop(check: Callable[[Request], T]) -> Callable[[Request], Awaitable[T]]:
    """``check`` as an async dependency: FastAPI runs a plain ``def`` dependency in its thread
    pool, two thread hops per request for work that never blocks (a lookup, a digest)."""

    async def dependency(request: Request) -> T:
        return check(request)

    return dependency


def get_service(request: Request) -> JudgeService:
    service: JudgeService = request.state.service  # put there by the lifespan (AppState)
    return service


def get_ready_service(request: Request) -> JudgeService:
    service = get_service(request)
    service.require_ready()
    return service


ServiceDep = Annotated[JudgeService, Depends(on_loop(get_service))]
ReadyServiceDep = Annotated[JudgeService, Depends(on_loop(get_ready_service))]
