"""What every judge shares: the item it judges, what it returns, and how it fails.

Judges are pure logic over the ``JudgeEngine`` seam: they render prompts, read verdict
probabilities and aggregate. They never import vllm and do no I/O of their own.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from judge_server.engines.base import ChatMessage, JudgeEngine
from judge_server.rubrics.models import Rubric


@dataclass(frozen=True)
class JudgeItem:
    id: str
    prompt: str | list[ChatMessage]
    response: str
    reference: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Judgment:
    reward: float
    details: dict[str, Any]


class InvalidItemError(ValueError):
    """The item cannot be judged by this rubric (status ``invalid_input``)."""


class JudgeFailure(RuntimeError):
    """The judge ran but produced no usable verdict (status ``judge_error``, never a score)."""


class Judge(abc.ABC):
    def __init__(self, rubric: Rubric) -> None:
        self.rubric = rubric

    def validate(self, item: JudgeItem) -> None:
        """Reject items this rubric cannot judge, before any engine work."""
        if self.rubric.requires_reference and not (item.reference or "").strip():
            raise InvalidItemError(f"rubric {self.rubric.name!r} needs a reference answer")

    @abc.abstractmethod
    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment: ...

    def identity(self) -> str:
        """What determines this judge's outputs besides the item: its rubric version (a
        composite adds its components' versions, which float independently)."""
        return self.rubric.version

    def preview(self, item: JudgeItem) -> list[list[ChatMessage]]:
        """The chat messages of every judge call this item costs (for rubric authors)."""
        from judge_server.judges.prompting import judge_messages

        return [judge_messages(self.rubric, item)]
