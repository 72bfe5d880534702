"""reward_model mode at the seam: a fake reward model whose logit is read from the text."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.engines.base import ChatMessage, EngineError, RewardModel
from judge_server.engines.reward_models import RewardModels
from judge_server.judges import JudgeFailure, JudgeItem, judge_for
from judge_server.judges.modes import parse_rubric
from judge_server.judges.reward_model import sigmoid
from judge_server.rubrics.spec import RubricError, RubricSpec
from judge_server.service.scoring import Scorer
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine


class FakeRewardModel(RewardModel):
    """r = the number after 'score=' in the last assistant turn (0 when there is none)."""

    def __init__(self, model_id: str = "fake-rm") -> None:
        self.model_id = model_id
        self.max_model_len = 4096
        self.texts: list[str] = []
        self._ready = False

    async def start(self) -> None:
        self._ready = True

    async def shutdown(self) -> None:
        self._ready = False

    @property
    def ready(self) -> bool:
        return self._ready

    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)

    async def reward(self, text: str) -> float:
        self.texts.append(text)
        if "RM-FAIL" in text:
            raise EngineError("scripted reward model failure")
        last = text.rsplit("<assistant>", 1)[-1]
        found = re.search(r"score=(-?[0-9.]+)", last)
        return float(found.group(1)) if found else 0.0


def rubric(**spec: object) -> RubricSpec:
    return parse_rubric(
        {"name": "rm", "mode": "reward_model", "reward_model": {"model": "toy", **spec}}
    )


def item(response: str, reference: str | None = None) -> JudgeItem:
    return JudgeItem(id="a", prompt="Q?", response=response, reference=reference)


async def test_sigmoid_of_the_logit_with_the_raw_logit_in_details() -> None:
    model = FakeRewardModel()
    judgment = await judge_for(rubric(), reward_models={"toy": model}).judge(
        item("score=1.5"), ScriptedEngine()
    )
    assert judgment.reward == pytest.approx(1 / (1 + math.exp(-1.5)))
    assert judgment.details == {"reward_model": "fake-rm", "score": 1.5}
    assert model.texts == ["<user>Q?</user><assistant>score=1.5</assistant>"]


async def test_chat_prompts_become_the_conversation() -> None:
    model = FakeRewardModel()
    chat: list[ChatMessage] = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
    ]
    judge = judge_for(rubric(), reward_models={"toy": model})
    await judge.judge(JudgeItem(id="a", prompt=chat, response="R"), ScriptedEngine())
    assert model.texts == ["<system>S</system><user>U</user><assistant>R</assistant>"]


async def test_centred_on_the_reference() -> None:
    model = FakeRewardModel()
    judge = judge_for(rubric(center_on_reference=True), reward_models={"toy": model})
    judgment = await judge.judge(item("score=2", reference="score=0.5"), ScriptedEngine())
    assert judgment.reward == pytest.approx(sigmoid(1.5))
    assert judgment.details["score"] == 2.0 and judgment.details["reference_score"] == 0.5
    # the same text as the reference is exactly a tie, in one call
    model.texts.clear()
    tie = await judge.judge(item("score=3", reference="score=3"), ScriptedEngine())
    assert tie.reward == 0.5 and len(model.texts) == 1


async def test_statuses_missing_reference_and_failures() -> None:
    model = FakeRewardModel()
    judge = judge_for(rubric(center_on_reference=True), reward_models={"toy": model})
    results = await Scorer(ScriptedEngine()).score(
        judge,
        [item("score=1"), item("score=1", reference="  "), item("RM-FAIL", reference="x")],
        timeout_s=5,
    )
    assert [r.status for r in results] == ["invalid_input", "invalid_input", "judge_error"]
    assert all(r.reward is None for r in results)


async def test_composite_components_reach_the_reward_models() -> None:
    part = rubric()
    whole = parse_rubric(
        {"name": "mix", "mode": "composite", "components": [{"rubric": "rm"}, {"rubric": "rm"}]}
    )
    judge = judge_for(whole, {"rm": part}.__getitem__, reward_models={"toy": FakeRewardModel()})
    judgment = await judge.judge(item("score=-1"), ScriptedEngine())
    assert judgment.reward == pytest.approx(sigmoid(-1.0))


def test_sigmoid_is_stable_for_large_logits() -> None:
    assert sigmoid(1000.0) == 1.0 and sigmoid(-1000.0) == 0.0 and sigmoid(0.0) == 0.5


def test_unknown_reward_model_and_bad_rubrics_are_refused() -> None:
    with pytest.raises(JudgeFailure, match="--reward-model toy=PATH"):
        judge_for(rubric())
    for bad in (
        {"name": "x", "mode": "reward_model"},
        {"name": "x", "mode": "reward_model", "reward_model": {"model": "t"}, "template": "{p}"},
        {"name": "x", "mode": "reward_model", "reward_model": {"model": "t", "shaping": "none"}},
        {"name": "x", "mode": "verdict", "template": "{prompt}", "reward_model": {"model": "t"}},
    ):
        with pytest.raises(RubricError):
            parse_rubric(bad)


def test_identity_names_the_reward_model() -> None:
    a = judge_for(rubric(), reward_models={"toy": FakeRewardModel("a")})
    b = judge_for(rubric(), reward_models={"toy": FakeRewardModel("b")})
    assert a.identity() != b.identity()


def test_settings_parse_reward_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_REWARD_MODELS", "rm=/models/a, other=org/b")
    assert Settings().reward_models == {"rm": "/models/a", "other": "org/b"}
    assert Settings(reward_models=["x=/p"]).reward_models == {"x": "/p"}
    with pytest.raises(ValueError, match="NAME=PATH"):
        Settings(reward_models="nopath")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, FakeRewardModel]]:
    import shutil

    rubrics = tmp_path / "rubrics"
    shutil.copytree(project_rubrics_dir(), rubrics)
    model = FakeRewardModel()
    app = create_app(
        Settings(rubrics_dir=rubrics, watch_rubrics=False, admin_token="test-admin"),
        ScriptedEngine(),
        reward_models=RewardModels({"toy": model}),
    )
    with TestClient(app, headers={"Authorization": "Bearer test-admin"}) as c:
        yield c, model


def test_server_scores_put_and_inline_reward_model_rubrics(
    client: tuple[TestClient, FakeRewardModel],
) -> None:
    c, model = client
    assert c.get("/ready").status_code == 200 and model.ready
    inline = {"name": "rm", "mode": "reward_model", "reward_model": {"model": "toy"}}
    resp = c.post(
        "/v1/score", json={"rubric": inline, "items": [{"prompt": "Q", "response": "score=2"}]}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == "fake-rm"
    assert body["results"][0]["reward"] == pytest.approx(sigmoid(2.0))

    assert c.put("/v1/rubrics/rm", json=inline).status_code == 201
    missing = {**inline, "reward_model": {"model": "absent"}}
    assert c.put("/v1/rubrics/rm2", json=missing).status_code == 422
    resp = c.post(
        "/v1/score", json={"rubric": missing, "items": [{"prompt": "Q", "response": "a"}]}
    )
    assert resp.status_code == 422 and resp.json()["error"]["type"] == "invalid_rubric"
