"""TRL adapter: judge-server rewards as a ``GRPOTrainer`` reward function.

::

    from trl import GRPOConfig, GRPOTrainer
    from judge_client.integrations.trl import make_reward_func

    judge = make_reward_func("helpfulness", base_url="http://localhost:8000",
                             reference_column="answer")        # -> logs rewards/judge_helpfulness
    trainer = GRPOTrainer(model=..., reward_funcs=[judge], args=GRPOConfig(...),
                          train_dataset=dataset)

The contract, read from TRL 1.16 (``trl/trainer/grpo_trainer.py``,
``GRPOTrainer._calculate_rewards``): TRL calls ``reward_func(prompts=, completions=,
completion_ids=, **dataset_columns, trainer_state=, log_extra=, log_metric=)`` with one entry
per completion, plain text or conversational (lists of ``{"role", "content"}`` messages); it
awaits the call when ``is_async_callable`` says so (``trl/trainer/utils.py``), turns ``None``
into NaN (left out of the group mean and std; a row where every reward function gave ``None``
gets advantage 0) and logs ``rewards/<name>/mean`` and ``/std`` under
``get_callable_name(func)``, i.e. ``__name__``.

Failure policy: an item the judge could not score (``invalid_input``, ``judge_error``,
``timeout``, or one the client cannot even send, such as an image part) is ``None``; one bad
item never fails the batch. A server that cannot be reached, or answers 429/5xx, is retried with
the client's ``RetryPolicy`` and then the call raises (``APIConnectionError`` /
``APIStatusError``): the training step fails rather than learn from made-up rewards. Any other
error answer (a 401, an unknown rubric) raises at once. When TRL passes ``log_metric`` the share
of ``None`` rewards is logged as ``rewards/<name>/failed_frac``, and with ``log_extra`` every
item's status goes to the completions table as column ``<name>/status``.

Group mode (``group=True``, a pairwise rubric such as the shipped ``pairwise``): the completions
of each prompt are scored in one ``POST /v1/score/group`` call and each gets its win rate
(Pref-GRPO). Completions are grouped by equal prompt (and equal reference), never by position,
and the rewards come back in TRL's order. Which completions one call sees is decided by how TRL
shards a generation batch: each process's dataloader batch is ``per_device_train_batch_size *
steps_per_generation`` consecutive indices of ``RepeatSampler``, which repeats each prompt
``num_generations`` times in a row (``grpo_trainer.py`` lines 1272-1316, accelerate's
``BatchSamplerShard`` gives process *i* batch *i* of every ``num_processes``), and rewards are
only gathered across processes after the reward functions ran (``grpo_trainer.py`` line 1681,
``rewards_per_func = gather(rewards_per_func)``). ``GRPOConfig`` only requires the *global*
``generation_batch_size`` to be a multiple of ``num_generations`` (``grpo_config.py`` line
1131), so when ``per_device_train_batch_size * steps_per_generation`` is not one, a prompt's
group is split between two processes. Then each process scores the part it holds: a part of two
or more completions gets win rates within that part (they still average 0.5, so TRL's
normalisation over the whole group ranks each completion within its part); a part of one
completion cannot be compared and gets ``None`` with status ``unpaired`` (TRL leaves it out of
the group statistics; a warning is logged once). Choose ``per_device_train_batch_size *
steps_per_generation`` as a multiple of ``num_generations`` and no group is ever split; on one
process none ever is.

Threads, processes and pickling: the client is built on first call, once per reward function,
under a lock. ``JudgeClient`` is thread-safe, so the sync form may be called from any thread.
The async form runs on TRL's own event-loop thread (``GRPOTrainer-AsyncLoop``,
``grpo_trainer.py`` line 753, calls submitted with ``run_coroutine_threadsafe``); its
``AsyncJudgeClient`` belongs to the event loop it was first used on, and a call from another
loop gets a client of its own. Both forms are callable class instances, like TRL's own
``trl.rewards``, so they pickle (TRL's async GRPO rollout worker sends reward functions to a
spawned process): the pickle carries the settings, never a connection, and the copy builds its
own client. A function made with ``client=`` wraps a live client and refuses to pickle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .._client import AsyncJudgeClient, JudgeClient
from .._config import DEFAULT_RETRY_POLICY, RetryPolicy
from .._exceptions import APIResponseValidationError, UnprocessableEntityError
from .._models import ScoreItem, ScoreResponse
from ._common import (
    ENV_API_KEY,
    ENV_RUBRIC,
    ENV_URL,
    reference_text,
    score_item,
    setting,
)

__all__ = [
    "AsyncJudgeRewardFunc",
    "JudgeRewardFunc",
    "make_async_reward_func",
    "make_reward_func",
]

logger = logging.getLogger("judge_client")

Rubric = str | Mapping[str, Any]

DEFAULT_MAX_CONCURRENCY = 8
"""Group mode: how many ``/v1/score/group`` calls (one per prompt) are in flight at once."""

UNPAIRED = "unpaired"
"""Group mode: the status of a completion that is alone with its prompt in this call."""

#: keyword arguments TRL adds beside the dataset columns
_TRL_KWARGS = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})


@dataclass(frozen=True, slots=True)
class _Outcome:
    reward: float | None
    status: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Sample:
    index: int
    item: ScoreItem


@dataclass(frozen=True, slots=True)
class _Group:
    """The completions of one prompt (and reference), by their positions in TRL's batch."""

    samples: list[_Sample]

    @property
    def indices(self) -> list[int]:
        return [s.index for s in self.samples]


def _rubric_name(rubric: Rubric) -> str:
    if isinstance(rubric, str):
        return rubric.partition("@")[0]
    return str(rubric.get("name") or "inline")


class _RewardFuncBase:
    """Settings and everything that does no I/O, shared by the sync and async forms."""

    __name__: str

    def __init__(
        self,
        rubric: Rubric | None,
        *,
        base_url: str | None,
        reference_column: str | None,
        rubrics_column: str | None,
        persona_column: str | None,
        name: str | None,
        api_key: str | None,
        timeout_s: float | None,
        cache: bool | None,
        group: bool,
        max_concurrency: int,
        retry: RetryPolicy | None,
        has_client: bool,
    ) -> None:
        resolved = rubric if rubric is not None else setting("rubric", None, ENV_RUBRIC)
        assert resolved is not None  # setting() raises when it is required and missing
        if isinstance(resolved, str) and not resolved:
            raise ValueError("rubric must not be empty")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency!r}")
        if group and rubrics_column is not None:
            raise ValueError("rubrics_column is for pointwise scoring; group mode compares")
        if group and persona_column is not None:
            raise ValueError("persona_column is for simulated_user rubrics; group mode compares")
        self.rubric: Rubric = resolved if isinstance(resolved, str) else dict(resolved)
        # Without a client the URL is needed now: a missing one fails when the trainer is set
        # up, not at the first step.
        self.base_url = setting("base_url", base_url, ENV_URL, required=not has_client)
        self.api_key = setting("api_key", api_key, ENV_API_KEY, required=False)
        self.reference_column = reference_column
        self.rubrics_column = rubrics_column
        self.persona_column = persona_column
        self.timeout_s = timeout_s
        self.cache = cache
        self.group = group
        self.max_concurrency = max_concurrency
        self.retry = retry or DEFAULT_RETRY_POLICY
        self.__name__ = name or f"judge_{_rubric_name(self.rubric)}"
        self._lock = threading.Lock()
        self._warned_unpaired = False

    def __repr__(self) -> str:
        mode = ", group=True" if self.group else ""
        return f"<{type(self).__name__} {self.__name__}: rubric={self.rubric!r}{mode}>"

    # -- pickling: settings only, never a connection ---------------------------------

    def _has_given_client(self) -> bool:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        if self._has_given_client():
            raise TypeError(
                f"{self.__name__} wraps the client passed as client= and cannot be pickled; "
                "build it with base_url= (and api_key=) instead"
            )
        state = dict(self.__dict__)
        for key in ("_lock", "_client", "_loop"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- from TRL's arguments to what to judge ----------------------------------------

    def _column(self, n: int, kwargs: Mapping[str, Any], column: str, what: str) -> list[Any]:
        if column not in kwargs:
            columns = sorted(k for k in kwargs if k not in _TRL_KWARGS)
            raise ValueError(
                f"{self.__name__}: {what} {column!r} is not a dataset column TRL "
                f"passed; the columns are {columns}"
            )
        values = list(kwargs[column])
        if len(values) != n:
            raise ValueError(
                f"{self.__name__}: column {column!r} has {len(values)} values for {n} completions"
            )
        return values

    def _references(self, n: int, kwargs: Mapping[str, Any]) -> list[str | None]:
        column = self.reference_column
        if column is None:
            return [None] * n
        return [reference_text(v) for v in self._column(n, kwargs, column, "reference_column")]

    def _rubrics(self, n: int, kwargs: Mapping[str, Any]) -> list[Any]:
        column = self.rubrics_column
        return [None] * n if column is None else self._column(n, kwargs, column, "rubrics_column")

    def _personas(self, n: int, kwargs: Mapping[str, Any]) -> list[Any]:
        column = self.persona_column
        return [None] * n if column is None else self._column(n, kwargs, column, "persona_column")

    def _samples(
        self, prompts: Sequence[Any], completions: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[list[_Sample], dict[int, _Outcome]]:
        """What to send, and the outcome of each item that cannot even be sent (a non-text
        content part, a message without a role): those are ``invalid_input`` on their own."""
        if len(prompts) != len(completions):
            raise ValueError(
                f"{self.__name__}: {len(prompts)} prompts for {len(completions)} completions"
            )
        references = self._references(len(prompts), kwargs)
        criteria = self._rubrics(len(prompts), kwargs)
        personas = self._personas(len(prompts), kwargs)
        samples: list[_Sample] = []
        local: dict[int, _Outcome] = {}
        for i, (prompt, completion, reference, rubrics, persona) in enumerate(
            zip(prompts, completions, references, criteria, personas, strict=True)
        ):
            item = score_item(i, prompt, completion, reference, rubrics, persona)
            if isinstance(item, str):
                local[i] = _Outcome(None, "invalid_input", item)
                continue
            samples.append(_Sample(i, item))
        return samples, local

    @staticmethod
    def _pointwise_outcomes(response: ScoreResponse, samples: list[_Sample]) -> dict[int, _Outcome]:
        return {
            sample.index: _Outcome(
                result.reward if result.ok else None, result.status, result.error
            )
            for sample, result in zip(samples, response.results, strict=True)
        }

    def _groups(self, samples: list[_Sample]) -> tuple[list[_Group], dict[int, _Outcome]]:
        """Samples grouped by equal prompt and reference, in order of first appearance; a
        sample alone with its prompt cannot be compared and is ``unpaired``."""
        by_key: dict[str, list[_Sample]] = {}
        for sample in samples:
            item = sample.item
            prompt = item.model_dump(mode="json")["prompt"]
            key = json.dumps([prompt, item.reference], sort_keys=True, ensure_ascii=False)
            by_key.setdefault(key, []).append(sample)
        groups: list[_Group] = []
        unpaired: dict[int, _Outcome] = {}
        for members in by_key.values():
            if len(members) >= 2:
                groups.append(_Group(members))
                continue
            unpaired[members[0].index] = _Outcome(
                None, UNPAIRED, "the only completion of its prompt in this call"
            )
        if unpaired and not self._warned_unpaired:
            self._warned_unpaired = True
            logger.warning(
                "%s: %d completion(s) had no other completion of their prompt in this call and "
                "got no reward; on several processes make per_device_train_batch_size * "
                "steps_per_generation a multiple of num_generations so groups are not split",
                self.__name__,
                len(unpaired),
            )
        return groups, unpaired

    @staticmethod
    def _group_outcomes(body: Mapping[str, Any], group: _Group) -> dict[int, _Outcome]:
        """Win rates from a ``/v1/score/group`` answer, by position in TRL's batch."""
        size = len(group.samples)
        results = body.get("results")
        if not isinstance(results, list) or len(results) != size:
            raise APIResponseValidationError(
                f"score/group answered {len(results) if isinstance(results, list) else 'no'} "
                f"results for {size} responses",
                body=body,
            )
        out: dict[int, _Outcome] = {}
        for result in results:
            index = result.get("index") if isinstance(result, Mapping) else None
            if (
                not isinstance(index, int)
                or isinstance(index, bool)
                or not 0 <= index < size
                or group.samples[index].index in out
            ):
                raise APIResponseValidationError(
                    f"score/group result with a bad or repeated index: {result!r}", body=body
                )
            status = str(result.get("status"))
            reward = result.get("reward")
            ok = status == "ok" and isinstance(reward, int | float) and not isinstance(reward, bool)
            error = result.get("error")
            out[group.samples[index].index] = _Outcome(
                float(reward) if ok else None, status, None if error is None else str(error)
            )
        return out

    def _opts(self) -> dict[str, Any]:
        """The per-call options both client kinds take."""
        return {"timeout_s": self.timeout_s, "cache": self.cache}

    @staticmethod
    def _group_args(group: _Group) -> tuple[Any, list[str], str | None]:
        """``score_group``'s prompt, responses and reference for one prompt's group."""
        first = group.samples[0].item
        return first.prompt, [s.item.response for s in group.samples], first.reference

    @staticmethod
    def _invalid_group(group: _Group, exc: UnprocessableEntityError) -> dict[int, _Outcome]:
        """The server refused the group's shared prompt: only this group fails."""
        if exc.param != "prompt":
            raise exc
        return {i: _Outcome(None, "invalid_input", exc.message) for i in group.indices}

    def _finish(
        self, n: int, outcomes: dict[int, _Outcome], kwargs: Mapping[str, Any]
    ) -> list[float | None]:
        ordered = [outcomes[i] for i in range(n)]
        failed = [o for o in ordered if o.reward is None]
        if failed:
            by_status = Counter(o.status for o in failed)
            logger.info(
                "%s: %d of %d completions got no reward (%s); first error: %s",
                self.__name__,
                len(failed),
                n,
                ", ".join(f"{status} {count}" for status, count in sorted(by_status.items())),
                next((o.error for o in failed if o.error), None),
            )
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and n:
            log_metric(f"rewards/{self.__name__}/failed_frac", len(failed) / n)
        log_extra = kwargs.get("log_extra")
        if callable(log_extra):
            log_extra(f"{self.__name__}/status", [o.status for o in ordered])
        return [o.reward for o in ordered]


class JudgeRewardFunc(_RewardFuncBase):
    """A TRL reward function backed by judge-server; build it with ``make_reward_func``."""

    def __init__(self, rubric: Rubric | None, *, client: JudgeClient | None, **kw: Any) -> None:
        super().__init__(rubric, has_client=client is not None, **kw)
        self._given = client
        self._client: JudgeClient | None = None

    def _has_given_client(self) -> bool:
        return self._given is not None

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._given = None
        self._client = None

    @property
    def client(self) -> JudgeClient:
        """The client in use: the one passed as ``client=``, else one built on first use."""
        if self._given is not None:
            return self._given
        with self._lock:
            if self._client is None:
                assert self.base_url is not None
                self._client = JudgeClient(self.base_url, api_key=self.api_key, retry=self.retry)
            return self._client

    def close(self) -> None:
        """Close the client this function built (a client passed in is the caller's)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        samples, outcomes = self._samples(prompts, completions, kwargs)
        if samples and not self.group:
            response = self.client.score(self.rubric, [s.item for s in samples], **self._opts())
            outcomes.update(self._pointwise_outcomes(response, samples))
        elif samples:
            groups, unpaired = self._groups(samples)
            outcomes.update(unpaired)
            if len(groups) == 1:
                outcomes.update(self._score_group(groups[0]))
            elif groups:
                with ThreadPoolExecutor(min(self.max_concurrency, len(groups))) as pool:
                    for scored in pool.map(self._score_group, groups):
                        outcomes.update(scored)
        return self._finish(len(prompts), outcomes, kwargs)

    def _score_group(self, group: _Group) -> dict[int, _Outcome]:
        try:
            body = self.client.score_group(self.rubric, *self._group_args(group), **self._opts())
        except UnprocessableEntityError as exc:
            return self._invalid_group(group, exc)
        return self._group_outcomes(body, group)


class AsyncJudgeRewardFunc(_RewardFuncBase):
    """The async form (``async def __call__``); build it with ``make_async_reward_func``."""

    def __init__(
        self, rubric: Rubric | None, *, client: AsyncJudgeClient | None, **kw: Any
    ) -> None:
        super().__init__(rubric, has_client=client is not None, **kw)
        self._given = client
        self._client: AsyncJudgeClient | None = None
        self._loop: weakref.ReferenceType[asyncio.AbstractEventLoop] | None = None

    def _has_given_client(self) -> bool:
        return self._given is not None

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._given = None
        self._client = None
        self._loop = None

    def _client_for_loop(self) -> AsyncJudgeClient:
        """The client passed in, else this event loop's client (an ``httpx.AsyncClient``
        cannot be shared between loops)."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._client is None or self._loop is None or self._loop() is not loop:
                assert self.base_url is not None
                self._client = AsyncJudgeClient(
                    self.base_url, api_key=self.api_key, retry=self.retry
                )
                self._loop = weakref.ref(loop)
            return self._client

    async def aclose(self) -> None:
        """Close the client this function built, from the loop it was used on."""
        with self._lock:
            client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.aclose()

    async def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        samples, outcomes = self._samples(prompts, completions, kwargs)
        client = self._client_for_loop()
        if samples and not self.group:
            response = await client.score(self.rubric, [s.item for s in samples], **self._opts())
            outcomes.update(self._pointwise_outcomes(response, samples))
        elif samples:
            groups, unpaired = self._groups(samples)
            outcomes.update(unpaired)
            semaphore = asyncio.Semaphore(self.max_concurrency)

            async def bounded(group: _Group) -> dict[int, _Outcome]:
                async with semaphore:
                    return await self._score_group(client, group)

            for scored in await asyncio.gather(*(bounded(g) for g in groups)):
                outcomes.update(scored)
        return self._finish(len(prompts), outcomes, kwargs)

    async def _score_group(self, client: AsyncJudgeClient, group: _Group) -> dict[int, _Outcome]:
        try:
            body = await client.score_group(self.rubric, *self._group_args(group), **self._opts())
        except UnprocessableEntityError as exc:
            return self._invalid_group(group, exc)
        return self._group_outcomes(body, group)


def make_reward_func(
    rubric: Rubric | None = None,
    *,
    base_url: str | None = None,
    reference_column: str | None = None,
    rubrics_column: str | None = None,
    persona_column: str | None = None,
    name: str | None = None,
    api_key: str | None = None,
    timeout_s: float | None = None,
    cache: bool | None = None,
    group: bool = False,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    retry: RetryPolicy | None = None,
    client: JudgeClient | None = None,
) -> JudgeRewardFunc:
    """A TRL reward function: ``f(prompts, completions, **columns) -> list[float | None]``.

    ``rubric``: a rubric name, ``"name@version"`` or an inline definition (default: the
    environment variable ``JUDGE_RUBRIC``). ``base_url`` / ``api_key``: the server (default:
    ``JUDGE_SERVER_URL`` / ``JUDGE_API_KEY``); or pass a configured ``client``.
    ``reference_column``: the dataset column sent as each item's ``reference``;
    ``rubrics_column``: the column of each sample's own criteria (HealthBench's ``rubrics``), for
    a rubric that takes them such as ``healthbench``; ``persona_column``: the column naming each
    sample's persona (``metadata.persona``) for a ``simulated_user`` rubric. ``name``: the
    ``__name__`` TRL logs the reward under (default ``judge_<rubric name>``). ``timeout_s``: the
    judge's per-item deadline; ``cache``: False bypasses the server's result cache. ``group``:
    score each prompt's completions together through ``/v1/score/group`` (a pairwise rubric;
    rewards are win rates), up to ``max_concurrency`` prompts at once. ``retry``: the client's
    retry policy for a server that is down or busy, after which the call raises.
    """
    return JudgeRewardFunc(
        rubric,
        client=client,
        base_url=base_url,
        reference_column=reference_column,
        rubrics_column=rubrics_column,
        persona_column=persona_column,
        name=name,
        api_key=api_key,
        timeout_s=timeout_s,
        cache=cache,
        group=group,
        max_concurrency=max_concurrency,
        retry=retry,
    )


def make_async_reward_func(
    rubric: Rubric | None = None,
    *,
    base_url: str | None = None,
    reference_column: str | None = None,
    rubrics_column: str | None = None,
    persona_column: str | None = None,
    name: str | None = None,
    api_key: str | None = None,
    timeout_s: float | None = None,
    cache: bool | None = None,
    group: bool = False,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    retry: RetryPolicy | None = None,
    client: AsyncJudgeClient | None = None,
) -> AsyncJudgeRewardFunc:
    """``make_reward_func``, async: TRL 1.x awaits it on its own event-loop thread, at the same
    time as its other async reward functions (``asyncio.gather``)."""
    return AsyncJudgeRewardFunc(
        rubric,
        client=client,
        base_url=base_url,
        reference_column=reference_column,
        rubrics_column=rubrics_column,
        persona_column=persona_column,
        name=name,
        api_key=api_key,
        timeout_s=timeout_s,
        cache=cache,
        group=group,
        max_concurrency=max_concurrency,
        retry=retry,
    )
