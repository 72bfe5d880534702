"""Two judge-server replicas sharing one real redis-server: the result cache and the rubric store.

Real parts throughout: separate ``judge-server serve`` processes on the ``remote`` engine, both
pointed at ONE stock ``vllm serve`` of the embedded model (one vLLM start for the module), and a
``redis-server`` from the Debian package on a Unix socket.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from judge_server.api.auth import key_id
from judge_server.engines.model_store import resolve_model
from judge_server.settings import Settings, project_rubrics_dir
from tests.integration.conftest import (
    ADMIN_TOKEN,
    AS_ADMIN,
    LOG_DIR,
    engine_env,
    free_port,
    stop,
    wait_ready,
)
from tests.integration.test_remote_engine import Replica
from tests.redis_server import running_redis

VERDICT = {"mode": "verdict", "template": "Q: {prompt}\nA: {response}\nIs it correct? Yes or No."}
ITEM = {"prompt": "What is 2 + 2?", "response": "4"}
#: a PUT on one replica must serve on the other within this (the store is polled every 0.5 s)
PROPAGATION_S = 3.0


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    with running_redis(tmp_path_factory.mktemp("shared-redis"), binary) as url:
        yield url


@pytest.fixture(scope="module")
def vllm_url() -> Iterator[str]:
    model_path, _ = resolve_model(None, Settings().cache_dir)
    replica = Replica(0, model_path)
    try:
        replica.wait_healthy(time.monotonic() + 600)
        yield replica.url
    finally:
        replica.stop()


class JudgeReplica:
    """One ``judge-server serve`` process on the remote engine, the shared cache and store."""

    def __init__(self, name: str, vllm_url: str, redis_url: str, rubrics: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = engine_env()
        env.update(
            JUDGE_ENGINE="remote",
            JUDGE_REMOTE_URLS=vllm_url,
            JUDGE_CACHE_BACKEND="redis",
            JUDGE_REDIS_URL=redis_url,
            JUDGE_RUBRIC_STORE=redis_url,
            JUDGE_RUBRICS_DIR=str(rubrics),
        )
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"shared-state-{name}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "judge_server", "serve", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.get(self.url + path, headers=headers, timeout=30)

    def score(self, rubric: str) -> dict[str, Any]:
        resp = httpx.post(
            f"{self.url}/v1/score", json={"rubric": rubric, "items": [ITEM]}, timeout=300
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body


@contextmanager
def running(*names: str, **start: Any) -> Iterator[list[JudgeReplica]]:
    """Start the replicas at once (they load in parallel), wait for each, stop them all."""
    started: list[JudgeReplica] = []
    try:
        for name in names:
            started.append(JudgeReplica(name, **start))
        for replica in started:
            wait_ready(replica.url, replica.proc, replica.log_path)
        yield started
    finally:
        for replica in started:
            stop(replica.proc)


def served_version(replica: JudgeReplica, name: str) -> str | None:
    resp = replica.get(f"/v1/rubrics/{name}")
    return resp.json()["version"] if resp.status_code == 200 else None


def test_two_replicas_share_the_result_cache_and_the_rubric_store(
    vllm_url: str, redis_url: str, tmp_path: Path
) -> None:
    rubrics = tmp_path / "rubrics"
    shutil.copytree(project_rubrics_dir(), rubrics)
    start = {"vllm_url": vllm_url, "redis_url": redis_url, "rubrics": rubrics}
    with running("a", "b", **start) as (a, b):
        for replica in (a, b):
            assert replica.get("/health").json()["rubric_store"]["ok"] is True

        # the result cache: scored on A, a hit on B (same model, same rubric version)
        first = a.score("helpfulness")["results"][0]
        assert first["status"] == "ok" and not first["cached"]
        hit = b.score("helpfulness")["results"][0]
        assert hit["cached"] and hit["reward"] == first["reward"]

        # the rubric store: a PUT on A serves on B within seconds
        put = httpx.put(f"{a.url}/v1/rubrics/probe", json=VERDICT, headers=AS_ADMIN, timeout=30)
        assert put.status_code == 201, put.text
        old = put.json()["version"]
        new_definition = {**VERDICT, "description": "second version"}
        put = httpx.put(
            f"{a.url}/v1/rubrics/probe", json=new_definition, headers=AS_ADMIN, timeout=30
        )
        assert put.status_code == 200, put.text
        new = put.json()["version"]
        sent = time.monotonic()
        while served_version(b, "probe") != new:
            assert time.monotonic() - sent < PROPAGATION_S, "B still serves the old version"
            time.sleep(0.05)
        print(f"PUT on A served on B after {time.monotonic() - sent:.2f} s")
        scored = b.score(f"probe@{old}")  # the old version, pinned on B
        assert scored["rubric"] == {"name": "probe", "version": old}
        assert scored["results"][0]["status"] == "ok"

    # a fresh process (B restarted): the pin still resolves, the history is intact
    with running("b-restarted", **start) as [c]:
        assert served_version(c, "probe") == new
        detail = c.get(f"/v1/rubrics/probe@{old}", headers=AS_ADMIN).json()
        assert detail["version"] == old and detail["history"] == [old, new]
        assert [(ch["action"], ch["version"], ch["by"]) for ch in detail["changes"]] == [
            ("put", old, key_id(ADMIN_TOKEN)),
            ("put", new, key_id(ADMIN_TOKEN)),
        ]  # who: for admins only
        assert {ch["by"] for ch in c.get(f"/v1/rubrics/probe@{old}").json()["changes"]} == {None}
        assert ADMIN_TOKEN not in c.get("/v1/rubrics/probe").text
        assert c.score(f"probe@{old}")["rubric"]["version"] == old
        again = c.score("helpfulness")["results"][0]  # the cache outlives the replicas
        assert again["cached"] and again["reward"] == first["reward"]
