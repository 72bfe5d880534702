"""veRL adapter: judge-server rewards as a veRL custom reward function.

Give this module to veRL as the custom reward function and pick one of its functions::

    reward.custom_reward_function.path=pkg://judge_client.integrations.verl
    reward.custom_reward_function.name=compute_score_async     # or compute_score (sync)
    +reward.custom_reward_function.reward_kwargs.judge_rubric=correctness
    +reward.custom_reward_function.reward_kwargs.judge_server_url=http://judge:8000

(or the file path, ``python -c "import judge_client.integrations.verl as m; print(m.__file__)"``;
this module only imports ``judge_client`` absolutely, so veRL's load-by-file-path works too).

The contract, read from the verl 0.9.1 wheel on PyPI (its sources carry no commit id; the
``volcengine/verl`` main branch at commit b178a3cd56f58b2d502255daba591e92833930a7, 0.8.0.dev,
has the same ``naive.py`` call, and its ``docs/preparation/reward_function.rst`` and
``examples/data_preprocess/gsm8k.py`` were read there):

- ``verl/trainer/ppo/reward.py`` ``get_custom_reward_fn``: reads
  ``config.reward.custom_reward_function`` (``path``, ``name`` default ``compute_score``,
  ``reward_kwargs``; up to 0.7 the block sat at the top level, ``custom_reward_function.*``,
  and ``reward_loop.py`` ``migrate_legacy_reward_impl`` still moves that one), loads ``name``
  from ``path`` (``verl/utils/import_utils.py`` ``load_module``: a file path, or
  ``pkg://dotted.module``) and wraps it so that ``reward_kwargs`` are merged into every call's
  keyword arguments, taking precedence. A coroutine function stays a coroutine function.
- ``verl/experimental/reward_loop/reward_manager/naive.py`` ``NaiveRewardManager.run_single``
  (the default ``reward.reward_manager.name=naive``; ``dapo`` and ``gdpo`` call it the same
  way): one sample per call, ``compute_score(data_source=, solution_str=,
  ground_truth=, extra_info=, **extra)`` where ``extra`` is ``reward_router_address`` and
  ``reward_model_tokenizer`` when a reward model is enabled. It is awaited when
  ``inspect.iscoroutinefunction(compute_score)``, else run in the event loop's default thread
  pool. ``solution_str`` is the response decoded with ``skip_special_tokens=True``; the prompt
  is not passed, and ``extra_info`` is the row's ``extra_info`` plus ``num_turns`` and
  ``rollout_reward_scores``. A dict result gives ``score`` as the reward and every key
  (``score`` included) as ``reward_extra_info``.
- ``reward_manager/limited.py`` (``rate_limited``) calls it the same way but turns *any*
  exception, a server that is down included, into a reward of 0.0 with ``error``/``acc`` extra
  keys of its own: do not use it with this adapter (judge-server does its own admission
  control).
- ``verl/experimental/reward_loop/reward_loop.py`` ``RewardLoopManager.compute_rm_score``: the
  scores become a tensor (``RewardManagerBase.assemble_rm_scores``, ``new_tensor(scores)``: a
  ``None`` crashes it), the extra-info keys are taken from the *first* sample's dict and each
  becomes ``np.array([info[key] for info in infos])`` (so every sample must return the same
  keys, and a ``None`` in an otherwise numeric column makes an object array).
- ``verl/trainer/ppo/metric_utils.py`` ``process_validation_metrics``: validation logs
  mean/std/best/worst of every numeric extra-info key per data source and skips string values;
  ``ray_trainer.py`` dumps every key to the rollout/validation JSONL files.
- ``verl/workers/reward_manager/batch.py`` ``BatchRewardManager.verify``: one call per batch,
  ``compute_score(data_sources=, solution_strs=, ground_truths=, extra_infos=,
  **reward_kwargs)``, one float or dict back per sample. Selected with
  ``reward_model.reward_manager=batch`` up to verl 0.7; the 0.8 and 0.9 loaders
  (``resolve_reward_manager_cls``) only know the reward-loop managers above, so there the class
  is used only by code that builds it itself.

So every function here returns, per sample, a dict of the same keys::

    {"score": float,          # the judge's reward, or the fill value (never None)
     "judge_ok": 1.0 | 0.0,   # a number: validation logs its mean, the judged share
     "judge_status": str,     # ok | invalid_input | judge_error | timeout
     "judge_error": str,      # "" when ok
     "judge_rubric": str, "rubric_version": str, "judge_model": str}

Settings, first found wins: per sample ``extra_info["judge_rubric"]`` /
``extra_info["judge_server_url"]``; then ``reward_kwargs`` (``judge_rubric``,
``judge_server_url``, ``judge_api_key``, ``judge_prompt_key``, ``judge_fill_value``,
``judge_timeout_s``); then the environment (``JUDGE_RUBRIC``, ``JUDGE_SERVER_URL``,
``JUDGE_API_KEY``, ``JUDGE_FILL_VALUE``). Environment variables reach veRL's reward workers when
the trainer starts Ray itself; on a running Ray cluster use ``reward_kwargs``. The prompt is
``extra_info[judge_prompt_key]`` (default ``"question"``, as veRL's gsm8k preprocessing stores
it), text or chat messages; ``ground_truth`` is the reference answer (used by rubrics that take
one). A row without the prompt key raises: that is a configuration error, and veRL's own
``default_compute_score`` raises for a data source it cannot score too. ``extra_info["rubrics"]``,
when present, is the sample's own criteria (HealthBench's format or the rubric format, a list or
its JSON text), for a rubric that takes them such as ``healthbench``; ``extra_info["persona"]``,
when present, names the persona of a ``simulated_user`` rubric.

Failure policy (veRL cannot carry a missing reward): a sample the judge could not score gets
the fill value (``JUDGE_FILL_VALUE``, default 0.0) as ``score`` with ``judge_ok`` 0.0 and its
status and error, so it is counted in the validation metrics and in every dumped row. A server
that cannot be reached, or answers 429/5xx, is retried with the client's ``RetryPolicy`` and
then the call raises (``APIConnectionError``/``APIStatusError``): the step fails rather than
learn from made-up rewards.

One client per (server URL, API key) per process (``_clients.CLIENTS``), thread-safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Absolute imports only: veRL may load this file by path, outside its package.
from judge_client.integrations._common import (
    ENV_API_KEY,
    ENV_RUBRIC,
    ENV_URL,
    PERSONA_KEY,
    fill_value,
    reference_text,
    setting,
)
from judge_client.integrations._scoring import (
    Sample,
    Target,
    Verdict,
    required,
    score_async,
    score_sync,
)

__all__ = [
    "DEFAULT_PROMPT_KEY",
    "compute_score",
    "compute_score_async",
    "compute_score_batch",
]

DEFAULT_PROMPT_KEY = "question"
"""Where veRL's gsm8k preprocessing (``examples/data_preprocess/gsm8k.py``) keeps the prompt."""

#: extra_info keys that override the settings for one sample
SAMPLE_RUBRIC_KEY = "judge_rubric"
SAMPLE_URL_KEY = "judge_server_url"
#: the extra_info key of a sample's own criteria (HealthBench's name for them)
SAMPLE_RUBRICS_KEY = "rubrics"

#: keyword arguments veRL itself adds (a reward model's router); accepted and ignored
_VERL_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})

RewardInfo = dict[str, float | str]


def _check_kwargs(kwargs: Mapping[str, Any]) -> None:
    """A misspelt ``judge_*`` setting in reward_kwargs would otherwise be silently ignored;
    the keywords veRL itself adds are accepted and ignored."""
    unknown = sorted(k for k in kwargs if k.startswith("judge_") and k not in _VERL_KWARGS)
    if unknown:
        raise TypeError(
            f"unknown judge-server reward_kwargs {unknown}; the settings are judge_server_url, "
            "judge_rubric, judge_api_key, judge_prompt_key, judge_fill_value, judge_timeout_s"
        )


def _text_setting(extra_info: Mapping[str, Any], key: str) -> str | None:
    value = extra_info.get(key)
    return None if value in (None, "") else str(value)


def _target(
    extra_info: Mapping[str, Any],
    judge_server_url: str | None,
    judge_rubric: str | None,
    judge_api_key: str | None,
) -> Target:
    url = required(
        "judge_server_url", _text_setting(extra_info, SAMPLE_URL_KEY) or judge_server_url, ENV_URL
    )
    rubric = required(
        "judge_rubric", _text_setting(extra_info, SAMPLE_RUBRIC_KEY) or judge_rubric, ENV_RUBRIC
    )
    api_key = setting("judge_api_key", judge_api_key, ENV_API_KEY, required=False)
    return Target(url, api_key, rubric)


def _sample(
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None,
    *,
    judge_server_url: str | None,
    judge_rubric: str | None,
    judge_api_key: str | None,
    judge_prompt_key: str,
) -> Sample:
    info: Mapping[str, Any] = extra_info if extra_info is not None else {}
    target = _target(info, judge_server_url, judge_rubric, judge_api_key)
    if judge_prompt_key not in info:
        raise ValueError(
            f"extra_info has no {judge_prompt_key!r} to take the prompt from (keys: "
            f"{sorted(map(str, info))}); store the prompt there when preprocessing, or set "
            "reward_kwargs.judge_prompt_key"
        )
    return Sample(
        target,
        info[judge_prompt_key],
        str(solution_str),
        reference_text(ground_truth),
        info.get(SAMPLE_RUBRICS_KEY),
        info.get(PERSONA_KEY),
    )


def _fill(given: float | str | None) -> float:
    """The fill value; a Hydra override may arrive as text."""
    return fill_value(None if given is None else float(given))


def _info(verdict: Verdict) -> RewardInfo:
    return {
        "score": float(verdict.score),
        "judge_ok": 1.0 if verdict.ok else 0.0,
        "judge_status": verdict.status,
        "judge_error": verdict.error or "",
        "judge_rubric": verdict.rubric,
        "rubric_version": verdict.rubric_version,
        "judge_model": verdict.model,
    }


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    *,
    judge_server_url: str | None = None,
    judge_rubric: str | None = None,
    judge_api_key: str | None = None,
    judge_prompt_key: str = DEFAULT_PROMPT_KEY,
    judge_fill_value: float | None = None,
    judge_timeout_s: float | None = None,
    **kwargs: Any,
) -> RewardInfo:
    """One sample, blocking: what ``NaiveRewardManager`` runs in its thread pool."""
    _check_kwargs(kwargs)
    sample = _sample(
        solution_str,
        ground_truth,
        extra_info,
        judge_server_url=judge_server_url,
        judge_rubric=judge_rubric,
        judge_api_key=judge_api_key,
        judge_prompt_key=judge_prompt_key,
    )
    (verdict,) = score_sync([sample], fill_with=_fill(judge_fill_value), timeout_s=judge_timeout_s)
    return _info(verdict)


async def compute_score_async(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    *,
    judge_server_url: str | None = None,
    judge_rubric: str | None = None,
    judge_api_key: str | None = None,
    judge_prompt_key: str = DEFAULT_PROMPT_KEY,
    judge_fill_value: float | None = None,
    judge_timeout_s: float | None = None,
    **kwargs: Any,
) -> RewardInfo:
    """One sample, awaited on the reward worker's event loop (no thread per sample)."""
    _check_kwargs(kwargs)
    sample = _sample(
        solution_str,
        ground_truth,
        extra_info,
        judge_server_url=judge_server_url,
        judge_rubric=judge_rubric,
        judge_api_key=judge_api_key,
        judge_prompt_key=judge_prompt_key,
    )
    (verdict,) = await score_async(
        [sample], fill_with=_fill(judge_fill_value), timeout_s=judge_timeout_s
    )
    return _info(verdict)


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None],
    *,
    judge_server_url: str | None = None,
    judge_rubric: str | None = None,
    judge_api_key: str | None = None,
    judge_prompt_key: str = DEFAULT_PROMPT_KEY,
    judge_fill_value: float | None = None,
    judge_timeout_s: float | None = None,
    **kwargs: Any,
) -> list[RewardInfo]:
    """A whole batch for ``BatchRewardManager``: one ``score`` call per rubric (one in the
    usual case; one HTTP request up to the client's ``chunk_size`` of 256 items)."""
    _check_kwargs(kwargs)
    n = len(solution_strs)
    if not len(data_sources) == len(ground_truths) == len(extra_infos) == n:
        raise ValueError(
            f"batch lengths differ: {len(data_sources)} data_sources, {n} solution_strs, "
            f"{len(ground_truths)} ground_truths, {len(extra_infos)} extra_infos"
        )
    samples = [
        _sample(
            solution_strs[i],
            ground_truths[i],
            extra_infos[i],
            judge_server_url=judge_server_url,
            judge_rubric=judge_rubric,
            judge_api_key=judge_api_key,
            judge_prompt_key=judge_prompt_key,
        )
        for i in range(n)
    ]
    verdicts = score_sync(samples, fill_with=_fill(judge_fill_value), timeout_s=judge_timeout_s)
    return [_info(v) for v in verdicts]
