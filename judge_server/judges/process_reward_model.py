"""Process-reward-model mode: a step-tag PRM on vLLM's pooling runner scores every step.

The response is split into steps (``rubrics.steps``); the PRM reads the conversation with its
assistant turn written ``step TAG step TAG ...`` (Qwen2.5-Math-PRM's ``<extra_0>``,
Math-Shepherd's ``ки``) and gives a probability per step, read at each tag. The reward is those
scores aggregated (``min`` by default: the weakest step decides). The tag is placed by the
engine as a token after each step's text, never matched in the text (``engines.step_tags``), so
a response that writes the tag adds no step.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field

from judge_server.engines.base import ChatMessage, JudgeEngine, RewardModel
from judge_server.judges.base import Judge
from judge_server.judges.items import JudgeFailure, JudgeItem, Judgment
from judge_server.judges.registration import BuildContext, JudgeMode
from judge_server.judges.reward_model import loaded_reward_model, turns
from judge_server.judges.step_scores import check_steps, item_steps, step_details
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.steps import StepAggregate, Steps, StepSplit, aggregate_steps
from judge_server.rubrics.strict import StrictModel


class ProcessRewardModelConfig(StrictModel):
    """Which PRM scores the steps, where its tag goes, and how step scores become a reward."""

    model: str = Field(
        min_length=1,
        description="A process reward model registered with the server "
        "(--reward-model NAME=PATH; its architecture says it scores steps).",
    )
    step_tag: str = Field(
        min_length=1,
        max_length=64,
        description="The model's step tag, one token of its vocabulary, placed after each step "
        "(Qwen2.5-Math-PRM: '<extra_0>').",
    )
    label: int | None = Field(
        None,
        ge=0,
        le=63,
        description="Which label's probability is a step's score; default the last (label 1, "
        "'correct step', of a two-label PRM).",
    )
    steps: StepSplit = Field(default_factory=StepSplit, description="How steps are found.")
    aggregate: StepAggregate = Field("min", description="How step scores become the reward.")


class ProcessRewardModelSpec(RubricSpec):
    uses_prompt: ClassVar[bool] = False  # the PRM renders its own chat template

    mode: Literal["process_reward_model"]
    process_reward_model: ProcessRewardModelConfig = Field(
        description="Which process reward model, its step tag, step splitting and aggregation."
    )


class ProcessRewardModelJudge(Judge[ProcessRewardModelSpec]):
    takes_images = False  # a process reward model reads text
    reads_verdicts = False  # one pooling pass, whatever the rubric's reasoning says

    def __init__(self, rubric: ProcessRewardModelSpec, model: RewardModel) -> None:
        super().__init__(rubric)
        self.model = model
        self.reward_model = model
        self.config = rubric.process_reward_model

    def _steps(self, item: JudgeItem) -> Steps:
        return item_steps(item, self.config.steps, self.rubric.name)

    def validate(self, item: JudgeItem) -> None:
        super().validate(item)
        check_steps(item, self.config.steps, self.rubric.name)

    def identity(self) -> str:
        # The same name can point at other weights after a restart: the model is in the key.
        return f"{self.rubric.version}+{self.model.model_id}"

    def preview(self, item: JudgeItem) -> list[list[ChatMessage]]:
        tag = self.config.step_tag
        texts = self._steps(item).texts(item.response)
        return [[*turns(item), {"role": "assistant", "content": "".join(t + tag for t in texts)}]]

    def _score(self, row: list[float]) -> float:
        label = len(row) - 1 if self.config.label is None else self.config.label
        if label >= len(row):
            raise JudgeFailure(f"{self.model.model_id} has {len(row)} labels; no label {label}")
        score = row[label]
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise JudgeFailure(f"{self.model.model_id} gave step score {score}; no reward")
        return score

    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        steps = self._steps(item)
        rows = await self.model.step_scores(
            turns(item), steps.texts(item.response), self.config.step_tag
        )
        if len(rows) != len(steps.spans):
            raise JudgeFailure(f"{len(rows)} step scores for {len(steps.spans)} steps")
        scores = [self._score(row) for row in rows]
        details: dict[str, Any] = {
            "reward_model": self.model.model_id,
            **step_details(steps, scores),
            "aggregate": self.config.aggregate,
        }
        return Judgment(reward=aggregate_steps(scores, self.config.aggregate), details=details)


def build(rubric: ProcessRewardModelSpec, context: BuildContext) -> Judge:
    return ProcessRewardModelJudge(
        rubric, loaded_reward_model(context, rubric.process_reward_model.model)
    )


MODE = JudgeMode(ProcessRewardModelSpec, build)
