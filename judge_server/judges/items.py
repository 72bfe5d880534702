"""What a judge judges, what it returns, and how it fails: the leaf every judge module imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from judge_server.engines.base import ChatMessage
from judge_server.engines.images import ImageData
from judge_server.rubrics.criteria import Criterion


@dataclass(frozen=True)
class JudgeItem:
    id: str
    prompt: str | list[ChatMessage]
    response: str
    reference: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    criteria: tuple[Criterion, ...] | None = None
    """Instance criteria (the item's ``rubrics``, parsed by ``rubrics.instance``); None when
    the item brought none and the rubric's own apply."""
    images: tuple[ImageData, ...] = ()
    """The images its text names by slot (``engines.images``): its prompt's and response's
    (and, in a group's comparison, the other response's)."""


@dataclass(frozen=True)
class Judgment:
    reward: float
    details: dict[str, Any]


class InvalidItemError(ValueError):
    """The item cannot be judged by this rubric (status ``invalid_input``)."""


class JudgeFailure(RuntimeError):
    """The judge ran but produced no usable verdict (status ``judge_error``, never a score)."""
