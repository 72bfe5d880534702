import pytest

from judge_server.judges import JudgeItem, judge_for
from judge_server.judges.modes import parse_rubric
from judge_server.service.scoring import Scorer
from tests.fakes import ScriptedEngine

RUBRIC = parse_rubric(
    {
        "name": "vd",
        "mode": "verdict",
        "template": "{prompt}|{response}|{reference}",
        "requires_reference": True,
    }
)


def item(
    i: str, response: str = "Paris", reference: str | None = "Paris", prompt: str = "p"
) -> JudgeItem:
    return JudgeItem(id=i, prompt=prompt, response=response, reference=reference)


async def test_each_failure_is_a_status_with_null_reward_and_others_still_score() -> None:
    engine = ScriptedEngine(max_model_len=200)
    await engine.start()
    # Each response names its reference, so the content-free guard lets it reach the engine.
    items = [
        item("good"),
        item("no-ref", reference=None),
        item("too-long", response="x" * 500, reference="x" * 500),
        item("broken", response="ENGINE-FAIL", reference="ENGINE-FAIL"),
        item("slow", response="SLOW", reference="SLOW"),
        item("good2"),
    ]
    results = await Scorer(engine).score(judge_for(RUBRIC), items, timeout_s=0.2)
    by_id = {r.id: r for r in results}
    assert [r.id for r in results] == [i.id for i in items]  # in order
    assert by_id["good"].status == "ok" and by_id["good"].reward == 0.5
    assert by_id["good2"].status == "ok"
    expected = {
        "no-ref": "invalid_input",
        "too-long": "invalid_input",
        "broken": "judge_error",
        "slow": "timeout",
    }
    for key, status in expected.items():
        assert by_id[key].status == status, by_id[key]
        assert by_id[key].reward is None
        assert by_id[key].error
    assert "reference" in (by_id["no-ref"].error or "")
    assert "tokens" in (by_id["too-long"].error or "")


async def test_a_judge_that_lost_the_answer_format_is_an_error_by_default() -> None:
    """Default min_valid_mass: a verdict with under 1% of the probability on the valid answers
    (a judge that did not understand what to answer) is a judge_error, never a score."""

    def mass(total: float) -> ScriptedEngine:
        return ScriptedEngine(lambda _, __: {"Yes": total * 0.9, "No": total * 0.1})

    judge = judge_for(RUBRIC)
    lost = await Scorer(mass(0.005)).score(judge, [item("a")], timeout_s=5)
    assert lost[0].status == "judge_error" and lost[0].reward is None
    assert "(minimum 0.01)" in (lost[0].error or "")
    working = await Scorer(mass(0.02)).score(judge, [item("a")], timeout_s=5)
    assert working[0].status == "ok" and working[0].details["valid_mass"] == pytest.approx(0.02)
