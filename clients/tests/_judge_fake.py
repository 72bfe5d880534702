"""An in-process fake judge-server for the configured trainer adapters (veRL, slime, verifiers),
installed as the clients of ``judge_client.integrations._clients.CLIENTS``.

The fake answers ``POST /v1/score``: the reward of an item is ``min(len(response) / 100, 1)``; a
response containing ``FAIL`` gets ``judge_error``. ``down = True`` makes every request a
connection error, ``status = 503`` an error answer; every request is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from judge_client import AsyncJudgeClient, JudgeClient, RetryPolicy
from judge_client.integrations._clients import CLIENTS

RETRIES = 2
RETRY = RetryPolicy(max_retries=RETRIES, initial_backoff=0.0, jitter=0.0)
MODEL = "fake-judge-1"


def version(rubric: str) -> str:
    return f"v-{rubric.partition('@')[0]}"


def reward_of(response: str) -> float:
    return min(len(response) / 100, 1.0)


class FakeJudge:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.down = False
        self.status: int | None = None

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    @property
    def items(self) -> list[dict[str, Any]]:
        return [item for body in self.bodies for item in body["items"]]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.status is not None:
            body = {"error": {"type": "server_error", "message": "down", "param": None}}
            return httpx.Response(self.status, json=body)
        assert request.url.path == "/v1/score"
        payload = json.loads(request.content)
        results = []
        for item in payload["items"]:
            if "FAIL" in item["response"]:
                results.append(
                    {"id": item["id"], "status": "judge_error", "reward": None, "error": "boom"}
                )
            else:
                results.append(
                    {"id": item["id"], "status": "ok", "reward": reward_of(item["response"])}
                )
        rubric = payload["rubric"]
        return httpx.Response(
            200,
            json={
                "rubric": {"name": rubric.partition("@")[0], "version": version(rubric)},
                "model": MODEL,
                "results": results,
            },
        )


async def _no_sleep(_: float) -> None:
    return None


def install(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJudge]:
    """Route the adapters' clients to a fresh ``FakeJudge``; clean env, no retry waits."""
    fake = FakeJudge()
    transport = httpx.MockTransport(fake)
    for name in ("JUDGE_SERVER_URL", "JUDGE_RUBRIC", "JUDGE_API_KEY", "JUDGE_FILL_VALUE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(
        CLIENTS,
        "sync_factory",
        lambda url, key: JudgeClient(
            url, api_key=key, retry=RETRY, transport=transport, sleep=lambda _: None
        ),
    )
    monkeypatch.setattr(
        CLIENTS,
        "async_factory",
        lambda url, key: AsyncJudgeClient(
            url, api_key=key, retry=RETRY, transport=transport, sleep=_no_sleep
        ),
    )
    CLIENTS.clear()
    yield fake
    CLIENTS.clear()
