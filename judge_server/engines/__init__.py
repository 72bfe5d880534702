"""Engines: the ``JudgeEngine`` interface and its adapters.

``vllm_engine`` is the only module in the project that imports vllm; import it lazily.
"""

from judge_server.engines.base import (
    ChatMessage,
    EngineDeadError,
    EngineError,
    Generation,
    JudgeEngine,
    NextTokenLogprobs,
    PromptTooLongError,
)

__all__ = [
    "ChatMessage",
    "EngineDeadError",
    "EngineError",
    "Generation",
    "JudgeEngine",
    "NextTokenLogprobs",
    "PromptTooLongError",
]
