"""The glue between a Ray Serve replica and the app (judge_server.deploy.ray_serve), driven
the way Serve drives it: uvicorn's LifespanOn runs the lifespan
(ray/serve/_private/http_util.py, ASGIAppReplicaWrapper), and requests arrive as plain ASGI
calls whose scope carries no lifespan state. tests/integration/test_ray_serve_live.py runs the
real thing on Ray with vLLM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from uvicorn import Config
from uvicorn.lifespan.on import LifespanOn

from judge_server.api import create_app
from judge_server.deploy.ray_serve import REPLICA_HEADER, JudgeReplica, ServeGlue
from judge_server.settings import Settings
from tests.fakes import ScriptedEngine

SCORE = {"rubric": "helpfulness", "items": [{"id": "a", "prompt": "2+2?", "response": "4"}]}


class GatedEngine(ScriptedEngine):
    """Starts when the test opens the gate, or fails to start."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fail = fail

    async def start(self) -> None:
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("no weights")
        await super().start()


def glued(engine: ScriptedEngine, settings: Settings, start_timeout_s: float = 30) -> ServeGlue:
    app = create_app(settings, engine)
    return ServeGlue(app, replica="r-1", settings=settings, start_timeout_s=start_timeout_s)


@asynccontextmanager
async def lifespan(app: ServeGlue) -> AsyncIterator[LifespanOn]:
    on = LifespanOn(Config(app, lifespan="on", log_config=None))
    await on.startup()
    try:
        yield on
    finally:
        await on.shutdown()


def client(app: ServeGlue, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://replica")


async def test_requests_see_the_service_and_name_the_replica() -> None:
    app = glued(ScriptedEngine(), Settings())
    async with lifespan(app) as on, client(app) as http:
        assert not on.should_exit
        response = await http.post("/v1/score", json=SCORE)
    assert response.status_code == 200, response.text
    assert response.headers[REPLICA_HEADER] == "r-1"
    body = response.json()
    assert body["model"] == "fake-judge" and body["rubric"]["version"]
    assert body["results"][0]["status"] == "ok"


async def test_startup_completes_only_once_the_engine_is_ready() -> None:
    engine = GatedEngine()
    app = glued(engine, Settings())
    on = LifespanOn(Config(app, lifespan="on", log_config=None))
    startup = asyncio.create_task(on.startup())
    await asyncio.sleep(0.3)
    assert not startup.done()  # Serve would not route to this replica yet
    engine.gate.set()
    await asyncio.wait_for(startup, 10)
    assert not on.should_exit
    async with client(app) as http:
        assert (await http.get("/ready")).status_code == 200
    await on.shutdown()


async def test_an_engine_that_fails_to_start_fails_the_replica_start() -> None:
    engine = GatedEngine(fail=True)
    engine.gate.set()
    app = glued(engine, Settings())
    on = LifespanOn(Config(app, lifespan="on", log_config=None))
    await asyncio.wait_for(on.startup(), 10)
    assert on.should_exit and on.startup_failed  # Serve raises and replaces the replica
    await on.shutdown()


async def test_a_start_past_the_timeout_fails() -> None:
    app = glued(GatedEngine(), Settings(), start_timeout_s=0.2)
    on = LifespanOn(Config(app, lifespan="on", log_config=None))
    await asyncio.wait_for(on.startup(), 10)
    assert on.startup_failed
    await on.shutdown()


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        (Settings(), 403),  # no keys: loopback clients only
        (Settings(trust_network=True), 200),
        (Settings(api_keys=["k"]), 401),  # the key is asked for, as anywhere else
    ],
)
async def test_remote_clients_need_keys_or_a_trusted_network(
    settings: Settings, status: int
) -> None:
    app = glued(ScriptedEngine(), settings)
    async with lifespan(app), client(app, host="10.1.2.3") as http:
        response = await http.post("/v1/score", json=SCORE)
    assert response.status_code == status, response.text
    if status == 403:
        error = response.json()["error"]
        assert error["type"] == "forbidden" and "api_keys" in error["message"]


def test_a_dead_engine_fails_the_replica_health_check() -> None:
    replica = JudgeReplica(Settings(), start_timeout_s=1)
    replica.check_health()  # healthy: returns
    replica._died("engine core exited")
    with pytest.raises(RuntimeError, match="engine core exited"):
        replica.check_health()
