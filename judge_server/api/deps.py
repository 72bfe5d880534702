"""``Annotated`` dependency aliases, so route signatures read like declarations."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from judge_server.api.errors import ApiError
from judge_server.api.state import AppState

ENGINE_RETRY_AFTER_S = "5"


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.judge
    return state


def require_admin(request: Request) -> None:
    token = get_state(request).settings.admin_token
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


def get_ready_state(request: Request) -> AppState:
    state = get_state(request)
    if not state.ready:
        reason = state.engine_error or "the judge engine is still starting"
        raise ApiError(503, "not_ready", reason, headers={"Retry-After": ENGINE_RETRY_AFTER_S})
    return state


StateDep = Annotated[AppState, Depends(get_state)]
ReadyStateDep = Annotated[AppState, Depends(get_ready_state)]
AdminDep = Annotated[None, Depends(require_admin)]
