"""The shared rubric store under faults: a store that is slow, drops connections, lost its data,
holds entries this release cannot read, or is not reached before a replica would serve; and
the bounds (names) and key ids it shows. On a real redis-server, like ``test_rubric_store``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.api.auth import KEY_ID_SALT, key_id
from judge_server.rubrics import redis_store
from judge_server.rubrics.redis_store import open_store
from judge_server.rubrics.registry import RubricChange
from judge_server.rubrics.shared import SharedRubrics
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine
from tests.unit.test_rubric_store import ADMIN_TOKEN, AS_ADMIN, VERDICT, probe, replica, wait_for

pytest.importorskip("redis")


class FlakyServer:
    """A TCP server speaking just enough RESP to pass the client's connection handshake; then
    it either never answers a script (a stalled Redis) or drops the connection on one (after
    running it, for all the client can tell): what a flapping Redis looks like."""

    def __init__(self, drop: bool) -> None:
        self.drop = drop
        self.scripts = 0
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if b"EVAL" in data.upper() or b"MGET" in data.upper():
                self.scripts += 1
                if self.drop:
                    writer.close()
                    return
                await asyncio.sleep(3600)
            commands = sum(line.startswith(b"*") for line in data.split(b"\r\n"))
            writer.write(b"+OK\r\n" * commands)
            await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[SharedRubrics, SharedRubrics]]:
    a, b = replica(redis_url), replica(redis_url)
    await a.sync()
    await b.sync()
    yield a, b
    await a.store.close()
    await b.store.close()


async def test_a_dropped_connection_is_not_retried_so_a_write_is_never_sent_twice() -> None:
    flaky = FlakyServer(drop=True)
    async with flaky as url:
        store = open_store(url, 32)
        change = RubricChange(time.time(), "v", "delete", None)
        with pytest.raises(redis_store.RubricStoreError):
            await store.delete("probe", change)
        await store.close()
    assert flaky.scripts == 1  # redis-py's default Retry would have sent it 11 times


async def test_a_store_that_never_answers_fails_within_the_call_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_store, "CALL_TIMEOUT_S", 0.3)
    async with FlakyServer(drop=False) as url:
        store = open_store(url, 32)
        started = time.monotonic()
        with pytest.raises(redis_store.RubricStoreError, match=r"no answer in 0\.3 s"):
            await store.generation()
        assert time.monotonic() - started < 1.5  # not the 2 s socket timeout (times retries)
        await store.close()


async def test_stop_cancels_a_sync_in_progress() -> None:
    async with FlakyServer(drop=False) as url:
        shared = replica(url)
        stop = asyncio.Event()
        task = asyncio.create_task(shared.keep_syncing(stop, poll_s=0.05))
        await asyncio.sleep(0.2)  # the first sync now waits on a store that never answers
        stop.set()
        started = time.monotonic()
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - started < 0.5
        await shared.store.close()


async def test_a_store_that_lost_its_data_is_reloaded_even_at_the_same_generation(
    redis_url: str, tmp_path: Path, pair: tuple[SharedRubrics, SharedRubrics]
) -> None:
    a, _ = pair
    assert a.generation is not None
    client: Any = a.store._client  # type: ignore[attr-defined]
    await client.flushall()  # Redis restarted without persistence
    directory = tmp_path / "rubrics"
    directory.mkdir()
    (directory / "probe.yaml").write_text("mode: verdict\ntemplate: '{prompt} {response} ok?'\n")
    other = replica(redis_url, directory)  # another replica seeds the empty store first
    try:
        await other.sync()
        while (await other.store.generation() or ("", 0))[1] < a.generation:
            await other.put(probe(time.monotonic_ns()), by=None)
        assert (await other.store.generation() or ("", 0))[1] == a.generation
        await a.sync()
        assert "probe" in a.registry.current  # the new store's state, not the one held
        assert "helpfulness" in a.registry.current  # and a's directory seeded again
    finally:
        await other.store.close()


async def test_a_delete_sees_a_put_made_on_another_replica_and_logs_the_version_it_removed(
    pair: tuple[SharedRubrics, SharedRubrics],
) -> None:
    a, b = pair
    await a.put(probe(1), by=None)
    deleted = await b.delete("probe", by="key:b")  # b has not polled since the PUT
    assert deleted.version == probe(1).version
    await a.put(probe(2), by=None)
    # a stale caller's version is not what the log records: the store's live one is
    removed = await a.store.delete("probe", RubricChange(time.time(), "stale", "delete", None))
    assert removed == probe(2).version
    state = await a.store.state()
    assert json.loads(state.changes["probe"][-1])["version"] == probe(2).version


async def test_entries_that_do_not_decode_are_skipped_and_parsed_bodies_not_reread(
    pair: tuple[SharedRubrics, SharedRubrics],
) -> None:
    a, b = pair
    await a.put(probe(1), by=None)
    await b.sync()
    client: Any = a.store._client  # type: ignore[attr-defined]
    prefix = "{judge-rubrics}:"
    # probe(1) is parsed on b already: its body is not decoded again
    await client.hset(f"{prefix}body:probe", probe(1).version, b"\xff not json")
    await client.hset(f"{prefix}body:probe", "not-a-dict", "[1, 2]")
    await client.zadd(f"{prefix}order:probe", {"not-a-dict": 0})
    await client.rpush(f"{prefix}log:probe", "{torn", "[]", '{"at": 1}')
    unknown = {"at": 2.0, "version": probe(1).version, "action": "rename", "by": None}
    await client.rpush(f"{prefix}log:probe", json.dumps(unknown))
    await a.put(probe(2), by=None)  # moves the generation
    await b.sync()
    assert b.ok
    assert b.registry.resolve(f"probe@{probe(1).version}").description == "v1"
    assert b.registry.resolve("probe").version == probe(2).version
    assert "not-a-dict" not in b.registry.history("probe")
    actions = [c.action for c in b.registry.changes("probe")]
    assert actions == ["put", "rename", "put"]


def test_key_ids_are_scrypt_derived() -> None:
    expected = hashlib.scrypt(b"weak", salt=KEY_ID_SALT, n=2**14, r=8, p=1, dklen=8).hex()
    assert key_id("weak") == f"key:{expected}"
    assert hashlib.sha256(b"weak").hexdigest()[:12] not in key_id("weak")


# ------------------------------------------------------------------------------- over HTTP


def client_for(store: str | None, tmp_path: Path, **more: Any) -> TestClient:
    """A server on the store (the project's rubrics as the seed), or without one on a copy of
    them in ``tmp_path`` (changes are written to the directory then)."""
    rubrics = project_rubrics_dir()
    if store is None:
        rubrics = tmp_path / "rubrics"
        if not rubrics.exists():
            shutil.copytree(project_rubrics_dir(), rubrics)
    settings = Settings(  # type: ignore[call-arg]
        rubrics_dir=rubrics,
        rubric_store=store,
        admin_token=ADMIN_TOKEN,
        watch_rubrics=False,
        **more,
    )
    return TestClient(create_app(settings, ScriptedEngine()), headers=AS_ADMIN)


def test_not_ready_until_the_store_is_reached(tmp_path: Path) -> None:
    with client_for(f"unix://{tmp_path}/no-redis.sock", tmp_path) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503, ready.text
        assert "waiting for the rubric store" in ready.json()["error"]["message"]
        scored = client.post(
            "/v1/score", json={"rubric": "helpfulness", "items": [{"prompt": "p", "response": "r"}]}
        )
        assert scored.status_code == 503


@pytest.fixture
def two_servers(redis_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    with client_for(redis_url, tmp_path) as a, client_for(redis_url, tmp_path) as b:
        assert wait_for(lambda: a.get("/ready").status_code == b.get("/ready").status_code == 200)
        yield a, b


def test_a_pin_made_on_another_replica_resolves_before_the_next_poll(
    two_servers: tuple[TestClient, TestClient],
) -> None:
    a, b = two_servers
    version = a.put("/v1/rubrics/probe", json=VERDICT).json()["version"]
    assert b.get(f"/v1/rubrics/probe@{version}").status_code == 200  # no wait for the poll
    assert b.get("/v1/rubrics/probe@000000000000").status_code == 404


@pytest.mark.parametrize("store", [True, False], ids=["store", "memory"])
def test_rubric_names_are_capped(store: bool, redis_url: str, tmp_path: Path) -> None:
    shipped = len(list(project_rubrics_dir().glob("*.yaml")))
    with client_for(redis_url if store else None, tmp_path, max_rubrics=shipped + 1) as client:
        assert wait_for(lambda: client.get("/ready").status_code == 200)
        assert client.put("/v1/rubrics/probe", json=VERDICT).status_code == 201
        full = client.put("/v1/rubrics/probe2", json=VERDICT)
        assert full.status_code == 409, full.text
        assert full.json()["error"]["type"] == "too_many_rubrics"
        assert client.delete("/v1/rubrics/probe").status_code == 204
        assert client.put("/v1/rubrics/probe2", json=VERDICT).status_code == 409  # still known
        assert client.put("/v1/rubrics/probe", json=VERDICT).status_code == 201  # known name


def test_who_changed_a_rubric_is_shown_to_admins_only(tmp_path: Path) -> None:
    with client_for(None, tmp_path, api_keys=["reader"]) as client:
        assert client.put("/v1/rubrics/probe", json=VERDICT).status_code == 201
        [seen_by_admin] = client.get("/v1/rubrics/probe").json()["changes"]
        assert seen_by_admin["by"] == key_id(ADMIN_TOKEN)
        as_reader = {"Authorization": "Bearer reader"}
        [seen_by_reader] = client.get("/v1/rubrics/probe", headers=as_reader).json()["changes"]
        assert seen_by_reader["by"] is None
