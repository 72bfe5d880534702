"""A rubric's shaping holds wherever the rubric is used: on its own and as a composite component.

A component that scored its judge's raw reward inside a composite trained on a number the
component rubric never gives (threshold 0.7 at P(yes) = 0.6: 0.0 alone, 0.6 inside).
"""

from typing import Any

import pytest

from judge_server.judges import JudgeItem, judge_for
from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.spec import RubricSpec
from judge_server.service.scoring import ItemResult, Scorer
from tests.fakes import ScriptedEngine

ITEM = JudgeItem(id="x", prompt="Write a haiku", response="Soft rain on the roof")


def part(shaping: dict[str, Any]) -> RubricSpec:
    return parse_rubric(
        {"name": "part", "mode": "verdict", "template": "{prompt} {response}", "shaping": shaping}
    )


def combo(name: str, component: str, **extra: object) -> RubricSpec:
    return parse_rubric(
        {
            "name": name,
            "mode": "composite",
            "components": [{"rubric": component, "weight": 3}, {"check": "valid_json"}],
            **extra,
        }
    )


async def score(rubric: RubricSpec, p_yes: float, registry: dict[str, RubricSpec]) -> ItemResult:
    engine = ScriptedEngine(lambda _p, _c: {"Yes": p_yes, "No": 1.0 - p_yes})
    judge = judge_for(rubric, registry.__getitem__)
    [result] = await Scorer(engine).score(judge, [ITEM], timeout_s=5)
    assert result.status == "ok", result
    return result


async def test_threshold_component_scores_inside_a_composite_what_it_scores_alone() -> None:
    component = part({"kind": "threshold", "threshold": 0.7})
    registry = {"part": component}
    alone = await score(component, 0.6, registry)
    assert alone.reward == 0.0 and alone.details["unshaped_reward"] == pytest.approx(0.6)

    inside = await score(combo("combo", "part"), 0.6, registry)
    row = inside.details["components"][0]
    assert row["score"] == alone.reward == 0.0  # not the raw 0.6
    assert row["details"] == alone.details  # the unshaped value stays in the component's row
    assert inside.reward == pytest.approx((3 * 0.0 + 0.0) / 4)  # "Soft rain..." is no JSON


SHAPINGS = [
    {"kind": "threshold", "threshold": 0.7},
    {"kind": "threshold", "threshold": 0.3},
    {"kind": "power", "exponent": 3},
    {"kind": "affine", "scale": 2, "offset": -0.5},
    {"kind": "none"},
]


@pytest.mark.parametrize("shaping", SHAPINGS, ids=lambda s: "-".join(map(str, s.values())))
@pytest.mark.parametrize("p_yes", [0.05, 0.3, 0.6, 0.69, 0.7, 0.95])
async def test_every_shaping_gives_the_same_component_score(
    shaping: dict[str, Any], p_yes: float
) -> None:
    component = part(shaping)
    registry = {"part": component}
    alone = await score(component, p_yes, registry)
    assert alone.reward == component.shaping.apply(alone.details["p_yes"])
    row = (await score(combo("combo", "part"), p_yes, registry)).details["components"][0]
    assert row["score"] == alone.reward
    assert row["details"] == alone.details


async def test_a_nested_composite_keeps_its_own_shaping() -> None:
    # The inner composite scores 3/4 * 0.6 = 0.45 raw; its threshold makes that 0.0.
    registry = {
        "part": part({"kind": "none"}),
        "inner": combo("inner", "part", shaping={"kind": "threshold", "threshold": 0.5}),
    }
    alone = await score(registry["inner"], 0.6, registry)
    assert alone.reward == 0.0 and alone.details["unshaped_reward"] == pytest.approx(0.45)
    outer = await score(combo("outer", "inner"), 0.6, registry)
    row = outer.details["components"][0]
    assert row["score"] == alone.reward
    assert row["details"]["unshaped_reward"] == pytest.approx(0.45)
    assert row["details"]["components"][0]["score"] == pytest.approx(0.6)
