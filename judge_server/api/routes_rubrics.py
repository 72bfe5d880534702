"""Rubric administration: list, read (with version history), create/replace, delete.

Reads need an API key when keys are set; PUT and DELETE need the admin token (``api/auth.py``).
PUT validates the definition (and that a composite's components resolve), writes the file
atomically into the rubrics directory (or, with ``JUDGE_RUBRIC_STORE``, into the store every
replica shares) and swaps the live snapshot; requests in flight finish on the version they
resolved. An invalid PUT is a 422 and changes nothing; so is a rubrics directory the server
cannot write (a ConfigMap mount): 409 ``rubrics_read_only``, and an unreachable store: 503
``rubric_store_unavailable``. Each change is logged with the admin token's key id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from judge_server.api.auth import Admin, ApiKey, caller_id, is_admin
from judge_server.api.deps import ServiceDep
from judge_server.api.protocol import RubricChangeOut, RubricDetail, RubricList, RubricSummary
from judge_server.api.responses import RUBRIC_WRITE, errors
from judge_server.rubrics.spec import RubricSpec
from judge_server.service import JudgeService

RubricBody = Annotated[dict[str, Any], Body(description="The rubric definition (as in YAML).")]

router = APIRouter(prefix="/v1/rubrics", tags=["rubrics"])


def _detail(rubric: RubricSpec, service: JudgeService, admin: bool) -> RubricDetail:
    """``admin``: show who made each change (a key id); to other callers ``by`` is null."""
    return RubricDetail(
        name=rubric.name,
        version=rubric.version,
        mode=rubric.mode,
        description=rubric.description,
        definition=rubric.model_dump(mode="json"),
        history=service.registry.history(rubric.name),
        changes=[
            RubricChangeOut(
                at=datetime.fromtimestamp(c.at, UTC),
                version=c.version,
                action=c.action,
                by=c.by if admin else None,
            )
            for c in service.registry.changes(rubric.name)
        ],
    )


@router.get("", response_model=RubricList, dependencies=[ApiKey], responses=errors(401))
async def list_rubrics(service: ServiceDep) -> RubricList:
    return RubricList(
        rubrics=[
            RubricSummary(name=r.name, version=r.version, mode=r.mode, description=r.description)
            for r in sorted(service.registry.current.values(), key=lambda r: r.name)
        ]
    )


@router.get(
    "/{ref}", response_model=RubricDetail, dependencies=[ApiKey], responses=errors(401, 404, 422)
)
async def get_rubric(ref: str, service: ServiceDep, request: Request) -> RubricDetail:
    """``name`` for the live version, or ``name@version`` for a pinned one."""
    await service.refresh_for(ref)
    return _detail(service.resolve(ref, param="name"), service, is_admin(request))


@router.put(
    "/{name}",
    response_model=RubricDetail,
    dependencies=[Admin],
    responses={
        201: {"model": RubricDetail, "description": "Created: the name was new."},
        **errors(*RUBRIC_WRITE),
    },
)
async def put_rubric(
    name: str, service: ServiceDep, request: Request, response: Response, definition: RubricBody
) -> RubricDetail:
    rubric = service.check_definition(name, definition)
    created = await service.save_rubric(rubric, by=caller_id(request))
    response.status_code = 201 if created else 200
    return _detail(rubric, service, admin=True)


@router.delete(
    "/{name}",
    status_code=204,
    dependencies=[Admin],
    responses=errors(401, 403, 404, 409, 422, 503),
)
async def delete_rubric(name: str, service: ServiceDep, request: Request) -> Response:
    await service.delete_rubric(name, by=caller_id(request))
    return Response(status_code=204)
