"""POST /v1/score: a batch of items, one result per item, in order."""

from __future__ import annotations

from fastapi import APIRouter

from judge_server.api.deps import ReadyStateDep
from judge_server.api.errors import ApiError
from judge_server.api.protocol import (
    ErrorEnvelope,
    ItemResultOut,
    RubricRef,
    ScoreRequest,
    ScoreResponse,
)
from judge_server.judges import Judge, JudgeFailure, judge_for
from judge_server.rubrics.models import Rubric, RubricError
from judge_server.rubrics.registry import RubricNotFoundError, RubricRegistry

router = APIRouter(tags=["score"])

_ERRORS = {code: {"model": ErrorEnvelope} for code in (400, 404, 413, 422, 503)}


def build_judge(spec: str | dict[str, object], registry: RubricRegistry) -> Judge:
    """Resolve the rubric (and a composite's components) once, for the whole request."""
    rubric = resolve_rubric(spec, registry)
    try:
        return judge_for(rubric, registry.resolve)
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
async def score(request: ScoreRequest, state: ReadyStateDep) -> ScoreResponse:
    # Resolve once: the whole request is scored by this snapshot even if a reload lands meanwhile.
    judge = build_judge(request.rubric, state.registry)
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
    results = await state.scorer.score(judge, items, timeout_s=timeout_s)
    return ScoreResponse(
        rubric=RubricRef(name=rubric.name, version=rubric.version),
        model=state.engine.model_id,
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
