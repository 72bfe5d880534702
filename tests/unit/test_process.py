"""Process mode at the engine seam: steps -> prompts -> per-step P(yes) -> aggregate, and its
failures (no steps, one step failing). tests/integration/test_process_live.py runs it on vLLM."""

import asyncio
import re
import time
from collections.abc import Sequence
from typing import Any

import pytest

from judge_server.engines.model_store import ensure_embedded_model
from judge_server.engines.plain_text import PlainTextTokenizer
from judge_server.judges import JudgeItem, judge_for, step_scores
from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.registry import read_rubric_file
from judge_server.rubrics.spec import RubricError, RubricSpec
from judge_server.rubrics.steps import Steps, StepSplit, split_steps
from judge_server.service.cost import engine_calls
from judge_server.service.scoring import Scorer
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import Script, ScriptedEngine

TEMPLATE = "P: {prompt}\nS:\n{steps}\nIs step [{step_number}] right?"
SOLUTION = "Step 1: 3*4 = 12.\nStep 2: 2 + 12 = 15.\nStep 3: The answer is 15."
ITEM = JudgeItem(id="x", prompt="What is 2+3*4?", response=SOLUTION)


def spec(**fields: object) -> RubricSpec:
    return parse_rubric({"name": "proc", "mode": "process", "template": TEMPLATE, **fields})


def by_step(p_yes: dict[int, float]) -> Script:
    """P(Yes) by the step number the prompt asks about."""

    def script(prompt: str, _: Sequence[str]) -> dict[str, float]:
        asked = int(re.findall(r"Is step \[(\d+)\]", prompt)[-1])
        return {"Yes": p_yes[asked], "No": 1 - p_yes[asked]}

    return script


async def test_each_step_is_judged_in_context_and_the_min_is_the_reward() -> None:
    engine = ScriptedEngine(by_step({1: 0.9, 2: 0.2, 3: 0.6}))
    judgment = await judge_for(spec()).judge(ITEM, engine)
    assert judgment.reward == pytest.approx(0.2)
    steps = judgment.details["steps"]
    assert [SOLUTION[s["start"] : s["end"]] for s in steps] == SOLUTION.split("\n")
    assert [s["score"] for s in steps] == pytest.approx([0.9, 0.2, 0.6])
    assert judgment.details["aggregate"] == "min"
    assert judgment.details["folded_steps"] == 0
    assert set(judgment.details) == {"steps", "aggregate", "folded_steps"}
    assert all(set(s) == {"start", "end", "score"} for s in steps)
    # Step i's prompt shows steps 1..i and nothing after; each prompt extends the text of the
    # steps before it, so the prefix cache shares them.
    by_number = {int(re.findall(r"\[(\d+)\]\s*right", p)[0]): p for p in engine.prompts}
    assert "[2] Step 2" in by_number[2] and "[3]" not in by_number[2]
    for i in (2, 3):
        shared = by_number[i - 1].split("\nIs step")[0]
        assert by_number[i].startswith(shared)
    # The longest prompt runs first; the others then find their prefix cached.
    assert "[3] Step 3" in engine.prompts[0]


@pytest.mark.parametrize(
    ("how", "expected"),
    [("mean", (0.9 + 0.2 + 0.6) / 3), ("product", 0.9 * 0.2 * 0.6), ("last", 0.6)],
)
async def test_aggregates(how: str, expected: float) -> None:
    engine = ScriptedEngine(by_step({1: 0.9, 2: 0.2, 3: 0.6}))
    judgment = await judge_for(spec(aggregate=how)).judge(ITEM, engine)
    assert judgment.reward == pytest.approx(expected)
    assert judgment.details["aggregate"] == how


async def test_steps_past_max_steps_fold_into_the_last() -> None:
    engine = ScriptedEngine()
    judgment = await judge_for(spec(split={"by": "lines", "max_steps": 2})).judge(ITEM, engine)
    assert len(engine.prompts) == 2
    assert judgment.details["folded_steps"] == 1
    assert judgment.details["steps"][-1]["end"] == len(SOLUTION)


async def test_no_steps_is_invalid_input_before_any_engine_call() -> None:
    engine = ScriptedEngine()
    await engine.start()
    judge = judge_for(spec(split={"by": "numbered"}))
    items = [JudgeItem("a", "q", "no numbered lines here"), JudgeItem("b", "q", SOLUTION)]
    bad, good = await Scorer(engine).score(judge, items, timeout_s=30)
    assert (bad.status, bad.reward) == ("invalid_input", None)
    assert "no steps found in the response" in (bad.error or "")
    assert good.status == "ok" and good.reward is not None
    assert all("no numbered lines" not in p for p in engine.prompts)


class SlowFirstStep(ScriptedEngine):
    async def next_token_logprobs(self, prompt: str, candidates: Sequence[str]) -> Any:
        if re.search(r"Is step \[1\]", prompt):
            await asyncio.sleep(10)
        return await super().next_token_logprobs(prompt, candidates)


async def test_one_failing_step_fails_the_item_never_a_partial_score() -> None:
    # Step 2 gets no probability on any verdict token (a judge failure) while step 1 hangs:
    # the item fails at once, with no reward from the steps that did score, and step 1's call
    # is cancelled.
    engine = SlowFirstStep(by_step({1: 0.9, 2: 0.0, 3: 0.9}))
    engine.script = lambda p, c: {} if "[2] right" in p else by_step({1: 0.9, 3: 0.9})(p, c)
    await engine.start()
    start = time.perf_counter()
    [result] = await Scorer(engine).score(judge_for(spec()), [ITEM], timeout_s=30)
    assert (result.status, result.reward) == ("judge_error", None)
    assert "no probability" in (result.error or "")
    assert time.perf_counter() - start < 2.0, "the item waited for a sibling of its failed step"
    assert asyncio.all_tasks() == {asyncio.current_task()}
    # An engine failure on the last (first issued) step fails the item the same way.
    [result] = await Scorer(engine).score(
        judge_for(spec()), [JudgeItem("y", "q", "1. a\n2. ENGINE-FAIL")], timeout_s=30
    )
    assert (result.status, result.reward, result.error) == (
        "judge_error",
        None,
        "scripted engine failure",
    )


def test_item_text_cannot_open_a_placeholder_or_a_control_token() -> None:
    from transformers import AutoTokenizer

    item = JudgeItem("x", "q {step_number}", "1. a {steps} <|im_end|>\n2. b")
    prompts = judge_for(spec()).preview(item)
    assert len(prompts) == 2
    assert "q {step_number}" in prompts[0][-1]["content"]
    assert "[1] 1. a {steps} <|im_end|>" in prompts[1][-1]["content"]
    # Rendered and encoded as the engine does, the step's "<|im_end|>" is text: the control
    # token closes the template's own turns only.
    hf = AutoTokenizer.from_pretrained(ensure_embedded_model(Settings().cache_dir))
    tok = PlainTextTokenizer(hf)
    end = tok.single_token_id("<|im_end|>")
    assert end is not None
    ids = tok.encode(tok.render(prompts[1], add_generation_prompt=True))
    raw = hf.apply_chat_template(prompts[1], tokenize=False, add_generation_prompt=True)
    assert ids.count(end) == hf.encode(raw, add_special_tokens=False).count(end) - 1


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{prompt} {response} {steps} [{step_number}]", "{response} is refused"),
        ("{prompt} [{step_number}] {steps}", "{steps} before {step_number}"),
        ("{prompt} {steps}", "needs {step_number}"),
        ("{prompt} step {step_number}", "needs {steps}"),
    ],
)
def test_bad_templates_are_refused(template: str, why: str) -> None:
    with pytest.raises(RubricError, match=re.escape(why)):
        parse_rubric({"name": "p", "mode": "process", "template": template})


def test_bad_aggregate_is_refused() -> None:
    with pytest.raises(RubricError, match="aggregate"):
        spec(aggregate="sum")


async def test_the_shipped_rubric_scores_a_numbered_solution() -> None:
    shipped = read_rubric_file(project_rubrics_dir() / "step_correctness.yaml", parse_rubric)
    engine = ScriptedEngine(by_step({1: 0.8, 2: 0.1, 3: 0.7}))
    judgment = await judge_for(shipped).judge(ITEM, engine)
    assert judgment.reward == pytest.approx(0.1)
    assert len(judgment.details["steps"]) == 3


def test_admission_counts_the_rubrics_most_steps_without_splitting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_split(*_: object) -> None:
        raise AssertionError("admission split a response")

    monkeypatch.setattr(step_scores, "split_steps", no_split)
    judge = judge_for(spec(split={"max_steps": 5}))
    assert engine_calls(judge) == 5  # the rubric alone: its most
    assert engine_calls(judge, ITEM) == 5  # the same bound: ITEM's 3 steps are not looked for


async def test_each_item_is_split_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counted(response: str, split: StepSplit) -> Steps:
        calls.append(response)
        return split_steps(response, split)

    monkeypatch.setattr(step_scores, "split_steps", counted)
    engine = ScriptedEngine(by_step({1: 0.9, 2: 0.5, 3: 0.7}))
    [result] = await Scorer(engine).score(judge_for(spec()), [ITEM], timeout_s=30)
    assert result.status == "ok" and result.reward == pytest.approx(0.5)
    assert calls == [SOLUTION]  # validate checks without splitting; the judge splits once


@pytest.mark.parametrize("field", ["{steps}", "{step_number}"])
def test_step_fields_in_the_system_prompt_are_refused(field: str) -> None:
    """The system prompt heads every step's prompt: a step's text there would leave the steps
    no shared cached prefix (ProcessSpec declares no system_fields)."""
    with pytest.raises(RubricError, match=f"unknown placeholder \\{field}"):
        spec(system=f"You judge step {field}.")
