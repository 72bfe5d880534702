"""Pointwise: a single-token score on a scale; reward = expected score mapped to [0, 1].

The expected score over the renormalised distribution is smoother and better calibrated than
parsing the argmax, and it never fails to parse.
"""

from __future__ import annotations

from judge_server.engines.base import JudgeEngine
from judge_server.judges.base import Judge, JudgeItem, Judgment
from judge_server.judges.prompting import judge_messages
from judge_server.judges.verdicts import read_verdict


class PointwiseJudge(Judge):
    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        scale = self.rubric.scores
        labels = {str(s): [str(s)] for s in scale.labels}
        read = await read_verdict(
            engine,
            judge_messages(self.rubric, item),
            labels,
            reasoning=self.rubric.reasoning,
            default_verdict_prompt=(
                f"Now reply with only the final score, a single number from {scale.min} "
                f"to {scale.max}."
            ),
            min_valid_mass=self.rubric.min_valid_mass,
        )
        expected = sum(int(label) * p for label, p in read.distribution.items())
        reward = (expected - scale.min) / (scale.max - scale.min)
        details: dict[str, object] = {
            "expected_score": expected,
            "argmax": int(read.argmax),
            "distribution": read.distribution,
            "valid_mass": read.valid_mass,
        }
        if read.reasoning is not None:
            details["reasoning"] = read.reasoning
        return Judgment(reward=min(1.0, max(0.0, reward)), details=details)
