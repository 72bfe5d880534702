"""Reward-model mode: a scalar (Bradley-Terry) reward model scores the conversation.

The prompt (text or messages) and the response become one conversation, rendered with the
reward model's own chat template; its value head gives one raw logit r. Reward = sigmoid(r), or
with ``center_on_reference`` sigmoid(r - r_ref), where r_ref scores the item's reference as the
response: under Bradley-Terry that is P(response preferred over the reference).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, ClassVar, Literal

from pydantic import Field

from judge_server.engines.base import ChatMessage, JudgeEngine, RewardModel
from judge_server.judges.base import Judge
from judge_server.judges.items import InvalidItemError, JudgeFailure, JudgeItem, Judgment
from judge_server.judges.registration import BuildContext, JudgeMode
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.strict import StrictModel


class RewardModelConfig(StrictModel):
    """Which reward model scores the conversation, and how its logit becomes a reward."""

    model: str = Field(
        min_length=1,
        description="A reward model registered with the server (--reward-model NAME=PATH).",
    )
    shaping: Literal["sigmoid"] = Field(
        "sigmoid",
        description="reward = sigmoid(r); the raw logit r is always in details.score.",
    )
    center_on_reference: bool = Field(
        False,
        description="reward = sigmoid(r - r_ref), r_ref the reward of the item's reference "
        "as the response (items without a reference get invalid_input).",
    )


class RewardModelSpec(RubricSpec):
    uses_prompt: ClassVar[bool] = False  # the reward model renders its own chat template

    mode: Literal["reward_model"]
    reward_model: RewardModelConfig = Field(
        description="Which reward model, and how its logit is shaped."
    )


def sigmoid(x: float) -> float:
    # Two branches so that exp never overflows for large |x|.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def turns(item: JudgeItem) -> list[ChatMessage]:
    """The item's prompt as the conversation before the response."""
    if isinstance(item.prompt, str):
        return [{"role": "user", "content": item.prompt}]
    return list(item.prompt)


def conversation(item: JudgeItem, response: str) -> list[ChatMessage]:
    return [*turns(item), {"role": "assistant", "content": response}]


class RewardModelJudge(Judge[RewardModelSpec]):
    takes_images = False  # a reward model reads text
    reads_verdicts = False

    def __init__(self, rubric: RewardModelSpec, model: RewardModel) -> None:
        super().__init__(rubric)
        self.model = model
        self.reward_model = model

    def readings(self, item: JudgeItem | None) -> int:
        return 2 if self.rubric.reward_model.center_on_reference else 1

    def validate(self, item: JudgeItem) -> None:
        super().validate(item)
        if self.rubric.reward_model.center_on_reference and not (item.reference or "").strip():
            raise InvalidItemError(
                f"rubric {self.rubric.name!r} centres on the reference; the item has none"
            )

    def identity(self) -> str:
        # The same name can point at other weights after a restart: the model is in the key.
        return f"{self.rubric.version}+{self.model.model_id}"

    def preview(self, item: JudgeItem) -> list[list[ChatMessage]]:
        calls = [conversation(item, item.response)]
        if self.rubric.reward_model.center_on_reference and item.reference is not None:
            calls.append(conversation(item, item.reference))
        return calls

    async def _score(self, item: JudgeItem, response: str) -> float:
        score = await self.model.reward(self.model.render_chat(conversation(item, response)))
        if not math.isfinite(score):
            # sigmoid would turn inf into a certain 0 or 1 and NaN into NaN: neither is a reward.
            raise JudgeFailure(f"reward model {self.model.model_id!r} returned {score}; no reward")
        return score

    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        details: dict[str, Any] = {"reward_model": self.model.model_id}
        if not self.rubric.reward_model.center_on_reference:
            score = await self._score(item, item.response)
            details["score"] = score
            return Judgment(reward=sigmoid(score), details=details)
        assert item.reference is not None, "checked by validate()"
        if item.response == item.reference:
            # Identical texts: one call, and exactly 0.5 (no run-to-run noise in the difference).
            score = ref_score = await self._score(item, item.response)
        else:
            score, ref_score = await asyncio.gather(
                self._score(item, item.response), self._score(item, item.reference)
            )
        details.update(score=score, reference_score=ref_score)
        return Judgment(reward=sigmoid(score - ref_score), details=details)


def loaded_reward_model(context: BuildContext, name: str) -> RewardModel:
    model = context.reward_models.get(name)
    if model is None:
        raise JudgeFailure(
            f"reward model {name!r} is not loaded (pass --reward-model {name}=PATH to "
            "serve, score, eval or rubrics render, or set JUDGE_REWARD_MODELS)"
        )
    return model


def build(rubric: RewardModelSpec, context: BuildContext) -> Judge:
    return RewardModelJudge(rubric, loaded_reward_model(context, rubric.reward_model.model))


MODE = JudgeMode(RewardModelSpec, build)
