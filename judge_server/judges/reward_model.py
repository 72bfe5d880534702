"""Reward-model mode: a scalar (Bradley-Terry) reward model scores the conversation.

The prompt (text or messages) and the response become one conversation, rendered with the
reward model's own chat template; its value head gives one raw logit r. Reward = sigmoid(r), or
with ``center_on_reference`` sigmoid(r - r_ref), where r_ref scores the item's reference as the
response: under Bradley-Terry that is P(response preferred over the reference).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from judge_server.engines.base import ChatMessage, JudgeEngine, RewardModel
from judge_server.judges.base import InvalidItemError, Judge, JudgeItem, Judgment
from judge_server.rubrics.models import RewardModelSpec, Rubric


def sigmoid(x: float) -> float:
    # Two branches so that exp never overflows for large |x|.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def conversation(item: JudgeItem, response: str) -> list[ChatMessage]:
    turns: list[ChatMessage] = (
        [{"role": "user", "content": item.prompt}]
        if isinstance(item.prompt, str)
        else list(item.prompt)
    )
    return [*turns, {"role": "assistant", "content": response}]


class RewardModelJudge(Judge):
    def __init__(self, rubric: Rubric, model: RewardModel) -> None:
        super().__init__(rubric)
        assert rubric.reward_model is not None, "validated by the rubric model"
        self.spec: RewardModelSpec = rubric.reward_model
        self.model = model

    def validate(self, item: JudgeItem) -> None:
        super().validate(item)
        if self.spec.center_on_reference and not (item.reference or "").strip():
            raise InvalidItemError(
                f"rubric {self.rubric.name!r} centres on the reference; the item has none"
            )

    def identity(self) -> str:
        # The same name can point at other weights after a restart: the model is in the key.
        return f"{self.rubric.version}+{self.model.model_id}"

    def preview(self, item: JudgeItem) -> list[list[ChatMessage]]:
        calls = [conversation(item, item.response)]
        if self.spec.center_on_reference and item.reference is not None:
            calls.append(conversation(item, item.reference))
        return calls

    async def _score(self, item: JudgeItem, response: str) -> float:
        return await self.model.reward(self.model.render_chat(conversation(item, response)))

    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        details: dict[str, Any] = {"reward_model": self.model.model_id}
        if not self.spec.center_on_reference:
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
