"""Process: a score per reasoning step, aggregated into one reward (step-level process rewards).

The response is split into steps (``rubrics.steps``). Step i is judged in context: its prompt
shows the problem, steps 1..i and a yes/no question about step i, so every step's prompt extends
the text of the steps before it and vLLM's prefix cache computes each step once. The reward of a
step is P(yes) read off the verdict token; the steps' scores are aggregated by ``min`` (the
weakest step decides, "Stop Summation: Min-Form Credit Assignment"), ``mean``, ``product`` or
``last``.

The last step's prompt holds every step, so it runs first and the others, issued together after
it, find their whole prefix cached. A failure of any step fails the item: a reward from the
steps that happened to succeed would be a partial score.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar, Literal

from pydantic import Field

from judge_server.engines.base import ChatMessage, JudgeEngine
from judge_server.judges.base import Judge
from judge_server.judges.items import JudgeItem, Judgment
from judge_server.judges.prompting import judge_messages
from judge_server.judges.registration import JudgeMode, rubric_only
from judge_server.judges.step_scores import check_steps, item_steps, step_details
from judge_server.judges.verdicts import read_yes_no
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.steps import StepAggregate, Steps, StepSplit, aggregate_steps
from judge_server.rubrics.tokens import VerdictTokens


class ProcessSpec(RubricSpec):
    mode: Literal["process"]
    template_fields: ClassVar[frozenset[str]] = frozenset({"steps", "step_number"})
    required_fields: ClassVar[tuple[str, ...]] = ("steps", "step_number")
    split: StepSplit = Field(
        default_factory=StepSplit, description="How the response's steps are found."
    )
    aggregate: StepAggregate = Field(
        "min", description="How the steps' scores (each P(yes)) become the reward."
    )
    verdict: VerdictTokens = Field(default_factory=VerdictTokens)

    def check_mode(self) -> None:
        assert self.template is not None
        # The whole response would show the judge the steps after the one it judges, and it
        # would break the prefix shared by the steps' prompts.
        if "{response}" in self.template or "{response}" in (self.system or ""):
            raise ValueError("process mode shows the response as {steps}; {response} is refused")
        if self.template.index("{steps}") > self.template.index("{step_number}"):
            raise ValueError("process mode needs {steps} before {step_number} in the template")


def steps_text(texts: list[str]) -> str:
    """Steps 1..i as the judge sees them, each under its number in brackets (a label of its
    own: the response's numbering, if any, stays in the text); a longer list extends a
    shorter one's text."""
    return "\n".join(f"[{k}] {text}" for k, text in enumerate(texts, start=1))


class ProcessJudge(Judge[ProcessSpec]):
    def readings(self, item: JudgeItem | None) -> int:
        # The rubric's bound, not the item's steps: admission splits nothing.
        return self.rubric.split.max_steps

    def _steps(self, item: JudgeItem) -> Steps:
        return item_steps(item, self.rubric.split, self.rubric.name)

    def _prompts(self, item: JudgeItem, steps: Steps) -> list[list[ChatMessage]]:
        texts = steps.texts(item.response)
        return [
            judge_messages(
                self.rubric, item, steps=steps_text(texts[: i + 1]), step_number=str(i + 1)
            )
            for i in range(len(texts))
        ]

    def validate(self, item: JudgeItem) -> None:
        super().validate(item)
        check_steps(item, self.rubric.split, self.rubric.name)  # before any engine work

    def preview(self, item: JudgeItem) -> list[list[ChatMessage]]:
        return self._prompts(item, self._steps(item))

    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        steps = self._steps(item)
        prompts = self._prompts(item, steps)
        last = await read_yes_no(self.rubric, prompts[-1], engine)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(read_yes_no(self.rubric, p, engine)) for p in prompts[:-1]
                ]
        except ExceptionGroup as failed:
            # The item fails with the first step's failure (its own type: judge_error, or
            # invalid_input for a prompt too long); the group has cancelled the other steps.
            raise failed.exceptions[0] from None
        scores = [t.result().distribution["yes"] for t in tasks] + [last.distribution["yes"]]
        return Judgment(
            reward=aggregate_steps(scores, self.rubric.aggregate),
            details={**step_details(steps, scores), "aggregate": self.rubric.aggregate},
        )


MODE = JudgeMode(ProcessSpec, rubric_only(ProcessJudge))
