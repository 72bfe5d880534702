"""Every result reports ``usage``: what its item cost the engine (fake engine: a character is a
token, so the expected counts are the lengths of the prompts it was sent)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.cli.batch_files import result_record
from judge_server.engines import usage as engine_usage
from judge_server.engines.base import ChatMessage, RewardModel
from judge_server.engines.usage import Usage, measure
from judge_server.judges import JudgeItem, judge_for
from judge_server.judges.modes import parse_rubric
from judge_server.service.scoring import ItemResult, Scorer
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine

ZERO = {"prompt_tokens": 0, "cached_prompt_tokens": 0, "engine_calls": 0}


@pytest.fixture
def served() -> Iterator[tuple[TestClient, ScriptedEngine]]:
    engine = ScriptedEngine(delay_s=0.05)
    app = create_app(Settings(rubrics_dir=project_rubrics_dir()), engine)
    with TestClient(app) as client:
        yield client, engine


def score(client: TestClient, rubric: str, items: list[dict[str, Any]], **options: Any) -> Any:
    body: dict[str, Any] = {"rubric": rubric, "items": items}
    if options:
        body["options"] = options
    resp = client.post("/v1/score", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]


def test_each_item_reports_its_engine_calls_and_a_cache_hit_reports_none(
    served: tuple[TestClient, ScriptedEngine],
) -> None:
    client, engine = served
    items = [
        {"id": "a", "prompt": "What is 2+2?", "response": "4"},
        {"id": "b", "prompt": "Name a colour.", "response": "A rather long answer: blue."},
    ]
    first = score(client, "helpfulness", items)
    assert len(engine.prompts) == 2
    by_response = {next(r for r in ("4", "blue") if r in p): len(p) for p in engine.prompts}
    assert first[0]["usage"] == {
        "prompt_tokens": by_response["4"], "cached_prompt_tokens": 0, "engine_calls": 1,
    }  # fmt: skip
    assert first[1]["usage"]["prompt_tokens"] == by_response["blue"]
    again = score(client, "helpfulness", items)
    assert [r["cached"] for r in again] == [True, True]
    assert [r["usage"] for r in again] == [ZERO, ZERO]


def test_rubric_mode_counts_every_criterion_call(
    served: tuple[TestClient, ScriptedEngine],
) -> None:
    client, engine = served
    (result,) = score(
        client,
        "instruction_following",
        [{"prompt": "Write a haiku about tea.", "response": "Steam rises, leaves unfurl."}],
    )
    assert result["status"] == "ok"
    assert result["usage"]["engine_calls"] == len(engine.prompts) > 1
    assert result["usage"]["prompt_tokens"] == sum(len(p) for p in engine.prompts)


def test_a_result_shared_in_flight_is_paid_by_one_item_only(
    served: tuple[TestClient, ScriptedEngine],
) -> None:
    client, engine = served
    same = {"prompt": "What is 2+2?", "response": "4"}
    results = score(client, "helpfulness", [same, same], cache=False)
    assert len(engine.prompts) == 1
    calls = sorted(r["usage"]["engine_calls"] for r in results)
    assert calls == [0, 1] and all(r["status"] == "ok" for r in results)


def test_failed_and_refused_items_report_what_they_spent(
    served: tuple[TestClient, ScriptedEngine],
) -> None:
    client, _ = served
    results = score(
        client,
        "helpfulness",
        [
            {"prompt": [{"role": "robot", "content": "hi"}], "response": "x"},  # refused
            {"prompt": "Q", "response": "ENGINE-FAIL"},  # fails before its engine call counts
        ],
    )
    assert [r["status"] for r in results] == ["invalid_input", "judge_error"]
    assert [r["usage"] for r in results] == [ZERO, ZERO]


def test_likelihood_counts_its_continuation_calls(
    served: tuple[TestClient, ScriptedEngine],
) -> None:
    client, _ = served
    (result,) = score(
        client, "reference_likelihood", [{"prompt": "2+2?", "response": "4", "reference": "4"}]
    )
    assert result["status"] == "ok" and result["usage"]["engine_calls"] == 1


def test_a_group_reports_the_usage_of_all_its_judge_calls(
    served: tuple[TestClient, ScriptedEngine],
) -> None:
    client, engine = served
    resp = client.post(
        "/v1/score/group",
        json={"rubric": "pairwise", "prompt": "Explain tides.", "responses": ["a", "b", "c"]},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"] == {
        "prompt_tokens": sum(len(p) for p in engine.prompts),
        "cached_prompt_tokens": 0,
        "engine_calls": len(engine.prompts),
    }
    assert len(engine.prompts) >= 3


class CountingRewardModel(RewardModel):
    """Records each call the way the vLLM reward model does; sleeps so calls overlap."""

    model_id = "counting-rm"
    max_model_len = 4096

    async def start(self) -> None: ...
    async def shutdown(self) -> None: ...

    @property
    def ready(self) -> bool:
        return True

    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        return "".join(m["content"] for m in messages)

    async def reward(self, text: str) -> float:
        await asyncio.sleep(0.01)
        engine_usage.record(len(text), 0)
        return 0.0


async def test_reward_model_calls_in_concurrent_tasks_count_for_their_item() -> None:
    rubric = parse_rubric(
        {
            "name": "rm",
            "mode": "reward_model",
            "reward_model": {"model": "toy", "center_on_reference": True},
        }
    )
    judge = judge_for(rubric, reward_models={"toy": CountingRewardModel()})
    items = [
        JudgeItem(id="a", prompt="Q?", response="long response", reference="ref"),
        JudgeItem(id="b", prompt="Q?", response="r", reference="reference"),
    ]
    a, b = await Scorer(ScriptedEngine()).score(judge, items, timeout_s=5)
    assert a.usage == Usage(prompt_tokens=len("Q?long response") + len("Q?ref"), engine_calls=2)
    assert b.usage == Usage(prompt_tokens=len("Q?r") + len("Q?reference"), engine_calls=2)


def test_nothing_is_recorded_outside_a_measurement() -> None:
    engine_usage.record(5, 1)  # no item being judged: a no-op, not an error
    with measure() as outer:
        engine_usage.record(5, 1)
        with measure() as inner:
            engine_usage.record(2, 0)
        engine_usage.record(1, 1)
    assert outer == Usage(6, 2, 2) and inner == Usage(2, 0, 1)


def test_cli_records_carry_usage() -> None:
    result = ItemResult("a", "ok", 0.5, usage=Usage(10, 4, 2))
    record = result_record(
        result, parse_rubric({"name": "x", "mode": "verdict", "template": "{response}"}), "m"
    )
    assert record["usage"] == {"prompt_tokens": 10, "cached_prompt_tokens": 4, "engine_calls": 2}
