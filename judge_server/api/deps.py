"""``Annotated`` dependency aliases, so route signatures read like declarations."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from judge_server.api.errors import ApiError
from judge_server.api.state import AppState

ENGINE_RETRY_AFTER_S = "5"


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.judge
    return state


def get_ready_state(request: Request) -> AppState:
    state = get_state(request)
    if not state.ready:
        reason = state.engine_error or "the judge engine is still starting"
        raise ApiError(503, "not_ready", reason, headers={"Retry-After": ENGINE_RETRY_AFTER_S})
    return state


StateDep = Annotated[AppState, Depends(get_state)]
ReadyStateDep = Annotated[AppState, Depends(get_ready_state)]
