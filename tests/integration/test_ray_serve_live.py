"""judge-server as a Ray Serve application (judge_server.deploy.ray_serve): a local Ray
instance on CPU, two replicas each with its own vLLM engine on the embedded model, requests
through Serve's HTTP proxy and through a DeploymentHandle, then a clean shutdown."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import psutil
import pytest

from judge_server.cli.bench.servers import free_port
from judge_server.deploy.ray_options import RayServeOptions
from judge_server.deploy.ray_serve import REPLICA_HEADER, judge_app
from judge_server.settings import Settings
from tests.integration.conftest import ADMIN_TOKEN

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

PREFIX = "/judge"
ITEMS = [
    {"id": f"q{i}", "prompt": f"What is {i} + {i}?", "response": f"{i} + {i} = {2 * i}."}
    for i in range(4)
]


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture(scope="module")
def judge_url() -> Iterator[str]:
    before = _descendants()
    port = free_port()
    started = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        settings = Settings(
            kv_cache_gib=0.25,  # two engines on one small machine
            enforce_eager=True,
            cache_backend="memory",  # each replica its own: the test sees real engine work
            admin_token=ADMIN_TOKEN,
            log_level="warning",
        )
        serve.run(
            judge_app(settings, RayServeOptions(num_replicas=2, num_cpus=1)),
            name="judge",
            route_prefix=PREFIX,
        )
        print(f"ray serve: two replicas ready in {time.monotonic() - started:.0f} s")
        yield f"http://127.0.0.1:{port}{PREFIX}"
    finally:
        serve.shutdown()
        ray.shutdown()
    deadline = time.monotonic() + 30
    while (left := _descendants() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"processes left after ray.shutdown: {sorted(left)}"


async def test_two_replicas_serve_through_the_proxy(judge_url: str) -> None:
    async with httpx.AsyncClient(base_url=judge_url, timeout=120) as http:
        # Serve's router picks among replicas per request; enough small requests reach both
        replicas: Counter[str] = Counter()
        for _ in range(10):
            answers = await asyncio.gather(*(http.get("/ready") for _ in range(8)))
            for answer in answers:
                assert answer.status_code == 200, answer.text  # ready before Serve routes
                replicas[answer.headers[REPLICA_HEADER]] += 1
            if len(replicas) == 2:
                break
        assert len(replicas) == 2, replicas

        scored = await asyncio.gather(
            *(
                http.post("/v1/score", json={"rubric": "helpfulness", "items": ITEMS})
                for _ in range(4)
            )
        )
    for answer in scored:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == "SmolLM2-135M-Instruct-04da094c9f01"
        assert body["rubric"]["name"] == "helpfulness" and body["rubric"]["version"]
        assert [r["status"] for r in body["results"]] == ["ok"] * len(ITEMS)
        assert all(0.0 <= r["reward"] <= 1.0 for r in body["results"])


def test_a_deployment_handle_reaches_the_same_app(judge_url: str) -> None:
    handle = serve.get_app_handle("judge")
    status, body = handle.request.remote(
        "POST", "/v1/score", {"rubric": "helpfulness", "items": ITEMS[:1]}
    ).result(timeout_s=120)
    assert status == 200, body
    assert body["results"][0]["status"] == "ok" and body["rubric"]["version"]
    # the same checks as over HTTP: a hostile body is a 4xx in the error envelope
    status, body = handle.request.remote("POST", "/v1/score", {"items": "x"}).result(timeout_s=60)
    assert status == 422 and body["error"]["type"]


def test_rubric_changes_still_need_the_admin_token(judge_url: str) -> None:
    rubric = {"name": "ray-probe", "mode": "pointwise"}
    refused = httpx.put(f"{judge_url}/v1/rubrics/ray-probe", json=rubric, timeout=30)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["type"] == "unauthorized"
