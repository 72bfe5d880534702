"""POST /get_reward: OpenRLHF's remote reward-model protocol.

Read from OpenRLHF at commit 3c3be6234e0cb353e76bb8019947db9dfe99fca7:
- the request, ``openrlhf/utils/agent.py`` ``SingleTurnAgentExecutor._fetch_rewards_via_http``:
  ``{"query": [...], "prompts": [...], "labels": [...]}``, one sample per call during rollouts,
  where a query is ``hf_tokenizer.decode(prompt_tokens + action_tokens,
  skip_special_tokens=False)``, so it is the prompt text followed by the response and, when
  generation stopped there, the policy's end-of-sequence marker; the prompt is the policy's
  chat template rendered, which is read back into messages (``templated_prompt``);
- the answer, read by ``execute`` and ``samples_generator._process_response_into_experience``:
  ``rewards``, ``scores`` (``rewards`` when absent) and ``extra_logs``, each value passed to
  ``torch.tensor([value])``: numbers only, and never null (that raises mid-rollout);
- the reference server, ``openrlhf/cli/serve_rm.py``, answers the same three keys.

Extra top-level keys (rubric, model, statuses, errors) are ignored by OpenRLHF and keep every
reward traceable.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from judge_server.api.auth import ApiKey
from judge_server.api.deps import ReadyServiceDep
from judge_server.api.errors import ApiError
from judge_server.api.protocol import RubricRef
from judge_server.api.responses import SCORING, errors
from judge_server.api.templated_prompt import chat_messages
from judge_server.api.trainer_policy import TrainerPolicyDep, reference_of, score_for_trainer
from judge_server.judges import InvalidItemError, JudgeItem
from judge_server.judges.conversation import chat_turns
from judge_server.service import Rejected, ScoreInput

router = APIRouter(tags=["trainers"], dependencies=[ApiKey])

#: end-of-sequence markers of the common chat model families, as they decode with special tokens
#: kept; one trailing run of them is not part of the response
EOS_MARKERS = (
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "<|eom_id|>",
    "<end_of_turn>",
    "<eos>",
    "</s>",
    "<｜end▁of▁sentence｜>",
)

class GetRewardRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Empty lists are valid: OpenRLHF splits a batch over every URL in --reward.remote_url, so
    # with more servers than samples some get none.
    query: list[str] = Field(description="Prompt + response, as decoded.")
    prompts: list[str] = Field(description="Each query's prompt, which the query starts with.")
    labels: list[Any] | None = Field(
        None, description="Reference answers (dataset labels; non-text values as JSON)."
    )


class GetRewardResponse(BaseModel):
    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]] = Field(
        description="judge_ok: 1.0 judged, 0.0 failed (its reward is the fill value)."
    )
    rubric: RubricRef
    model: str
    statuses: list[str]
    errors: list[str | None]


def strip_eos(text: str) -> str:
    while marker := next((m for m in EOS_MARKERS if text.endswith(m)), None):
        text = text[: -len(marker)]
    return text


def _items(body: GetRewardRequest) -> list[ScoreInput]:
    n = len(body.query)
    if len(body.prompts) != n:
        raise ApiError(
            422, "invalid_request", f"{len(body.prompts)} prompts for {n} queries", "prompts"
        )
    labels: list[Any] = list(body.labels) if body.labels is not None else [None] * n
    if len(labels) != n:
        raise ApiError(422, "invalid_request", f"{len(labels)} labels for {n} queries", "labels")
    items: list[ScoreInput] = []
    for i, (query, prompt, label) in enumerate(zip(body.query, body.prompts, labels, strict=True)):
        if not query.startswith(prompt):
            raise ApiError(
                422,
                "invalid_request",
                f"query {i} does not start with its prompt (prompts[{i}]); OpenRLHF sends "
                "prompt + response as one string",
                f"query.{i}",
            )
        reference = reference_of(label)
        response = strip_eos(query[len(prompt) :])
        try:
            turns = chat_messages(prompt)
            judged = turns if isinstance(turns, str) else chat_turns(turns)
        except InvalidItemError as exc:
            items.append(Rejected(str(i), str(exc)))
            continue
        items.append(JudgeItem(id=str(i), prompt=judged, response=response, reference=reference))
    return items


@router.post("/get_reward", response_model=GetRewardResponse, responses=errors(*SCORING))
async def get_reward(
    body: GetRewardRequest,
    service: ReadyServiceDep,
    policy: TrainerPolicyDep,
    request: Request,
) -> dict[str, Any]:
    scored = await score_for_trainer("openrlhf", service, policy, _items(body), request)
    return {
        "rewards": scored.rewards,
        "scores": scored.rewards,
        "extra_logs": {"judge_ok": [float(ok) for ok in scored.ok]},
        "rubric": {"name": scored.judge.rubric.name, "version": scored.judge.rubric.version},
        "model": scored.model,
        "statuses": [r.status for r in scored.results],
        "errors": [r.error for r in scored.results],
    }
