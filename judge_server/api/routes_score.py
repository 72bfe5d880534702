"""POST /v1/score: a batch of items, one result per item, in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping
from typing import TypeVar

from fastapi import APIRouter, Request

from judge_server.admission import QueueFullError
from judge_server.api.deps import ReadyStateDep
from judge_server.api.errors import ApiError
from judge_server.api.protocol import (
    ErrorEnvelope,
    ItemResultOut,
    RubricRef,
    ScoreRequest,
    ScoreResponse,
)
from judge_server.api.state import AppState
from judge_server.engines.base import RewardModel
from judge_server.judges import Judge, JudgeFailure, JudgeItem, judge_for
from judge_server.judges.reward_model import RewardModelJudge
from judge_server.rubrics.models import Rubric, RubricError
from judge_server.rubrics.registry import RubricNotFoundError, RubricRegistry
from judge_server.scoring import ItemResult
from judge_server.settings import RETRY_AFTER_S

router = APIRouter(tags=["score"])

T = TypeVar("T")
DISCONNECT_POLL_S = 0.25

_ERRORS = {code: {"model": ErrorEnvelope} for code in (400, 404, 413, 422, 429, 503)}


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Run ``work``; if the client goes away first, cancel it, which aborts its engine requests
    (an abandoned batch must not keep the engine busy)."""
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


async def score_admitted(
    state: AppState,
    http_request: Request,
    judge: Judge,
    items: list[JudgeItem],
    timeout_s: float,
    use_cache: bool,
) -> list[ItemResult]:
    """Score under backpressure (429 when full) and cancel the work if the client leaves."""
    try:
        with state.admission.admit(len(items)):
            state.metrics.queue_items.set(state.admission.in_flight)
            return await cancel_on_disconnect(
                http_request,
                state.scorer.score(judge, items, timeout_s=timeout_s, use_cache=use_cache),
            )
    except QueueFullError as exc:
        state.metrics.rejected.inc()
        raise ApiError(
            429, "queue_full", str(exc), None, headers={"Retry-After": str(RETRY_AFTER_S)}
        ) from exc
    finally:
        state.metrics.queue_items.set(state.admission.in_flight)


def build_judge(
    spec: str | dict[str, object],
    registry: RubricRegistry,
    reward_models: Mapping[str, RewardModel] | None = None,
) -> Judge:
    """Resolve the rubric (and a composite's components) once, for the whole request."""
    rubric = resolve_rubric(spec, registry)
    try:
        return judge_for(rubric, registry.resolve, reward_models=reward_models)
    except RubricNotFoundError as exc:
        raise ApiError(
            422, "invalid_rubric", f"a component of {rubric.name!r}: {exc}", "rubric"
        ) from exc
    except JudgeFailure as exc:
        raise ApiError(422, "invalid_rubric", str(exc), "rubric") from exc


def resolve_rubric(spec: str | dict[str, object], registry: RubricRegistry) -> Rubric:
    if isinstance(spec, dict):
        try:
            return Rubric.parse(spec, source="inline rubric")
        except RubricError as exc:
            raise ApiError(422, "invalid_rubric", str(exc), "rubric") from exc
    try:
        return registry.resolve(spec)
    except RubricNotFoundError as exc:
        raise ApiError(404, "rubric_not_found", str(exc), "rubric") from exc


@router.post("/v1/score", response_model=ScoreResponse, responses=_ERRORS)  # type: ignore[arg-type]
async def score(
    request: ScoreRequest, state: ReadyStateDep, http_request: Request
) -> ScoreResponse:
    # Resolve once: the whole request is scored by this snapshot even if a reload lands meanwhile.
    judge = build_judge(request.rubric, state.registry, state.reward_models)
    rubric = judge.rubric
    limit = state.settings.max_items_per_request
    if len(request.items) > limit:
        raise ApiError(
            413,
            "too_many_items",
            f"{len(request.items)} items; at most {limit} per request",
            "items",
        )
    items = [item.to_item(str(i)) for i, item in enumerate(request.items)]
    timeout_s = request.options.timeout_s or state.settings.default_timeout_s
    results = await score_admitted(
        state, http_request, judge, items, timeout_s, request.options.cache
    )
    # A reward_model rubric's scores come from its reward model, not the judge engine.
    model = judge.model if isinstance(judge, RewardModelJudge) else state.engine
    return ScoreResponse(
        rubric=RubricRef(name=rubric.name, version=rubric.version),
        model=model.model_id,
        results=[
            ItemResultOut(
                id=r.id,
                status=r.status,
                reward=r.reward,
                details=r.details,
                error=r.error,
                cached=r.cached,
            )
            for r in results
        ],
    )
