"""What the step-level modes (process, process_reward_model) share: an item's steps, refused
when it has none, and the details that point each step's score at the text it judged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from judge_server.judges.items import InvalidItemError, JudgeItem
from judge_server.rubrics.steps import Steps, StepSplit, has_steps, split_steps


def _none(split: StepSplit, rubric: str) -> InvalidItemError:
    return InvalidItemError(
        f"no steps found in the response (rubric {rubric!r} splits by {split.by!r}); a "
        "step-level reward needs at least one step"
    )


def check_steps(item: JudgeItem, split: StepSplit, rubric: str) -> None:
    """Refuse an item without steps, before any engine work, without splitting it (the judge
    splits each item once)."""
    if not has_steps(item.response, split):
        raise _none(split, rubric)


def item_steps(item: JudgeItem, split: StepSplit, rubric: str) -> Steps:
    steps = split_steps(item.response, split)
    if not steps.spans:
        raise _none(split, rubric)
    return steps


def step_details(steps: Steps, scores: Sequence[float]) -> dict[str, Any]:
    """Each step's span (Unicode code point offsets into the response) and score, and how many
    steps past the limit were folded into the last."""
    rows = [
        {"start": span.start, "end": span.end, "score": score}
        for span, score in zip(steps.spans, scores, strict=True)
    ]
    return {"steps": rows, "folded_steps": steps.folded}
