import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.cli.rubric_tools import validate
from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.registry import RubricRegistry, read_rubric_file
from judge_server.rubrics.watcher import watch_rubrics
from judge_server.settings import Settings, project_rubrics_dir
from tests.asgi import served
from tests.fakes import ScriptedEngine

VERDICT = {"mode": "verdict", "template": "Q: {prompt}\nA: {response}\nGood? Yes or No."}


@pytest.fixture
def rubrics_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rubrics"
    shutil.copytree(project_rubrics_dir(), d)
    return d


ADMIN_TOKEN = "test-admin"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def make_client(rubrics_dir: Path, **settings: object) -> TestClient:
    """An admin token is configured (mutations are refused without one) and sent by default."""
    settings.setdefault("admin_token", ADMIN_TOKEN)
    s = Settings(rubrics_dir=rubrics_dir, watch_rubrics=False, **settings)  # type: ignore[arg-type]
    headers = AS_ADMIN if settings["admin_token"] == ADMIN_TOKEN else None
    return TestClient(create_app(s, ScriptedEngine()), headers=headers)


@pytest.fixture
def client(rubrics_dir: Path) -> Iterator[TestClient]:
    with make_client(rubrics_dir) as c:
        yield c


def test_put_creates_persists_and_serves_new_versions(
    client: TestClient, rubrics_dir: Path
) -> None:
    resp = client.put("/v1/rubrics/probe", json=VERDICT)
    assert resp.status_code == 201, resp.text
    v1 = resp.json()["version"]
    # persisted, same content
    assert read_rubric_file(rubrics_dir / "probe.yaml", parse_rubric).version == v1

    item = {"prompt": "p", "response": "r"}
    scored = client.post("/v1/score", json={"rubric": "probe", "items": [item]}).json()
    assert scored["rubric"] == {"name": "probe", "version": v1}

    resp = client.put("/v1/rubrics/probe", json={**VERDICT, "template": VERDICT["template"] + "!"})
    assert resp.status_code == 200
    v2 = resp.json()["version"]
    assert v2 != v1 and resp.json()["history"] == [v1, v2]
    assert (
        client.post("/v1/score", json={"rubric": "probe", "items": [item]}).json()["rubric"][
            "version"
        ]
        == v2
    )
    # the old version stays pinnable
    pinned = client.post("/v1/score", json={"rubric": f"probe@{v1}", "items": [item]}).json()
    assert pinned["rubric"]["version"] == v1


def test_invalid_put_is_422_and_changes_nothing(client: TestClient, rubrics_dir: Path) -> None:
    before = client.get("/v1/rubrics/helpfulness").json()["version"]
    resp = client.put("/v1/rubrics/helpfulness", json={"mode": "pointwise", "template": "{nope}"})
    assert resp.status_code == 422
    assert resp.json()["error"]["type"] == "invalid_rubric"
    assert "unknown placeholder" in resp.json()["error"]["message"]
    assert client.get("/v1/rubrics/helpfulness").json()["version"] == before
    assert read_rubric_file(rubrics_dir / "helpfulness.yaml", parse_rubric).version == before
    bad_component = {"mode": "composite", "components": [{"rubric": "missing"}]}
    resp = client.put("/v1/rubrics/combo", json=bad_component)
    assert resp.status_code == 422 and "missing" in resp.json()["error"]["message"]
    assert resp.json()["error"]["param"] == "components"
    # the same rubric inline in a score request: the request's own field is named
    inline = {"rubric": {**bad_component, "name": "c"}, "items": [{"prompt": "p", "response": "r"}]}
    resp = client.post("/v1/score", json=inline)
    assert resp.status_code == 422 and resp.json()["error"]["param"] == "rubric"
    resp = client.put("/v1/rubrics/x", json={**VERDICT, "name": "y"})
    assert resp.status_code == 422 and resp.json()["error"]["param"] == "name"


def test_delete_removes_file_but_keeps_pins(client: TestClient, rubrics_dir: Path) -> None:
    version = client.put("/v1/rubrics/gone", json=VERDICT).json()["version"]
    assert client.delete("/v1/rubrics/gone").status_code == 204
    assert not (rubrics_dir / "gone.yaml").exists()
    assert client.get("/v1/rubrics/gone").status_code == 404
    assert client.get(f"/v1/rubrics/gone@{version}").status_code == 200
    assert client.delete("/v1/rubrics/gone").status_code == 404


def test_admin_token_guards_mutations(rubrics_dir: Path) -> None:
    with make_client(rubrics_dir, admin_token="s3cret") as c:
        resp = c.put("/v1/rubrics/probe", json=VERDICT)
        assert resp.status_code == 401 and resp.json()["error"]["type"] == "unauthorized"
        assert (
            c.put(
                "/v1/rubrics/probe", json=VERDICT, headers={"Authorization": "Bearer wrong"}
            ).status_code
            == 401
        )
        ok = c.put("/v1/rubrics/probe", json=VERDICT, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 201
        assert c.delete("/v1/rubrics/probe").status_code == 401
        assert c.get("/v1/rubrics/probe").status_code == 200  # reads stay open


def test_saved_file_roundtrips_with_block_templates(tmp_path: Path) -> None:
    registry = RubricRegistry(parse_rubric)
    r = parse_rubric({"name": "t", **VERDICT})
    registry.save(r, tmp_path)
    text = (tmp_path / "t.yaml").read_text()
    assert "template: |" in text
    assert read_rubric_file(tmp_path / "t.yaml", parse_rubric) == r


async def test_watcher_reloads_edits_and_keeps_last_good_on_bad_edit(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("mode: verdict\ntemplate: 'one {response}'\n")
    registry = RubricRegistry(parse_rubric)
    registry.load_dir(tmp_path)
    v1 = registry.resolve("w").version
    stop = asyncio.Event()
    task = asyncio.create_task(watch_rubrics(registry, tmp_path, stop=stop))
    await asyncio.sleep(0.3)

    async def until(predicate: object, timeout: float = 10.0) -> float:
        start = time.monotonic()
        while not predicate():  # type: ignore[operator]
            assert time.monotonic() - start < timeout, "watcher did not reload in time"
            await asyncio.sleep(0.05)
        return time.monotonic() - start

    path.write_text("mode: verdict\ntemplate: 'two {response}'\n")
    await until(lambda: registry.resolve("w").version != v1)
    v2 = registry.resolve("w").version
    path.write_text("mode: verdict\ntemplate: 'broken {nope}'\n")
    (tmp_path / "new.yaml").write_text("mode: verdict\ntemplate: 'new {response}'\n")
    await until(lambda: "new" in registry.current)
    assert registry.resolve("w").version == v2  # the bad edit was refused
    stop.set()
    await asyncio.wait_for(task, 5)


def test_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(project_rubrics_dir()) == 0
    n = len(list(project_rubrics_dir().glob("*.yaml")))
    assert f"{n}/{n} valid" in capsys.readouterr().out
    (tmp_path / "bad.yaml").write_text("mode: rubric\ntemplate: '{response} {criterion}'\n")
    assert validate(tmp_path) == 1
    assert "at least one criterion" in capsys.readouterr().out


async def test_request_in_flight_finishes_on_the_version_it_started_with(tmp_path: Path) -> None:

    engine = ScriptedEngine(delay_s=0.5)
    await engine.start()
    registry = RubricRegistry(parse_rubric)
    registry.save(parse_rubric({"name": "p", **VERDICT}), tmp_path)
    old = registry.resolve("p").version
    s = Settings(rubrics_dir=tmp_path, watch_rubrics=False, admin_token=ADMIN_TOKEN)
    app = create_app(s, engine, registry=registry)
    async with served(app) as client:  # type: ignore[arg-type]
        slow = asyncio.create_task(
            client.post(
                "/v1/score", json={"rubric": "p", "items": [{"prompt": "a", "response": "b"}]}
            )
        )
        await asyncio.sleep(0.1)  # the request has resolved its rubric and is in the engine
        put = await client.put(
            "/v1/rubrics/p", json={**VERDICT, "description": "edited"}, headers=AS_ADMIN
        )
        assert put.status_code == 200 and put.json()["version"] != old
        body = (await slow).json()
    assert body["rubric"]["version"] == old
    assert body["results"][0]["status"] == "ok"


async def test_a_failing_watcher_restarts_and_never_takes_the_server_down(
    rubrics_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import watchfiles

    from judge_server.rubrics import watcher

    calls: list[int] = []
    real = watchfiles.awatch

    def flaky(*args: Any, **kwargs: Any) -> Any:  # the first watch fails, as at an inotify limit
        calls.append(1)
        if len(calls) == 1:
            raise OSError("inotify watch limit reached")
        return real(*args, **kwargs)

    monkeypatch.setattr(watchfiles, "awatch", flaky)
    registry = RubricRegistry(parse_rubric)
    registry.load_dir(rubrics_dir)
    stop = asyncio.Event()
    task = asyncio.create_task(
        watcher.keep_watching(registry, rubrics_dir, stop=stop, restart_s=0.05)
    )
    for _ in range(100):
        await asyncio.sleep(0.05)
        if len(calls) >= 2:
            break
    assert len(calls) == 2 and not task.done()  # restarted, still running
    stop.set()
    await asyncio.wait_for(task, 5)

    # the same failure under the real app: the server stays ready and scores
    s = Settings(rubrics_dir=rubrics_dir)
    calls.clear()
    with TestClient(create_app(s, ScriptedEngine())) as client:
        for _ in range(100):
            if calls:
                break
            await asyncio.sleep(0.02)
        assert client.get("/ready").status_code == 200
        body = {"rubric": "helpfulness", "items": [{"prompt": "p", "response": "r"}]}
        assert client.post("/v1/score", json=body).status_code == 200
