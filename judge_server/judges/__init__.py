"""Scoring modes. Each judge is pure logic over the engine seam (no vllm import, no I/O)."""

from __future__ import annotations

from judge_server.judges.base import (
    InvalidItemError,
    Judge,
    JudgeFailure,
    JudgeItem,
    Judgment,
)
from judge_server.judges.composite import CompositeJudge, Resolver
from judge_server.judges.likelihood import LikelihoodJudge
from judge_server.judges.pairwise import PairwiseJudge
from judge_server.judges.pointwise import PointwiseJudge
from judge_server.judges.rubric import RubricJudge
from judge_server.judges.verdict import VerdictJudge
from judge_server.judges.verify import VerifyJudge
from judge_server.rubrics.models import Rubric

SIMPLE_JUDGES: dict[str, type[Judge]] = {
    "pointwise": PointwiseJudge,
    "verdict": VerdictJudge,
    "rubric": RubricJudge,
    "verify": VerifyJudge,
    "likelihood": LikelihoodJudge,
    "pairwise": PairwiseJudge,
}


def judge_for(rubric: Rubric, resolve: Resolver | None = None, depth: int = 0) -> Judge:
    """Build the judge for one request. ``resolve`` looks up component rubrics (composite)."""
    if rubric.mode == "composite":
        if resolve is None:
            raise JudgeFailure("composite rubrics need a rubric registry to resolve components")
        return CompositeJudge(rubric, resolve, judge_for, depth)
    judge_class = SIMPLE_JUDGES.get(rubric.mode)
    if judge_class is None:
        raise JudgeFailure(f"mode {rubric.mode!r} is not available in this server")
    return judge_class(rubric)


__all__ = [
    "InvalidItemError",
    "Judge",
    "JudgeFailure",
    "JudgeItem",
    "Judgment",
    "judge_for",
]
