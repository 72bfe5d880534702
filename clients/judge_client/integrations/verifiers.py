"""verifiers adapter: judge-server rewards as a verifiers reward function.

verifiers 0.4.0 (``import verifiers.v1 as vf``) scores a rollout with its ``Task``'s rewards;
plug the judge into any task from the run's config, no code ("Plugging hooks via config" in
``docs/v1/tasksets.md``, ``PrimeIntellect-ai/verifiers`` at commit
a60a606ecc4d309247edf9ff92c3eabca362781f)::

    [env.taskset.task.rewards]
    judge = { fn = "judge_client.integrations.verifiers:judge", weight = 1.0 }

(``judge`` reads ``JUDGE_SERVER_URL`` / ``JUDGE_RUBRIC``), or in code with a chosen rubric::

    from judge_client.integrations.verifiers import make_reward_func

    class QATask(vf.Task[QAData]):
        helpfulness = vf.reward(make_reward_func("helpfulness", name="helpfulness"))

The same object is also a reward function of the classic API (``vf.Rubric(funcs=[...],
weights=[...])``, verifiers 0.3.x and earlier, ``verifiers.legacy`` later).

The contract, read from the verifiers 0.4.0 wheel (``verifiers/v1``):

- ``task.py`` ``Task.score``: the reward functions are the task's ``@vf.reward`` attributes
  plus ``TaskConfig.rewards`` (``utils/loaders.py`` ``plugged_fn``: ``pkg.module:function``,
  wrapped under the configured name); each is called with the arguments it names out of
  ``task`` (the ``TaskData``), ``trace`` and ``runtime`` (``utils/decorators.py`` ``invoke``),
  all of them at once through ``asyncio.gather`` (so it must return an awaitable), and its
  value is recorded as ``trace.rewards[name] = Reward(score=float(value), weight)``
  (``trace.py`` ``record_reward``). The whole scoring runs inside ``boundary(TaskError, ...)``.
- A ``None`` cannot be recorded: ``float(None)`` raises, which becomes a ``TaskError``. A NaN is
  recorded as it is and poisons ``trace.reward`` (the weighted sum).
- ``rollout.py`` ``Rollout.close`` / ``errors.py``: an error raised while scoring is recorded on
  the trace (``trace.errors``, ``stop_condition`` ``task_error``, ``trace.ok`` False) and the
  reward stays ``None`` ("scoring didn't run"); a failed episode is retried when a
  ``RetryConfig`` rule matches (``utils/retries.py`` ``run_episode_with_retry``) and redone by
  ``--resume`` (``env.py`` ``Env.complete``). ``Env.finalize``'s contract says it in one line:
  "A raise fails the episode (the retryable unit) — validate strictly, never record a guess."

Failure policy, verifiers 0.4.0: a rollout the judge could not score **raises**
``JudgeScoreError`` (status and error in the message), so verifiers marks the trace failed
instead of training on a guess; to retry such rollouts set the agent's or env's ``retries`` to
``RetryConfig(rules=[RetryRule(type="TaskError", message="judge-server", max_retries=2)])``.
Every call, failed or not, is written to ``trace.info["judge_server"][name]`` (status, error,
rubric, rubric_version, model) and ``trace.metrics[name + "_ok"]`` (1.0 or 0.0).
``on_failure="fill"`` records the fill value (``JUDGE_FILL_VALUE``, default 0.0) instead,
flagged the same way. A server that cannot be
reached, or answers 429/5xx, is retried with the client's ``RetryPolicy`` and then raises.

Classic ``vf.Rubric`` (read from verifiers 0.3.1, ``verifiers/legacy/rubrics/rubric.py``
``_call_individual_reward_func``): the function is called with the keyword arguments it names
(all of them, since it takes ``**kwargs``: ``prompt``, ``completion``, ``answer``, ``state``,
``info``, ...), sync or async, and any exception it raises is logged and becomes a reward of
0.0. Raising would only hide the failure behind that log line, so there the default is the fill
value, flagged in ``state["judge_server"][name]``.

The prompt is the task's ``prompt`` (with its ``system_prompt``), or the classic ``prompt``;
the response is ``trace.last_reply``, or the classic ``completion``'s assistant turns; the
reference is the task field ``reference_field`` (default ``answer``), or the classic
``answer``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ._common import (
    ENV_API_KEY,
    ENV_RUBRIC,
    ENV_URL,
    completion_text,
    fill_value,
    reference_text,
    setting,
)
from ._scoring import Sample, Target, Verdict, required, score_async

__all__ = ["JudgeReward", "JudgeScoreError", "judge", "make_reward_func"]

OnFailure = Literal["raise", "fill"]

INFO_KEY = "judge_server"
"""Where each call's outcome is written: ``trace.info`` (v1) or ``state`` (classic)."""


class JudgeScoreError(RuntimeError):
    """The judge could not score this rollout (its status is not ``ok``)."""

    def __init__(self, name: str, verdict: Verdict) -> None:
        super().__init__(
            f"judge-server could not score the rollout for {name} (rubric "
            f"{verdict.rubric}@{verdict.rubric_version or '?'}): {verdict.status}: "
            f"{verdict.error or 'no detail'}"
        )
        self.verdict = verdict


def _plain(value: Any) -> Any:
    """Pydantic messages (verifiers' ``UserMessage``, ...) as dicts, lists element-wise."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return value


def _task_prompt(task: Any) -> Any:
    """A ``TaskData``'s prompt as text or messages, its ``system_prompt`` first."""
    prompt = _plain(getattr(task, "prompt", None))
    system = getattr(task, "system_prompt", None)
    if prompt is None:
        prompt = ""
    if not system:
        return prompt
    user = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    return [{"role": "system", "content": system}, *user]


class JudgeReward:
    """A verifiers reward function backed by judge-server; see the module docstring.

    A callable object rather than a function, so that it can sit on a ``Task`` class
    (``vf.reward(JudgeReward(...))``) without being bound to the task instance, and pickles
    with its settings only.
    """

    __name__: str

    def __init__(
        self,
        rubric: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        name: str | None = None,
        reference_field: str | None = "answer",
        on_failure: OnFailure | None = None,
        fill_value: float | None = None,
        timeout_s: float | None = None,
    ) -> None:
        if rubric == "":
            raise ValueError("rubric must not be empty")
        if on_failure not in (None, "raise", "fill"):
            raise ValueError(f"on_failure must be 'raise' or 'fill', got {on_failure!r}")
        self.rubric = rubric  # None: JUDGE_RUBRIC at call time
        self.base_url = base_url  # None: JUDGE_SERVER_URL at call time
        self.api_key = api_key
        self.reference_field = reference_field
        self.on_failure = on_failure
        self.fill_value = fill_value
        self.timeout_s = timeout_s
        self.__name__ = name or (f"judge_{rubric.partition('@')[0]}" if rubric else "judge")
        self.__qualname__ = self.__name__
        self.__doc__ = f"judge-server reward ({rubric or '$' + ENV_RUBRIC})"

    def __repr__(self) -> str:
        return f"<JudgeReward {self.__name__}: rubric={self.rubric or '$' + ENV_RUBRIC}>"

    def _target(self) -> Target:
        rubric = required("rubric", self.rubric, ENV_RUBRIC)
        url = required("base_url", self.base_url, ENV_URL)
        api_key = setting("api_key", self.api_key, ENV_API_KEY, required=False)
        return Target(url, api_key, rubric)

    async def _judge(self, prompt: Any, response: str, reference: Any) -> Verdict:
        sample = Sample(self._target(), prompt, response, reference_text(reference))
        (verdict,) = await score_async(
            [sample], fill_with=fill_value(self.fill_value), timeout_s=self.timeout_s
        )
        return verdict

    def _record(self, verdict: Verdict) -> dict[str, Any]:
        return {
            "ok": verdict.ok,
            "status": verdict.status,
            "error": verdict.error,
            "reward": verdict.score if verdict.ok else None,
            "rubric": verdict.rubric,
            "rubric_version": verdict.rubric_version,
            "model": verdict.model,
            "cached": verdict.cached,
        }

    async def __call__(
        self,
        task: Any = None,
        trace: Any = None,
        *,
        prompt: Any = None,
        completion: Any = None,
        answer: Any = None,
        state: Any = None,
        **kwargs: Any,
    ) -> float:
        if trace is not None:
            return await self._score_trace(task, trace)
        if completion is not None:
            return await self._score_classic(prompt, completion, answer, state)
        raise TypeError(
            f"{self.__name__} needs verifiers' (task, trace) or the classic (prompt, completion)"
        )

    async def _score_trace(self, task: Any, trace: Any) -> float:
        """verifiers 0.4.0: ``Task.score`` passes the ``TaskData`` and the ``Trace``."""
        if task is None:
            task = trace.task.data
        reference = getattr(task, self.reference_field, None) if self.reference_field else None
        verdict = await self._judge(_task_prompt(task), str(trace.last_reply or ""), reference)
        trace.info.setdefault(INFO_KEY, {})[self.__name__] = self._record(verdict)
        trace.record_metric(f"{self.__name__}_ok", 1.0 if verdict.ok else 0.0)
        if not verdict.ok and (self.on_failure or "raise") == "raise":
            raise JudgeScoreError(self.__name__, verdict)
        return verdict.score

    async def _score_classic(self, prompt: Any, completion: Any, answer: Any, state: Any) -> float:
        """Classic ``vf.Rubric``: ``prompt``/``completion`` as text or message lists."""
        response = completion_text(_plain(completion))
        reference = answer if self.reference_field else None
        verdict = await self._judge(_plain(prompt), response, reference)
        if isinstance(state, Mapping) and hasattr(state, "setdefault"):
            state.setdefault(INFO_KEY, {})[self.__name__] = self._record(verdict)
        if not verdict.ok and self.on_failure == "raise":
            raise JudgeScoreError(self.__name__, verdict)
        return verdict.score


def make_reward_func(
    rubric: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    name: str | None = None,
    reference_field: str | None = "answer",
    on_failure: OnFailure | None = None,
    fill_value: float | None = None,
    timeout_s: float | None = None,
) -> JudgeReward:
    """A reward function judged by ``rubric`` (``"name"`` or ``"name@version"``) on the server at
    ``base_url``; either left out is read from ``JUDGE_RUBRIC`` / ``JUDGE_SERVER_URL`` at call
    time. Its name (the reward's key in ``trace.rewards``) is ``name``, else
    ``judge_<rubric>``. ``reference_field`` is the task field (classic: ``answer``) sent as the
    reference answer, ``None`` for none. ``on_failure``: ``"raise"`` (the default with
    verifiers 0.4.0) or ``"fill"`` (the default with a classic ``vf.Rubric``)."""
    return JudgeReward(
        rubric,
        base_url=base_url,
        api_key=api_key,
        name=name,
        reference_field=reference_field,
        on_failure=on_failure,
        fill_value=fill_value,
        timeout_s=timeout_s,
    )


judge = JudgeReward()
"""The configured reward: rubric and server from ``JUDGE_RUBRIC`` / ``JUDGE_SERVER_URL``."""
