"""Splitting a response into reasoning steps, for step-level (process) rewards.

A process rubric says how its responses mark their steps; ``split_steps`` returns each step as a
character span of the response, so a per-step score can point at the text it judged. The
patterns are anchored and free of nested repetition (linear time on any input), and the number
of steps is bounded: the steps past ``max_steps`` are folded into the last one, so a response
cannot buy more judge calls by writing more lines.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from judge_server.rubrics.strict import StrictModel

MAX_STEPS_LIMIT = 64

# "Step 3:", "3.", "3)", "(3)" at the start of a line.
_NUMBERED = re.compile(
    r"^[ \t]*(?:step[ \t]*\d{1,4}[ \t]*[.:)\-]?|\(?\d{1,4}[.)])[ \t]", re.I | re.M
)
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)*")


class StepSplit(StrictModel):
    """How a response's steps are found."""

    by: Literal["auto", "marker", "numbered", "blank_lines", "lines"] = Field(
        "auto",
        description="marker: split at each occurrence of `marker`; numbered: a step starts at "
        "each line beginning with a step number ('Step 2:', '2.', '2)'); blank_lines: "
        "paragraphs; lines: each non-empty line; auto: numbered if at least two numbered lines, "
        "else blank_lines if at least two paragraphs, else lines.",
    )
    marker: str = Field(
        "<step>",
        min_length=1,
        max_length=64,
        description="The step separator for by: marker (for example a step tag such as 'ки').",
    )
    max_steps: int = Field(
        16,
        ge=1,
        le=MAX_STEPS_LIMIT,
        description="Steps judged at most; later steps are folded into the last one.",
    )


@dataclass(frozen=True)
class StepSpan:
    start: int
    """Offset of the step's first character in the response."""
    end: int
    """Offset one past its last character (surrounding whitespace excluded)."""


@dataclass(frozen=True)
class Steps:
    spans: tuple[StepSpan, ...]
    folded: int
    """How many steps past ``max_steps`` were folded into the last span."""

    def texts(self, response: str) -> list[str]:
        return [response[s.start : s.end] for s in self.spans]


def _trimmed(text: str, start: int, end: int) -> StepSpan | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return StepSpan(start, end) if end > start else None


def _between(text: str, cuts: list[tuple[int, int]]) -> list[StepSpan]:
    """The non-blank spans between separators given as (start, end) character ranges."""
    spans: list[StepSpan] = []
    pos = 0
    for cut_start, cut_end in [*cuts, (len(text), len(text))]:
        if (span := _trimmed(text, pos, cut_start)) is not None:
            spans.append(span)
        pos = cut_end
    return spans


def _starting_at(text: str, starts: list[int]) -> list[StepSpan]:
    """Steps that begin at ``starts``; text before the first start joins the first step."""
    bounds = [0, *starts[1:], len(text)]
    return [s for a, b in itertools.pairwise(bounds) if (s := _trimmed(text, a, b))]


def _find(text: str, split: StepSplit) -> list[StepSpan]:
    if split.by == "marker":
        cuts, pos = [], text.find(split.marker)
        while pos >= 0:
            cuts.append((pos, pos + len(split.marker)))
            pos = text.find(split.marker, pos + len(split.marker))
        return _between(text, cuts)
    numbered = [m.start() for m in _NUMBERED.finditer(text)]
    if split.by == "numbered" or (split.by == "auto" and len(numbered) >= 2):
        return _starting_at(text, numbered) if numbered else []
    paragraphs = _between(text, [(m.start(), m.end()) for m in _BLANK_LINES.finditer(text)])
    if split.by == "blank_lines" or (split.by == "auto" and len(paragraphs) >= 2):
        return paragraphs
    newlines = [(i, i + 1) for i, ch in enumerate(text) if ch == "\n"]
    return _between(text, newlines)


def split_steps(response: str, split: StepSplit) -> Steps:
    """The response's steps, at most ``split.max_steps`` (none for a blank response, or for
    ``numbered`` when no line starts with a step number)."""
    spans = _find(response, split)
    if len(spans) <= split.max_steps:
        return Steps(tuple(spans), 0)
    kept = spans[: split.max_steps]
    last = StepSpan(kept[-1].start, spans[-1].end)
    return Steps((*kept[:-1], last), len(spans) - split.max_steps)


StepAggregate = Literal["min", "mean", "product", "last"]
"""How per-step scores in [0, 1] become one reward: min (the weakest step decides, "Stop
Summation: Min-Form Credit Assignment"), mean, product (every step right) or last."""


def aggregate_steps(scores: Sequence[float], how: StepAggregate) -> float:
    if not scores:
        raise ValueError("no step scores to aggregate")
    if how == "min":
        return min(scores)
    if how == "mean":
        return math.fsum(scores) / len(scores)
    if how == "product":
        return math.prod(scores)
    return scores[-1]
