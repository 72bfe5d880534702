"""Rubric schema. A rubric is data: YAML on disk, JSON over the wire, validated here.

Its version is a hash of its normalised content (validated, defaults dropped, keys sorted), so
formatting, comments, key order and spelled-out defaults never change it; any change of meaning
does.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from judge_server.rubrics.template import KNOWN_FIELDS, TemplateError, check_template

VERSION_CHARS = 12
NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"

Mode = Literal[
    "pointwise",
    "verdict",
    "rubric",
    "composite",
    "pairwise",
    "verify",
    "likelihood",
    "reward_model",
]
#: extra placeholders each mode may use, beyond {prompt}, {response}, {reference}, {metadata.*}
MODE_FIELDS: dict[str, frozenset[str]] = {
    "rubric": frozenset({"criterion", "criteria"}),
    "pairwise": frozenset({"response_a", "response_b"}),
}
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$"


class RubricError(ValueError):
    """A rubric definition is invalid. The message says which field and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoreScale(_Strict):
    """Integer scores the judge answers with; each must be one token of the judge model."""

    min: int = Field(1, ge=0, le=9)
    max: int = Field(9, ge=1, le=9)

    @model_validator(mode="after")
    def _ordered(self) -> ScoreScale:
        if self.max <= self.min:
            raise ValueError(f"scores.max ({self.max}) must exceed scores.min ({self.min})")
        return self

    @property
    def labels(self) -> list[int]:
        return list(range(self.min, self.max + 1))


class VerdictTokens(_Strict):
    """Surface forms of a yes and a no; the probabilities of the forms of each side are summed."""

    yes: tuple[str, ...] = ("Yes", "yes", "YES")
    no: tuple[str, ...] = ("No", "no", "NO")

    @model_validator(mode="after")
    def _disjoint(self) -> VerdictTokens:
        if not self.yes or not self.no:
            raise ValueError("verdict.yes and verdict.no each need at least one token")
        if set(self.yes) & set(self.no):
            raise ValueError("verdict.yes and verdict.no share a token")
        return self


class PairTokens(_Strict):
    """Pairwise verdict tokens: surface forms meaning 'A is better' and 'B is better'."""

    a: tuple[str, ...] = ("A",)
    b: tuple[str, ...] = ("B",)

    @model_validator(mode="after")
    def _disjoint(self) -> PairTokens:
        if not self.a or not self.b or set(self.a) & set(self.b):
            raise ValueError("pair.a and pair.b need distinct, non-empty token lists")
        return self


class Likelihood(_Strict):
    """Likelihood rewards: how probable the judge model finds a target text after the response."""

    target: Literal["reference", "follow_up"] = Field(
        "reference",
        description="reference: the reference answer, after the response and `cue`; follow_up: "
        "a next user turn such as 'Thanks, that solved it.'",
    )
    cue: str = Field(
        "\n\nSo the final answer is: ",
        description="reference target: text between the response and the reference.",
    )
    follow_up: str = "Thanks, that solved my problem."
    normalise: bool = Field(
        False,
        description="Subtract the target's log-likelihood without the response (what the "
        "response adds), reward = sigmoid(difference x scale).",
    )
    scale: float = Field(1.0, gt=0, description="normalise: sigmoid temperature.")


class RewardModelSpec(_Strict):
    """reward_model mode: a scalar (Bradley-Terry) reward model scores the conversation."""

    model: str = Field(
        min_length=1,
        description="A reward model registered with the server (--reward-model NAME=PATH).",
    )
    shaping: Literal["sigmoid"] = Field(
        "sigmoid",
        description="reward = sigmoid(r); the raw logit r is always in details.score.",
    )
    center_on_reference: bool = Field(
        False,
        description="reward = sigmoid(r - r_ref), r_ref the reward of the item's reference "
        "as the response (items without a reference get invalid_input).",
    )


class Reasoning(_Strict):
    """Reasoning-first judging: generate the reasoning, then read the verdict token's
    probabilities in a second step that continues the same conversation (prefix-cached)."""

    enabled: bool = False
    max_tokens: int = Field(256, ge=1, le=4096)
    verdict_prompt: str | None = Field(
        None,
        description="The user turn that asks for the final verdict after the reasoning; "
        "a default per mode is used when empty.",
    )


class Criterion(_Strict):
    """One thing the judge checks, answered yes/no in its own judge call."""

    id: str = Field(pattern=ID_PATTERN, description="Stable id, shown in the details.")
    text: str = Field(min_length=1, description="What must hold, as a yes/no statement.")
    weight: float = Field(
        1.0, description="Points when met; negative for a pitfall (subtracts when met)."
    )
    kind: Literal["principle", "hard_rule"] = Field(
        "principle",
        description="A hard_rule that is not met caps the reward at aggregation.hard_rule_floor.",
    )

    @model_validator(mode="after")
    def _nonzero(self) -> Criterion:
        if self.weight == 0:
            raise ValueError(f"criterion {self.id!r} has weight 0; remove it instead")
        if self.kind == "hard_rule" and self.weight < 0:
            raise ValueError(f"hard rule {self.id!r} must have a positive weight")
        return self


class Aggregation(_Strict):
    """How per-criterion (rubric mode) or per-component (composite mode) scores combine."""

    method: Literal["weighted", "holistic", "min", "mean"] = Field(
        "weighted",
        description="rubric mode: weighted (one verdict per criterion) or holistic (one call "
        "scoring all criteria); composite mode: weighted, min or mean.",
    )
    hard_rule_floor: float = Field(
        0.0, ge=0, le=1, description="Reward cap when any hard rule is not met."
    )
    threshold: float = Field(
        0.5, gt=0, lt=1, description="P(met) at or above which a criterion counts as met."
    )


class Shaping(_Strict):
    """A last transform of the reward, clipped to [0, 1]."""

    kind: Literal["none", "power", "threshold", "affine"] = "none"
    exponent: float = Field(1.0, gt=0, description="power: reward ** exponent")
    threshold: float = Field(0.5, ge=0, le=1, description="threshold: 1 if reward >= t else 0")
    scale: float = Field(1.0, description="affine: scale * reward + offset")
    offset: float = 0.0

    def apply(self, reward: float) -> float:
        if self.kind == "power":
            reward = reward**self.exponent
        elif self.kind == "threshold":
            reward = 1.0 if reward >= self.threshold else 0.0
        elif self.kind == "affine":
            reward = self.scale * reward + self.offset
        return min(1.0, max(0.0, reward))


CheckKind = Literal["regex_must", "regex_must_not", "valid_json", "length_penalty"]


class Component(_Strict):
    """One part of a composite: another rubric, or a deterministic check."""

    rubric: str | None = Field(
        None, description="A rubric name (floating: its live version) or name@version (pinned)."
    )
    check: CheckKind | None = None
    weight: float = Field(1.0, gt=0)
    pattern: str | None = Field(None, description="regex checks: searched in the response.")
    max_length: int | None = Field(
        None, ge=1, description="length_penalty: the length at which the penalty is full."
    )
    overlong_buffer: int = Field(
        0,
        ge=0,
        description="length_penalty: the penalty ramps linearly over this many units "
        "before max_length (a soft overlong ramp); 0 means a hard cut at max_length.",
    )
    unit: Literal["chars", "words", "tokens"] = "tokens"

    @model_validator(mode="after")
    def _one_kind(self) -> Component:
        if (self.rubric is None) == (self.check is None):
            raise ValueError("a component needs exactly one of 'rubric' or 'check'")
        if self.check in ("regex_must", "regex_must_not"):
            if not self.pattern:
                raise ValueError(f"{self.check} needs a 'pattern'")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.pattern!r}: {exc}") from exc
        if self.check == "length_penalty":
            if self.max_length is None:
                raise ValueError("length_penalty needs 'max_length'")
            if self.overlong_buffer >= self.max_length:
                raise ValueError("overlong_buffer must be smaller than max_length")
        return self

    @property
    def label(self) -> str:
        return self.rubric if self.rubric is not None else str(self.check)


class Rubric(_Strict):
    """One judge: what it asks, how it reads the answer, how the answer becomes a reward."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    mode: Mode = Field(
        description="pointwise (score tokens), verdict (P(yes)), rubric (one verdict per "
        "criterion, aggregated), composite (other rubrics and deterministic checks), pairwise "
        "(P(A better than B)), verify (reference answer checking), likelihood (log-probability "
        "of a target text) or reward_model (a scalar reward model's logit)."
    )
    system: str | None = Field(None, description="Optional system message for the judge.")
    template: str | None = Field(
        None,
        min_length=1,
        description="The judge's user message. Placeholders {prompt}, {response}, {reference}, "
        "{criterion} (rubric mode, must come last), {criteria} (holistic), {metadata.KEY} are "
        "filled in one pass (braces in user text are safe).",
    )
    scores: ScoreScale = Field(default_factory=ScoreScale)
    verdict: VerdictTokens = Field(default_factory=VerdictTokens)
    reasoning: Reasoning = Field(default_factory=Reasoning)
    pair: PairTokens = Field(default_factory=PairTokens)
    both_orders: bool = Field(
        True, description="pairwise: judge (A, B) and (B, A) and average (position debiasing)."
    )
    likelihood: Likelihood = Field(default_factory=Likelihood)
    reward_model: RewardModelSpec | None = Field(
        None, description="reward_model mode: which reward model, and how its logit is shaped."
    )
    criteria: tuple[Criterion, ...] = Field(default=(), description="rubric mode: what to check.")
    components: tuple[Component, ...] = Field(default=(), description="composite mode: parts.")
    aggregation: Aggregation = Field(default_factory=Aggregation)
    shaping: Shaping = Field(default_factory=Shaping)
    requires_reference: bool = Field(
        False, description="Items without a reference get status invalid_input."
    )
    min_valid_mass: float = Field(
        1e-4,
        ge=0,
        le=1,
        description="If the judge puts less probability than this on the valid tokens, the "
        "verdict is a judge_error, not a score.",
    )

    @model_validator(mode="after")
    def _check(self) -> Rubric:
        if self.mode == "composite":
            return self._check_composite()
        if self.mode == "reward_model" or self.reward_model is not None:
            return self._check_reward_model()
        if self.template is None:
            raise ValueError(f"mode {self.mode} needs a template")
        if self.components:
            raise ValueError("components are only meaningful in composite mode")
        allowed = KNOWN_FIELDS | MODE_FIELDS.get(self.mode, frozenset())
        try:
            check_template(self.template, frozenset(allowed))
            if self.system:
                check_template(self.system, frozenset(allowed - {"criterion"}))
        except TemplateError as exc:
            raise ValueError(str(exc)) from exc
        if self.mode == "rubric":
            self._check_criteria()
        if self.mode == "pairwise":
            for needed in ("{response_a}", "{response_b}"):
                if needed not in self.template:
                    raise ValueError(f"pairwise mode needs {needed} in the template")
        if self.mode == "verify" and "{reference}" not in self.template:
            raise ValueError("verify mode needs {reference} in the template")
        if self.mode != "rubric" and self.criteria:
            raise ValueError("criteria are only meaningful in rubric mode")
        if self.requires_reference and "{reference}" not in self.template:
            raise ValueError("requires_reference is set but the template never uses {reference}")
        return self

    def _check_criteria(self) -> None:
        assert self.template is not None
        if not self.criteria:
            raise ValueError("rubric mode needs at least one criterion")
        ids = [c.id for c in self.criteria]
        if len(set(ids)) != len(ids):
            raise ValueError(
                f"duplicate criterion ids: {sorted({i for i in ids if ids.count(i) > 1})}"
            )
        if not any(c.weight > 0 for c in self.criteria):
            raise ValueError("rubric mode needs at least one criterion with a positive weight")
        method = self.aggregation.method
        if method == "weighted":
            at = self.template.find("{criterion}")
            if at < 0:
                raise ValueError("weighted rubric mode needs {criterion} in the template")
            # The shared part (conversation, response) must come first so vLLM's prefix cache
            # computes it once for all criteria.
            for field in ("{prompt}", "{response}", "{reference}"):
                if self.template.find(field) > at:
                    raise ValueError(f"{field} must come before {{criterion}} in the template")
        elif method == "holistic":
            if "{criteria}" not in self.template:
                raise ValueError("holistic aggregation needs {criteria} in the template")
        else:
            raise ValueError(
                f"aggregation {method!r} is for composite mode; use weighted or holistic"
            )

    def _check_reward_model(self) -> Rubric:
        if self.mode != "reward_model":
            raise ValueError("reward_model is only meaningful in reward_model mode")
        if self.reward_model is None:
            raise ValueError("reward_model mode needs reward_model: {model: NAME}")
        # The reward model renders the conversation with its own chat template.
        if self.template is not None or self.system is not None:
            raise ValueError("reward_model mode uses no template or system prompt")
        if self.criteria or self.components:
            raise ValueError("reward_model mode takes no criteria or components")
        return self

    def _check_composite(self) -> Rubric:
        if not self.components:
            raise ValueError("composite mode needs at least one component")
        if self.criteria:
            raise ValueError("criteria are only meaningful in rubric mode")
        if self.aggregation.method == "holistic":
            raise ValueError("composite aggregation is weighted, min or mean")
        for comp in self.components:
            if comp.rubric is not None and comp.rubric.partition("@")[0] == self.name:
                raise ValueError("a composite cannot include itself")
        return self

    @property
    def positive_weight(self) -> float:
        return sum(c.weight for c in self.criteria if c.weight > 0)

    @cached_property
    def version(self) -> str:
        # Defaults are left out: spelling a default out changes nothing, and a field added to
        # the schema later does not re-version every existing rubric.
        data = self.model_dump(mode="json", exclude_defaults=True)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:VERSION_CHARS]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @classmethod
    def parse(cls, data: Any, *, source: str = "rubric") -> Rubric:
        """Validate raw data, turning pydantic's report into one readable ``RubricError``."""
        from pydantic import ValidationError

        if not isinstance(data, dict):
            raise RubricError(f"{source}: a rubric must be a mapping, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise RubricError(f"{source}: {problems}") from exc
