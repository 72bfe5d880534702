"""Engines take their own config objects; only the factory sees Settings. No vLLM runs here."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import judge_server.engines
from judge_server.engines import vllm_engine
from judge_server.engines.config import CPU_KV_BLOCK_SIZE, GIB, VllmConfig
from judge_server.engines.factory import build_engine, build_reward_models, vllm_config
from judge_server.engines.vllm_engine import VllmEngine
from judge_server.engines.vllm_reward_model import VllmRewardModel
from judge_server.settings import Settings


@pytest.fixture
def no_judge_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("JUDGE_"):
            monkeypatch.delenv(key)


def test_config_defaults_match_settings(no_judge_env: None) -> None:
    assert vllm_config(Settings()) == VllmConfig()


def test_factory_maps_settings_onto_configs(tmp_path: Path, no_judge_env: None) -> None:
    settings = Settings(
        model="org/m",
        cache_dir=tmp_path,
        dtype="bfloat16",
        max_model_len=4096,
        kv_cache_gib=1.5,
        kv_block_size=32,
        gpu_memory_utilization=0.6,
        tensor_parallel_size=2,
        enforce_eager=True,
        reward_models={"rm": "/models/rm", "other": "org/rm2"},
        reward_model_gpu_memory_utilization=0.15,
    )
    engine = build_engine(settings)
    assert isinstance(engine, VllmEngine)
    assert engine.config == VllmConfig(
        model="org/m",
        cache_dir=tmp_path,
        dtype="bfloat16",
        max_model_len=4096,
        kv_cache_gib=1.5,
        kv_block_size=32,
        gpu_memory_utilization=0.6,
        tensor_parallel_size=2,
        enforce_eager=True,
    )
    models = build_reward_models(settings)
    assert sorted(models) == ["other", "rm"]
    rm = models["rm"]
    assert isinstance(rm, VllmRewardModel)
    assert rm.model_path == "/models/rm"
    assert rm.gpu_memory_utilization == 0.15
    assert rm.config == engine.config
    assert len(build_reward_models(Settings())) == 0


def test_engines_do_not_import_settings() -> None:
    folder = Path(judge_server.engines.__file__).parent
    offenders = [
        p.name
        for p in folder.glob("*.py")
        if p.name != "factory.py" and "judge_server.settings" in p.read_text()
    ]
    assert offenders == []


def _fake_vllm(monkeypatch: pytest.MonkeyPatch, *, on_cpu: bool) -> dict[str, Any]:
    """Stand-ins for the few vllm/transformers names the adapter imports; records engine args."""
    seen: dict[str, Any] = {}

    def module(name: str, **attrs: Any) -> None:
        mod = types.ModuleType(name)
        for key, value in attrs.items():
            setattr(mod, key, value)
        monkeypatch.setitem(sys.modules, name, mod)

    class AsyncEngineArgs:
        def __init__(self, **kwargs: Any) -> None:
            seen.update(kwargs)

    class AsyncLLM:
        @staticmethod
        def from_engine_args(args: AsyncEngineArgs) -> str:
            return "llm"

    class AutoTokenizer:
        @staticmethod
        def from_pretrained(path: str) -> str:
            return "tokenizer"

    platform = types.SimpleNamespace(is_cpu=lambda: on_cpu)
    for name in ("vllm", "vllm.engine", "vllm.v1", "vllm.v1.engine"):
        module(name)
    module("vllm.engine.arg_utils", AsyncEngineArgs=AsyncEngineArgs)
    module("vllm.platforms", current_platform=platform)
    module("vllm.v1.engine.async_llm", AsyncLLM=AsyncLLM)
    module("transformers", AutoTokenizer=AutoTokenizer)
    return seen


def test_cpu_kv_cache_is_an_engine_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    seen = _fake_vllm(monkeypatch, on_cpu=True)
    before = dict(os.environ)
    llm, tokenizer = vllm_engine.start_async_llm(
        VllmConfig(kv_cache_gib=1.5, max_model_len=1024), "/m", gpu_share=0.5
    )
    assert (llm, tokenizer.tokenizer) == ("llm", "tokenizer")
    assert seen["kv_cache_memory_bytes"] == int(1.5 * GIB)
    assert "gpu_memory_utilization" not in seen
    assert seen["dtype"] == "float32" and seen["max_model_len"] == 1024
    assert seen["block_size"] == CPU_KV_BLOCK_SIZE == 32  # not vLLM-CPU's 128 unless asked
    assert dict(os.environ) == before


def test_kv_block_size_is_an_engine_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _fake_vllm(monkeypatch, on_cpu=True)
    vllm_engine.start_async_llm(VllmConfig(kv_block_size=64), "/m", gpu_share=0.5)
    assert seen["block_size"] == 64


def test_gpu_keeps_vllms_own_kv_block_size_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _fake_vllm(monkeypatch, on_cpu=False)
    vllm_engine.start_async_llm(VllmConfig(), "/m", gpu_share=0.5)
    assert "block_size" not in seen
    seen = _fake_vllm(monkeypatch, on_cpu=False)
    vllm_engine.start_async_llm(VllmConfig(kv_block_size=32), "/m", gpu_share=0.5)
    assert seen["block_size"] == 32


@pytest.mark.parametrize("size", [0, 8, 24, 512])
def test_kv_block_size_is_bounded(size: int, no_judge_env: None) -> None:
    with pytest.raises(ValueError, match="kv_block_size"):
        Settings(kv_block_size=size)


def test_gpu_uses_the_memory_share(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _fake_vllm(monkeypatch, on_cpu=False)
    rm = VllmRewardModel("/rm", VllmConfig(), gpu_memory_utilization=0.2)
    rm._build()
    assert seen["gpu_memory_utilization"] == 0.2
    assert seen["runner"] == "pooling" and seen["dtype"] == "auto"
    assert "kv_cache_memory_bytes" not in seen
