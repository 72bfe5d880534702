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

# Every version changed once, when min_valid_mass (default 1e-4 -> 0.01) joined the hash;
# three rubrics changed in content too (README, Rubric changes).
SHIPPED = {
    "concise_helpfulness": "3ddf0699ec1d",  # was f933c1821648
    "correctness": "7d211f14b500",  # was f1250d32890d
    "empathetic_support": "f2e83d18fc8a",  # was 7329a3696a4f
    "follow_up": "dee65fb50241",  # was 78dba66a4873
    "healthbench": "868a79e32014",  # new in issue 15 (instance criteria)
    "helpfulness": "2cb30435f81b",  # was 27989ac6ffbe
    "instruction_following": "d40e3a229545",  # was e740dd04143b
    "medical_consultation": "1bd69d4506ba",  # was cec92906ed1a
    "pairwise": "f0f006560a10",  # was 6c9ae80a201f
    "reference_likelihood": "8de8c24923fc",  # was 16b08315066e
    "safety_compliance": "52f7f5854aa3",  # was 41b570cc90a5
    "simulated_user": "b2c10f3bee82",  # new in issue 12 (simulated users)
    "step_correctness": "c817ed125170",  # new in issue 12 (process mode)
    "verify": "15e3a7b9c248",  # was 68a3740c9fec
}

PAIR_TEMPLATE = "Q {prompt} A: {response_a} B: {response_b} Reply with A or B."
INLINE: list[tuple[dict[str, object], str]] = [
    (
        {"name": "pw", "mode": "pointwise", "template": "Q {prompt} A {response}",
         "scores": {"min": 1, "max": 5}},
        "a116a7544e25",
    ),
    # a nested model with one field off its default: only that field counts
    (
        {"name": "pw", "mode": "pointwise", "template": "Q {prompt} A {response}",
         "scores": {"min": 1, "max": 5}, "reasoning": {"enabled": True, "max_tokens": 64}},
        "ee700617c265",
    ),
    (
        {"name": "pair", "mode": "pairwise", "template": PAIR_TEMPLATE, "both_orders": False},
        "634e859f8a46",
    ),
    (
        {"name": "rm", "mode": "reward_model",
         "reward_model": {"model": "toy", "center_on_reference": True}},
        "993605044bf7",
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


def test_min_valid_mass_is_in_every_version() -> None:
    """Its default changed (1e-4 -> 0.01) after versions were published, so the value that
    applies is always hashed: the same version never means two different thresholds."""
    base = {"name": "pw", "mode": "pointwise", "template": "Q {prompt} A {response}"}
    default = parse_rubric(base).version
    assert parse_rubric({**base, "min_valid_mass": 0.01}).version == default
    assert parse_rubric({**base, "min_valid_mass": 0.0001}).version != default
