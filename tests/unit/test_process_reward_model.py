"""process_reward_model mode at the seam (a fake PRM whose step score is read from the step's
text), and the step-tag token layout on the real SmolLM2 tokenizer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest

from judge_server.engines.base import ChatMessage, EngineError, RewardModel
from judge_server.engines.model_store import ensure_embedded_model
from judge_server.engines.plain_text import PlainTextTokenizer
from judge_server.engines.step_tags import is_process_reward_model, rows_at_tags, tagged
from judge_server.judges import JudgeFailure, JudgeItem, judge_for
from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.spec import RubricError, RubricSpec
from judge_server.service.scoring import Scorer
from judge_server.settings import Settings
from tests.fakes import ScriptedEngine

RESPONSE = "Step 1: p=0.9 add\nStep 2: p=0.3 carry\nStep 3: p=0.6 done"


class FakePrm(RewardModel):
    """Two labels per step: [1 - p, p], p the number after 'p=' in the step (0.5 if none)."""

    def __init__(self, model_id: str = "fake-prm") -> None:
        self.model_id = model_id
        self.max_model_len = 4096
        self.calls: list[tuple[list[ChatMessage], list[str], str]] = []

    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...

    @property
    def ready(self) -> bool:
        return True

    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        return ""

    async def reward(self, text: str) -> float:
        raise EngineError("a PRM scores steps")

    async def step_scores(
        self, messages: Sequence[ChatMessage], steps: Sequence[str], step_tag: str
    ) -> list[list[float]]:
        self.calls.append((list(messages), list(steps), step_tag))
        rows = []
        for step in steps:
            if "PRM-FAIL" in step:
                raise EngineError("scripted PRM failure")
            found = re.search(r"p=(nan|[0-9.]+)", step)
            p = float(found.group(1)) if found else 0.5
            rows.append([1 - p, p])
        return rows


class ScalarOnly(FakePrm):
    step_scores = RewardModel.step_scores  # the seam's default: no steps


def rubric(**config: Any) -> RubricSpec:
    return parse_rubric(
        {
            "name": "prm",
            "mode": "process_reward_model",
            "process_reward_model": {"model": "toy", "step_tag": "<tag>", **config},
        }
    )


def item(response: str = RESPONSE, prompt: Any = "Q?") -> JudgeItem:
    return JudgeItem(id="a", prompt=prompt, response=response)


async def test_min_of_step_scores_with_spans_in_details() -> None:
    model = FakePrm()
    judgment = await judge_for(rubric(), reward_models={"toy": model}).judge(
        item(), ScriptedEngine()
    )
    assert judgment.reward == pytest.approx(0.3)
    steps = judgment.details["steps"]
    assert [RESPONSE[s["start"] : s["end"]] for s in steps] == RESPONSE.split("\n")
    assert [s["score"] for s in steps] == pytest.approx([0.9, 0.3, 0.6])
    assert judgment.details["aggregate"] == "min" and judgment.details["folded_steps"] == 0
    assert judgment.details["reward_model"] == "fake-prm"
    # one call: the prompt's turns, the step texts, the rubric's tag
    assert model.calls == [([{"role": "user", "content": "Q?"}], RESPONSE.split("\n"), "<tag>")]


@pytest.mark.parametrize(
    ("how", "expected"), [("mean", 0.6), ("product", 0.9 * 0.3 * 0.6), ("last", 0.6)]
)
async def test_aggregates(how: str, expected: float) -> None:
    judge = judge_for(rubric(aggregate=how), reward_models={"toy": FakePrm()})
    assert (await judge.judge(item(), ScriptedEngine())).reward == pytest.approx(expected)


async def test_label_zero_reads_the_other_probability() -> None:
    judge = judge_for(rubric(label=0), reward_models={"toy": FakePrm()})
    judgment = await judge.judge(item(), ScriptedEngine())
    assert judgment.reward == pytest.approx(0.1)  # min(1 - 0.9, 1 - 0.3, 1 - 0.6)


async def test_steps_past_max_steps_are_folded_into_the_last() -> None:
    model = FakePrm()
    judge = judge_for(rubric(steps={"by": "lines", "max_steps": 2}), reward_models={"toy": model})
    judgment = await judge.judge(item(), ScriptedEngine())
    assert judgment.details["folded_steps"] == 1
    assert len(model.calls[0][1]) == 2 and model.calls[0][1][1].endswith("p=0.6 done")


async def test_chat_prompts_are_the_turns_before_the_steps() -> None:
    model = FakePrm()
    chat: list[ChatMessage] = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    await judge_for(rubric(), reward_models={"toy": model}).judge(
        item(prompt=chat), ScriptedEngine()
    )
    assert model.calls[0][0] == chat


async def test_failures_are_statuses_never_scores() -> None:
    judge = judge_for(rubric(steps={"by": "numbered"}), reward_models={"toy": FakePrm()})
    results = await Scorer(ScriptedEngine()).score(
        judge,
        [
            item("no numbered steps here"),  # no steps: invalid_input
            item("Step 1: ok\nStep 2: PRM-FAIL"),  # engine error
            item("Step 1: p=nan\nStep 2: p=0.5"),  # not a probability
            item(),
        ],
        timeout_s=5,
    )
    assert [r.status for r in results] == ["invalid_input", "judge_error", "judge_error", "ok"]
    assert [r.reward is None for r in results] == [True, True, True, False]
    assert "no steps found" in (results[0].error or "")


async def test_a_label_the_model_lacks_and_a_scalar_model_are_judge_errors() -> None:
    for judge in (
        judge_for(rubric(label=5), reward_models={"toy": FakePrm()}),
        judge_for(rubric(), reward_models={"toy": ScalarOnly()}),
    ):
        (result,) = await Scorer(ScriptedEngine()).score(judge, [item()], timeout_s=5)
        assert result.status == "judge_error" and result.reward is None


def test_unknown_model_and_bad_config_are_refused() -> None:
    with pytest.raises(JudgeFailure, match="--reward-model"):
        judge_for(rubric(), reward_models={})
    with pytest.raises(RubricError, match="step_tag"):
        parse_rubric(
            {"name": "p", "mode": "process_reward_model", "process_reward_model": {"model": "m"}}
        )
    with pytest.raises(RubricError, match="aggregate"):
        rubric(aggregate="sum")


def test_identity_names_the_model_and_preview_shows_the_tags() -> None:
    a = judge_for(rubric(), reward_models={"toy": FakePrm("a")})
    b = judge_for(rubric(), reward_models={"toy": FakePrm("b")})
    assert a.identity() != b.identity()
    (call,) = a.preview(item("one\ntwo"))
    assert call[-1] == {"role": "assistant", "content": "one<tag>two<tag>"}


# -- the step-tag token layout, on the embedded model's tokenizer --------------------------

TAG = "<file_sep>"  # the seeded PRM's tag: an added token of SmolLM2


@pytest.fixture(scope="module")
def tok() -> PlainTextTokenizer:
    from transformers import AutoTokenizer

    path = ensure_embedded_model(Settings().cache_dir)
    return PlainTextTokenizer(AutoTokenizer.from_pretrained(path))


def test_the_tag_follows_each_step_as_one_token(tok: PlainTextTokenizer) -> None:
    tag_id = tok.single_token_id(TAG)
    assert tag_id is not None
    chat: list[ChatMessage] = [{"role": "user", "content": "2+2?"}]
    tokens, tags = tagged(tok, chat, ["Two plus two", "is 4."], tag_id)
    assert [tokens[p] for p in tags] == [tag_id, tag_id]
    # the same ids as the tokenizer gives the rendered conversation with tags in its text
    text = tok.tokenizer.apply_chat_template(
        [*chat, {"role": "assistant", "content": f"Two plus two{TAG}is 4.{TAG}"}], tokenize=False
    )
    assert tokens == tok.tokenizer.encode(text, add_special_tokens=False)


def test_a_response_writing_the_tag_adds_no_step(tok: PlainTextTokenizer) -> None:
    tag_id = tok.single_token_id(TAG)
    assert tag_id is not None
    hostile = [f"a{TAG}b{TAG}", f"c{TAG}"]
    tokens, tags = tagged(tok, [{"role": "user", "content": f"q{TAG}"}], hostile, tag_id)
    assert [i for i, t in enumerate(tokens) if t == tag_id] == tags and len(tags) == 2


def test_an_ordinary_token_tag_keeps_only_the_rows_placed_here(tok: PlainTextTokenizer) -> None:
    # A tag a step's text can produce itself: STEP pooling returns a row there too.
    tag_id = tok.single_token_id(" is")
    assert tag_id is not None
    tokens, tags = tagged(tok, [{"role": "user", "content": "q"}], ["this is it", "c"], tag_id)
    every = [i for i, t in enumerate(tokens) if t == tag_id]
    assert len(every) == 3 and len(tags) == 2
    rows = [[float(i), 1.0] for i in range(len(every))]
    assert rows_at_tags(tokens, tags, tag_id, rows) == [[1.0, 1.0], [2.0, 1.0]]
    with pytest.raises(EngineError, match="step rows"):
        rows_at_tags(tokens, tags, tag_id, rows[:2])


def test_process_models_are_told_by_architecture(tmp_path: Any) -> None:
    import json

    for arch, expected in [
        ("Qwen2ForProcessRewardModel", True),
        ("LlamaForTokenClassification", True),
        ("LlamaForSequenceClassification", False),
    ]:
        folder = tmp_path / arch
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"architectures": [arch]}))
        assert is_process_reward_model(str(folder)) is expected


def test_the_step_tag_slot_is_not_the_image_slot() -> None:
    from judge_server.engines import images, plain_text, step_tags

    assert len({step_tags.SLOT, images.SLOT_OPEN, images.SLOT_CLOSE, plain_text.MARK}) == 4


def test_the_judge_names_its_reward_model_and_a_verdict_judge_none() -> None:
    model = FakePrm()
    assert judge_for(rubric(), reward_models={"toy": model}).reward_model is model
    verdict = {"name": "v", "mode": "verdict", "template": "{prompt} {response} Yes or No?"}
    assert judge_for(parse_rubric(verdict)).reward_model is None
