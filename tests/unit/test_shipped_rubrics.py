"""The shipped rubrics reward what they say, given the judge's verdicts: a truthful judge (and
one wrong verdict) at the engine seam, so the rubric's own arithmetic is what is tested."""

from collections.abc import Mapping, Sequence

import pytest

from judge_server.judges import JudgeItem, judge_for
from judge_server.judges.modes import parse_rubric
from judge_server.judges.rubric import RubricModeSpec
from judge_server.rubrics.registry import read_rubric_file
from judge_server.settings import project_rubrics_dir
from tests.fakes import Script, ScriptedEngine


def shipped(name: str) -> RubricModeSpec:
    rubric = read_rubric_file(project_rubrics_dir() / f"{name}.yaml", parse_rubric)
    assert isinstance(rubric, RubricModeSpec)
    return rubric


def verdicts(rubric: RubricModeSpec, met: Mapping[str, bool]) -> Script:
    """Answer each criterion's question as ``met`` says (every criterion must be listed)."""
    assert set(met) == {c.id for c in rubric.criteria}
    by_text = {c.text: met[c.id] for c in rubric.criteria}

    def script(prompt: str, candidates: Sequence[str]) -> dict[str, float]:
        (yes,) = (v for text, v in by_text.items() if text in prompt)
        return {c: (0.99 if (c.lower() == "yes") == yes else 0.01) for c in candidates}

    return script


async def test_one_violated_constraint_is_penalised_once() -> None:
    rubric = shipped("instruction_following")
    # "List exactly three fruits, one per line." answered with four: one constraint broken
    truth = {
        "explicit_constraints": False,
        "answers_the_task": True,
        "complete": True,
        "no_unrequested_content": True,
        "accurate": True,
    }
    # a pitfall for a broken instruction would be met too: the same violation counted twice
    truth |= {c.id: True for c in rubric.criteria if c.weight < 0}
    item = JudgeItem("x", "List exactly three fruits, one per line.", "Apple\nPear\nFig\nKiwi")
    judgment = await judge_for(rubric).judge(item, ScriptedEngine(verdicts(rubric, truth)))
    lowered = [
        row["id"]
        for row in judgment.details["criteria"]
        if (row["weight"] > 0 and not row["met"]) or (row["weight"] < 0 and row["met"])
    ]
    assert lowered == ["explicit_constraints"]
    assert judgment.details["hard_rules_failed"] == ["explicit_constraints"]
    assert judgment.reward == pytest.approx(rubric.aggregation.hard_rule_floor)


async def test_a_wrong_verdict_on_a_vacuous_emergency_point_does_not_zero_the_item() -> None:
    rubric = shipped("medical_consultation")
    good = {c.id: c.weight > 0 for c in rubric.criteria}  # every point met, no pitfall
    item = JudgeItem(
        "x",
        "I've had a mild headache since this morning after sleeping badly. What can I do?",
        "Drink water and rest; if it turns severe or comes with fever or confusion, see a doctor.",
    )
    engine = ScriptedEngine(verdicts(rubric, good))
    assert (await judge_for(rubric).judge(item, engine)).reward == pytest.approx(1.0, abs=0.02)
    # no emergency in the conversation, and the judge wrongly says the point is not met
    wrong = ScriptedEngine(verdicts(rubric, {**good, "emergency_escalation": False}))
    judgment = await judge_for(rubric).judge(item, wrong)
    assert judgment.details["hard_rules_failed"] == []
    weight = next(c.weight for c in rubric.criteria if c.id == "emergency_escalation")
    positive = sum(c.weight for c in rubric.criteria if c.weight > 0)
    # one wrong verdict costs that point's share, never the whole reward
    assert judgment.reward == pytest.approx(1 - weight / positive, abs=0.02)
