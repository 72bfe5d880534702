"""Reading a verdict off the judge model's next-token probabilities.

The prompt ends exactly where the verdict token goes (the start of the judge's answer), so one
forward pass gives the probability of every allowed answer. Probabilities are renormalised over the
valid tokens; the mass that fell on them is kept as a confidence signal. When the verdict follows
generated reasoning, the second step continues the same conversation, so vLLM's prefix cache
reuses everything up to the reasoning.
"""

from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from judge_server.engines.base import ChatMessage, JudgeEngine
from judge_server.judges.items import JudgeFailure
from judge_server.rubrics.reasoning import Reasoning
from judge_server.rubrics.tokens import VerdictTokens


@dataclass(frozen=True)
class VerdictRead:
    distribution: dict[str, float]
    """Label -> probability, renormalised over the valid labels (sums to 1)."""
    valid_mass: float
    """Probability the judge put on any valid token, before renormalising."""
    reasoning: str | None = None
    num_prompt_tokens: int = 0
    num_cached_tokens: int = 0

    @property
    def argmax(self) -> str:
        return max(self.distribution, key=self.distribution.__getitem__)


def label_distribution(
    logprobs: Mapping[str, float], labels: Mapping[str, Sequence[str]]
) -> tuple[dict[str, float], float]:
    """Sum each label's surface forms, then renormalise. Returns (distribution, valid mass).

    A log-probability of -inf is a probability of 0 (the remote engine reports a candidate
    outside the top-N so); NaN or +inf is a broken engine output, and a distribution with no
    mass at all has no verdict in it: both raise ``JudgeFailure``, never read as a score.
    """
    # One pass over the forms (this runs for every item judged), with the lookups bound once.
    raw: dict[str, float] = {}
    broken: dict[str, float] = {}
    get, exp, inf = logprobs.get, math.exp, math.inf
    for label, forms in labels.items():
        p = 0.0
        for form in forms:
            v = get(form)
            if v is None:
                continue
            if v < inf:  # false for NaN too
                p += exp(v)
            else:
                broken[form] = v
        raw[label] = p
    if broken:
        raise JudgeFailure(f"the engine returned non-finite log-probabilities {broken}; no verdict")
    mass = sum(raw.values())
    if not mass > 0.0:
        raise JudgeFailure(
            "the engine put no probability on the valid answers (every candidate's "
            "log-probability is -inf or missing); no verdict"
        )
    return {label: p / mass for label, p in raw.items()}, mass


#: Per engine: labels (with the model's identity) -> the forms that are single tokens of it.
_USABLE: weakref.WeakKeyDictionary[JudgeEngine, OrderedDict[Hashable, dict[str, list[str]]]] = (
    weakref.WeakKeyDictionary()
)
#: Distinct label sets remembered per engine (rubrics x verdict kinds): past it the least
#: recently used is forgotten, so a changed model revision or new rubrics are still remembered.
_USABLE_MAX = 1024


def usable_forms(
    engine: JudgeEngine, labels: Mapping[str, Sequence[str]]
) -> Mapping[str, Sequence[str]]:
    """Keep the surface forms that are single tokens of this model; every label needs one.
    Remembered per engine and model (it is asked for every item judged): read-only."""
    memo = _USABLE.get(engine)
    if memo is None:
        memo = _USABLE.setdefault(engine, OrderedDict())
    forms_of = tuple(labels.items())
    key: Hashable = (engine.model_id, engine.model_revision, forms_of)
    try:  # hashed once, by the lookup (a tuple does not keep its hash)
        known = memo.get(key)
    except TypeError:  # forms given as lists
        key = (engine.model_id, engine.model_revision, tuple((k, tuple(v)) for k, v in forms_of))
        known = memo.get(key)
    if known is not None:
        memo.move_to_end(key)
        return known
    usable: dict[str, list[str]] = {}
    for label, forms in labels.items():
        kept = [f for f in forms if engine.single_token_id(f) is not None]
        if not kept:
            raise JudgeFailure(
                f"none of {list(forms)} is a single token of {engine.model_id}; "
                "the rubric's verdict tokens do not fit this judge model"
            )
        usable[label] = kept
    memo[key] = usable
    if len(memo) > _USABLE_MAX:
        memo.popitem(last=False)
    return usable


async def read_verdict(
    engine: JudgeEngine,
    messages: list[ChatMessage],
    labels: Mapping[str, Sequence[str]],
    *,
    reasoning: Reasoning,
    default_verdict_prompt: str,
    min_valid_mass: float,
) -> VerdictRead:
    forms = usable_forms(engine, labels)
    candidates = [f for fs in forms.values() for f in fs]
    thought: str | None = None
    if reasoning.enabled:
        first = engine.render_chat(messages)
        gen = await engine.generate(first, max_tokens=reasoning.max_tokens)
        thought = gen.text.strip()
        messages = [
            *messages,
            {"role": "assistant", "content": thought},
            {"role": "user", "content": reasoning.verdict_prompt or default_verdict_prompt},
        ]
    prompt = engine.render_chat(messages)
    out = await engine.next_token_logprobs(prompt, candidates)
    distribution, mass = label_distribution(out.logprobs, forms)
    if mass < min_valid_mass:
        raise JudgeFailure(
            f"the judge put only {mass:.2e} probability on valid answers "
            f"(minimum {min_valid_mass:.3g}); no verdict"
        )
    return VerdictRead(
        distribution=distribution,
        valid_mass=mass,
        reasoning=thought,
        num_prompt_tokens=out.num_prompt_tokens,
        num_cached_tokens=out.num_cached_tokens,
    )


class YesNo(Protocol):
    """A rubric that asks the judge yes or no: verdict, verify, and weighted rubric mode."""

    @property
    def verdict(self) -> VerdictTokens: ...
    @property
    def reasoning(self) -> Reasoning: ...
    @property
    def min_valid_mass(self) -> float: ...


async def read_yes_no(
    rubric: YesNo, messages: list[ChatMessage], engine: JudgeEngine
) -> VerdictRead:
    """The rubric's yes/no verdict after ``messages``: distribution keys ``yes`` and ``no``."""
    tokens = rubric.verdict
    return await read_verdict(
        engine,
        messages,
        {"yes": tokens.yes, "no": tokens.no},
        reasoning=rubric.reasoning,
        default_verdict_prompt="Now reply with only the final verdict: Yes or No.",
        min_valid_mass=rubric.min_valid_mass,
    )
