"""POST /v1/score/group: rewards for a group of responses to one prompt (Pref-GRPO)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from judge_server.api.auth import ApiKey
from judge_server.api.deps import ReadyServiceDep
from judge_server.api.disconnect import cancel_on_disconnect
from judge_server.api.errors import ApiError
from judge_server.api.protocol import (
    GroupScoreRequest,
    GroupScoreResponse,
    RubricRef,
)
from judge_server.api.responses import SCORING, errors
from judge_server.judges import InvalidItemError
from judge_server.service import GroupOptions, score_group
from judge_server.service.image_checks import image_limits, text_only
from judge_server.service.image_fetch import fetch_images

router = APIRouter(tags=["score"], dependencies=[ApiKey])


@router.post("/v1/score/group", response_model=GroupScoreResponse, responses=errors(*SCORING))
async def group(
    request: GroupScoreRequest, service: ReadyServiceDep, http_request: Request
) -> GroupScoreResponse:
    await service.refresh_for(request.rubric)
    judge = service.judge(request.rubric)
    settings = service.settings
    try:  # one prompt for the whole group: if it cannot be judged, nothing in the group can
        refusal = text_only(judge, service.engine, service.model_id(judge))
        fetched = await fetch_images(request.contents(), settings, refusal=refusal)
        limits = image_limits(settings, fetched)
        prompt, responses, reference, images = request.judge_inputs(limits)
    except InvalidItemError as exc:
        param = "responses" if str(exc).startswith("responses.") else "prompt"
        raise ApiError(422, "invalid_request", str(exc), param=param) from exc
    opts = request.options
    options = GroupOptions(
        pairing=opts.pairing,
        rounds=opts.rounds,
        anchors=opts.anchors,
        timeout_s=opts.timeout_s,
        use_cache=opts.cache,
    )
    scored = await cancel_on_disconnect(
        http_request,
        score_group(service, judge, prompt, responses, reference, options, images=images),
    )
    return GroupScoreResponse.model_validate(
        {
            "rubric": RubricRef(name=judge.rubric.name, version=judge.rubric.version),
            "model": service.model_id(judge),
            "results": scored.results,
            "comparisons": scored.comparisons,
            "pairing": scored.pairing,
            "usage": scored.usage,
        },
        from_attributes=True,
    )
