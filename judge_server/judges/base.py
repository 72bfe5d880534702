"""The judge interface every mode implements.

Judges are pure logic over the ``JudgeEngine`` seam: they render prompts, read verdict
probabilities and aggregate. They never import vllm and do no I/O of their own. A judge is typed
by its mode's spec, so it reads its own fields (``self.rubric.criteria``) type-safely.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar, Generic

from typing_extensions import TypeVar

from judge_server.engines.base import ChatMessage, JudgeEngine, RewardModel
from judge_server.judges.items import InvalidItemError, JudgeFailure, JudgeItem, Judgment
from judge_server.judges.prompting import judge_messages
from judge_server.judges.workers import CheckPool
from judge_server.rubrics.spec import RubricSpec

# Covariant with a default, so a plain ``Judge`` means "a judge of any mode" and every
# ``Judge[PointwiseSpec]`` is one.
S = TypeVar("S", bound=RubricSpec, default=RubricSpec, covariant=True)


class Judge(abc.ABC, Generic[S]):
    #: whether this judge's model sees images: a text-only judge's items with images are
    #: refused in one place, before any fetching or decoding (``service.image_checks``)
    takes_images: bool = True
    reads_verdicts: ClassVar[bool] = True
    """Whether each reading reads a verdict (which reasoning-first precedes with a generation:
    two engine calls); a likelihood or reward-model pass is one call either way."""

    def __init__(self, rubric: S) -> None:
        self.rubric = rubric
        self.reward_model: RewardModel | None = None
        """The hosted reward model this judge scores with (its rewards come from it), if any."""

    def readings(self, item: JudgeItem | None) -> int:
        """Verdict readings (or model passes) one item takes at most, known before any work:
        the item's own where they change it (instance criteria), else the rubric's bound."""
        return 1

    def validate(self, item: JudgeItem) -> None:
        """Reject items this rubric cannot judge, before any engine work."""
        if self.rubric.requires_reference and not (item.reference or "").strip():
            raise InvalidItemError(f"rubric {self.rubric.name!r} needs a reference answer")

    def check_criteria(self, item: JudgeItem) -> None:
        """Refuse instance criteria (the item's ``rubrics``) this judge cannot use; only a
        rubric-mode rubric that declares ``instance_criteria`` takes them."""
        if item.criteria is not None:
            raise InvalidItemError(
                f"rubric {self.rubric.name!r} ({self.rubric.mode} mode) takes no instance "
                "criteria (the item's rubrics field); use a rubric that declares "
                "instance_criteria, such as healthbench"
            )

    @abc.abstractmethod
    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment: ...

    def identity(self) -> str:
        """What determines this judge's outputs besides the item: its rubric version (a
        composite adds its components' versions, which float independently)."""
        return self.rubric.version

    def preview(self, item: JudgeItem) -> list[list[ChatMessage]]:
        """The chat messages of every judge call this item costs (for rubric authors)."""
        return [judge_messages(self.rubric, item)]


def shape(rubric: RubricSpec, judgment: Judgment) -> Judgment:
    """The reward ``rubric`` gives for a judge's judgment: its shaping applied, the unshaped
    reward kept in the details.

    Every score a rubric produces goes through here, on its own (the Scorer) or as a component
    (a composite), so a rubric gives the same reward wherever it is used. A non-finite reward
    is a judge failure here, whichever mode computed it.
    """
    if not math.isfinite(judgment.reward):
        # Checked before shaping, whose clamp would turn NaN into a plausible 0.0.
        raise JudgeFailure(f"the judge computed a non-finite reward ({judgment.reward})")
    shaping = rubric.shaping
    if shaping.kind == "none" and type(judgment.reward) is float and 0.0 < judgment.reward <= 1.0:
        # what shaping gives back (0.0 goes the long way, -0.0 becoming 0.0; an int or bool
        # becomes a float)
        return judgment
    details = judgment.details
    if shaping.kind != "none":
        details = {**details, "unshaped_reward": judgment.reward}
    return Judgment(reward=shaping.apply(judgment.reward), details=details)


__all__ = ["InvalidItemError", "Judge", "JudgeFailure", "JudgeItem", "Judgment", "shape"]


class CheckedJudge(Judge[S]):
    """A judge that runs CPU-bound work (answer checks, the content-free guard on a long text)
    in the check pool's worker processes, with their deadline."""

    def __init__(self, rubric: S, checks: CheckPool) -> None:
        super().__init__(rubric)
        self.checks = checks
