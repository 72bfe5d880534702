"""An engine that dies ends the process; SIGTERM drains. At the engine seam, on the real app.

The same paths run against real vLLM in tests/integration/test_lifecycle_live.py.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import uvicorn
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.api.app import Drain
from judge_server.cli.serve import _draining_server
from judge_server.engines.reward_models import RewardModels
from judge_server.engines.vllm_engine import _dead_reason
from judge_server.service import RETRY_AFTER_S, build_service
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine


def settings() -> Settings:
    return Settings(rubrics_dir=project_rubrics_dir(), watch_rubrics=False)


def items(n: int, prompt: str = "Say hi") -> list[dict[str, object]]:
    return [{"id": f"a{i}", "prompt": prompt, "response": f"hi {i}"} for i in range(n)]


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def wait_for(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_dead_engine_fails_pending_items_turns_probes_503_and_calls_the_fatal_hook() -> None:
    engine = ScriptedEngine()
    fatal: list[str] = []
    app = create_app(settings(), engine, on_fatal=fatal.append, watch_interval_s=0.02)
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200
        # "SLOW" items hang for 10 s in the fake; a dead engine must not leave them hanging
        thread, out = in_thread(
            lambda: c.post("/v1/score", json={"rubric": "helpfulness", "items": items(3, "SLOW")})
        )
        wait_for(lambda: len(engine.prompts) == 3)
        started = time.monotonic()
        engine.die("engine core exited")
        thread.join(5)
        assert time.monotonic() - started < 3
        resp = out[0]
        assert resp.status_code == 200, resp.text
        results = resp.json()["results"]
        assert [r["status"] for r in results] == ["judge_error"] * 3
        assert all("engine core exited" in r["error"] for r in results)
        assert all(r["reward"] is None for r in results)

        health = c.get("/health")
        assert health.status_code == 503
        assert health.json()["error"]["type"] == "engine_failed"
        assert "engine core exited" in health.json()["error"]["message"]
        ready = c.get("/ready")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert ready.json()["error"]["type"] == "engine_failed"
        assert "engine core exited" in ready.json()["error"]["message"]
        later = c.post("/v1/score", json={"rubric": "helpfulness", "items": items(1)})
        assert later.status_code == 503 and "engine core exited" in later.text
        time.sleep(0.1)  # the watchdog has stopped: the hook is called once
    assert len(fatal) == 1 and "engine core exited" in fatal[0]


def test_a_dead_reward_model_is_named() -> None:
    class Model(SimpleNamespace):
        def dead_reason(self) -> str | None:
            return self.reason  # type: ignore[no-any-return]

    models = RewardModels({"rm": Model(reason="gone"), "ok": Model(reason=None)})  # type: ignore[dict-item]
    assert models.dead_reason() == "reward model 'rm': gone"
    assert RewardModels({"ok": Model(reason=None)}).dead_reason() is None  # type: ignore[dict-item]


def test_vllm_death_is_read_from_async_llm_errored() -> None:
    assert _dead_reason(None, False) is None
    assert _dead_reason(SimpleNamespace(errored=False), False) is None
    assert "EngineDeadError" in (_dead_reason(SimpleNamespace(errored=True), False) or "")
    assert _dead_reason(SimpleNamespace(errored=False), True) is not None


def test_draining_refuses_new_work_and_lets_work_in_flight_finish() -> None:
    drain = Drain()
    engine = ScriptedEngine(delay_s=0.5)
    app = create_app(settings(), engine, drain=drain)
    with TestClient(app) as c:
        assert c.get("/ready").status_code == 200 and drain.idle
        thread, out = in_thread(
            lambda: c.post("/v1/score", json={"rubric": "helpfulness", "items": items(2)})
        )
        wait_for(lambda: not drain.idle)
        drain.begin()

        ready = c.get("/ready")
        assert ready.status_code == 503 and ready.json()["error"]["type"] == "draining"
        assert c.get("/health").status_code == 200  # alive: liveness must not kill a drain
        refused = c.post("/v1/score", json={"rubric": "helpfulness", "items": items(1)})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["type"] == "draining"
        assert refused.headers["retry-after"] == str(RETRY_AFTER_S)
        assert refused.headers["connection"] == "close"  # the retry may reach another replica

        thread.join(5)
        resp = out[0]
        assert resp.status_code == 200
        assert [r["status"] for r in resp.json()["results"]] == ["ok", "ok"]
        assert drain.idle


def test_sigterm_drains_until_idle_then_stops_without_reraising() -> None:
    class Fake:
        def __init__(self) -> None:
            self.begun = 0
            self.idle = False

        def begin(self) -> None:
            self.begun += 1

    drain = Fake()
    server = _draining_server(uvicorn.Config(app=None), drain, 30.0)  # type: ignore[arg-type]
    server.handle_exit(signal.SIGTERM, None)
    server.handle_exit(signal.SIGTERM, None)
    assert drain.begun == 1 and not server.should_exit
    assert server._captured_signals == []  # the drained stop exits 0, not by the signal
    assert asyncio.run(server.on_tick(1)) is False  # busy: keep serving
    drain.idle = True
    assert asyncio.run(server.on_tick(2)) is True and server.should_exit


def test_the_grace_period_ends_a_drain_that_never_goes_idle() -> None:
    class Busy:
        idle = False

        def begin(self) -> None:
            pass

    server = _draining_server(uvicorn.Config(app=None), Busy(), 0.0)  # type: ignore[arg-type]
    server.handle_exit(signal.SIGTERM, None)
    assert asyncio.run(server.on_tick(1)) is True
    assert server.config.timeout_graceful_shutdown == 1


def test_start_freezes_the_heap_before_ready_and_the_lifespan_unfreezes_it() -> None:
    gc.unfreeze()
    app = create_app(settings(), ScriptedEngine())
    with TestClient(app) as c:
        wait_for(lambda: c.get("/ready").status_code == 200)
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0  # the next app in this process starts unfrozen


async def test_a_service_frozen_at_start_is_unfrozen_by_close() -> None:
    gc.unfreeze()
    service = build_service(settings(), engine=ScriptedEngine())
    await service.start()
    try:
        assert service.ready and gc.get_freeze_count() > 0
    finally:
        await service.close()
    assert gc.get_freeze_count() == 0
