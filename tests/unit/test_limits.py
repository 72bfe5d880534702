"""Limits with clear errors: body size before parsing, text lengths, inline rubric size, and
admission by engine calls (the real-engine tier: tests/integration/test_limits_live.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.judges import judge_for, parse_rubric
from judge_server.service.cost import engine_calls
from judge_server.settings import Settings, project_rubrics_dir
from tests.asgi import served
from tests.fakes import ScriptedEngine
from tests.unit.test_api import assert_envelope

TEMPLATE = "{prompt}\n{response}\nDoes it hold? {criterion} Yes or No."


def criteria_rubric(n: int, **extra: Any) -> dict[str, Any]:
    criteria = [{"id": f"c{i}", "text": f"criterion {i}"} for i in range(n)]
    return {"name": "many", "mode": "rubric", "template": TEMPLATE, "criteria": criteria, **extra}


def make_client(**settings: Any) -> TestClient:
    s = Settings(rubrics_dir=project_rubrics_dir(), cache_backend="memory", **settings)
    return TestClient(create_app(s, ScriptedEngine(max_model_len=100_000)))


@pytest.fixture
def client() -> Iterator[TestClient]:
    with make_client(max_body_bytes=4096, max_text_chars=500) as c:
        yield c


def post_raw(client: TestClient, body: bytes, content_type: str | None = "application/json") -> Any:
    headers = {"content-type": content_type} if content_type else {}
    return client.post("/v1/score", content=body, headers=headers)


# -- body size, before parsing --------------------------------------------------------------


def test_a_body_over_the_limit_is_413_before_it_is_parsed(client: TestClient) -> None:
    # Not JSON at all: a parser would say 400; the size is refused first, by its Content-Length.
    resp = post_raw(client, b"x" * 5000)
    assert_envelope(resp, 413, "body_too_large")
    assert "5,000 bytes" in resp.json()["error"]["message"]
    assert "JUDGE_MAX_BODY_BYTES" in resp.json()["error"]["message"]
    assert resp.headers["connection"] == "close"


async def test_a_chunked_body_is_counted_while_it_arrives_and_the_rest_is_never_read() -> None:
    s = Settings(rubrics_dir=project_rubrics_dir(), cache_backend="memory", max_body_bytes=4096)
    app = create_app(s, ScriptedEngine())
    chunks = [{"type": "http.request", "body": b" " * 1024, "more_body": True} for _ in range(50)]
    read = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/score",
        "raw_path": b"/v1/score",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("judge", 80),
        "client": ("test", 1),
        "root_path": "",
    }
    async with served(app):  # the lifespan sets up the service the routes need
        await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["type"] == "body_too_large"
    assert read == 5  # 5 KiB read of the 50 sent: refused as soon as it passed 4 KiB


def test_a_body_under_the_limit_is_served(client: TestClient) -> None:
    body = {"rubric": "helpfulness", "items": [{"prompt": "p", "response": "r"}]}
    assert client.post("/v1/score", json=body).status_code == 200


# -- every body-parse failure is invalid_json -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b'{"rubric": "helpfulness", "items": [', "application/json", 400, "not valid JSON"),
        (b'{"rubric": "helpf\xff"}', "application/json", 400, "not valid UTF-8 (byte 0xff"),
        (b"\xed\xa0\x80", "application/json", 400, "not valid UTF-8"),  # an encoded surrogate
        (b"", "application/json", 400, "empty"),
        (b'{"rubric": "helpfulness"}', "text/plain", 415, "Content-Type: application/json"),
        (b"rubric=helpfulness", "application/x-www-form-urlencoded", 415, "application/json"),
        (b'{"rubric": "helpfulness"}', None, 415, "without a Content-Type"),
    ],
)
def test_every_body_parse_failure_is_invalid_json(
    client: TestClient, body: bytes, content_type: str | None, status: int, says: str
) -> None:
    resp = post_raw(client, body, content_type)
    assert_envelope(resp, status, "invalid_json")
    assert says in resp.json()["error"]["message"]


def test_json_subtypes_and_parameters_are_read(client: TestClient) -> None:
    body = json.dumps({"rubric": "helpfulness", "items": [{"prompt": "p", "response": "r"}]})
    assert post_raw(client, body.encode(), "application/vnd.api+json").status_code == 200
    assert post_raw(client, body.encode(), "application/json; charset=utf-8").status_code == 200


# -- Unicode: a lone surrogate is a 422 or that item's invalid_input, never a 500 -----------


def test_a_lone_surrogate_in_an_item_id_is_a_422_naming_it(client: TestClient) -> None:
    body = b'{"rubric": "helpfulness", "items": [{"id": "\\ud800", "prompt": "p", "response": ""}]}'
    resp = post_raw(client, body)
    assert_envelope(resp, 422, "invalid_request", "items.0.id")
    assert "lone surrogate \\ud800" in resp.json()["error"]["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("response", '"r\\ud800"'),
        ("prompt", '"p\\udfff"'),
        ("prompt", '[{"role": "user", "content": "\\ud83d"}]'),
        ("reference", '"\\udc00"'),
        ("metadata", '{"note": "\\ud800"}'),
        ("metadata", '{"\\ud800": 1}'),
    ],
)
def test_a_lone_surrogate_in_item_text_is_that_items_invalid_input(
    client: TestClient, field: str, value: str
) -> None:
    bad = f'{{"id": "bad", "prompt": "p", "response": "r", "{field}": {value}}}'
    good = '{"id": "good", "prompt": "p", "response": "r"}'
    body = f'{{"rubric": "helpfulness", "items": [{bad}, {good}]}}'
    resp = post_raw(client, body.encode())
    assert resp.status_code == 200, resp.text
    bad_result, good_result = resp.json()["results"]
    assert bad_result["status"] == "invalid_input" and bad_result["reward"] is None
    assert field in bad_result["error"] and "lone surrogate" in bad_result["error"]
    assert good_result["status"] == "ok" and good_result["reward"] is not None


def test_a_proper_surrogate_pair_is_text(client: TestClient) -> None:
    body = b'{"rubric": "helpfulness", "items": [{"prompt": "p", "response": "\\ud83d\\ude00"}]}'
    assert post_raw(client, body).json()["results"][0]["status"] == "ok"


@pytest.mark.parametrize(
    "rubric", ['"helpf\\ud800"', '{"name": "x", "mode": "verdict", "template": "\\ud800"}']
)
def test_a_lone_surrogate_in_the_rubric_is_a_422(client: TestClient, rubric: str) -> None:
    body = f'{{"rubric": {rubric}, "items": [{{"prompt": "p", "response": "r"}}]}}'
    assert_envelope(post_raw(client, body.encode()), 422, "invalid_rubric", "rubric")


def test_trainer_routes_refuse_the_item_not_the_server(client: TestClient) -> None:
    body = b'{"prompt": "p", "response": "r\\ud800", "label": null}'
    resp = client.post(
        "/slime/reward?rubric=helpfulness",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 200
    assert resp.json()["status"] == "invalid_input" and resp.json()["ok"] is False
    body = b'{"query": ["pr\\ud800", "pr"], "prompts": ["p", "p"]}'
    resp = client.post(
        "/get_reward?rubric=helpfulness", content=body, headers={"content-type": "application/json"}
    )
    assert resp.status_code == 200
    assert resp.json()["statuses"] == ["invalid_input", "ok"]


def test_group_a_bad_response_fails_its_own_comparisons_only(client: TestClient) -> None:
    body = (
        b'{"rubric": "pairwise", "prompt": "p", "responses": ["one", "two\\ud800", "three"],'
        b' "options": {"cache": false}}'
    )
    resp = post_raw_to(client, "/v1/score/group", body)
    assert resp.status_code == 200, resp.text
    statuses = [r["status"] for r in resp.json()["results"]]
    assert statuses == ["ok", "invalid_input", "ok"]
    assert "responses.1: lone surrogate" in resp.json()["results"][1]["error"]
    shared = b'{"rubric": "pairwise", "prompt": "p\\ud800", "responses": ["one", "two"]}'
    assert_envelope(post_raw_to(client, "/v1/score/group", shared), 422, "invalid_request")


def post_raw_to(client: TestClient, path: str, body: bytes) -> Any:
    return client.post(path, content=body, headers={"content-type": "application/json"})


# -- text lengths ---------------------------------------------------------------------------


def test_an_overlong_text_is_that_items_invalid_input_naming_the_limit(client: TestClient) -> None:
    items = [
        {"id": "long", "prompt": "p", "response": "x" * 501},
        {"id": "meta", "prompt": "p", "response": "r", "metadata": {"k": "y" * 600}},
        {"id": "chat", "prompt": [{"role": "user", "content": "z" * 501}], "response": "r"},
        {"id": "fine", "prompt": "p", "response": "x" * 500},
    ]
    resp = client.post("/v1/score", json={"rubric": "helpfulness", "items": items})
    results = resp.json()["results"]
    assert [r["status"] for r in results] == ["invalid_input"] * 3 + ["ok"]
    assert results[0]["error"] == "response is 501 characters; at most 500 (JUDGE_MAX_TEXT_CHARS)"
    assert results[1]["error"].startswith("metadata is ")
    assert results[2]["error"].startswith("prompt is 501 characters")


def test_an_overlong_item_id_is_a_422(client: TestClient) -> None:
    items = [{"id": "i" * 513, "prompt": "p", "response": "r"}]
    resp = client.post("/v1/score", json={"rubric": "helpfulness", "items": items})
    assert_envelope(resp, 422, "invalid_request", "items.0.id")


# -- inline rubric size, reasoning tokens ---------------------------------------------------


def test_an_inline_rubric_past_its_bounds_is_a_422_naming_limit_and_value() -> None:
    item = [{"prompt": "p", "response": "r"}]
    with make_client() as client:
        resp = client.post("/v1/score", json={"rubric": criteria_rubric(100), "items": item})
        assert_envelope(resp, 422, "invalid_rubric", "rubric")
        message = resp.json()["error"]["message"]
        assert "100 criteria" in message and "at most 64 (JUDGE_MAX_INLINE_CRITERIA)" in message
        long = {"name": "x", "mode": "verdict", "template": "{response} Yes or No?" + " " * 70_000}
        resp = client.post("/v1/score", json={"rubric": long, "items": item})
        assert_envelope(resp, 422, "invalid_rubric", "rubric")
        assert "JUDGE_MAX_INLINE_RUBRIC_CHARS" in resp.json()["error"]["message"]
        thinking = criteria_rubric(2, reasoning={"enabled": True, "max_tokens": 4096})
        resp = client.post("/v1/score", json={"rubric": thinking, "items": item})
        assert_envelope(resp, 422, "invalid_rubric", "rubric")
        assert "4096; at most 1024 (JUDGE_MAX_REASONING_TOKENS)" in resp.json()["error"]["message"]
        resp = client.post("/v1/score", json={"rubric": criteria_rubric(64), "items": item})
        assert resp.status_code == 200, resp.text


# -- engine calls: what a request costs, per request and in flight --------------------------


def judge_of(data: dict[str, Any]) -> Any:
    return judge_for(parse_rubric(data))


def test_engine_calls_per_item_follow_the_rubric() -> None:
    assert engine_calls(judge_of(criteria_rubric(7))) == 7
    assert engine_calls(judge_of(criteria_rubric(7, reasoning={"enabled": True}))) == 14
    holistic = criteria_rubric(7, aggregation={"method": "holistic"})
    holistic["template"] = "{prompt} {response} {criteria} Score 1-9."
    assert engine_calls(judge_of(holistic)) == 1
    pair = {"name": "p", "mode": "pairwise", "template": "{prompt} {response_a} {response_b} A/B"}
    assert engine_calls(judge_of(pair)) == 2
    assert engine_calls(judge_of({**pair, "both_orders": False})) == 1
    rubrics = {"many": parse_rubric(criteria_rubric(5)), "p": parse_rubric(pair)}
    composite = {
        "name": "c",
        "mode": "composite",
        "components": [{"rubric": "many"}, {"rubric": "p"}, {"check": "valid_json"}],
    }
    assert engine_calls(judge_for(parse_rubric(composite), rubrics.__getitem__)) == 7


def test_a_request_costing_too_many_engine_calls_is_413_naming_the_cost() -> None:
    items = [{"prompt": "p", "response": f"r{i}"} for i in range(5)]
    with make_client(max_engine_calls_per_request=100) as client:
        resp = client.post("/v1/score", json={"rubric": criteria_rubric(30), "items": items})
        assert_envelope(resp, 413, "too_many_engine_calls", "items")
        message = resp.json()["error"]["message"]
        assert "150 engine calls (5 x 30 per item" in message
        assert "at most 100 per request (JUDGE_MAX_ENGINE_CALLS_PER_REQUEST)" in message
        resp = client.post("/v1/score", json={"rubric": criteria_rubric(20), "items": items})
        assert resp.status_code == 200
        group = {"rubric": "pairwise", "prompt": "p", "responses": [f"r{i}" for i in range(12)]}
        resp = client.post("/v1/score/group", json=group)  # 66 pairs x 2 orders
        assert_envelope(resp, 413, "too_many_engine_calls", "responses")
        assert "round_robin or anchor" in resp.json()["error"]["message"]


async def test_admission_counts_engine_calls_not_items(tmp_path: Path) -> None:
    engine = ScriptedEngine(delay_s=0.5)
    await engine.start()
    s = Settings(
        rubrics_dir=project_rubrics_dir(), cache_backend="none", max_queue_engine_calls=12
    )
    async with served(create_app(s, engine)) as client:
        one = [{"prompt": "p", "response": "r"}]
        busy = asyncio.create_task(
            client.post("/v1/score", json={"rubric": criteria_rubric(10), "items": one})
        )
        await asyncio.sleep(0.2)
        metrics = (await client.get("/metrics")).text
        assert "judge_queue_engine_calls 10.0" in metrics
        assert "judge_queue_items 1.0" in metrics
        # One item, but three more calls than the bound has room for.
        refused = await client.post("/v1/score", json={"rubric": criteria_rubric(3), "items": one})
        assert_envelope(refused, 429, "queue_full")
        assert "10 engine calls in flight" in refused.json()["error"]["message"]
        fits = await client.post("/v1/score", json={"rubric": criteria_rubric(2), "items": one})
        assert fits.status_code == 200
        assert (await busy).status_code == 200


# -- metric labels stay bounded -------------------------------------------------------------


def test_inline_rubrics_share_one_metric_label() -> None:
    item = [{"prompt": "p", "response": "r"}]
    with make_client() as client:
        helpfulness = client.get("/v1/rubrics/helpfulness").json()["definition"]
        for i in range(5):
            rubric = {"name": f"inline-{i}", "mode": "verdict", "template": "{response} Yes/No?"}
            resp = client.post("/v1/score", json={"rubric": rubric, "items": item})
            assert resp.status_code == 200
        # The name of a registered rubric with other content is still inline...
        impostor = {"name": "helpfulness", "mode": "verdict", "template": "{response} Yes/No?"}
        client.post("/v1/score", json={"rubric": impostor, "items": item})
        # ...while an inline copy of the registered version is that rubric.
        client.post("/v1/score", json={"rubric": helpfulness, "items": item})
        client.post("/v1/score", json={"rubric": "helpfulness", "items": item})
        metrics = client.get("/metrics").text
    series = [line for line in metrics.splitlines() if line.startswith("judge_items_total{")]
    assert not any("inline-" in line for line in series)
    assert 'judge_items_total{mode="verdict",rubric="inline",status="ok"} 6.0' in series
    assert 'judge_items_total{mode="pointwise",rubric="helpfulness",status="ok"} 2.0' in series
