"""Cache, dedup, backpressure and cancellation at the engine seam (the real-engine tier repeats
the cache path in tests/integration/test_cache_live.py)."""

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.registry import RubricRegistry
from judge_server.settings import Settings
from tests.asgi import served
from tests.fakes import ScriptedEngine

VERDICT = {"mode": "verdict", "template": "Q: {prompt}\nA: {response}\nGood? Yes or No."}
ITEM = {"prompt": "p", "response": "r"}


class CountingEngine(ScriptedEngine):
    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.calls = 0
        self.cancelled = 0

    async def next_token_logprobs(self, prompt: str, candidates: Sequence[str]):  # type: ignore[no-untyped-def]
        self.calls += 1
        try:
            return await super().next_token_logprobs(prompt, candidates)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def app_for(tmp_path: Path, engine: ScriptedEngine, **settings: object) -> object:
    registry = RubricRegistry(parse_rubric)
    registry.save(parse_rubric({"name": "v", **VERDICT}), tmp_path)
    s = Settings(
        rubrics_dir=tmp_path, watch_rubrics=False, cache_path=tmp_path / "cache.sqlite3", **settings
    )  # type: ignore[arg-type]
    return create_app(s, engine, registry=registry)


def score(client: TestClient, items: list[dict[str, str]], **options: object) -> dict:  # type: ignore[type-arg]
    resp = client.post("/v1/score", json={"rubric": "v", "items": items, "options": options})
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_cache_hits_survive_a_restart_and_can_be_skipped(tmp_path: Path) -> None:
    engine = CountingEngine()
    with TestClient(app_for(tmp_path, engine)) as client:  # type: ignore[arg-type]
        first = score(client, [ITEM])["results"][0]
        assert first["cached"] is False and engine.calls == 1
        again = score(client, [ITEM])["results"][0]
        assert again["cached"] is True and again["reward"] == first["reward"]
        assert engine.calls == 1
        fresh = score(client, [ITEM], cache=False)["results"][0]
        assert fresh["cached"] is False and engine.calls == 2
    # a new app on the same SQLite file: the result is still there
    engine2 = CountingEngine()
    with TestClient(app_for(tmp_path, engine2)) as client:  # type: ignore[arg-type]
        restarted = score(client, [ITEM])["results"][0]
        assert restarted["cached"] is True and restarted["reward"] == first["reward"]
        assert engine2.calls == 0
        assert "judge_cache_hits_total 1.0" in client.get("/metrics").text


def test_cache_key_changes_with_the_rubric_version(tmp_path: Path) -> None:
    engine = CountingEngine()
    app = app_for(tmp_path, engine, admin_token="test-admin")
    with TestClient(app) as client:  # type: ignore[arg-type]
        v1 = score(client, [ITEM])
        put = client.put(
            "/v1/rubrics/v",
            json={**VERDICT, "description": "changed"},
            headers={"Authorization": "Bearer test-admin"},
        )
        assert put.status_code == 200, put.text
        v2 = score(client, [ITEM])
        assert v2["rubric"]["version"] != v1["rubric"]["version"]
        assert v2["results"][0]["cached"] is False and engine.calls == 2
        pinned = client.post(
            "/v1/score", json={"rubric": f"v@{v1['rubric']['version']}", "items": [ITEM]}
        ).json()
        assert pinned["results"][0]["cached"] is True


def test_failures_are_never_cached(tmp_path: Path) -> None:
    engine = CountingEngine()
    bad = {"prompt": "p", "response": "ENGINE-FAIL"}
    with TestClient(app_for(tmp_path, engine)) as client:  # type: ignore[arg-type]
        assert score(client, [bad])["results"][0]["status"] == "judge_error"
        again = score(client, [bad])["results"][0]
        assert again["status"] == "judge_error" and again["cached"] is False


def test_identical_items_in_flight_are_computed_once(tmp_path: Path) -> None:
    engine = CountingEngine(delay_s=0.2)
    with TestClient(app_for(tmp_path, engine, cache_backend="none")) as client:  # type: ignore[arg-type]
        results = score(client, [ITEM] * 5 + [{"prompt": "p", "response": "other"}])["results"]
    assert [r["status"] for r in results] == ["ok"] * 6
    assert len({r["reward"] for r in results[:5]}) == 1
    assert engine.calls == 2  # five identical items, one distinct


async def test_full_queue_answers_429_with_retry_after(tmp_path: Path) -> None:
    engine = CountingEngine(delay_s=0.5)
    await engine.start()
    app = app_for(tmp_path, engine, max_queue_engine_calls=3, cache_backend="none")
    async with served(app) as client:  # type: ignore[arg-type]
        body = {"rubric": "v", "items": [{"prompt": "p", "response": f"r{i}"} for i in range(3)]}
        busy = asyncio.create_task(client.post("/v1/score", json=body))
        await asyncio.sleep(0.1)
        refused = await client.post("/v1/score", json={"rubric": "v", "items": [ITEM]})
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] == "queue_full"
        assert refused.headers["retry-after"] == "2"
        assert (await busy).status_code == 200
        # capacity is back once the first request is answered
        assert (
            await client.post("/v1/score", json={"rubric": "v", "items": [ITEM]})
        ).status_code == 200


async def test_client_disconnect_cancels_engine_work(tmp_path: Path) -> None:
    engine = CountingEngine(delay_s=30)
    await engine.start()
    app = app_for(tmp_path, engine, cache_backend="none")
    body = json.dumps({"rubric": "v", "items": [ITEM]}).encode()
    sent: list[dict[str, object]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    hang_up_at = asyncio.get_running_loop().time() + 0.3

    async def receive() -> dict[str, object]:
        if messages:
            return messages.pop()
        # like a server: a disconnect is available at once after the client hangs up
        while asyncio.get_running_loop().time() < hang_up_at:
            await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/score",
        "raw_path": b"/v1/score",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("judge", 80),
    }
    async with LifespanManager(app) as manager:  # type: ignore[arg-type]
        await asyncio.wait_for(manager.app(scope, receive, send), timeout=10)  # type: ignore[arg-type]
    assert engine.calls == 1 and engine.cancelled == 1
    assert sent[0]["status"] == 499


@pytest.mark.parametrize("backend", ["memory", "none"])
def test_cache_backends_are_selectable(tmp_path: Path, backend: str) -> None:
    engine = CountingEngine()
    with TestClient(app_for(tmp_path, engine, cache_backend=backend)) as client:  # type: ignore[arg-type]
        score(client, [ITEM])
        assert score(client, [ITEM])["results"][0]["cached"] is (backend == "memory")
