"""POST /slime/reward: slime's remote reward-model protocol.

Read from slime at commit 624b824a898ab0ec1fcb4d373004c7f3852bf515,
``slime/rollout/rm_hub/__init__.py`` ``remote_rm``: one sample per call, the body
``{"prompt": sample.prompt, "response": sample.response, "label": sample.label}`` (a prompt is
text or chat messages, ``slime/utils/types.py``; with ``--apply-chat-template`` the rendered
template, read back into messages here), retried 10 times on any error, 4xx included.
slime takes the whole JSON answer as the reward, or its top-level key ``--reward-key``, and
makes tensors of it, so the answer is a flat object whose ``reward`` is always a number; run
slime with ``--rm-type remote_rm --rm-url http://HOST:PORT/slime/reward?rubric=NAME
--reward-key reward``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from judge_server.api.auth import ApiKey
from judge_server.api.deps import ReadyServiceDep
from judge_server.api.protocol import Message, ScoreItemIn
from judge_server.api.responses import SCORING, errors
from judge_server.api.templated_prompt import chat_messages
from judge_server.api.trainer_policy import TrainerPolicyDep, reference_of, score_for_trainer

router = APIRouter(tags=["trainers"], dependencies=[ApiKey])


class SlimeRewardRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: str | list[Message]
    response: str
    label: Any = Field(
        None, description="The sample's label, the reference answer (non-text values as JSON)."
    )


class SlimeRewardResponse(BaseModel):
    reward: float = Field(description="The judge's reward, or the fill value when ok is false.")
    ok: bool
    status: str
    error: str | None
    rubric: str
    rubric_version: str
    model: str
    cached: bool
    step_scores: list[float] | None = Field(
        description="A process rubric's per-step scores (their aggregate is the reward); null "
        "for other rubrics and a failed item."
    )


@router.post("/slime/reward", response_model=SlimeRewardResponse, responses=errors(*SCORING))
async def slime_reward(
    body: SlimeRewardRequest,
    service: ReadyServiceDep,
    policy: TrainerPolicyDep,
    request: Request,
) -> dict[str, Any]:
    # With --apply-chat-template slime sends the prompt rendered: read it back into messages.
    prompt = body.prompt if not isinstance(body.prompt, str) else chat_messages(body.prompt)
    item = ScoreItemIn.model_validate(
        {
            "id": "0",
            "prompt": prompt,
            "response": body.response,
            "reference": reference_of(body.label),
        }
    )
    scored = await score_for_trainer("slime", service, policy, [item.to_input("0")], request)
    result = scored.results[0]
    return {
        "reward": scored.rewards[0],
        "ok": scored.ok[0],
        "status": result.status,
        "error": result.error,
        "rubric": scored.judge.rubric.name,
        "rubric_version": scored.judge.rubric.version,
        "model": scored.model,
        "cached": result.cached,
        "step_scores": scored.step_scores[0],
    }
