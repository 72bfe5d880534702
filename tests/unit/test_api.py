from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.service import RETRY_AFTER_S
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = Settings(rubrics_dir=project_rubrics_dir())
    app = create_app(settings, ScriptedEngine(max_model_len=3000))
    with TestClient(app) as c:
        yield c


def item(i: int, **kw: object) -> dict[str, object]:
    return {"id": f"a{i}", "prompt": "Say hi", "response": f"hi {i}", **kw}


def assert_envelope(resp: object, status: int, type_: str, param: str | None = None) -> None:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "param"}
    assert body["error"]["type"] == type_
    assert body["error"]["message"]
    if param is not None:
        assert body["error"]["param"] == param


def test_score_returns_one_result_per_item_in_order_with_version_and_model(
    client: TestClient,
) -> None:
    resp = client.post(
        "/v1/score", json={"rubric": "helpfulness", "items": [item(i) for i in range(8)]}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == "fake-judge"
    assert body["rubric"]["name"] == "helpfulness" and len(body["rubric"]["version"]) == 12
    assert [r["id"] for r in body["results"]] == [f"a{i}" for i in range(8)]
    for r in body["results"]:
        assert r["status"] == "ok" and 0.0 <= r["reward"] <= 1.0
        assert set(r["details"]["distribution"]) == {str(s) for s in range(1, 10)}


def test_pinned_and_inline_rubrics(client: TestClient) -> None:
    version = client.get("/v1/rubrics/helpfulness").json()["version"]
    resp = client.post("/v1/score", json={"rubric": f"helpfulness@{version}", "items": [item(0)]})
    assert resp.json()["rubric"]["version"] == version
    inline = {"name": "inline", "mode": "verdict", "template": "{prompt} {response} Yes or No?"}
    resp = client.post("/v1/score", json={"rubric": inline, "items": [item(0)]})
    assert resp.status_code == 200 and resp.json()["results"][0]["reward"] == pytest.approx(0.5)


def test_chat_prompts_and_integer_ids(client: TestClient) -> None:
    prompt = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hey"},
        {"role": "user", "content": "bye?"},
    ]
    resp = client.post(
        "/v1/score",
        json={"rubric": "helpfulness", "items": [{"id": 7, "prompt": prompt, "response": "bye"}]},
    )
    assert resp.status_code == 200
    assert resp.json()["results"][0]["id"] == "7"


@pytest.mark.parametrize(
    ("body", "status", "type_", "param"),
    [
        ({"rubric": "helpfulness", "items": []}, 422, "invalid_request", "items"),
        (
            {"rubric": "helpfulness", "items": [{"prompt": "x"}]},
            422,
            "invalid_request",
            "items.0.response",
        ),
        ({"items": [item(0)]}, 422, "invalid_request", "rubric"),
        ({"rubric": "nope", "items": [item(0)]}, 404, "rubric_not_found", "rubric"),
        ({"rubric": "nope@abc", "items": [item(0)]}, 404, "rubric_not_found", "rubric"),
        (
            {"rubric": {"name": "x", "mode": "verdict"}, "items": [item(0)]},
            422,
            "invalid_rubric",
            "rubric",
        ),
        (
            {"rubric": "helpfulness", "items": [item(0)], "options": {"timeout_s": -1}},
            422,
            "invalid_request",
            "options.timeout_s",
        ),
        ({"rubric": "helpfulness", "items": "x"}, 422, "invalid_request", "items"),
    ],
)
def test_bad_input_gets_one_error_envelope(
    client: TestClient, body: dict[str, object], status: int, type_: str, param: str
) -> None:
    assert_envelope(client.post("/v1/score", json=body), status, type_, param)


def test_malformed_json_and_unknown_routes(client: TestClient) -> None:
    resp = client.post(
        "/v1/score", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_envelope(resp, 400, "invalid_json")
    assert_envelope(client.get("/v1/nothing"), 404, "not_found")
    assert_envelope(client.get("/v1/rubrics/unknown"), 404, "rubric_not_found")


def test_item_too_long_is_invalid_input_and_others_are_scored(client: TestClient) -> None:
    items = [item(0), item(1, response="x" * 5000), item(2)]
    resp = client.post("/v1/score", json={"rubric": "helpfulness", "items": items})
    assert resp.status_code == 200
    statuses = [(r["status"], r["reward"] is None) for r in resp.json()["results"]]
    assert statuses == [("ok", False), ("invalid_input", True), ("ok", False)]


def test_missing_reference_is_invalid_input_for_that_item(client: TestClient) -> None:
    items = [item(0, reference="hi"), item(1)]
    resp = client.post("/v1/score", json={"rubric": "correctness", "items": items})
    results = resp.json()["results"]
    assert results[0]["status"] == "ok"
    assert results[1]["status"] == "invalid_input" and results[1]["reward"] is None


def test_rubric_listing_and_detail(client: TestClient) -> None:
    listing = client.get("/v1/rubrics").json()["rubrics"]
    assert {r["name"] for r in listing} >= {"helpfulness", "correctness"}
    detail = client.get("/v1/rubrics/correctness").json()
    assert detail["mode"] == "verdict" and detail["history"] == [detail["version"]]
    assert detail["definition"]["requires_reference"] is True


def test_health_ready_and_metrics(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    client.post("/v1/score", json={"rubric": "helpfulness", "items": [item(0)]})
    client.post("/v1/score", json={"rubric": "nope", "items": [item(0)]})
    text = client.get("/metrics").text
    assert 'judge_items_total{mode="pointwise",rubric="helpfulness",status="ok"} 1.0' in text
    assert 'judge_requests_total{code="404",route="/v1/score"} 1.0' in text
    assert "judge_request_latency_seconds_bucket" in text
    assert "judge_engine_requests 1.0" in text


def test_not_ready_answers_503_with_retry_after(tmp_path: Path) -> None:
    class Stuck(ScriptedEngine):
        async def start(self) -> None:  # never becomes ready
            pass

    app = create_app(Settings(rubrics_dir=project_rubrics_dir()), Stuck())
    with TestClient(app) as c:
        assert c.get("/ready").status_code == 503
        resp = c.post("/v1/score", json={"rubric": "helpfulness", "items": [item(0)]})
        assert_envelope(resp, 503, "not_ready")
        assert resp.headers["retry-after"] == str(RETRY_AFTER_S)


def test_engine_start_failure_is_reported_and_fatal_hook_called() -> None:
    called: list[str] = []

    class Broken(ScriptedEngine):
        async def start(self) -> None:
            raise RuntimeError("no weights")

    app = create_app(
        Settings(rubrics_dir=project_rubrics_dir()), Broken(), on_fatal=called.append
    )
    with TestClient(app) as c:
        body = c.get("/ready").json()
        assert body["ready"] is False and "no weights" in body["error"]["message"]
    assert len(called) == 1 and "no weights" in called[0]
