"""Likelihood mode: reward from the judge model's log-probability of a target text.

- ``reference``: how probable is the reference answer right after the response (and a cue such
  as "So the final answer is: ")? A response that leads to the right answer makes it likely.
- ``follow_up``: how probable is a next user turn such as "Thanks, that solved my problem."?

The conversation is rendered with the judge model's chat template and split just before the
target, so the target is scored exactly where the template puts it. Reward = exp(mean log-prob
per target token), the per-token geometric-mean probability, in [0, 1]. With ``normalise``, the
same target is scored after a baseline instead of the response, and reward = sigmoid(scale x
(mean - baseline mean)): what the response adds, independent of how easy the target is on its
own. The baseline of a reference target is the reference right after the cue (no reasoning); a
follow-up needs an explicit ``baseline_response``, a content-free answer: after an empty
assistant turn the follow-up's probability measures the chat template, not an answer.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field

from judge_server.engines.base import ChatMessage, JudgeEngine
from judge_server.judges.base import Judge
from judge_server.judges.items import InvalidItemError, JudgeFailure, JudgeItem, Judgment
from judge_server.judges.prompting import judge_messages
from judge_server.judges.registration import JudgeMode, rubric_only
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.strict import StrictModel


class Likelihood(StrictModel):
    """Likelihood rewards: how probable the judge model finds a target text after the response."""

    target: Literal["reference", "follow_up"] = Field(
        "reference",
        description="reference: the reference answer, after the response and `cue`; follow_up: "
        "a next user turn such as 'Thanks, that solved it.'",
    )
    cue: str = Field(
        "\n\nSo the final answer is: ",
        description="reference target: text between the response and the reference.",
    )
    follow_up: str = "Thanks, that solved my problem."
    normalise: bool = Field(
        False,
        description="Subtract the target's log-likelihood without the response (what the "
        "response adds), reward = sigmoid(difference x scale).",
    )
    scale: float = Field(1.0, gt=0, description="normalise: sigmoid temperature.")
    baseline_response: str | None = Field(
        None,
        min_length=1,
        description="normalise: the response the target is scored after for the baseline, "
        "e.g. a content-free answer; required for follow_up. Unset with a reference target: "
        "the reference right after the cue.",
    )


class LikelihoodSpec(RubricSpec):
    mode: Literal["likelihood"]
    likelihood: Likelihood = Field(default_factory=Likelihood)

    def check_mode(self) -> None:
        spec = self.likelihood
        if spec.target == "follow_up" and spec.normalise and spec.baseline_response is None:
            raise ValueError(
                "likelihood.normalise with a follow_up target needs likelihood.baseline_response "
                '(a content-free answer such as "I\'m not sure I can help with that."); an '
                "empty assistant turn is no baseline"
            )


def split_before(rendered: str, target: str) -> str:
    at = rendered.rfind(target)
    if at < 0:
        raise JudgeFailure("the chat template changed the target text; cannot locate it")
    return rendered[:at]


class LikelihoodJudge(Judge[LikelihoodSpec]):
    reads_verdicts = False

    def readings(self, item: JudgeItem | None) -> int:
        return 2 if self.rubric.likelihood.normalise else 1

    def validate(self, item: JudgeItem) -> None:
        if item.images:
            # vLLM expands each image to its feature positions: the prompt's log-probs no
            # longer line up with its text tokens, so the continuation cannot be read.
            raise InvalidItemError(
                f"rubric {self.rubric.name!r} (likelihood mode) scores text only: the "
                "likelihood of a continuation is not read after images; send text only"
            )
        if self.rubric.likelihood.target == "reference" and not (item.reference or "").strip():
            raise InvalidItemError("likelihood of the reference needs a reference answer")

    def _conversation(self, item: JudgeItem, response: str | None) -> tuple[list[ChatMessage], str]:
        spec = self.rubric.likelihood
        messages = judge_messages(self.rubric, item)
        if spec.target == "reference":
            assert item.reference is not None
            lead = (response + spec.cue) if response is not None else spec.cue.lstrip()
            return [*messages, {"role": "assistant", "content": lead + item.reference}], (
                item.reference
            )
        assert response is not None, "validated: a normalised follow-up has a baseline response"
        turns: list[ChatMessage] = [*messages, {"role": "assistant", "content": response}]
        return [*turns, {"role": "user", "content": spec.follow_up}], spec.follow_up

    async def _mean_logprob(
        self, engine: JudgeEngine, item: JudgeItem, response: str | None
    ) -> tuple[float, int]:
        messages, target = self._conversation(item, response)
        rendered = engine.render_chat(messages, add_generation_prompt=False)
        prefix = split_before(rendered, engine.as_content(target))
        logprobs = await engine.continuation_logprobs(prefix, target)
        if not logprobs:
            raise JudgeFailure("the likelihood target is empty")
        broken = [(k, v) for k, v in enumerate(logprobs) if not math.isfinite(v)]
        if broken:
            # NaN is a broken engine; -inf would make the mean -inf and a normalised gain NaN.
            raise JudgeFailure(
                f"the engine returned non-finite log-probabilities for target tokens "
                f"(position, value): {broken[:5]}; no likelihood"
            )
        return sum(logprobs) / len(logprobs), len(logprobs)

    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        spec = self.rubric.likelihood
        mean, n_tokens = await self._mean_logprob(engine, item, item.response)
        details: dict[str, Any] = {
            "target": spec.target,
            "mean_logprob": mean,
            "target_tokens": n_tokens,
            "per_token_probability": math.exp(mean),
        }
        if not spec.normalise:
            return Judgment(reward=math.exp(mean), details=details)
        baseline, _ = await self._mean_logprob(engine, item, spec.baseline_response)
        gain = mean - baseline
        details.update(baseline_mean_logprob=baseline, gain=gain)
        return Judgment(reward=1.0 / (1.0 + math.exp(-spec.scale * gain)), details=details)


MODE = JudgeMode(LikelihoodSpec, rubric_only(LikelihoodJudge))
