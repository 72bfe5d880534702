"""Scoring modes. Each judge is pure logic over the engine seam (no vllm import, no I/O).

One module per mode defines its rubric spec, its judge and its registration; ``modes`` lists
them and parses, describes and builds by mode.
"""

from __future__ import annotations

from judge_server.judges.base import Judge
from judge_server.judges.items import InvalidItemError, JudgeFailure, JudgeItem, Judgment
from judge_server.judges.modes import judge_for, parse_rubric, register_mode, rubric_schema
from judge_server.judges.registration import BuildContext, JudgeMode, Resolver

__all__ = [
    "BuildContext",
    "InvalidItemError",
    "Judge",
    "JudgeFailure",
    "JudgeItem",
    "JudgeMode",
    "Judgment",
    "Resolver",
    "judge_for",
    "parse_rubric",
    "register_mode",
    "rubric_schema",
]
