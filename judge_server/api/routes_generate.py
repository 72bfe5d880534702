"""POST /v1/rubrics/generate: the judge model writes a rubric (``service.rubric_generation``).

It needs a scoring key, not the admin token: it changes nothing. Saving what it returns is a
separate ``PUT /v1/rubrics/{name}`` with the admin token, which makes it a new version.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from judge_server.api.auth import ApiKey
from judge_server.api.deps import ReadyServiceDep
from judge_server.api.disconnect import cancel_on_disconnect
from judge_server.api.generate_protocol import CriterionOut, GenerateRequest, GenerateResponse
from judge_server.api.protocol import RubricRef
from judge_server.api.responses import GENERATION, errors

router = APIRouter(tags=["rubrics"], dependencies=[ApiKey])


@router.post("/v1/rubrics/generate", response_model=GenerateResponse, responses=errors(*GENERATION))
async def generate(
    request: GenerateRequest, service: ReadyServiceDep, http_request: Request
) -> GenerateResponse:
    """One engine call (slow on a CPU: seconds per criterion)."""
    made = await cancel_on_disconnect(http_request, request.generate(service))
    rubric = made.definition
    return GenerateResponse(
        output=request.output,
        rubric=RubricRef(name=rubric.name, version=rubric.version),
        base=RubricRef(name=made.base.name, version=made.base.version),
        model=made.model,
        criteria=[
            CriterionOut.model_validate(c.model_dump(exclude={"tags"}))
            for c in (made.instance if made.instance is not None else made.criteria)
        ],
        definition=rubric.model_dump(mode="json") if request.output == "definition" else None,
        prompt_tokens=made.num_prompt_tokens,
    )
