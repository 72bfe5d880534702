"""Scoring for the configured adapters (veRL, slime, verifiers): many samples, each with its
own target (server, key, rubric), into as few ``score`` calls as possible, and back as one
``Verdict`` per sample in the order given.

- Samples are grouped by target; each group is one ``score`` call (one HTTP request up to the
  client's ``chunk_size``, 256 items by default), in the order the groups first appear.
- A sample the client cannot even send (a non-text content part, a message without a role) is
  ``invalid_input`` on its own, without a request: one bad sample never fails the others.
- A failed sample gets the fill value and ``ok`` False (``_common.fill``); the caller decides
  how its trainer shows the flag.
- A server that cannot be reached, or keeps answering 429/5xx, is retried by the client's
  ``RetryPolicy`` and then raises (``APIConnectionError``/``APIStatusError``): never a reward.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Absolute imports: veRL loads an adapter by file path, outside its package.
from judge_client._models import ScoreItem, ScoreResponse
from judge_client.integrations._clients import CLIENTS
from judge_client.integrations._common import (
    Filled,
    fill,
    score_item,
    setting,
)

__all__ = [
    "Sample",
    "Target",
    "Verdict",
    "required",
    "score_async",
    "score_sync",
]


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how one sample is judged."""

    base_url: str
    api_key: str | None
    rubric: str  # "name" or "name@version"

    @property
    def rubric_name(self) -> str:
        return self.rubric.partition("@")[0]


@dataclass(frozen=True, slots=True)
class Sample:
    """One thing to judge, as the trainer gave it."""

    target: Target
    prompt: Any  # text or chat messages
    response: str
    reference: str | None = None
    rubrics: Any = None  # the sample's own criteria, if any (``_common.instance_criteria``)
    persona: Any = None  # a simulated_user rubric's persona, if the sample names one


@dataclass(frozen=True, slots=True)
class Verdict:
    """The reward for one sample, and what to flag it with.

    ``rubric`` / ``rubric_version`` / ``model`` are the server's answer; for a sample that was
    never sent they are the rubric asked for, ``""`` and ``""``.
    """

    filled: Filled
    rubric: str
    rubric_version: str
    model: str
    cached: bool = False

    @property
    def score(self) -> float:
        return self.filled.score

    @property
    def ok(self) -> bool:
        return self.filled.ok

    @property
    def status(self) -> str:
        return self.filled.status

    @property
    def error(self) -> str | None:
        return self.filled.error


def required(name: str, given: Any, env: str) -> str:
    """``_common.setting`` for a setting that must be there: ``given``, else ``$env``, else a
    clear ``ValueError``."""
    value = setting(name, None if given is None else str(given), env)
    if value is None:  # setting() raises first; this narrows the type
        raise ValueError(f"no {name}")
    return value


@dataclass(slots=True)
class _Plan:
    """The samples grouped by target, and the verdicts known without a request."""

    groups: dict[Target, list[tuple[int, ScoreItem]]]
    verdicts: dict[int, Verdict]


def _plan(samples: Sequence[Sample], fill_with: float) -> _Plan:
    groups: dict[Target, list[tuple[int, ScoreItem]]] = {}
    verdicts: dict[int, Verdict] = {}
    for index, sample in enumerate(samples):
        item = score_item(
            index, sample.prompt, sample.response, sample.reference, sample.rubrics, sample.persona
        )
        if isinstance(item, str):
            filled = Filled(fill_with, False, "invalid_input", item)
            verdicts[index] = Verdict(filled, sample.target.rubric_name, "", "")
        else:
            groups.setdefault(sample.target, []).append((index, item))
    return _Plan(groups, verdicts)


def _verdicts(
    response: ScoreResponse, members: list[tuple[int, ScoreItem]], fill_with: float
) -> Mapping[int, Verdict]:
    return {
        index: Verdict(
            fill(result, fill_with),
            response.rubric.name,
            response.rubric.version,
            response.model,
            result.cached,
        )
        for (index, _), result in zip(members, response.results, strict=True)
    }


def _ordered(plan: _Plan, n: int) -> list[Verdict]:
    return [plan.verdicts[i] for i in range(n)]


def score_sync(
    samples: Sequence[Sample], *, fill_with: float, timeout_s: float | None = None
) -> list[Verdict]:
    """Judge ``samples`` with the process's sync clients, one ``score`` call per target."""
    plan = _plan(samples, fill_with)
    for target, members in plan.groups.items():
        client = CLIENTS.sync_client(target.base_url, target.api_key)
        response = client.score(target.rubric, [item for _, item in members], timeout_s=timeout_s)
        plan.verdicts.update(_verdicts(response, members, fill_with))
    return _ordered(plan, len(samples))


async def score_async(
    samples: Sequence[Sample], *, fill_with: float, timeout_s: float | None = None
) -> list[Verdict]:
    """Judge ``samples`` with the running loop's clients; the targets' calls run concurrently."""
    plan = _plan(samples, fill_with)
    targets = list(plan.groups)

    async def one(target: Target) -> ScoreResponse:
        client = CLIENTS.async_client(target.base_url, target.api_key)
        items = [item for _, item in plan.groups[target]]
        return await client.score(target.rubric, items, timeout_s=timeout_s)

    responses = await asyncio.gather(*(one(target) for target in targets))
    for target, response in zip(targets, responses, strict=True):
        plan.verdicts.update(_verdicts(response, plan.groups[target], fill_with))
    return _ordered(plan, len(samples))
