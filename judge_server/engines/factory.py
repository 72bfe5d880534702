"""Build the configured engine. Imports stay lazy: nothing heavy happens at import time."""

from __future__ import annotations

from judge_server.engines.base import JudgeEngine
from judge_server.settings import Settings


def build_engine(settings: Settings) -> JudgeEngine:
    if settings.engine == "remote":
        from judge_server.engines.remote import RemoteEngine
        from judge_server.model_store import resolve_model

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

    return VllmEngine(settings)
