"""What every rubric has, whatever its mode. A rubric is data: YAML on disk, JSON over the wire.

Each mode's module in ``judge_server.judges`` subclasses ``RubricSpec``: it narrows ``mode`` to
its own literal, adds its fields and checks them. Parsing (which subclass to validate raw data
with) belongs to the judges layer, which knows the modes; this layer only declares what a parser
looks like (``RubricParser``), so the registry can be handed one.

A rubric's version is a hash of its normalised content (validated, defaults dropped, keys sorted),
so formatting, comments, key order and spelled-out defaults never change it; any change of
meaning does. A field whose default changed after versions were published is hashed even at its
default (``ALWAYS_VERSIONED``), so a version never means two values.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Any, ClassVar, Literal, Protocol

from pydantic import Field, model_validator

from judge_server.rubrics.reasoning import Reasoning
from judge_server.rubrics.shaping import Shaping
from judge_server.rubrics.strict import StrictModel
from judge_server.rubrics.template import KNOWN_FIELDS, TemplateError, check_template

VERSION_CHARS = 12
# Measured with `judge-server eval --limit 25` on the shipped data and the embedded 135M judge:
# every working judgment put at least 0.0195 on its valid answers (digits; yes/no 0.44, A/B
# 0.028, criteria 0.0625), while a judge whose prompt never asks for the answer put a median of
# 0.005-0.01 there (min 0.00025). The old 1e-4 let all of those through as scores; 0.01 keeps
# every working judgment and refuses most lost-format ones (README, Score).
DEFAULT_MIN_VALID_MASS = 0.01
#: Fields hashed into the version even at their default, because their default changed after
#: versions were published: a version must say which value scored (1e-4 before, 0.01 now).
ALWAYS_VERSIONED = ("min_valid_mass",)
NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
#: the longest template or system message any rubric may have (a bound, not a style rule)
MAX_PROMPT_CHARS = 100_000


class RubricError(ValueError):
    """A rubric definition is invalid. The message says which field and why."""


class RubricSpec(StrictModel):
    """One judge: what it asks, how it reads the answer, how the answer becomes a reward.

    Subclasses set the class variables below to describe their prompt, and override
    ``check_mode`` for checks that span several fields.
    """

    uses_prompt: ClassVar[bool] = True
    """False for modes that render no judge prompt (template and system are refused)."""
    template_fields: ClassVar[frozenset[str]] = frozenset()
    """Placeholders this mode fills in the template, beyond {prompt}, {response}, {reference}
    and {metadata.KEY}."""
    system_fields: ClassVar[frozenset[str]] = frozenset()
    """Placeholders this mode fills in the system message, beyond the same common ones."""
    required_fields: ClassVar[tuple[str, ...]] = ()
    """Placeholders the template must contain for this mode to make sense."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    mode: str = Field(description="The scoring mode; it decides which other fields exist.")
    system: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="Optional system message for the judge."
    )
    template: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="The judge's user message. Placeholders {prompt}, {response}, {reference}, "
        "{metadata.KEY} and the mode's own are filled in one pass (braces in user text are "
        "safe).",
    )
    reasoning: Reasoning = Field(default_factory=Reasoning)
    shaping: Shaping = Field(default_factory=Shaping)
    requires_reference: bool = Field(
        False, description="Items without a reference get status invalid_input."
    )
    answer_guard: Literal["mention", "answer"] = Field(
        "mention",
        description="When the prompt shows {reference}: 'mention' refuses (reward 0) a response "
        "that never names a short reference in any form, 'answer' only one with no answer in "
        "it (content-free, a restatement, every option listed). 'answer' lets paraphrases that "
        "share no word with the reference reach the judge, and with them whatever fools it.",
    )
    min_valid_mass: float = Field(
        DEFAULT_MIN_VALID_MASS,
        ge=0,
        le=1,
        description="If the judge puts less probability than this on the valid tokens, the "
        "verdict is a judge_error, not a score.",
    )

    @model_validator(mode="after")
    def _check(self) -> RubricSpec:
        if self.uses_prompt:
            self._check_prompt()
        elif self.template is not None or self.system is not None:
            raise ValueError(f"{self.mode} mode uses no template or system prompt")
        self.check_mode()
        return self

    def _check_prompt(self) -> None:
        if self.template is None:
            raise ValueError(f"mode {self.mode} needs a template")
        try:
            check_template(self.template, KNOWN_FIELDS | self.template_fields)
            if self.system:
                check_template(self.system, KNOWN_FIELDS | self.system_fields)
        except TemplateError as exc:
            raise ValueError(str(exc)) from exc
        for field in self.required_fields:
            if f"{{{field}}}" not in self.template:
                raise ValueError(f"{self.mode} mode needs {{{field}}} in the template")
        if self.requires_reference and "{reference}" not in self.template:
            raise ValueError("requires_reference is set but the template never uses {reference}")

    def check_mode(self) -> None:
        """Checks of this mode's own fields that one field's type cannot express (raise
        ``ValueError``: pydantic reports it with the rest)."""

    @cached_property
    def version(self) -> str:
        # Defaults are left out: spelling a default out changes nothing, and a field added to
        # the schema later does not re-version every existing rubric.
        data = self.model_dump(mode="json", exclude_defaults=True)
        for name in ALWAYS_VERSIONED:
            data[name] = getattr(self, name)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:VERSION_CHARS]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class RubricParser(Protocol):
    """Validates raw data (a YAML or JSON mapping) into the spec of its mode, or raises
    ``RubricError``; ``source`` names where the data came from, for the message."""

    def __call__(self, data: Any, *, source: str) -> RubricSpec: ...
