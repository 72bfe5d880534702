import math

import pytest

from judge_server.judges import InvalidItemError, JudgeItem, judge_for
from judge_server.judges.likelihood import LikelihoodJudge
from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.registry import read_rubric_file
from judge_server.rubrics.spec import RubricError, RubricSpec
from judge_server.settings import project_rubrics_dir
from tests.fakes import ScriptedEngine

VERIFY = read_rubric_file(project_rubrics_dir() / "verify.yaml", parse_rubric)


def item(response: str, reference: str | None = "18") -> JudgeItem:
    return JudgeItem(
        id="v", prompt="How much does she make?", response=response, reference=reference
    )


@pytest.mark.parametrize(
    ("response", "reward", "method"),
    [
        ("She makes 9 * 2 = 18 dollars.\n#### 18", 1.0, "numeric"),
        ("The answer is $18.00.", 1.0, "numeric"),
        ("She makes 18 - 1 = 17.\n#### 17", 0.0, "numeric"),
        # the exact check decides before the guard would (it guards only the LLM verdict)
        ("The answer is 19.", 0.0, "numeric"),
        (":", 0.0, "no_answer"),
        ("Thought process:", 0.0, "no_answer"),
    ],
)
async def test_verify_decides_numeric_references_without_the_judge(
    response: str, reward: float, method: str
) -> None:
    engine = ScriptedEngine(lambda _p, _c: {"Yes": 1.0, "No": 0.0})  # a gullible judge
    judgment = await judge_for(VERIFY).judge(item(response), engine)
    assert judgment.reward == reward
    assert judgment.details["method"] == method
    assert engine.prompts == []  # the LLM was never asked


async def test_verify_sends_free_form_references_to_the_judge() -> None:
    engine = ScriptedEngine(lambda _p, _c: {"Yes": 0.3, "No": 0.1})
    judgment = await judge_for(VERIFY).judge(
        item("It was the treaty of Paris that ended it.", reference="the Treaty of Versailles"),
        engine,
    )
    assert judgment.details["method"] == "llm_verdict"
    assert judgment.reward == pytest.approx(0.75)
    assert "the Treaty of Versailles" in engine.prompts[0]


async def test_master_key_against_free_form_reference_is_still_incorrect() -> None:
    engine = ScriptedEngine(lambda _p, _c: {"Yes": 1.0, "No": 0.0})
    judgment = await judge_for(VERIFY).judge(
        item(":", reference="the Treaty of Versailles"), engine
    )
    assert judgment.reward == 0.0 and judgment.details["has_answer"] is False
    assert engine.prompts == []


def test_verify_without_reference_is_invalid_input() -> None:
    with pytest.raises(InvalidItemError):
        judge_for(VERIFY).validate(item("18", reference=None))


def likelihood(**spec: object) -> RubricSpec:
    return parse_rubric(
        {"name": "lk", "mode": "likelihood", "template": "{prompt}", "likelihood": spec}
    )


async def test_reference_likelihood_scores_the_reference_after_the_response() -> None:
    seen: list[tuple[str, str]] = []

    class Recording(ScriptedEngine):
        async def continuation_logprobs(self, prompt: str, continuation: str) -> list[float]:
            seen.append((prompt, continuation))
            return [math.log(0.5), math.log(0.125)]

    judgment = await judge_for(likelihood()).judge(item("9 * 2 = 18"), Recording())
    prompt, target = seen[0]
    assert target == "18"
    assert prompt.endswith("9 * 2 = 18\n\nSo the final answer is: ")
    assert "<user>How much does she make?</user>" in prompt
    assert judgment.reward == pytest.approx(0.25)  # geometric mean of 0.5 and 0.125
    assert judgment.details["target_tokens"] == 2


async def test_follow_up_likelihood_normalised_against_the_baseline_response() -> None:
    seen: list[str] = []

    class ByResponse(ScriptedEngine):
        async def continuation_logprobs(self, prompt: str, continuation: str) -> list[float]:
            assert continuation == "Thanks!"
            seen.append(prompt)
            good = "<assistant>Restart the router.</assistant>" in prompt
            return [math.log(0.8 if good else 0.2)]

    rubric = likelihood(
        target="follow_up",
        follow_up="Thanks!",
        normalise=True,
        scale=1.0,
        baseline_response="I'm not sure.",
    )
    judgment = await judge_for(rubric).judge(item("Restart the router."), ByResponse())
    gain = math.log(0.8) - math.log(0.2)
    assert judgment.details["gain"] == pytest.approx(gain)
    assert judgment.reward == pytest.approx(1 / (1 + math.exp(-gain)))
    # the baseline is the follow-up after the content-free answer, never after an empty turn
    assert "<assistant>I'm not sure.</assistant>" in seen[1]
    assert "<assistant></assistant>" not in "".join(seen)


def test_normalised_follow_up_without_a_baseline_response_is_refused() -> None:
    with pytest.raises(RubricError, match="baseline_response"):
        likelihood(target="follow_up", normalise=True)


def test_likelihood_reference_target_needs_a_reference() -> None:
    with pytest.raises(InvalidItemError):
        LikelihoodJudge(likelihood()).validate(item("x", reference=None))
    LikelihoodJudge(likelihood(target="follow_up")).validate(item("x", reference=None))
