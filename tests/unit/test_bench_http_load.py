"""The benchmark's HTTP load generator against an in-process aiohttp server: what it sends,
what it accepts as an answer, and that its bodies are encoded before its clock starts.

No timing assertions: the rates come from ``judge-server bench`` itself.
"""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from judge_server.cli.bench import http_load
from judge_server.cli.bench.workload import short_items

Answer = Callable[[dict[str, Any]], dict[str, Any]]


def all_ok(body: dict[str, Any]) -> dict[str, Any]:
    return {"results": [{"id": i["id"], "status": "ok", "cached": False} for i in body["items"]]}


@asynccontextmanager
async def scoring(answer: Answer, status: int = 200) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A ``POST /v1/score`` answering ``answer(body)`` with ``status``; yields its base URL and
    the raw bodies it received."""
    received: list[bytes] = []

    async def score(request: web.Request) -> web.Response:
        raw = await request.read()
        received.append(raw)
        return web.json_response(answer(json.loads(raw)), status=status)

    app = web.Application()
    app.router.add_post("/v1/score", score)
    async with TestServer(app, host="127.0.0.1") as server:
        yield f"http://127.0.0.1:{server.port}", received


async def test_batches_send_every_item_once_and_return_every_result() -> None:
    items = short_items(20, 0)
    async with scoring(all_ok) as (url, received), http_load.client() as http:
        timed = await http_load.batches(http, url, "r", items, batch_size=8, cache=False)
    bodies = [json.loads(raw) for raw in received]
    assert sorted(len(b["items"]) for b in bodies) == [4, 8, 8]
    assert all(b["rubric"] == "r" and b["options"]["cache"] is False for b in bodies)
    assert sorted(r["id"] for r in timed.results) == sorted(i.id for i in items)
    assert timed.elapsed_s > 0 and timed.client_cpu_s > 0


async def test_single_item_clients_send_one_item_per_request() -> None:
    items = short_items(10, 0)
    async with scoring(all_ok) as (url, received), http_load.client() as http:
        timed = await http_load.single_item_clients(http, url, "r", items, clients=3, cache=True)
    assert sorted(json.loads(raw)["items"][0]["id"] for raw in received) == sorted(
        i.id for i in items
    )
    assert all(len(json.loads(raw)["items"]) == 1 for raw in received)
    assert len(timed.results) == 10 and timed.client_cpu_s > 0


def one_failed(body: dict[str, Any]) -> dict[str, Any]:
    answer = all_ok(body)
    answer["results"][-1].update(status="timeout", reward=None)
    return answer


def one_missing(body: dict[str, Any]) -> dict[str, Any]:
    answer = all_ok(body)
    answer["results"].pop()
    return answer


def refused(body: dict[str, Any]) -> dict[str, Any]:
    return {"error": {"type": "invalid_request", "message": "no such rubric"}}


@pytest.mark.parametrize(
    ("answer", "status", "message"),
    [
        (one_failed, 200, "1 benchmark items failed: timeout"),
        (one_missing, 200, "3 results for 4 items"),
        (refused, 404, 'HTTP 404: {"error": {"type": "invalid_request"'),
    ],
)
async def test_an_answer_that_is_not_every_item_ok_raises(
    answer: Answer, status: int, message: str
) -> None:
    async with scoring(answer, status) as (url, _), http_load.client() as http:
        with pytest.raises(RuntimeError, match=message.replace("{", r"\{")):
            await http_load.batches(http, url, "r", short_items(8, 0), batch_size=4, cache=False)
    assert gc.isenabled()  # the collector is back on after a failed timed region too


async def test_bodies_are_encoded_before_the_clock_starts_and_sent_as_encoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[str] = []
    encoded: list[bytes] = []
    encode, timed = http_load.score_body, http_load._timed

    def spy_encode(*args: Any) -> bytes:
        events.append("encode")
        encoded.append(encode(*args))
        return encoded[-1]

    async def spy_timed(work: Awaitable[list[dict[str, Any]]]) -> http_load.Timed:
        events.append("clock")
        return await timed(work)

    monkeypatch.setattr(http_load, "score_body", spy_encode)
    monkeypatch.setattr(http_load, "_timed", spy_timed)
    async with scoring(all_ok) as (url, received), http_load.client() as http:
        await http_load.batches(http, url, "r", short_items(12, 0), batch_size=4, cache=False)
        assert events == ["encode"] * 3 + ["clock"]
        events.clear()
        await http_load.single_item_clients(
            http, url, "r", short_items(3, 0), clients=2, cache=False
        )
        assert events == ["encode"] * 3 + ["clock"]
    assert sorted(received) == sorted(encoded)  # the very bytes encoded, nothing re-encoded


async def test_the_garbage_collector_is_off_only_while_the_clock_runs() -> None:
    seen: list[bool] = []

    def watching(body: dict[str, Any]) -> dict[str, Any]:
        seen.append(gc.isenabled())  # the server runs on this test's loop, in the timed region
        return all_ok(body)

    assert gc.isenabled()
    async with scoring(watching) as (url, _), http_load.client() as http:
        await http_load.batches(http, url, "r", short_items(8, 0), batch_size=4, cache=False)
    assert seen == [False, False] and gc.isenabled()
