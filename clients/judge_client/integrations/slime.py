"""slime adapter: judge-server rewards as slime's ``--custom-rm-path`` function.

::

    --custom-rm-path judge_client.integrations.slime.reward          # one sample per call
    --custom-rm-path judge_client.integrations.slime.batched_reward  # with --group-rm
    --reward-key reward --log-reward-category status

with ``JUDGE_SERVER_URL`` and ``JUDGE_RUBRIC`` in the environment (or ``judge_server_url`` /
``judge_rubric`` in the YAML of ``--custom-config-path``, which slime sets as ``args``
attributes).

The contract, read from ``THUDM/slime`` at commit 624b824a898ab0ec1fcb4d373004c7f3852bf515:

- ``slime/rollout/rm_hub/__init__.py``: ``async_rm(args, sample)`` calls
  ``await load_function(args.custom_rm_path)(args, sample, **kwargs)`` (a per-sample
  ``sample.custom_rm_path`` from an eval dataset config wins); ``batched_async_rm(args,
  samples)`` calls the same path with the list, ``await rm(args, samples, **kwargs)``, and
  expects one reward per sample. ``load_function`` (``slime/utils/misc.py``) imports the dotted
  path up to its last dot.
- ``slime/rollout/sglang_rollout.py`` ``generate_and_rm`` / ``generate_and_rm_group``: without
  ``--group-rm`` each sample goes through ``async_rm`` (through ``batched_async_rm`` when a
  custom generate function returns several samples); with ``--group-rm`` a prompt's
  ``n_samples_per_prompt`` samples go through ``batched_async_rm`` together. ``reward`` below
  takes a sample or a list, so one path serves every caller.
- ``slime/utils/types.py`` ``Sample``: ``prompt`` (text, or chat messages; a chat-templated
  string with ``--apply-chat-template``), ``response``, ``label``, ``metadata`` (the dataset's
  ``--metadata-key`` column), ``remove_sample``; ``reward: float | dict``, read back by
  ``get_reward_value`` as ``reward[args.reward_key]`` (top level only).
- ``slime/ray/rollout.py`` ``_post_process_rewards``: the rewards become
  ``torch.tensor(raw_rewards, dtype=torch.float)`` for group normalisation (a ``None`` crashes
  it); ``_convert_samples_to_train_data`` zeroes the loss mask of a sample whose
  ``remove_sample`` is set (it still counts in the group mean).
- ``slime/observability/rollout_metrics.py`` ``_compute_reward_cat_metrics``: with
  ``--log-reward-category K`` slime logs ``error_cat/<reward[K]>``, the share of samples per
  value.

So the reward is a flat dict, the same one the server's ``POST /slime/reward`` answers::

    {"reward": float,        # the judge's reward, or the fill value (never None)
     "ok": bool, "status": str, "error": str | None,
     "rubric": str, "rubric_version": str, "model": str, "cached": bool}

used with ``--reward-key reward``; ``--log-reward-category status`` logs the share of each
status (``error_cat/ok``, ``error_cat/judge_error``, ...) every rollout.

Settings, first found wins: per sample ``sample.metadata["judge_rubric"]``; then ``args``
attributes ``judge_rubric``, ``judge_server_url``, ``judge_api_key``, ``judge_fill_value``,
``judge_remove_failed`` (set them with ``--custom-config-path``); then the environment
(``JUDGE_RUBRIC``, ``JUDGE_SERVER_URL``, ``JUDGE_API_KEY``, ``JUDGE_FILL_VALUE``). The prompt
is ``sample.metadata["judge_prompt"]`` when present (put the raw question there when slime
chat-templates the prompt), else ``sample.prompt``; the label is the reference answer;
``sample.metadata["rubrics"]``, when present, is the sample's own criteria (HealthBench's format
or the rubric format), for a rubric that takes them such as ``healthbench``;
``sample.metadata["persona"]``, when present, names the persona of a ``simulated_user`` rubric.

Failure policy (slime needs a number): a sample the judge could not score gets the fill value
(default 0.0) with ``ok`` False and its ``status``/``error``, and ``sample.remove_sample`` is set
so it adds no loss (``judge_remove_failed: false`` keeps it in the loss with the fill value). A
server that cannot be reached, or answers 429/5xx, is retried with the client's
``RetryPolicy`` and then raises (``APIConnectionError``/``APIStatusError``): the rollout fails
rather than train on made-up rewards.

Samples are grouped per rubric and scored in one ``score`` call per rubric, on a client shared
by the process's event loop (``_clients.CLIENTS``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ._common import (
    ENV_API_KEY,
    ENV_RUBRIC,
    ENV_URL,
    PERSONA_KEY,
    fill_value,
    reference_text,
    setting,
)
from ._scoring import Sample, Target, Verdict, required, score_async

__all__ = ["SampleLike", "batched_reward", "reward"]

#: per-sample overrides read from ``sample.metadata``
METADATA_RUBRIC_KEY = "judge_rubric"
#: the metadata key of a sample's own criteria (HealthBench's name for them)
METADATA_RUBRICS_KEY = "rubrics"
METADATA_PROMPT_KEY = "judge_prompt"

SlimeReward = dict[str, Any]


class SampleLike(Protocol):
    """The fields of ``slime.utils.types.Sample`` this adapter reads and sets."""

    prompt: Any
    response: str
    label: Any
    metadata: Any
    remove_sample: bool


def _arg(args: Any, name: str) -> Any:
    value = getattr(args, name, None)
    return None if value == "" else value


def _sample(args: Any, sample: SampleLike) -> Sample:
    metadata: Mapping[str, Any] = sample.metadata if isinstance(sample.metadata, Mapping) else {}
    rubric = required(
        "judge_rubric", metadata.get(METADATA_RUBRIC_KEY) or _arg(args, "judge_rubric"), ENV_RUBRIC
    )
    url = required("judge_server_url", _arg(args, "judge_server_url"), ENV_URL)
    api_key = setting("judge_api_key", _arg(args, "judge_api_key"), ENV_API_KEY, required=False)
    prompt = metadata.get(METADATA_PROMPT_KEY)
    return Sample(
        Target(url, api_key, rubric),
        sample.prompt if prompt is None else prompt,
        str(sample.response),
        reference_text(sample.label),
        metadata.get(METADATA_RUBRICS_KEY),
        metadata.get(PERSONA_KEY),
    )


def _reward(verdict: Verdict) -> SlimeReward:
    return {
        "reward": float(verdict.score),
        "ok": verdict.ok,
        "status": verdict.status,
        "error": verdict.error,
        "rubric": verdict.rubric,
        "rubric_version": verdict.rubric_version,
        "model": verdict.model,
        "cached": verdict.cached,
    }


async def batched_reward(
    args: Any, samples: Sequence[SampleLike], **kwargs: Any
) -> list[SlimeReward]:
    """Rewards for a list of samples (``batched_async_rm``; a prompt's group with
    ``--group-rm``), in order, one ``score`` call per rubric."""
    if any(isinstance(s, list) for s in samples):
        raise TypeError(
            "got a group of sample lists (a custom generate function that fans out under "
            "--group-rm); slime itself cannot set one reward per inner list, score them without "
            "--group-rm"
        )
    if not samples:
        return []
    wanted = [_sample(args, s) for s in samples]
    raw_fill = _arg(args, "judge_fill_value")
    verdicts = await score_async(
        wanted, fill_with=fill_value(None if raw_fill is None else float(raw_fill))
    )
    remove_failed = _arg(args, "judge_remove_failed")
    for sample, verdict in zip(samples, verdicts, strict=True):
        if not verdict.ok and (remove_failed is None or bool(remove_failed)):
            sample.remove_sample = True
    return [_reward(v) for v in verdicts]


async def reward(
    args: Any, sample: SampleLike | Sequence[SampleLike], **kwargs: Any
) -> SlimeReward | list[SlimeReward]:
    """The reward of one sample (``async_rm``), or of each of a list (``batched_async_rm``)."""
    if isinstance(sample, Sequence):
        return await batched_reward(args, sample, **kwargs)
    (one,) = await batched_reward(args, [sample], **kwargs)
    return one
