"""A real ``redis-server`` for tests (the Debian package), beside fakeredis.

The server listens on a Unix socket in a temporary directory and on no TCP port (``--port 0``):
there is no port to race other tests for, and nothing else on the machine can reach it. One
server per test session; each test gets it emptied. Tests skip, saying why, only when the
binary is absent.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from judge_server.cli.bench.servers import stop_process

START_TIMEOUT_S = 10.0


@contextmanager
def running_redis(directory: Path, binary: str) -> Iterator[str]:
    """Start ``redis-server`` with its socket and files in ``directory``; yield its URL."""
    import redis

    sock = directory / "redis.sock"
    with (directory / "redis.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                "--port", "0",
                "--unixsocket", str(sock),
                "--unixsocketperm", "700",
                "--dir", str(directory),
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"unix://{sock}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with redis.Redis.from_url(url, socket_timeout=1) as client:
                    client.ping()
                break
            except (redis.exceptions.ConnectionError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (directory / "redis.log").read_text(errors="replace")
                    pytest.fail(f"redis-server did not start:\n{log_text[-2000:]}")
                time.sleep(0.05)
        yield url
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real redis-server, started once for the session."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    pytest.importorskip("redis")
    with running_redis(tmp_path_factory.mktemp("redis"), binary) as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The real server's URL, emptied for this test."""
    import redis

    with redis.Redis.from_url(redis_server) as client:
        client.flushall()
    return redis_server


@pytest.fixture(params=["fakeredis", "redis-server"])
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """An asyncio Redis client: fakeredis, then the real server."""
    if request.param == "fakeredis":
        fakeredis = pytest.importorskip("fakeredis")
        client: Any = fakeredis.FakeAsyncRedis()
    else:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(request.getfixturevalue("redis_url"))
    yield client
    await client.aclose()
