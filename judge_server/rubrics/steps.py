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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from judge_server.rubrics.strict import StrictModel

MAX_STEPS_LIMIT = 64

# "Step 3:", "3.", "3)", "(3)" at the start of a line, after an optional markdown heading or
# emphasis ("## Step 3:", "**Step 3:**", "**3.**"). "Step 3" followed by punctuation may run on
# ("Step 1:3*4"); a bare number needs a space or the line's end after it (not "3.14").
_NUMBERED = re.compile(
    r"^[ \t]*(?:\#{1,6}[ \t]*|\*{1,2}[ \t]*)?"
    r"(?:step[ \t]*\d{1,4}(?:[ \t]*[.:)\-]|[ \t]|$)|\(?\d{1,4}[.)](?:\*\*)?(?:[ \t]|$))",
    re.I | re.M,
)
_LINE_WITH_TEXT = re.compile(r"^[^\S\n]*\S", re.M)
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)*")


class StepSplit(StrictModel):
    """How a response's steps are found."""

    by: Literal["auto", "marker", "numbered", "blank_lines", "lines"] = Field(
        "auto",
        description="marker: split at each occurrence of `marker`; numbered: a step starts at "
        "each line beginning with a step number ('Step 2:', '2.', '2)', also after '#'s or "
        "'**'); blank_lines: "
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
    """Offset of the step's first character in the response, in Unicode code points (a Python
    string index; not bytes, not UTF-16 units)."""
    end: int
    """Offset one past its last character, in code points (surrounding whitespace excluded)."""


@dataclass(frozen=True)
class Steps:
    spans: tuple[StepSpan, ...]
    folded: int
    """How many steps past ``max_steps`` were folded into the last span."""

    def texts(self, response: str) -> list[str]:
        return [response[s.start : s.end] for s in self.spans]


def _trimmed(text: str, start: int, end: int) -> StepSpan | None:
    # str methods, not a loop over characters: strip in C, offsets from the lengths.
    piece = text[start:end]
    body = piece.strip()
    if not body:
        return None
    first = start + len(piece) - len(piece.lstrip())
    return StepSpan(first, first + len(body))


def _between(text: str, cuts: Iterator[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The ranges between separators given as (start, end) character ranges."""
    pos = 0
    for cut_start, cut_end in cuts:
        yield pos, cut_start
        pos = cut_end
    yield pos, len(text)


def _marker_cuts(text: str, marker: str) -> Iterator[tuple[int, int]]:
    pos = text.find(marker)
    while pos >= 0:
        yield pos, pos + len(marker)
        pos = text.find(marker, pos + len(marker))


def _starting_at(text: str, starts: Iterator[int]) -> Iterator[tuple[int, int]]:
    """Steps that begin at ``starts``; text before the first start joins the first step."""
    first = next(starts, None)
    if first is None:
        return
    pos = 0
    for start in starts:
        yield pos, start
        pos = start
    yield pos, len(text)


def _lines(text: str) -> Iterator[tuple[int, int]]:
    # Only lines with text: a run of blank lines is skipped inside the regex engine.
    for m in _LINE_WITH_TEXT.finditer(text):
        end = text.find("\n", m.start())
        yield m.start(), len(text) if end < 0 else end


def _count(pieces: list[str]) -> int:
    """Non-blank pieces, counted without a Python-level loop (map and sum run in C)."""
    return sum(map(bool, map(str.strip, pieces)))


def _ranges(text: str, split: StepSplit) -> tuple[Iterator[tuple[int, int]], Callable[[int], int]]:
    """The candidate step ranges in order (lazily: the caller stops after ``max_steps + 1``)
    and a count of the non-blank steps that start at or after an offset (for ``folded``),
    computed by regex and str methods over the rest of the text."""
    if split.by == "marker":
        marker = split.marker
        return _between(text, _marker_cuts(text, marker)), lambda pos: _count(
            text[pos:].split(marker)
        )
    numbered = split.by == "numbered" or (
        split.by == "auto" and len(list(itertools.islice(_NUMBERED.finditer(text), 2))) >= 2
    )
    if numbered:
        starts = (m.start() for m in _NUMBERED.finditer(text))
        return _starting_at(text, starts), lambda pos: len(_NUMBERED.findall(text, pos))
    if split.by == "blank_lines" or (
        # Two paragraphs: a blank-line run with text on both sides.
        split.by == "auto" and _BLANK_LINES.search(text.strip()) is not None
    ):
        cuts = ((m.start(), m.end()) for m in _BLANK_LINES.finditer(text))
        return _between(text, cuts), lambda pos: _count(_BLANK_LINES.split(text[pos:]))
    return _lines(text), lambda pos: len(_LINE_WITH_TEXT.findall(text, pos))


def _last_end(text: str, split: StepSplit) -> int:
    """Where the response's last step ends (only separators and whitespace follow it)."""
    if split.by != "marker":
        return len(text.rstrip())
    pieces = text.split(split.marker)
    filled = list(map(bool, map(str.strip, pieces)))
    k = len(filled) - 1 - filled[::-1].index(True)
    start = sum(map(len, pieces[:k])) + k * len(split.marker)
    return start + len(pieces[k].rstrip())


def has_steps(response: str, split: StepSplit) -> bool:
    """Whether ``split_steps`` finds a step, without splitting (str methods and one regex
    search): a validity check that costs no split."""
    if split.by == "numbered":
        return _NUMBERED.search(response) is not None
    if split.by == "marker":  # the pieces between markers, joined, are the text without them
        response = response.replace(split.marker, "")
    return bool(response.strip())


def split_steps(response: str, split: StepSplit) -> Steps:
    """The response's steps, at most ``split.max_steps`` (none for a blank response, or for
    ``numbered`` when no line starts with a step number).

    Linear in the response and cheap past the limit: spans are built for the first
    ``max_steps + 1`` steps only; the steps after are counted (``folded`` is exact) by regex
    and str methods, with no Python-level loop over characters or over the folded steps (only
    ``marker`` steps over each marker before the limit, one ``str.find`` each)."""
    ranges, count_from = _ranges(response, split)
    spans: list[StepSpan] = []
    for start, end in ranges:
        if (span := _trimmed(response, start, end)) is None:
            continue
        if len(spans) == split.max_steps:  # one past the limit: it and the rest fold
            last = StepSpan(spans[-1].start, _last_end(response, split))
            return Steps((*spans[:-1], last), 1 + count_from(end))
        spans.append(span)
    return Steps(tuple(spans), 0)


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
