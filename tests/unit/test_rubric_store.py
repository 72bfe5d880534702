"""The shared rubric store (``JUDGE_RUBRIC_STORE``) on a real redis-server.

The store's writes are Lua scripts, which fakeredis runs only with an optional Lua runtime, so
these tests use the real server (``tests/redis_server.py``) throughout.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.api.auth import key_id
from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.redis_store import RedisRubricStore, open_store
from judge_server.rubrics.registry import RubricChange, RubricRegistry
from judge_server.rubrics.shared import SharedRubrics
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.store import RubricStoreError, change_from_json
from judge_server.rubrics.store import open_store as open_any_store
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine
from tests.redis_server import running_redis

pytest.importorskip("redis")

VERDICT = {"mode": "verdict", "template": "Q: {prompt}\nA: {response}\nGood? Yes or No."}
ADMIN_TOKEN = "store-admin"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def probe(n: int) -> RubricSpec:
    """A distinct version of the rubric 'probe' per ``n``."""
    return parse_rubric({"name": "probe", **VERDICT, "description": f"v{n}"})


def replica(url: str, directory: Path | None = None, keep: int = 32) -> SharedRubrics:
    """One judge-server replica's view: a registry loaded from the directory, on the store."""
    registry = RubricRegistry(parse_rubric, history_size=keep)
    registry.load_dir(directory or project_rubrics_dir())
    return SharedRubrics(registry, open_store(url, keep), parse_rubric)


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[list[SharedRubrics]]:
    made = [replica(redis_url), replica(redis_url)]
    yield made
    for r in made:
        await r.store.close()


async def test_two_replicas_starting_at_once_seed_each_rubric_once(
    replicas: list[SharedRubrics],
) -> None:
    a, b = replicas
    await asyncio.gather(a.sync(), b.sync())
    shipped = {r.name: r.version for r in a._seed}
    assert {n: r.version for n, r in a.registry.current.items()} == shipped
    assert {n: r.version for n, r in b.registry.current.items()} == shipped
    state = await a.store.state()
    assert all(
        len(log) == 1 and change_from_json(log[0]).action == "seed"
        for log in state.changes.values()
    )
    assert state.generation == len(shipped)  # one change per rubric, not two
    assert a.generation == b.generation == state.generation


async def test_a_put_on_one_replica_serves_on_the_other_and_pins_survive_a_restart(
    redis_url: str, replicas: list[SharedRubrics]
) -> None:
    a, b = replicas
    await a.sync()
    await b.sync()
    assert await a.put(probe(1), by="key:aaa") is True
    assert await a.put(probe(2), by="key:bbb") is False  # replaced, not created
    assert a.registry.resolve("probe").version == probe(2).version  # served where it was PUT

    await b.sync()
    assert b.registry.resolve("probe").version == probe(2).version
    assert b.registry.resolve(f"probe@{probe(1).version}").description == "v1"
    log = b.registry.changes("probe")
    assert [(c.version, c.action, c.by) for c in log] == [
        (probe(1).version, "put", "key:aaa"),
        (probe(2).version, "put", "key:bbb"),
    ]

    restarted = replica(redis_url)  # a fresh process: only the directory in memory
    try:
        assert "probe" not in restarted.registry.current
        await restarted.sync()
        assert restarted.registry.resolve(f"probe@{probe(1).version}").description == "v1"
        assert restarted.registry.resolve("probe").version == probe(2).version
        assert restarted.registry.changes("probe") == log
        # the directory's helpfulness was seeded before: the restart did not log it again
        assert len(restarted.registry.changes("helpfulness")) == 1
    finally:
        await restarted.store.close()


async def test_a_put_over_a_seeded_rubric_survives_restarts_and_a_new_file_version_wins(
    redis_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "rubrics"
    directory.mkdir()
    (directory / "probe.yaml").write_text("mode: verdict\ntemplate: '{prompt} {response} v1?'\n")
    first = replica(redis_url, directory)
    await first.sync()
    seeded = first.registry.resolve("probe").version
    await first.put(probe(5), by="key:x")
    await first.store.close()

    again = replica(redis_url, directory)  # restart with the same directory: the PUT stands
    await again.sync()
    assert again.registry.resolve("probe").version == probe(5).version
    await again.store.close()

    (directory / "probe.yaml").write_text("mode: verdict\ntemplate: '{prompt} {response} v2?'\n")
    rolled = replica(redis_url, directory)  # a new file version, never seeded: it goes live
    try:
        await rolled.sync()
        live = rolled.registry.resolve("probe")
        assert live.version not in (seeded, probe(5).version) and "v2?" in (live.template or "")
        assert [c.action for c in rolled.registry.changes("probe")] == ["seed", "put", "seed"]
    finally:
        await rolled.store.close()


async def test_versions_and_change_log_are_bounded_and_the_live_version_kept(
    redis_url: str,
) -> None:
    shared = replica(redis_url, keep=3)
    try:
        await shared.sync()
        for n in range(6):
            await shared.put(probe(n), by=None)
        await shared.put(probe(1), by=None)  # an old version again: live, and newest
        state = await shared.store.state()
        assert [v.version for v in state.versions["probe"]] == [
            probe(4).version, probe(5).version, probe(1).version,
        ]  # fmt: skip
        assert len(state.changes["probe"]) == 3
        assert state.live["probe"] == probe(1).version
        client: Any = shared.store._client  # type: ignore[attr-defined]
        assert await client.hlen("{judge-rubrics}:body:probe") == 3  # bodies trimmed with it
        assert shared.registry.history("probe") == [v.version for v in state.versions["probe"]]
        with pytest.raises(LookupError):
            shared.registry.resolve(f"probe@{probe(0).version}")
    finally:
        await shared.store.close()


async def test_a_delete_is_shared_keeps_pins_and_is_not_undone_by_a_restart(
    redis_url: str, replicas: list[SharedRubrics]
) -> None:
    a, b = replicas
    await a.sync()
    old = a.registry.resolve("helpfulness")
    assert (await a.delete("helpfulness", by="key:del")).version == old.version
    await b.sync()
    assert "helpfulness" not in b.registry.current
    assert b.registry.resolve(f"helpfulness@{old.version}") == old  # still pinnable
    assert b.registry.changes("helpfulness")[-1] == RubricChange(
        b.registry.changes("helpfulness")[-1].at, old.version, "delete", "key:del"
    )
    with pytest.raises(LookupError):  # already gone: a second delete is a not-found
        await b.delete("helpfulness", by="key:del")
    restarted = replica(redis_url)
    try:
        await restarted.sync()
        assert "helpfulness" not in restarted.registry.current
    finally:
        await restarted.store.close()


async def test_a_version_written_by_another_judge_server_version_is_skipped(
    redis_url: str, replicas: list[SharedRubrics]
) -> None:
    a, b = replicas
    await a.sync()
    await b.sync()
    await a.put(probe(1), by=None)
    await b.sync()
    client: Any = a.store._client  # type: ignore[attr-defined]
    # probe(2)'s version with another body: what a version-hash change between releases does
    script = RedisRubricStore(client, 32, owns_client=False)
    forged = probe(2).model_copy(update={"description": "forged"})
    forged.__dict__["version"] = probe(2).version
    await script.put(forged, RubricChange(time.time(), probe(2).version, "put", None))
    await b.sync()
    assert b.registry.resolve("probe").version == probe(1).version  # the last good one serves


async def test_an_unreachable_store_refuses_writes_and_changes_nothing(
    tmp_path: Path, redis_url: str
) -> None:
    binary = shutil.which("redis-server")
    assert binary is not None
    with running_redis(tmp_path, binary) as url:
        shared = replica(url)
        await shared.sync()
        assert shared.ok
    # the server is gone: the last known versions keep serving, writes fail with the reason
    before = dict(shared.registry.current)
    with pytest.raises(RubricStoreError, match=r"unreachable|write failed"):
        await shared.sync()
    assert not shared.ok and shared.error
    with pytest.raises(RubricStoreError):
        await shared.put(probe(1), by=None)
    with pytest.raises(RubricStoreError):
        await shared.delete("helpfulness", by=None)
    assert dict(shared.registry.current) == before
    await shared.store.close()


def test_an_unknown_store_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no rubric store for 'etcd'"):
        open_any_store("etcd://host:2379", 32)


# ------------------------------------------------------------------------------- over HTTP


def make_client(rubrics_dir: Path, store: str) -> TestClient:
    settings = Settings(rubrics_dir=rubrics_dir, rubric_store=store, admin_token=ADMIN_TOKEN)  # type: ignore[call-arg]
    return TestClient(create_app(settings, ScriptedEngine()), headers=AS_ADMIN)


def test_without_a_store_changes_are_logged_in_memory_with_key_ids(tmp_path: Path) -> None:
    rubrics = tmp_path / "rubrics"
    shutil.copytree(project_rubrics_dir(), rubrics)
    settings = Settings(rubrics_dir=rubrics, watch_rubrics=False, admin_token=ADMIN_TOKEN)
    with TestClient(create_app(settings, ScriptedEngine()), headers=AS_ADMIN) as client:
        [loaded] = client.get("/v1/rubrics/helpfulness").json()["changes"]
        assert loaded["action"] == "load" and loaded["by"] is None
        version = client.put("/v1/rubrics/probe", json=VERDICT).json()["version"]
        assert client.delete("/v1/rubrics/probe").status_code == 204
        changes = client.get(f"/v1/rubrics/probe@{version}").json()["changes"]
        by = key_id(ADMIN_TOKEN)
        assert [(c["action"], c["version"], c["by"]) for c in changes] == [
            ("put", version, by),
            ("delete", version, by),
        ]
        assert "rubric_store" not in client.get("/health").json()
        assert "judge_rubric_store_up" not in client.get("/metrics").text


@pytest.fixture
def two_apps(redis_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    with (
        make_client(project_rubrics_dir(), redis_url) as a,
        make_client(project_rubrics_dir(), redis_url) as b,
    ):
        yield a, b


def wait_for(check: Any, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_a_put_on_one_server_serves_on_the_other_within_a_poll(
    two_apps: tuple[TestClient, TestClient],
) -> None:
    a, b = two_apps
    resp = a.put("/v1/rubrics/probe", json=VERDICT)
    assert resp.status_code == 201, resp.text
    version = resp.json()["version"]
    [change] = resp.json()["changes"]
    assert change["by"] == key_id(ADMIN_TOKEN) and ADMIN_TOKEN not in resp.text
    assert change["action"] == "put" and change["version"] == version
    started = time.monotonic()
    got = wait_for(lambda: b.get("/v1/rubrics/probe").status_code == 200)
    assert got, "the PUT did not reach the other server"
    assert time.monotonic() - started < 3
    assert b.get("/v1/rubrics/probe").json()["changes"] == [change]
    scored = b.post(
        "/v1/score", json={"rubric": "probe", "items": [{"prompt": "p", "response": "r"}]}
    )
    assert scored.json()["rubric"] == {"name": "probe", "version": version}
    health = b.get("/health").json()
    assert health["rubric_store"]["ok"] is True and health["rubric_store"]["generation"] > 0
    assert "judge_rubric_store_up 1.0" in b.get("/metrics").text


def test_store_down_is_a_503_on_writes_while_scoring_goes_on(tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    assert binary is not None
    with ExitStack() as redis_up:
        url = redis_up.enter_context(running_redis(tmp_path, binary))
        with make_client(project_rubrics_dir(), url) as a:
            assert wait_for(lambda: a.get("/health").json()["rubric_store"]["ok"])
            redis_up.close()  # the store goes away under a running server
            health = wait_for(lambda: a.get("/health").json()["rubric_store"]["error"])
            assert "last known versions" in health and "redis.sock" not in health
            resp = a.put("/v1/rubrics/probe", json=VERDICT)
            assert resp.status_code == 503, resp.text
            error = resp.json()["error"]
            assert error["type"] == "rubric_store_unavailable"
            assert "nothing was changed" in error["message"]
            assert a.get("/v1/rubrics/probe").status_code == 404
            assert a.delete("/v1/rubrics/helpfulness").status_code == 503
            item = {"prompt": "p", "response": "r"}
            scored = a.post("/v1/score", json={"rubric": "helpfulness", "items": [item]})
            assert scored.status_code == 200 and scored.json()["results"][0]["status"] == "ok"
            assert a.get("/health").status_code == 200
            assert "judge_rubric_store_up 0.0" in a.get("/metrics").text
