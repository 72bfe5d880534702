"""The server's life on real vLLM: an engine core that dies ends the process (exit 3) without
leaving requests hanging, and SIGTERM drains (work in flight finishes, exit 0).

Each test starts its own server (it ends it), so this file costs two server starts.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from judge_server.cli.bench.servers import free_port
from judge_server.cli.bench.servers import stop_process as stop
from judge_server.cli.serve import EXIT_ENGINE_FAILED
from judge_server.settings import project_rubrics_dir
from tests.integration.conftest import start_server, wait_ready

# Reasoning first, long enough that a batch is still in flight when the test acts on it.
SLOW_RUBRIC = """\
name: slow_reasoned
mode: verdict
template: |
  Question: {prompt}
  Answer: {response}
  Think about the answer step by step in detail, then answer Yes or No.
reasoning: {enabled: true, max_tokens: 128}
min_valid_mass: 0.0
"""

DRAIN_GRACE_S = 120


@pytest.fixture
def rubrics_dir(tmp_path: Path) -> Path:
    target = tmp_path / "rubrics"
    shutil.copytree(project_rubrics_dir(), target)
    (target / "slow_reasoned.yaml").write_text(SLOW_RUBRIC)
    return target


@pytest.fixture
def server(
    rubrics_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    # room for the slow batch on a loaded CPU: the drain must end because it went idle
    monkeypatch.setenv("JUDGE_DRAIN_GRACE_S", str(DRAIN_GRACE_S))
    port = free_port()
    proc, log_path = start_server(port, f"lifecycle-{port}.log", "--rubrics-dir", str(rubrics_dir))
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, proc, log_path)
        yield base_url, proc, log_path
    finally:
        if proc.poll() is None:
            stop(proc)


def slow_batch(tag: str, n: int = 12) -> dict[str, object]:
    items = [
        {"id": f"{tag}{i}", "prompt": f"What is {i} + {i}? ({tag})", "response": f"{2 * i}"}
        for i in range(n)
    ]
    return {"rubric": "slow_reasoned", "items": items}


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as exc:  # a request that fails cleanly is a result too
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def wait_in_flight(base_url: str, timeout_s: float = 30) -> None:
    """Until the server counts admitted items (judge_queue_items > 0)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in httpx.get(f"{base_url}/metrics", timeout=5).text.splitlines():
            if line.startswith("judge_queue_items ") and float(line.split()[1]) > 0:
                return
        time.sleep(0.05)
    raise AssertionError("the batch never reached the server")


def engine_core(pid: int) -> psutil.Process:
    for child in psutil.Process(pid).children(recursive=True):
        try:
            title = " ".join(child.cmdline()) + " " + child.name()
        except psutil.NoSuchProcess:
            continue
        if "EngineCore" in title:
            return child
    raise AssertionError(f"no VLLM::EngineCore process under {pid}")


def test_killing_the_engine_core_fails_pending_items_and_exits_3(
    server: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    base_url, proc, log_path = server
    core = engine_core(proc.pid)
    thread, out = in_thread(
        lambda: httpx.post(f"{base_url}/v1/score", json=slow_batch("die"), timeout=120)
    )
    wait_in_flight(base_url)
    time.sleep(0.5)  # generating now
    killed_at = time.monotonic()
    core.send_signal(signal.SIGKILL)

    health_503 = False
    while proc.poll() is None and time.monotonic() - killed_at < 30:
        try:
            health = httpx.get(f"{base_url}/health", timeout=2)
            if health.status_code == 503:
                health_503 = True
                assert health.json()["error"]["type"] == "engine_failed"
        except httpx.HTTPError:
            pass  # already stopped listening
        time.sleep(0.1)
    thread.join(30)
    assert not thread.is_alive(), "the request hung on the dead engine"
    code = proc.wait(timeout=max(1.0, 30 - (time.monotonic() - killed_at)))
    exited_after = time.monotonic() - killed_at
    log = log_path.read_text(errors="replace")
    assert code == EXIT_ENGINE_FAILED, log[-4000:]
    assert "engine died" in log

    result = out[0]
    if isinstance(result, httpx.Response):  # answered: every item not done is a judge_error
        assert result.status_code == 200, result.text
        statuses = [r["status"] for r in result.json()["results"]]
        assert "judge_error" in statuses and "timeout" not in statuses, statuses
        assert set(statuses) <= {"ok", "judge_error"}
    else:  # or the connection ended with the process: an error, not a hang
        assert isinstance(result, httpx.HTTPError), repr(result)
    print(f"exit {code} {exited_after:.1f} s after the kill; /health 503 seen: {health_503}")


def test_sigterm_drains_work_in_flight_and_exits_0(
    server: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    base_url, proc, log_path = server
    thread, out = in_thread(
        lambda: httpx.post(f"{base_url}/v1/score", json=slow_batch("drain"), timeout=120)
    )
    wait_in_flight(base_url)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)

    ready = httpx.get(f"{base_url}/ready", timeout=5)
    refused = httpx.post(f"{base_url}/v1/score", json=slow_batch("late", 1), timeout=30)
    still_busy = thread.is_alive()

    thread.join(DRAIN_GRACE_S)
    code = proc.wait(timeout=DRAIN_GRACE_S)
    log = log_path.read_text(errors="replace")
    assert code == 0, log[-4000:]
    resp = out[0]
    assert isinstance(resp, httpx.Response) and resp.status_code == 200, resp
    assert [r["status"] for r in resp.json()["results"]] == ["ok"] * 12
    assert still_busy, "the batch finished before the drain could be observed"
    assert ready.status_code == 503 and ready.json()["error"]["type"] == "draining"
    assert refused.status_code == 503 and refused.json()["error"]["type"] == "draining"
    assert "retry-after" in refused.headers and refused.headers["connection"] == "close"
    drained_s = time.monotonic() - signalled
    assert drained_s < DRAIN_GRACE_S  # it stopped because it went idle, not at the deadline
    print(f"drained and exited 0 in {drained_s:.1f} s")
