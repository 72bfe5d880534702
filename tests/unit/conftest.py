from pathlib import Path

import pytest

# A real redis-server (and fakeredis) for the cache tests.
from tests.redis_server import redis_client, redis_server, redis_url  # noqa: F401


@pytest.fixture(autouse=True)
def _private_result_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own result cache file: never the user's, never another test's."""
    monkeypatch.setenv("JUDGE_CACHE_PATH", str(tmp_path / "results.sqlite3"))
