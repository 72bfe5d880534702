"""Rubric versions are pinned: ``name@version`` pins and result-cache keys depend on them, so a
refactor of the rubric models must never change the version of an existing rubric. A failure here
means existing pins and caches would stop resolving; change the models, not these values. A
rubric whose meaning was changed on purpose gets its new value here and a line in the README's
"Rubric changes" saying what changed."""

from pathlib import Path

import pytest

from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.registry import read_rubric_file
from judge_server.settings import project_rubrics_dir

SHIPPED = {
    "concise_helpfulness": "f933c1821648",
    "correctness": "f1250d32890d",
    "empathetic_support": "7329a3696a4f",
    "follow_up": "fb8adf68382b",  # was 78dba66a4873: baseline_response (see README)
    "helpfulness": "27989ac6ffbe",
    "instruction_following": "c186ce18132b",  # was e740dd04143b: no double penalty
    "medical_consultation": "3e13272b8fd1",  # was cec92906ed1a: no hard rule
    "pairwise": "6c9ae80a201f",
    "reference_likelihood": "16b08315066e",
    "safety_compliance": "41b570cc90a5",
    "verify": "68a3740c9fec",
}

PAIR_TEMPLATE = "Q {prompt} A: {response_a} B: {response_b} Reply with A or B."
INLINE: list[tuple[dict[str, object], str]] = [
    (
        {"name": "pw", "mode": "pointwise", "template": "Q {prompt} A {response}",
         "scores": {"min": 1, "max": 5}},
        "2d8f545da0b1",
    ),
    # a nested model with one field off its default: only that field counts
    (
        {"name": "pw", "mode": "pointwise", "template": "Q {prompt} A {response}",
         "scores": {"min": 1, "max": 5}, "reasoning": {"enabled": True, "max_tokens": 64}},
        "667734bc89c5",
    ),
    (
        {"name": "pair", "mode": "pairwise", "template": PAIR_TEMPLATE, "both_orders": False},
        "4dbf15263197",
    ),
    (
        {"name": "rm", "mode": "reward_model",
         "reward_model": {"model": "toy", "center_on_reference": True}},
        "12e78a95f2c9",
    ),
]  # fmt: skip


def test_every_shipped_rubric_is_pinned() -> None:
    assert {p.stem for p in project_rubrics_dir().glob("*.yaml")} == set(SHIPPED)


@pytest.mark.parametrize(("name", "version"), sorted(SHIPPED.items()))
def test_shipped_rubric_versions_never_change(name: str, version: str) -> None:
    path: Path = project_rubrics_dir() / f"{name}.yaml"
    assert read_rubric_file(path, parse_rubric).version == version


@pytest.mark.parametrize(("data", "version"), INLINE)
def test_inline_rubric_versions_never_change(data: dict[str, object], version: str) -> None:
    rubric = parse_rubric(data)
    assert rubric.version == version
    # spelling every default out changes nothing
    assert parse_rubric(rubric.model_dump(mode="json")).version == version
