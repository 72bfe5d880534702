import math
from collections.abc import Sequence

import pytest

from judge_server.judges import JudgeFailure, JudgeItem, judge_for, verdicts
from judge_server.judges.modes import parse_rubric
from judge_server.judges.verdicts import label_distribution
from tests.fakes import ScriptedEngine

POINTWISE = parse_rubric(
    {
        "name": "pw",
        "mode": "pointwise",
        "template": "Q {prompt} A {response}",
        "scores": {"min": 1, "max": 5},
    }
)
VERDICT = parse_rubric(
    {
        "name": "vd",
        "mode": "verdict",
        "template": "{prompt}|{response}|{reference}",
        "requires_reference": True,
    }
)
ITEM = JudgeItem(id="x", prompt="What is 2+2?", response="4", reference="4")


def test_label_distribution_sums_forms_and_renormalises() -> None:
    lp = {"Yes": math.log(0.3), "yes": math.log(0.1), "No": math.log(0.1)}
    dist, mass = label_distribution(lp, {"yes": ["Yes", "yes"], "no": ["No", "no"]})
    assert mass == pytest.approx(0.5)
    assert dist == pytest.approx({"yes": 0.8, "no": 0.2})


async def test_pointwise_expected_score_maps_to_unit_interval() -> None:
    # p(5)=0.2 on 2 of 5 labels ... make the arithmetic checkable by hand
    def script(_: str, cands: Sequence[str]) -> dict[str, float]:
        return {"1": 0.1, "2": 0.0, "3": 0.0, "4": 0.1, "5": 0.2}

    engine = ScriptedEngine(script)
    judgment = await judge_for(POINTWISE).judge(ITEM, engine)
    # renormalised: 1:0.25 4:0.25 5:0.5 -> E = 0.25 + 1 + 2.5 = 3.75 -> (3.75-1)/4
    assert judgment.details["expected_score"] == pytest.approx(3.75)
    assert judgment.reward == pytest.approx(2.75 / 4)
    assert judgment.details["argmax"] == 5
    assert judgment.details["valid_mass"] == pytest.approx(0.4)
    assert set(judgment.details["distribution"]) == {"1", "2", "3", "4", "5"}
    # The prompt ends where the verdict token goes: right at the judge's turn.
    assert engine.prompts[-1].endswith("<assistant>")
    assert "Q What is 2+2? A 4" in engine.prompts[-1]


async def test_verdict_reads_p_yes() -> None:
    engine = ScriptedEngine(lambda _p, _c: {"Yes": 0.6, "No": 0.2})
    judgment = await judge_for(VERDICT).judge(ITEM, engine)
    assert judgment.reward == pytest.approx(0.75)
    assert judgment.details["verdict"] == "yes"


async def test_no_mass_on_valid_tokens_is_a_failure_not_a_score() -> None:
    engine = ScriptedEngine(lambda _p, cands: {c: 0.0 for c in cands})
    with pytest.raises(JudgeFailure, match="valid answers"):
        await judge_for(VERDICT).judge(ITEM, engine)


async def test_reasoning_first_generates_then_reads_verdict_on_same_prefix() -> None:
    rubric = parse_rubric(
        {**POINTWISE.model_dump(), "reasoning": {"enabled": True, "max_tokens": 64}}
    )
    engine = ScriptedEngine(generation="The answer 4 is right.")
    judgment = await judge_for(rubric).judge(ITEM, engine)
    first, second = engine.prompts
    assert second.startswith(first)  # the verdict step extends the reasoning step's prompt
    assert "The answer 4 is right." in second
    assert "single number from 1 to 5" in second
    assert judgment.details["reasoning"] == "The answer 4 is right."
    assert judgment.reward == pytest.approx(0.5)  # uniform over 1..5


async def test_tokens_that_are_not_single_tokens_fail_clearly() -> None:
    rubric = parse_rubric({**VERDICT.model_dump(), "verdict": {"yes": ["Yup"], "no": ["No"]}})
    with pytest.raises(JudgeFailure, match="do not fit this judge model"):
        await judge_for(rubric).judge(ITEM, ScriptedEngine())


def test_usable_forms_memo_keeps_remembering_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full memo forgets its least recently used entry, not every new one."""
    monkeypatch.setattr(verdicts, "_USABLE_MAX", 2)
    engine = ScriptedEngine()
    asked: list[str] = []
    real = engine.single_token_id

    def counting(text: str) -> int | None:
        asked.append(text)
        return real(text)

    engine.single_token_id = counting  # type: ignore[method-assign]
    for labels in ({"y": ["Yes"]}, {"n": ["No"]}, {"a": ["A"]}):
        verdicts.usable_forms(engine, labels)
    asked.clear()
    assert verdicts.usable_forms(engine, {"a": ["A"]}) == {"a": ["A"]}  # the newest: kept
    assert verdicts.usable_forms(engine, {"n": ["No"]}) == {"n": ["No"]}
    assert asked == []
    verdicts.usable_forms(engine, {"y": ["Yes"]})  # the oldest was the one forgotten
    assert asked == ["Yes"]
