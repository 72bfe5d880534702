"""Scoring modes. Each judge is pure logic over the engine seam (no vllm import, no I/O)."""

from __future__ import annotations

from judge_server.judges.base import (
    InvalidItemError,
    Judge,
    JudgeFailure,
    JudgeItem,
    Judgment,
)
from judge_server.judges.pointwise import PointwiseJudge
from judge_server.judges.verdict import VerdictJudge
from judge_server.rubrics.models import Rubric

JUDGES: dict[str, type[Judge]] = {
    "pointwise": PointwiseJudge,
    "verdict": VerdictJudge,
}


def judge_for(rubric: Rubric) -> Judge:
    return JUDGES[rubric.mode](rubric)


__all__ = [
    "JUDGES",
    "InvalidItemError",
    "Judge",
    "JudgeFailure",
    "JudgeItem",
    "Judgment",
    "judge_for",
]
