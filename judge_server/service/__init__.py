"""The serving layer: rubric resolution, judge construction, scoring and group scoring.

Both front doors (the HTTP API and the command line) go through ``JudgeService``; nothing above
this package builds judges or resolves rubrics on its own.
"""

from judge_server.service.builder import build_service
from judge_server.service.errors import (
    RETRY_AFTER_S,
    InvalidRubric,
    NotReady,
    Overloaded,
    RubricNotFound,
    RubricsReadOnly,
    ServiceError,
    TooManyItems,
)
from judge_server.service.group import GroupOptions, GroupScore, score_group
from judge_server.service.judge_service import JudgeService, RubricChoice
from judge_server.service.scoring import ItemResult, Rejected, ScoreInput, Scorer, Status

__all__ = [
    "RETRY_AFTER_S",
    "GroupOptions",
    "GroupScore",
    "InvalidRubric",
    "ItemResult",
    "JudgeService",
    "NotReady",
    "Overloaded",
    "Rejected",
    "RubricChoice",
    "RubricNotFound",
    "RubricsReadOnly",
    "ScoreInput",
    "Scorer",
    "ServiceError",
    "Status",
    "TooManyItems",
    "build_service",
    "score_group",
]
