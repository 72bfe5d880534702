"""The small config objects engines take, so that engines never see the server's Settings.

Only ``judge_server.engines.factory`` maps Settings onto these; the defaults match Settings'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir

Dtype = Literal["auto", "float32", "bfloat16", "float16"]

GIB = 1 << 30


def default_cache_dir() -> Path:
    return Path(user_cache_dir("judge-server"))


@dataclass(frozen=True)
class VllmConfig:
    """What the vLLM adapters (``VllmEngine``, ``VllmRewardModel``) need to start AsyncLLM.

    ``kv_cache_gib`` is passed to vLLM as the ``kv_cache_memory_bytes`` engine argument on CPU,
    where vLLM would otherwise reserve ``gpu_memory_utilization`` of all RAM; on GPU vLLM sizes
    the cache from ``gpu_memory_utilization`` instead.
    """

    model: str | None = None
    """Hugging Face folder or id; None serves the embedded SmolLM2-135M."""
    cache_dir: Path = field(default_factory=default_cache_dir)
    """Where the embedded model is converted to a Hugging Face folder."""
    dtype: Dtype = "auto"
    """'auto' picks float32 on CPU (about 3x bfloat16 there) and the model's own dtype on GPU."""
    max_model_len: int = 2048
    kv_cache_gib: float = 1.0
    kv_block_size: int | None = None
    """Tokens per KV-cache block (vLLM's ``block_size``); None keeps vLLM's default."""
    gpu_memory_utilization: float = 0.9
    tensor_parallel_size: int = 1
    enforce_eager: bool = False
    max_images_per_prompt: int = 12
    """Images one engine call may carry (vLLM's ``limit_mm_per_prompt``), for a
    vision-language model: a pairwise prompt shows the prompt's and both responses' images."""

    @property
    def kv_cache_bytes(self) -> int:
        return int(self.kv_cache_gib * GIB)
