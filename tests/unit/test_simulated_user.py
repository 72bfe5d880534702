"""Simulated-user mode at the engine seam: prompt structure, emotion arithmetic, personas,
statuses. tests/integration/test_simulated_user_live.py runs it on the real engine."""

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.engines.base import ChatMessage
from judge_server.judges import InvalidItemError, JudgeItem, judge_for
from judge_server.judges.modes import parse_rubric
from judge_server.judges.simulated_user import Persona, SimulatedUserSpec
from judge_server.rubrics.registry import read_rubric_file
from judge_server.rubrics.spec import RubricError
from judge_server.service.cost import engine_calls
from judge_server.service.scoring import Scorer
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine

VENT = {
    "who": "Mia, an illustrator.",
    "situation": "A client refused to pay.",
    "hidden_intent": "To be listened to.",
    "starting_emotion": "Drained.",
}
PRACTICAL = {**VENT, "hidden_intent": "A plan for tonight."}
RUBRIC: dict[str, Any] = {
    "name": "su",
    "mode": "simulated_user",
    "system": "Play this person.\n{persona}",
    "template": "[Dialogue]\n{dialogue}\n\nHow do you feel, 0-9?",
    "personas": {"vent": VENT, "practical": PRACTICAL},
    "default_persona": "vent",
}
DIALOGUE: list[ChatMessage] = [
    {"role": "system", "content": "POLICY-SYSTEM-PROMPT"},
    {"role": "user", "content": "Hi."},
    {"role": "assistant", "content": "Hello, how are you?"},
    {"role": "user", "content": "My client refused to pay me."},
]
REPLY = "That is so unfair, I'm listening."
ITEM = JudgeItem(id="x", prompt=DIALOGUE, response=REPLY)


def rubric(**changes: Any) -> Any:
    return parse_rubric({**RUBRIC, **changes})


def moods(before: str, after: str) -> Any:
    """Script: all mass on digit ``before`` until the reply is shown, then on ``after``."""

    def script(prompt: str, candidates: Sequence[str]) -> dict[str, float]:
        digit = after if f"Assistant: {REPLY}" in prompt else before
        return {c: (0.9 if c == digit else 0.0) for c in candidates}

    return script


async def test_before_and_after_reads_share_the_dialogue_prefix() -> None:
    engine = ScriptedEngine(moods("2", "6"))
    await judge_for(rubric()).judge(ITEM, engine)
    assert len(engine.prompts) == 2
    before, after = sorted(engine.prompts, key=len)
    for prompt in (before, after):
        assert "Who you are: Mia, an illustrator." in prompt
        assert "What you really want (you never say it outright): To be listened to." in prompt
        assert "User: Hi.\n\nAssistant: Hello, how are you?\n\nUser: My client" in prompt
        assert "POLICY-SYSTEM-PROMPT" not in prompt  # the user never sees the policy's system
    assert REPLY not in before and f"Assistant: {REPLY}" in after
    # The before-read's whole dialogue is a prefix of the after-read (vLLM's prefix cache).
    dialogue = before.split("\n\nHow do you feel")[0]
    assert dialogue.endswith("User: My client refused to pay me.")
    assert after.startswith(dialogue)


async def test_reward_after_is_the_emotion_after_the_reply() -> None:
    judgment = await judge_for(rubric()).judge(ITEM, ScriptedEngine(moods("2", "6")))
    emotion = judgment.details["emotion"]
    assert emotion["before"] == pytest.approx(200 / 9)
    assert emotion["after"] == pytest.approx(600 / 9)
    assert emotion["change"] == pytest.approx(400 / 9)
    assert judgment.reward == pytest.approx(6 / 9)
    assert [r["read"] for r in emotion["trajectory"]] == ["before", "after"]
    assert judgment.details["valid_mass"] == pytest.approx(0.9)
    assert judgment.details["reads"]["after"]["distribution"]["6"] == pytest.approx(1.0)
    assert judgment.details["persona"] == "vent"
    assert judgment.details["persona_version"] == Persona.model_validate(VENT).version


@pytest.mark.parametrize(
    ("before", "after", "reward"),
    [("2", "6", 0.5 + (400 / 9) / 200), ("6", "2", 0.5 - (400 / 9) / 200), ("4", "4", 0.5),
     ("0", "9", 1.0), ("9", "0", 0.0)],
)  # fmt: skip
async def test_reward_change_maps_the_emotion_change_around_one_half(
    before: str, after: str, reward: float
) -> None:
    judgment = await judge_for(rubric(reward="change")).judge(
        ITEM, ScriptedEngine(moods(before, after))
    )
    assert judgment.reward == pytest.approx(reward)


async def test_persona_comes_from_item_metadata() -> None:
    engine = ScriptedEngine(moods("2", "6"))
    item = JudgeItem(id="x", prompt=DIALOGUE, response=REPLY, metadata={"persona": "practical"})
    judgment = await judge_for(rubric()).judge(item, engine)
    assert judgment.details["persona"] == "practical"
    assert all("A plan for tonight." in p for p in engine.prompts)
    assert judgment.details["persona_version"] != Persona.model_validate(VENT).version


@pytest.mark.parametrize("persona", ["nobody", 3, None])
async def test_unknown_persona_is_invalid_input_without_engine_calls(persona: object) -> None:
    item = JudgeItem(id="x", prompt=DIALOGUE, response=REPLY, metadata={"persona": persona})
    with pytest.raises(InvalidItemError, match=r"not a persona of rubric 'su' \(one of: "):
        judge_for(rubric()).validate(item)
    engine = ScriptedEngine()
    [result] = await Scorer(engine).score(judge_for(rubric()), [item], timeout_s=5)
    assert result.status == "invalid_input" and result.reward is None
    assert result.error is not None and "practical, vent" in result.error
    assert engine.prompts == []


@pytest.mark.parametrize(
    "prompt",
    [
        [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."}],
        [{"role": "system", "content": "Only a system prompt."}],
    ],
)
async def test_dialogue_must_end_with_the_users_turn(prompt: list[ChatMessage]) -> None:
    item = JudgeItem(id="x", prompt=prompt, response=REPLY)
    engine = ScriptedEngine()
    [result] = await Scorer(engine).score(judge_for(rubric()), [item], timeout_s=5)
    assert result.status == "invalid_input" and "end with the user's turn" in str(result.error)
    assert engine.prompts == []


async def test_a_text_prompt_is_the_users_first_message() -> None:
    engine = ScriptedEngine(moods("2", "6"))
    item = JudgeItem(id="x", prompt="My client refused to pay me.", response=REPLY)
    judgment = await judge_for(rubric()).judge(item, engine)
    assert judgment.reward == pytest.approx(6 / 9)
    assert all("[Dialogue]\nUser: My client refused to pay me." in p for p in engine.prompts)


@pytest.mark.parametrize(
    "script",
    [
        lambda _p, cs: {c: 0.0 for c in cs},  # no mass on any digit
        lambda _p, cs: {c: 0.0005 for c in cs},  # 0.005 in all, below min_valid_mass
    ],
)
async def test_a_failed_read_is_judge_error_never_a_score(script: Any) -> None:
    [result] = await Scorer(ScriptedEngine(script)).score(judge_for(rubric()), [ITEM], timeout_s=5)
    assert result.status == "judge_error" and result.reward is None


async def test_an_engine_failure_in_one_read_fails_the_item() -> None:
    item = JudgeItem(id="x", prompt=DIALOGUE, response="ENGINE-FAIL")
    [result] = await Scorer(ScriptedEngine(moods("2", "6"))).score(
        judge_for(rubric()), [item], timeout_s=5
    )
    assert result.status == "judge_error" and result.reward is None


async def test_trajectory_reads_the_last_earlier_assistant_turns() -> None:
    dialogue: list[ChatMessage] = [
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "u2"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "u3"},
        {"role": "assistant", "content": "a3"},
        {"role": "user", "content": "u4"},
    ]
    judge = judge_for(rubric(trajectory=2))
    item = JudgeItem(id="x", prompt=dialogue, response=REPLY)
    engine = ScriptedEngine(moods("2", "6"))
    judgment = await judge.judge(item, engine)
    reads = judgment.details["emotion"]["trajectory"]
    assert [r["read"] for r in reads] == ["assistant_2", "assistant_3", "before", "after"]
    dialogues = [m[-1]["content"] for m in judge.preview(item)]
    assert dialogues[0].endswith("Assistant: a2\n\nHow do you feel, 0-9?")
    assert "u3" not in dialogues[0] and "u4" in dialogues[2]
    assert len(engine.prompts) == 4 == engine_calls(judge)
    # fewer earlier turns than asked for: each one that exists is read
    short = JudgeItem(id="y", prompt=dialogue[:3], response=REPLY)
    assert len(judge.preview(short)) == 3


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"template": "{dialogue} {response}"}, "{response} would show it"),
        ({"system": None}, "needs {persona}"),
        ({"template": "{persona} no dialogue"}, "needs {dialogue}"),
        ({"default_persona": "ghost"}, "default_persona 'ghost' is not one of"),
        ({"personas": {}}, "personas"),
        ({"personas": {"Bad Name": VENT}, "default_persona": "vent"}, "personas"),
        ({"personas": {"vent": {**VENT, "who": ""}}}, "personas.vent.who"),
        ({"trajectory": 9}, "trajectory"),
        ({"reward": "sum"}, "reward"),
    ],
)
def test_bad_rubrics_are_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(RubricError, match=problem.replace("{", r"\{").replace("(", r"\(")):
        rubric(**changes)


def test_persona_version_is_a_content_hash() -> None:
    one = Persona.model_validate(VENT)
    assert one.version == Persona.model_validate(dict(reversed(VENT.items()))).version
    assert len(one.version) == 12
    assert one.version != Persona.model_validate({**VENT, "who": "Mia, a painter."}).version


def test_shipped_rubric_has_varied_personas() -> None:
    shipped = read_rubric_file(project_rubrics_dir() / "simulated_user.yaml", parse_rubric)
    assert isinstance(shipped, SimulatedUserSpec)
    judge = judge_for(shipped)
    assert {"venting", "practical", "defensive"} <= set(shipped.personas)
    [before, after] = judge.preview(ITEM)
    assert "Reply with a single digit." in after[-1]["content"]
    assert REPLY not in before[-1]["content"] and REPLY in after[-1]["content"]


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(Settings(rubrics_dir=project_rubrics_dir()), ScriptedEngine(moods("2", "6")))
    with TestClient(app) as c:
        yield c


def test_score_endpoint(client: TestClient) -> None:
    items = [
        {"id": "ok", "prompt": [m for m in DIALOGUE if m["role"] != "system"],
         "response": REPLY, "metadata": {"persona": "practical"}},
        {"id": "who", "prompt": "Hi.", "response": REPLY, "metadata": {"persona": "ghost"}},
    ]  # fmt: skip
    resp = client.post("/v1/score", json={"rubric": "simulated_user", "items": items})
    assert resp.status_code == 200, resp.text
    ok, who = resp.json()["results"]
    assert ok["status"] == "ok" and ok["reward"] == pytest.approx(6 / 9)
    assert ok["details"]["persona"] == "practical"
    assert who["status"] == "invalid_input" and who["reward"] is None
    assert "ghost" in who["error"]


def test_group_endpoint_refuses_it_clearly(client: TestClient) -> None:
    resp = client.post(
        "/v1/score/group",
        json={"rubric": "simulated_user", "prompt": "Hi.", "responses": ["a", "b"]},
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["type"] == "invalid_rubric"
    assert "a group needs a pairwise rubric" in resp.json()["error"]["message"]


def test_trainer_routes_use_the_default_persona(client: TestClient) -> None:
    """OpenRLHF and slime send no metadata: the rubric's default persona plays the user."""
    prompt = "<|im_start|>user\nMy client refused to pay me.<|im_end|>\n<|im_start|>assistant\n"
    openrlhf = client.post(
        "/get_reward?rubric=simulated_user", json={"query": [prompt + REPLY], "prompts": [prompt]}
    )
    assert openrlhf.status_code == 200, openrlhf.text
    assert openrlhf.json()["rewards"] == [pytest.approx(6 / 9)]
    slime = client.post(
        "/slime/reward?rubric=simulated_user",
        json={"prompt": [{"role": "user", "content": "Hi."}], "response": REPLY},
    )
    assert slime.status_code == 200, slime.text
    assert slime.json()["reward"] == pytest.approx(6 / 9) and slime.json()["ok"] is True
