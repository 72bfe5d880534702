"""The mode registry: parsing by mode, the rubric schema, and that a new mode is one spec, one
judge and one registration."""

from collections.abc import Iterator
from typing import ClassVar, Literal

import pytest

from judge_server.engines.base import JudgeEngine
from judge_server.judges import Judge, JudgeFailure, JudgeItem, JudgeMode, Judgment, judge_for
from judge_server.judges.modes import (
    MODES,
    parse_rubric,
    register_mode,
    rubric_schema,
    unregister_mode,
)
from judge_server.judges.prompting import judge_messages
from judge_server.judges.registration import rubric_only
from judge_server.judges.verdicts import read_verdict
from judge_server.judges.verify import VerifySpec
from judge_server.rubrics.spec import RubricError, RubricSpec
from tests.fakes import ScriptedEngine

BUILT_IN = {
    "pointwise",
    "verdict",
    "rubric",
    "composite",
    "pairwise",
    "verify",
    "likelihood",
    "reward_model",
    "simulated_user",
    "process",
    "process_reward_model",
}


class ShoutSpec(RubricSpec):
    """A toy mode: P(the judge answers ``token``), with the response shouted in {shout}."""

    template_fields: ClassVar[frozenset[str]] = frozenset({"shout"})

    mode: Literal["shout"]
    token: str = "A"


class ShoutJudge(Judge[ShoutSpec]):
    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        read = await read_verdict(
            engine,
            judge_messages(self.rubric, item, shout=item.response.upper()),
            {"hit": [self.rubric.token], "miss": ["B"]},
            reasoning=self.rubric.reasoning,
            default_verdict_prompt="",
            min_valid_mass=self.rubric.min_valid_mass,
        )
        return Judgment(reward=read.distribution["hit"], details={})


SHOUT = {"name": "s", "mode": "shout", "template": "{response} {shout}"}
ITEM = JudgeItem(id="x", prompt="p", response="hello")


@pytest.fixture
def shout_mode() -> Iterator[None]:
    register_mode(JudgeMode(ShoutSpec, rubric_only(ShoutJudge)))
    yield
    unregister_mode("shout")


async def test_a_new_mode_is_one_spec_one_judge_and_one_registration(shout_mode: None) -> None:
    rubric = parse_rubric(SHOUT)
    assert isinstance(rubric, ShoutSpec) and rubric.token == "A"
    assert len(rubric.version) == 12
    engine = ScriptedEngine(lambda _p, _c: {"A": 0.6, "B": 0.2})
    judgment = await judge_for(rubric).judge(ITEM, engine)
    assert judgment.reward == pytest.approx(0.75)
    assert "hello HELLO" in engine.prompts[0]
    assert "shout" in rubric_schema()["discriminator"]["mapping"]
    # its own field and placeholder belong to it alone
    with pytest.raises(RubricError, match=r"token: not a field of verdict rubrics; .* shout mode"):
        parse_rubric({"name": "v", "mode": "verdict", "template": "{response}", "token": "A"})
    with pytest.raises(RubricError, match="unknown placeholder"):
        parse_rubric({**SHOUT, "mode": "verdict"})


def test_a_mode_name_is_registered_once_and_built_ins_stay(shout_mode: None) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_mode(JudgeMode(ShoutSpec, rubric_only(ShoutJudge)))
    with pytest.raises(ValueError, match="built in"):
        unregister_mode("verdict")


def test_an_unregistered_mode_is_unknown() -> None:
    with pytest.raises(RubricError, match="unknown mode 'shout'"):
        parse_rubric(SHOUT)


def test_a_spec_must_name_one_mode() -> None:
    with pytest.raises(TypeError, match="Literal of one mode name"):
        JudgeMode(RubricSpec, rubric_only(ShoutJudge))  # type: ignore[arg-type]


def test_the_built_in_modes() -> None:
    assert {mode.name for mode in MODES} == BUILT_IN


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "template": "{response}"}, r"mode: Field required \(one of: pointwise, "),
        (["mode", "verdict"], "a rubric must be a mapping, got list"),
        ({"name": "x", "mode": "verdict"}, "mode verdict needs a template"),
        (
            {"name": "c", "mode": "composite", "components": [{"check": "valid_json"}],
             "template": "{response}"},
            "composite mode uses no template or system prompt",
        ),
        (
            {"name": "r", "mode": "reward_model", "reward_model": {"model": "m"}, "system": "S"},
            "reward_model mode uses no template or system prompt",
        ),
        ({"name": "r", "mode": "reward_model"}, "reward_model: Field required"),
        ({"name": "v", "mode": "verify", "template": "{response}"}, "needs {reference}"),
        (
            {"name": "p", "mode": "pairwise", "template": "{response_a}"},
            "pairwise mode needs {response_b}",
        ),
        (
            {"name": "v", "mode": "verdict", "template": "{response}", "both_orders": False},
            "both_orders: not a field of verdict rubrics; it belongs to pairwise mode",
        ),
    ],
)  # fmt: skip
def test_refusals_name_the_field_and_why(data: object, message: str) -> None:
    with pytest.raises(RubricError, match=message):
        parse_rubric(data, source="t.yaml")


def test_schema_is_a_union_keyed_by_mode() -> None:
    schema = rubric_schema()
    assert schema["discriminator"]["propertyName"] == "mode"
    assert set(schema["discriminator"]["mapping"]) == BUILT_IN
    for ref in schema["discriminator"]["mapping"].values():
        spec = schema["$defs"][ref.rsplit("/", 1)[1]]
        assert spec["additionalProperties"] is False
        assert "mode" in spec["required"]
    verify = schema["$defs"]["VerifySpec"]["properties"]
    assert set(verify) == set(VerifySpec.model_fields)


def test_a_rubric_of_an_unregistered_class_has_no_judge() -> None:
    class Stray(RubricSpec):
        mode: Literal["verdict"]

    stray = Stray(name="s", mode="verdict", template="{response}")
    with pytest.raises(JudgeFailure, match="not available"):
        judge_for(stray)
