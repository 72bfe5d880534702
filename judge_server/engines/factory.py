"""Build the configured engines: the one place that maps Settings onto engine configs.

Imports stay lazy: nothing heavy happens at import time.
"""

from __future__ import annotations

from judge_server.engines.base import JudgeEngine
from judge_server.engines.config import VllmConfig
from judge_server.engines.reward_models import RewardModels
from judge_server.settings import Settings


def vllm_config(settings: Settings) -> VllmConfig:
    return VllmConfig(
        model=settings.model,
        cache_dir=settings.cache_dir,
        dtype=settings.dtype,
        max_model_len=settings.max_model_len,
        kv_cache_gib=settings.kv_cache_gib,
        kv_block_size=settings.kv_block_size,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        tensor_parallel_size=settings.tensor_parallel_size,
        enforce_eager=settings.enforce_eager,
        max_images_per_prompt=max(1, 3 * settings.max_images_per_item),
    )


def build_engine(settings: Settings) -> JudgeEngine:
    if settings.engine == "remote":
        from judge_server.engines.model_store import resolve_model
        from judge_server.engines.remote import RemoteEngine

        # The local tokenizer renders chat templates and checks lengths; it must be the model
        # the replicas serve (the embedded one unless --model says otherwise).
        tokenizer, _ = resolve_model(settings.model, settings.cache_dir)
        return RemoteEngine(
            settings.remote_urls,
            model=settings.remote_model,
            tokenizer=tokenizer,
            max_model_len=settings.max_model_len,
            api_key=(
                settings.remote_api_key.get_secret_value() if settings.remote_api_key else None
            ),
            request_timeout_s=settings.remote_timeout_s,
            health_interval_s=settings.remote_health_interval_s,
            max_attempts=settings.remote_max_attempts,
        )
    from judge_server.engines.vllm_engine import VllmEngine

    return VllmEngine(vllm_config(settings))


def build_reward_models(settings: Settings) -> RewardModels:
    """The ``--reward-model NAME=PATH`` models, each a vLLM engine of its own (not started)."""
    if not settings.reward_models:
        return RewardModels()
    from judge_server.engines.vllm_reward_model import VllmRewardModel

    config = vllm_config(settings)
    share = settings.reward_model_gpu_memory_utilization
    return RewardModels(
        {
            name: VllmRewardModel(path, config, gpu_memory_utilization=share)
            for name, path in settings.reward_models.items()
        }
    )
