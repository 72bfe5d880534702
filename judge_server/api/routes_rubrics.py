"""Rubric administration: list, read (with version history), create/replace, delete.

PUT validates the definition (and that a composite's components resolve), writes the file
atomically into the rubrics directory and swaps the live snapshot; requests in flight finish on
the version they resolved. An invalid PUT is a 422 and changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from judge_server.api.deps import AdminDep, StateDep
from judge_server.api.errors import ApiError
from judge_server.api.protocol import RubricDetail, RubricList, RubricSummary
from judge_server.judges import JudgeFailure, judge_for
from judge_server.rubrics.models import Rubric, RubricError
from judge_server.rubrics.registry import RubricNotFoundError, RubricRegistry

RubricBody = Annotated[dict[str, Any], Body(description="The rubric definition (as in YAML).")]

router = APIRouter(prefix="/v1/rubrics", tags=["rubrics"])


def _detail(rubric: Rubric, registry: RubricRegistry) -> RubricDetail:
    return RubricDetail(
        name=rubric.name,
        version=rubric.version,
        mode=rubric.mode,
        description=rubric.description,
        definition=rubric.model_dump(mode="json"),
        history=registry.history(rubric.name),
    )


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
    return _detail(rubric, state.registry)


@router.put("/{name}", response_model=RubricDetail)
async def put_rubric(
    name: str,
    state: StateDep,
    _: AdminDep,
    response: Response,
    definition: RubricBody,
) -> RubricDetail:
    body_name = definition.get("name", name)
    if body_name != name:
        raise ApiError(
            422, "invalid_rubric", f"body name {body_name!r} != path name {name!r}", "name"
        )
    try:
        rubric = Rubric.parse({**definition, "name": name}, source=f"rubric {name!r}")
        # a composite's components and a reward_model rubric's model must exist
        judge_for(rubric, state.registry.resolve, reward_models=state.reward_models)
    except RubricError as exc:
        raise ApiError(422, "invalid_rubric", str(exc), "rubric") from exc
    except (RubricNotFoundError, JudgeFailure) as exc:
        raise ApiError(422, "invalid_rubric", f"{name!r}: {exc}", "components") from exc
    created = state.registry.save(rubric, state.settings.rubrics_dir)
    response.status_code = 201 if created else 200
    return _detail(rubric, state.registry)


@router.delete("/{name}", status_code=204)
async def delete_rubric(name: str, state: StateDep, _: AdminDep) -> Response:
    try:
        state.registry.delete(name, state.settings.rubrics_dir)
    except RubricNotFoundError as exc:
        raise ApiError(404, "rubric_not_found", str(exc), "name") from exc
    return Response(status_code=204)
