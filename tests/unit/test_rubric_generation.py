"""Rubric generation at the engine seam: the prompt, the schema, validation of the judge's
answer, the route's statuses and the CLI. The real engine writes a rubric in
tests/integration/test_rubric_generation_live.py."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.cli.rubric_generate import generate_one, generate_rows
from judge_server.rubrics.criteria import Criterion
from judge_server.rubrics.instance import parse_instance_criteria
from judge_server.service import builder
from judge_server.service.generation_prompt import (
    CONTRAST,
    REVISE,
    Disagreement,
    Draft,
    GenerationInput,
    Pair,
    answer_schema,
    generation_messages,
    max_tokens,
)
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine

ADMIN = "test-admin"
KEY = "scoring-key"


def answer(*criteria: dict[str, Any]) -> str:
    return json.dumps({"criteria": list(criteria)})


GOOD = answer(
    {
        "id": "cites_source",
        "text": "The response names its source.",
        "kind": "hard_rule",
        "weight": 3,
    },
    {"id": "concise", "text": "The response is under 100 words.", "kind": "principle", "weight": 1},
    {
        "id": "invents_facts",
        "text": "The response invents a statistic.",
        "kind": "pitfall",
        "weight": 2,
    },
)


@pytest.fixture
def rubrics_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rubrics"
    shutil.copytree(project_rubrics_dir(), d)
    return d


def client_for(rubrics_dir: Path, engine: ScriptedEngine) -> TestClient:
    settings = Settings(
        rubrics_dir=rubrics_dir, watch_rubrics=False, admin_token=ADMIN, api_keys=[KEY]
    )
    return TestClient(create_app(settings, engine), headers={"Authorization": f"Bearer {KEY}"})


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine(generation=GOOD, max_model_len=20_000)


@pytest.fixture
def client(rubrics_dir: Path, engine: ScriptedEngine) -> Iterator[TestClient]:
    with client_for(rubrics_dir, engine) as c:
        yield c


# -- the prompt and the schema ----------------------------------------------------------------


def user_text(source: GenerationInput, current: tuple[Criterion, ...] = ()) -> str:
    messages = generation_messages(source, current)
    assert [m["role"] for m in messages] == ["system", "user"]
    return messages[1]["content"]


def test_the_prompt_carries_every_source_and_asks_for_contrast_only_with_pairs() -> None:
    plain = user_text(GenerationInput(prompt="Explain tides.", reference="The moon pulls."))
    assert "[Task]\nExplain tides." in plain and "[Reference answer]\nThe moon pulls." in plain
    assert "at most 8 criteria" in plain and CONTRAST not in plain and "[Sample" not in plain
    pairs = user_text(GenerationInput(prompt="q", pairs=(Pair("good one", "bad one"),)))
    assert "[Preferred response 1]\ngood one" in pairs
    assert "[Rejected response 1]\nbad one" in pairs and CONTRAST in pairs


def test_a_revision_shows_the_current_criteria_and_the_disagreements() -> None:
    current = (
        Criterion(id="polite", text="The response is polite.", weight=2),
        Criterion(id="rude", text="The response insults the user.", weight=-3),
    )
    sample = Disagreement("Say hi", "Go away.", reward=0.9, expected=0.0, note="rude")
    text = user_text(GenerationInput(disagreements=(sample,)), current)
    assert "- polite (principle, weight 2): The response is polite." in text
    assert "- rude (pitfall, weight 3): The response insults the user." in text
    assert "Judge reward: 0.90" in text and "Expected reward: 0.00" in text and REVISE in text
    # without disagreements there is nothing to revise from: the criteria are not shown
    assert "polite" not in user_text(GenerationInput(prompt="q"), current)


def test_the_schema_is_the_draft_model_with_the_requested_bound() -> None:
    schema = answer_schema(3)
    assert schema["properties"]["criteria"]["maxItems"] == 3
    assert Draft.model_json_schema()["properties"]["criteria"]["maxItems"] == 32
    assert max_tokens(3) < max_tokens(4)


# -- the route --------------------------------------------------------------------------------


def test_generates_a_definition_put_accepts_and_serves(
    client: TestClient, engine: ScriptedEngine
) -> None:
    resp = client.post(
        "/v1/rubrics/generate",
        json={"prompt": "Summarise the report.", "max_criteria": 3, "name": "summaries"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert engine.schemas[-1] == answer_schema(3)
    assert "Summarise the report." in engine.prompts[-1]
    assert body["model"] == "fake-judge" and body["base"]["name"] == "instruction_following"
    assert [(c["id"], c["weight"], c["kind"]) for c in body["criteria"]] == [
        ("cites_source", 3, "hard_rule"),
        ("concise", 1, "principle"),
        ("invents_facts", -2, "principle"),  # a pitfall is a negative weight
    ]
    definition = body["definition"]
    assert definition["template"].startswith("Below is a user request")  # the base's prompt
    put = client.put(
        "/v1/rubrics/summaries", json=definition, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert put.status_code == 201, put.text
    assert put.json()["version"] == body["rubric"]["version"]
    scored = client.post(
        "/v1/score",
        json={"rubric": "summaries", "items": [{"prompt": "p", "response": "r"}]},
    ).json()
    assert scored["rubric"] == body["rubric"]
    rows = scored["results"][0]["details"]["criteria"]
    assert [row["id"] for row in rows] == ["cites_source", "concise", "invents_facts"]


def test_criteria_output_is_the_project_criterion_format(client: TestClient) -> None:
    body = client.post("/v1/rubrics/generate", json={"prompt": "q", "output": "criteria"}).json()
    assert body["definition"] is None
    ids = [Criterion.model_validate(c).id for c in body["criteria"]]
    assert ids == ["cites_source", "concise", "invents_facts"]


def test_a_refinement_revises_the_base_and_keeps_its_name(
    client: TestClient, engine: ScriptedEngine
) -> None:
    body = client.post(
        "/v1/rubrics/generate",
        json={
            "base": "instruction_following",
            "disagreements": [
                {"prompt": "Reply in French.", "response": "Hello", "reward": 0.8, "expected": 0}
            ],
        },
    ).json()
    assert body["rubric"]["name"] == "instruction_following"
    assert body["rubric"]["version"] != body["base"]["version"]
    assert "explicit_constraints (hard_rule, weight 3)" in engine.prompts[-1]


def test_ids_are_normalised_and_repeats_dropped(rubrics_dir: Path, engine: ScriptedEngine) -> None:
    same = {"id": "clear", "text": "The   response is clear.", "kind": "principle", "weight": 1}
    engine.generation = answer(
        same,
        {**same, "text": "The response is CLEAR."},  # the same criterion again
        {**same, "text": "The response is short."},  # the same id, another criterion
    )
    with client_for(rubrics_dir, engine) as c:
        body = c.post("/v1/rubrics/generate", json={"prompt": "q"}).json()
    assert [(x["id"], x["text"]) for x in body["criteria"]] == [
        ("clear", "The response is clear."),
        ("clear_2", "The response is short."),
    ]


@pytest.mark.parametrize(
    ("generation", "why"),
    [
        ("I think a good answer is polite.", "does not validate"),
        (answer(), "does not validate"),  # no criteria
        ('{"criteria": [{"id": "a", "text": "The response', "cut off"),
        (
            answer({"id": "x", "text": "The response is rude.", "kind": "pitfall", "weight": 1}),
            "positive weight",
        ),
        (
            answer(
                {"id": "Bad Id!", "text": "The response is ok.", "kind": "principle", "weight": 9}
            ),
            "does not validate",
        ),
    ],
)
def test_a_bad_answer_is_a_502_judge_error(
    rubrics_dir: Path, engine: ScriptedEngine, generation: str, why: str
) -> None:
    engine.generation = generation
    with client_for(rubrics_dir, engine) as c:
        body = {"prompt": "q"}
        if why == "cut off":  # the fake cuts its answer at max_tokens characters
            engine.generation = generation + " " * 10_000
        resp = c.post("/v1/rubrics/generate", json=body)
    assert resp.status_code == 502, resp.text
    error = resp.json()["error"]
    assert error["type"] == "judge_error" and why in error["message"]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({}, 422, None),
        ({"prompt": "   ", "reference": ""}, 422, None),
        ({"pairs": [{"chosen": " ", "rejected": ""}]}, 422, None),
        ({"prompt": "q", "max_criteria": 0}, 422, "max_criteria"),
        ({"prompt": "q", "max_criteria": 33}, 422, "max_criteria"),
        ({"prompt": "x" * 8001}, 422, None),
        ({"prompt": "q", "pairs": [{"chosen": "a", "rejected": "b"}] * 9}, 422, "pairs"),
        ({"prompt": "q", "surprise": 1}, 422, "surprise"),
        ({"prompt": "q", "name": "Not A Name"}, 422, "name"),
        ({"prompt": "q", "base": "no_such_rubric"}, 404, "base"),
        ({"prompt": "q", "base": "pairwise"}, 422, "base"),
        (
            {"prompt": "q", "disagreements": [{"prompt": "p", "response": "r", "reward": "high"}]},
            422,
            "disagreements.0.reward",
        ),
    ],
)
def test_bad_requests_are_clear_4xx_in_the_envelope(
    client: TestClient, engine: ScriptedEngine, body: dict[str, Any], status: int, param: str
) -> None:
    resp = client.post("/v1/rubrics/generate", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["param"] == param
    assert engine.schemas == []  # refused before any engine call


def test_nothing_to_generate_from_says_so(client: TestClient) -> None:
    error = client.post("/v1/rubrics/generate", json={"prompt": ""}).json()["error"]
    assert error["type"] == "invalid_request" and "nothing to generate from" in error["message"]


def test_a_prompt_too_long_for_the_judge_is_a_422(rubrics_dir: Path) -> None:
    with client_for(rubrics_dir, ScriptedEngine(generation=GOOD, max_model_len=500)) as c:
        resp = c.post("/v1/rubrics/generate", json={"prompt": "q" * 4000})
    assert resp.status_code == 422
    assert resp.json()["error"]["type"] == "invalid_generation_request"


def test_needs_a_scoring_key_not_the_admin_token(client: TestClient) -> None:
    assert client.post("/v1/rubrics/generate", json={"prompt": "q"}).status_code == 200
    anonymous = client.post(
        "/v1/rubrics/generate", json={"prompt": "q"}, headers={"Authorization": ""}
    )
    assert anonymous.status_code == 401


# -- the CLI ----------------------------------------------------------------------------------


async def test_cli_writes_a_definition_the_loader_accepts(
    tmp_path: Path, rubrics_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from judge_server.cli.rubric_tools import validate

    monkeypatch.setattr(builder, "build_engine", lambda _: ScriptedEngine(generation=GOOD))
    dst = tmp_path / "summaries.yaml"
    settings = Settings(rubrics_dir=rubrics_dir)
    assert await generate_one(settings, {"prompt": "q", "name": "summaries"}, dst) == 0
    assert "cites_source" in dst.read_text()
    assert validate(dst) == 0


async def test_cli_jsonl_is_resumable_and_keeps_the_rows(
    tmp_path: Path,
    rubrics_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine = ScriptedEngine(generation=GOOD)
    monkeypatch.setattr(builder, "build_engine", lambda _: engine)
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [
        {"prompt_id": "a", "prompt": [{"role": "user", "content": "Q1"}], "example_tags": ["t"]},
        {"prompt": "Q2", "reference": "R2"},
        {"id": "c", "prompt": ""},  # nothing to generate from: reported, not written
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dst.write_text(json.dumps({"id": "1", "prompt": "Q2", "rubrics": []}) + '\n{"cut')
    settings = Settings(rubrics_dir=rubrics_dir)
    code = await generate_rows(settings, src, dst, base=None, max_criteria=3, concurrency=2)
    assert code == 1  # one row failed
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r.get("prompt_id", r.get("id")) for r in out] == ["1", "a"]  # "1" was already done
    assert out[1]["example_tags"] == ["t"]
    # what scoring reads from an item's rubrics field
    assert [c.id for c in parse_instance_criteria(out[1]["rubrics"])] == [
        "cites_source",
        "concise",
        "invents_facts",
    ]
    assert len(engine.schemas) == 1 and engine.schemas[0] == answer_schema(3)
    err = capsys.readouterr().err
    assert "row c:" in err and "nothing to generate from" in err and "1 failed" in err


# -- review fixes -----------------------------------------------------------------------------


def test_criteria_output_defaults_to_a_base_that_scores_them(client: TestClient) -> None:
    body = client.post("/v1/rubrics/generate", json={"prompt": "q", "output": "criteria"}).json()
    assert body["base"]["name"] == "healthbench"
    # what the response gives is what scoring takes, on that base
    item = {"prompt": "q", "response": "r", "rubrics": body["criteria"]}
    scored = client.post("/v1/score", json={"rubric": "healthbench", "items": [item]}).json()
    assert scored["results"][0]["status"] == "ok", scored


def test_criteria_output_on_a_base_that_forbids_them_is_a_422(
    client: TestClient, engine: ScriptedEngine
) -> None:
    resp = client.post(
        "/v1/rubrics/generate",
        json={"prompt": "q", "output": "criteria", "base": "instruction_following"},
    )
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["param"] == "base" and "instance_criteria: forbidden" in error["message"]
    assert engine.schemas == []


def test_criteria_output_is_read_back_as_scoring_reads_it(
    rubrics_dir: Path, engine: ScriptedEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from judge_server.service import rubric_generation

    calls: list[int] = []
    real = rubric_generation.parse_instance_criteria

    def spy(raw: Any, *, max_count: int) -> Any:
        calls.append(max_count)
        return real(raw, max_count=max_count)

    monkeypatch.setattr(rubric_generation, "parse_instance_criteria", spy)
    with client_for(rubrics_dir, engine) as c:
        resp = c.post("/v1/rubrics/generate", json={"prompt": "q", "output": "criteria"})
    assert resp.status_code == 200 and calls == [64]  # JUDGE_MAX_INLINE_CRITERIA's default


def test_max_criteria_is_bounded_by_the_inline_criteria_bound(
    rubrics_dir: Path, engine: ScriptedEngine
) -> None:
    settings = Settings(rubrics_dir=rubrics_dir, watch_rubrics=False, max_inline_criteria=4)
    with TestClient(create_app(settings, engine)) as c:
        resp = c.post("/v1/rubrics/generate", json={"prompt": "q", "max_criteria": 5})
        assert c.post("/v1/rubrics/generate", json={"prompt": "q", "max_criteria": 4}).is_success
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["param"] == "max_criteria" and "JUDGE_MAX_INLINE_CRITERIA" in error["message"]


def test_a_definition_on_a_base_that_requires_item_criteria_uses_its_own(
    client: TestClient,
) -> None:
    body = client.post(
        "/v1/rubrics/generate", json={"prompt": "q", "base": "healthbench", "name": "own"}
    ).json()
    assert body["definition"]["instance_criteria"] == "forbidden"
    put = client.put(
        "/v1/rubrics/own", json=body["definition"], headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert put.status_code in (200, 201), put.text
    scored = client.post(
        "/v1/score", json={"rubric": "own", "items": [{"prompt": "p", "response": "r"}]}
    ).json()
    rows = scored["results"][0]["details"]["criteria"]
    assert [row["id"] for row in rows] == ["cites_source", "concise", "invents_facts"]


def test_a_dead_engine_is_a_503_as_in_scoring(
    client: TestClient, engine: ScriptedEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from judge_server.engines.base import EngineDeadError

    async def dead(*_: Any, **__: Any) -> Any:
        raise EngineDeadError("engine core exited")

    monkeypatch.setattr(engine, "generate", dead)
    resp = client.post("/v1/rubrics/generate", json={"prompt": "q"})
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"]["type"] == "not_ready"


def test_a_slow_generation_ends_at_its_deadline_with_a_504(
    client: TestClient, engine: ScriptedEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    async def slow(*_: Any, **__: Any) -> Any:
        await asyncio.sleep(30)

    monkeypatch.setattr(engine, "generate", slow)
    resp = client.post("/v1/rubrics/generate", json={"prompt": "q", "timeout_s": 0.2})
    assert resp.status_code == 504, resp.text
    error = resp.json()["error"]
    assert error["type"] == "timeout" and error["param"] == "timeout_s"
    too_long = client.post("/v1/rubrics/generate", json={"prompt": "q", "timeout_s": 3601})
    assert too_long.status_code == 422


def test_a_prompt_leaving_too_little_room_for_the_answer_is_a_422(
    rubrics_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the prompt fits, but not with the answer's bound: vLLM would clamp max_tokens and cut it
    engine = ScriptedEngine(generation=GOOD, max_model_len=max_tokens(3) + 1400)
    # a token per character, as the fake's length check (the prompt is about 1,200)
    monkeypatch.setattr(engine, "count_tokens", len)
    with client_for(rubrics_dir, engine) as c:
        resp = c.post("/v1/rubrics/generate", json={"prompt": "q" * 400})
        fewer = c.post("/v1/rubrics/generate", json={"prompt": "q" * 400, "max_criteria": 3})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert (
        error["type"] == "invalid_generation_request" and "smaller max_criteria" in error["message"]
    )
    assert fewer.status_code == 200, fewer.text


async def test_cli_rows_with_nulls_and_an_output_without_its_last_newline(
    tmp_path: Path,
    rubrics_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine = ScriptedEngine(generation=GOOD)
    monkeypatch.setattr(builder, "build_engine", lambda _: engine)
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [
        {"id": "a", "prompt": "Q1", "reference": None, "pairs": None},
        {"id": "b", "prompt": "Q2"},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dst.write_text(json.dumps({"id": "b", "prompt": "Q2", "rubrics": []}))  # no newline
    settings = Settings(rubrics_dir=rubrics_dir)
    code = await generate_rows(settings, src, dst, base=None, max_criteria=3, concurrency=1)
    assert code == 0, capsys.readouterr().err
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in out] == ["b", "a"]
    assert "judge them with rubric healthbench@" in capsys.readouterr().err


async def test_cli_without_a_base_that_takes_criteria_stops_before_the_engine(
    tmp_path: Path, rubrics_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builder, "build_engine", lambda _: ScriptedEngine(generation=GOOD))
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "prompt": "Q"}) + "\n")
    settings = Settings(rubrics_dir=rubrics_dir)
    code = await generate_rows(
        settings, src, tmp_path / "o.jsonl", base="instruction_following", max_criteria=3,
        concurrency=1,
    )  # fmt: skip
    assert code == 2
