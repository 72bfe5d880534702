"""``Annotated`` dependency aliases, so route signatures read like declarations."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from judge_server.service import JudgeService


def get_service(request: Request) -> JudgeService:
    service: JudgeService = request.state.service  # put there by the lifespan (AppState)
    return service


def get_ready_service(request: Request) -> JudgeService:
    service = get_service(request)
    service.require_ready()
    return service


ServiceDep = Annotated[JudgeService, Depends(get_service)]
ReadyServiceDep = Annotated[JudgeService, Depends(get_ready_service)]
