"""``Annotated`` dependency aliases, so route signatures read like declarations."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from judge_server.api.errors import ApiError
from judge_server.service import JudgeService


def get_service(request: Request) -> JudgeService:
    service: JudgeService = request.state.service  # put there by the lifespan (AppState)
    return service


def get_ready_service(request: Request) -> JudgeService:
    service = get_service(request)
    service.require_ready()
    return service


def require_admin(request: Request) -> None:
    token = get_service(request).settings.admin_token
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.encode(), token.get_secret_value().encode()
    ):
        raise ApiError(
            401,
            "unauthorized",
            "this endpoint needs 'Authorization: Bearer <admin token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


ServiceDep = Annotated[JudgeService, Depends(get_service)]
ReadyServiceDep = Annotated[JudgeService, Depends(get_ready_service)]
AdminDep = Annotated[None, Depends(require_admin)]
