"""Rubric administration (read side; live editing lands with the registry's hot swap)."""

from __future__ import annotations

from fastapi import APIRouter

from judge_server.api.deps import StateDep
from judge_server.api.errors import ApiError
from judge_server.api.protocol import RubricDetail, RubricList, RubricSummary
from judge_server.rubrics.registry import RubricNotFoundError

router = APIRouter(prefix="/v1/rubrics", tags=["rubrics"])


@router.get("", response_model=RubricList)
async def list_rubrics(state: StateDep) -> RubricList:
    return RubricList(
        rubrics=[
            RubricSummary(name=r.name, version=r.version, mode=r.mode, description=r.description)
            for r in sorted(state.registry.current.values(), key=lambda r: r.name)
        ]
    )


@router.get("/{ref}", response_model=RubricDetail)
async def get_rubric(ref: str, state: StateDep) -> RubricDetail:
    """``name`` for the live version, or ``name@version`` for a pinned one."""
    try:
        rubric = state.registry.resolve(ref)
    except RubricNotFoundError as exc:
        raise ApiError(404, "rubric_not_found", str(exc), "name") from exc
    return RubricDetail(
        name=rubric.name,
        version=rubric.version,
        mode=rubric.mode,
        description=rubric.description,
        definition=rubric.model_dump(mode="json"),
        history=state.registry.history(rubric.name),
    )
