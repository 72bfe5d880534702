"""Splitting responses into steps (rubrics.steps)."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from judge_server.rubrics.steps import (
    StepAggregate,
    StepSplit,
    aggregate_steps,
    has_steps,
    split_steps,
)


def texts(response: str, **split: object) -> list[str]:
    return split_steps(response, StepSplit.model_validate(split)).texts(response)


def test_numbered_steps_keep_a_preamble_with_the_first() -> None:
    response = "Let me solve it.\nStep 1: add 2 and 2.\nStep 2: that is 4.\n3) Answer: 4"
    assert texts(response, by="numbered") == [
        "Let me solve it.\nStep 1: add 2 and 2.",
        "Step 2: that is 4.",
        "3) Answer: 4",
    ]


def test_spans_point_into_the_response() -> None:
    response = "  first para\n\n\n  second para  \n"
    steps = split_steps(response, StepSplit(by="blank_lines"))
    assert [(s.start, s.end) for s in steps.spans] == [(2, 12), (17, 28)]
    assert steps.texts(response) == ["first para", "second para"]


def test_marker_drops_empty_pieces() -> None:
    assert texts("a ки b ки ки c ки", by="marker", marker="ки") == ["a", "b", "c"]


def test_lines_skip_blank_ones() -> None:
    assert texts("x = 1\n\n  \ny = 2\n", by="lines") == ["x = 1", "y = 2"]


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("1. a\n2. b", ["1. a", "2. b"]),  # numbered wins
        ("one\n\ntwo\n1. only one numbered", ["one", "two\n1. only one numbered"]),
        ("one\ntwo", ["one", "two"]),  # no numbers, no paragraphs: lines
    ],
)
def test_auto(response: str, expected: list[str]) -> None:
    assert texts(response) == expected


def test_no_steps_found() -> None:
    assert split_steps("   \n\n ", StepSplit()).spans == ()
    assert split_steps("no numbers here", StepSplit(by="numbered")).spans == ()


def test_steps_past_the_limit_fold_into_the_last() -> None:
    response = "\n".join(f"line {i}" for i in range(10))
    steps = split_steps(response, StepSplit(by="lines", max_steps=3))
    assert steps.folded == 7
    assert steps.texts(response)[:2] == ["line 0", "line 1"]
    assert steps.texts(response)[2] == "\n".join(f"line {i}" for i in range(2, 10))


def test_limits_are_validated() -> None:
    with pytest.raises(ValidationError):
        StepSplit(max_steps=0)
    with pytest.raises(ValidationError):
        StepSplit(max_steps=10_000)
    with pytest.raises(ValidationError):
        StepSplit(by="marker", marker="")


def test_hostile_input_is_linear() -> None:
    nasty = ("Step " + " " * 50 + "\n") * 20_000 + "1" * 200_000
    start = time.perf_counter()
    for by in ("auto", "numbered", "blank_lines", "lines"):
        split_steps(nasty, StepSplit(by=by))
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize(
    ("how", "expected"), [("min", 0.2), ("mean", 0.5), ("product", 0.2 * 0.5 * 0.8), ("last", 0.8)]
)
def test_aggregate(how: StepAggregate, expected: float) -> None:
    assert aggregate_steps([0.5, 0.2, 0.8], how) == pytest.approx(expected)


def test_aggregate_needs_scores() -> None:
    with pytest.raises(ValueError, match="no step scores"):
        aggregate_steps([], "min")


def test_numbered_steps_in_markdown_and_without_a_space() -> None:
    assert texts("## Step 1: a\nx\n## Step 2: b\ny", by="numbered") == [
        "## Step 1: a\nx",
        "## Step 2: b\ny",
    ]
    assert texts("**Step 1:** a\n**Step 2:** b", by="numbered") == [
        "**Step 1:** a",
        "**Step 2:** b",
    ]
    assert texts("Step 1:\na\nStep 2:\nb", by="numbered") == ["Step 1:\na", "Step 2:\nb"]
    assert texts("Step 1:3*4 = 12\nStep 2:12+2", by="numbered") == [
        "Step 1:3*4 = 12",
        "Step 2:12+2",
    ]
    assert texts("**1.** a\n* 2. b\n### 3)\nc", by="numbered") == [
        "**1.** a",
        "* 2. b",
        "### 3)\nc",
    ]
    # a decimal or a word that starts like a step is no step
    assert texts("pi is\n3.14\nStepping 2: no", by="numbered") == []


def test_a_huge_response_splits_fast_and_counts_every_folded_step() -> None:
    """256K characters of one-letter lines: the limit's steps are built, the rest only counted
    (a per-character Python walk took ~200 ms an item here)."""
    response = "a\n" * 131_072
    start = time.perf_counter()
    for by in ("lines", "auto"):
        for _ in range(10):
            steps = split_steps(response, StepSplit(by=by))
        assert len(steps.spans) == 16 and steps.folded == 131_072 - 16
        assert steps.spans[-1] == type(steps.spans[-1])(30, len(response) - 1)
    # 20 splits: ~0.5 s idle, ~2 s on the loaded 2-core box; the character walk took ~29 s
    assert time.perf_counter() - start < 8.0
    marked = "x ки " * 50_000
    steps = split_steps(marked, StepSplit(by="marker", marker="ки"))
    assert steps.folded == 50_000 - 16 and steps.spans[-1].end == len(marked) - 4


@pytest.mark.parametrize(
    "response", ["", " \n\t ", "x", "1. a", "no number", "ки ки", "a ки", "\n\n1) b\n\n"]
)
@pytest.mark.parametrize("by", ["auto", "marker", "numbered", "blank_lines", "lines"])
def test_has_steps_is_whether_split_finds_one(response: str, by: str) -> None:
    split = StepSplit.model_validate({"by": by, "marker": "ки"})
    assert has_steps(response, split) == bool(split_steps(response, split).spans)
