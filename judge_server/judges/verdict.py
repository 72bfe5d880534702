"""Verdict: reward = P(yes) for a yes/no question, optionally against a reference answer."""

from __future__ import annotations

from judge_server.engines.base import JudgeEngine
from judge_server.judges.base import Judge, JudgeItem, Judgment
from judge_server.judges.prompting import judge_messages
from judge_server.judges.verdicts import read_yes_no


class VerdictJudge(Judge):
    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        read = await read_yes_no(self.rubric, judge_messages(self.rubric, item), engine)
        p_yes = read.distribution["yes"]
        details: dict[str, object] = {
            "p_yes": p_yes,
            "verdict": read.argmax,
            "valid_mass": read.valid_mass,
        }
        if read.reasoning is not None:
            details["reasoning"] = read.reasoning
        return Judgment(reward=p_yes, details=details)
