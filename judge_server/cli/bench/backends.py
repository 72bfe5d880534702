"""What the sections run against: the real stack (vLLM), or the instant engine everywhere
(tests of the benchmark's own plumbing, seconds and no vLLM)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from judge_server.cli.bench import servers
from judge_server.cli.bench.servers import Server
from judge_server.engines.base import JudgeEngine
from judge_server.settings import Settings


@dataclass(frozen=True)
class Backends:
    engine: Callable[[], JudgeEngine]
    """The in-process engine of the ceiling and rubric sections."""
    judge_server: Callable[[int], Server]
    """``judge-server serve`` on a port."""
    overhead_server: Callable[[int], Server]
    """The same app on the instant engine."""
    bare_server: Callable[[int], Server]
    """A bare FastAPI route answering the same shape (the framework's ceiling)."""
    naive_server: Callable[[int], Server]
    """A stock OpenAI-compatible server on the same model."""


def _instant_judge(settings: Settings, work_dir: Path) -> Callable[[int], Server]:
    def make(port: int) -> Server:
        env = servers.judge_env(settings, work_dir)
        return Server(servers.instant_server_cmd(port, "judge"), env, port, "/ready")

    return make


def _bare(settings: Settings, work_dir: Path) -> Callable[[int], Server]:
    def make(port: int) -> Server:
        env = servers.judge_env(settings, work_dir)
        return Server(servers.instant_server_cmd(port, "bare"), env, port, "/ready")

    return make


def vllm_backends(settings: Settings, work_dir: Path) -> Backends:
    def engine() -> JudgeEngine:
        from judge_server.engines.factory import vllm_config
        from judge_server.engines.vllm_engine import VllmEngine

        return VllmEngine(vllm_config(settings))

    def judge_server(port: int) -> Server:
        env = servers.judge_env(settings, work_dir)
        return Server(servers.judge_server_cmd(port), env, port, "/ready")

    def naive_server(port: int) -> Server:
        from judge_server.engines.model_store import resolve_model

        path, _ = resolve_model(settings.model, settings.cache_dir)
        cmd = servers.vllm_server_cmd(port, path, settings, naive_dtype(settings))
        return Server(cmd, servers.kv_cache_env(settings), port, "/health", model=path)

    instant_judge, bare = _instant_judge(settings, work_dir), _bare(settings, work_dir)
    return Backends(engine, judge_server, instant_judge, bare, naive_server)


def instant_backends(settings: Settings, work_dir: Path) -> Backends:
    from judge_server.cli.bench.instant_engine import InstantEngine

    def naive_server(port: int) -> Server:
        cmd = servers.instant_server_cmd(port, "openai")
        return Server(cmd, servers.judge_env(settings, work_dir), port, "/health", "instant")

    instant_judge, bare = _instant_judge(settings, work_dir), _bare(settings, work_dir)
    return Backends(InstantEngine, instant_judge, instant_judge, bare, naive_server)


def naive_dtype(settings: Settings) -> str:
    """The dtype our engine picks, spelled out for ``vllm serve`` (float32 on CPU)."""
    if settings.dtype != "auto":
        return settings.dtype
    import torch

    return "auto" if torch.cuda.is_available() else "float32"
