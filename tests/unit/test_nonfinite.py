"""NaN, infinities and empty distributions from an engine are judge failures, never scores.

Every shipped rubric is run through the Scorer against engines (fakes at the engine seam) that
answer NaN, +inf or -inf for every candidate: each item ends ``judge_error`` with a null reward,
and an item beside it on a sane engine still scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from judge_server.engines.base import NextTokenLogprobs
from judge_server.judges import JudgeFailure, JudgeItem, judge_for
from judge_server.judges.group import pair_outcomes, plan_group, standings
from judge_server.judges.modes import parse_rubric
from judge_server.judges.verdicts import label_distribution
from judge_server.rubrics.registry import RubricRegistry
from judge_server.service.scoring import Scorer
from judge_server.settings import project_rubrics_dir
from tests.fakes import ScriptedEngine
from tests.unit.test_reward_model import FakeRewardModel

NAN, INF = math.nan, math.inf


class BrokenEngine(ScriptedEngine):
    """Answers ``value`` for every next-token candidate and every continuation token."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    async def next_token_logprobs(
        self, prompt: str, candidates: Sequence[str]
    ) -> NextTokenLogprobs:
        self._check(prompt)
        return NextTokenLogprobs(
            logprobs=dict.fromkeys(candidates, self.value), num_prompt_tokens=len(prompt)
        )

    async def continuation_logprobs(self, prompt: str, continuation: str) -> list[float]:
        self._check(prompt + continuation)
        return [math.log(0.5), self.value, math.log(0.5)]


@pytest.fixture(scope="module")
def registry() -> RubricRegistry:
    registry = RubricRegistry(parse_rubric)
    registry.load_dir(project_rubrics_dir())
    return registry


# One item per shipped rubric that reads the engine; the verify item has a free-text reference
# that it names without matching it, so it goes to the LLM verdict.
ITEMS = {
    "helpfulness": JudgeItem("h", "How do I boil an egg?", "Put it in boiling water."),
    "correctness": JudgeItem("c", "Capital of France?", "Paris", reference="Paris"),
    "verify": JudgeItem("v", "Capital of France?", "Lyon, or Paris?", reference="Paris"),
    "instruction_following": JudgeItem("i", "Say hi in French.", "Bonjour"),
    "reference_likelihood": JudgeItem("r", "2+2?", "Four.", reference="4"),
    "follow_up": JudgeItem("f", "Help me.", "Here is how."),
    "pairwise": JudgeItem("p", "Pick one.", "First.", metadata={"response_b": "Second."}),
}
LIKELIHOOD = {"reference_likelihood", "follow_up"}


@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf-for-all"])
@pytest.mark.parametrize("name", sorted(ITEMS))
async def test_a_broken_engine_value_is_a_judge_error(
    registry: RubricRegistry, name: str, value: float
) -> None:
    judge = judge_for(registry.resolve(name), registry.resolve)
    engine = BrokenEngine(value)
    await engine.start()
    [result] = await Scorer(engine).score(judge, [ITEMS[name]], timeout_s=5)
    assert (result.status, result.reward) == ("judge_error", None), result
    assert result.error and ("non-finite" in result.error or "no probability" in result.error)
    if name in LIKELIHOOD:
        assert "non-finite" in result.error  # -inf in a continuation too: no -inf mean
    # The same item on a sane engine scores: the failure was the engine's values.
    sane = ScriptedEngine()
    await sane.start()
    [ok] = await Scorer(sane).score(judge, [ITEMS[name]], timeout_s=5)
    assert ok.status == "ok" and ok.reward is not None and math.isfinite(ok.reward)


def test_label_distribution_refuses_nan_inf_and_no_mass() -> None:
    labels = {"yes": ["Yes"], "no": ["No"]}
    for broken in ({"Yes": NAN, "No": -1.0}, {"Yes": INF, "No": -1.0}):
        with pytest.raises(JudgeFailure, match="non-finite"):
            label_distribution(broken, labels)
    for empty in ({"Yes": -INF, "No": -INF}, {}):
        with pytest.raises(JudgeFailure, match="no probability"):
            label_distribution(empty, labels)
    # -inf for one candidate is a probability of 0, not a failure.
    dist, mass = label_distribution({"Yes": -INF, "No": math.log(0.5)}, labels)
    assert dist == {"yes": 0.0, "no": 1.0} and mass == pytest.approx(0.5)
    # A NaN on a token the labels do not use is not read.
    assert label_distribution({"Yes": 0.0, "Maybe": NAN}, labels)[0]["yes"] == 1.0


@pytest.mark.parametrize("logit", [NAN, INF, -INF])
async def test_a_non_finite_reward_model_logit_is_a_judge_error(logit: float) -> None:
    class Broken(FakeRewardModel):
        async def reward(self, text: str) -> float:
            return logit

    spec = {"name": "rm", "mode": "reward_model", "reward_model": {"model": "toy"}}
    judge = judge_for(parse_rubric(spec), reward_models={"toy": Broken()})
    [result] = await Scorer(ScriptedEngine()).score(
        judge, [JudgeItem("a", "Q?", "A.")], timeout_s=5
    )
    assert (result.status, result.reward) == ("judge_error", None)
    assert result.error is not None and str(logit) in result.error


async def test_a_group_with_a_nan_judge_fails_its_members(registry: RubricRegistry) -> None:
    """Group scoring is pairwise comparisons: a NaN comparison fails, it is never a loss."""
    judge = judge_for(registry.resolve("pairwise"))
    engine = BrokenEngine(NAN)
    await engine.start()
    plan = plan_group(["a", "b", "c"])
    items = [
        JudgeItem(f"{a}:{b}", "Q", plan.texts[a], metadata={"response_b": plan.texts[b]})
        for a, b in plan.calls
    ]
    results = await Scorer(engine).score(judge, items, timeout_s=5)
    assert {r.status for r in results} == {"judge_error"}
    p_first = {call: None for call in plan.calls}
    table = standings(plan, pair_outcomes(plan, p_first))
    assert all(s.win_rate is None for s in table)
