"""POST /v1/score: a batch of items, one result per item, in order."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter

from judge_server.api.auth import ApiKey
from judge_server.api.deps import ReadyServiceDep
from judge_server.api.disconnect import cancel_on_disconnect
from judge_server.api.protocol import ScoreRequest, ScoreResponse
from judge_server.api.responses import SCORING, errors
from judge_server.service import ItemResult
from judge_server.service.image_checks import image_limits, text_only
from judge_server.service.image_fetch import fetch_images

router = APIRouter(tags=["score"], dependencies=[ApiKey])


@router.post("/v1/score", response_model=ScoreResponse, responses=errors(*SCORING))
async def score(request: ScoreRequest, service: ReadyServiceDep, http_request: Request) -> Response:
    await service.refresh_for(request.rubric)
    judge = service.judge(request.rubric)
    service.check_size(len(request.items))
    # An item's own criteria past the bound are refused before they are validated.
    limit = service.settings.max_inline_criteria
    # A judge that cannot see images fetches none: its image items are refused anyway.
    refusal = text_only(judge, service.engine, service.model_id(judge))
    fetched = await fetch_images(request.contents(), service.settings, refusal=refusal)
    images = image_limits(service.settings, fetched)
    items = [
        item.to_input(str(i), max_criteria=limit, images=images)
        for i, item in enumerate(request.items)
    ]
    options = request.options
    results = await cancel_on_disconnect(
        http_request,
        service.score(judge, items, timeout_s=options.timeout_s, use_cache=options.cache),
    )
    answer = _Answer(
        {"name": judge.rubric.name, "version": judge.rubric.version},
        service.model_id(judge),
        results,
    )
    return Response(_ANSWER.dump_json(answer), media_type="application/json")


@dataclass(frozen=True)
class _Answer:
    """``ScoreResponse``'s shape over the scorer's own results, serialised in one pass by
    pydantic's core without building a model per item (the fields and their order are
    ``ItemResultOut``'s and ``UsageOut``'s; tests/unit/test_scoring_batched.py holds them equal)."""

    rubric: dict[str, str]
    model: str
    results: list[ItemResult]


_ANSWER = TypeAdapter(_Answer)
