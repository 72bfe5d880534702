"""Instance criteria: the criteria one item brings with it, in its ``rubrics`` field.

HealthBench gives every example its own criteria with signed points; so may any item here. Two
formats are accepted, entry by entry:

- HealthBench's, as its grader reads it: ``{"criterion": str, "points": number, "tags": [str]}``
  (``tags`` optional); the id is the position, ``c1``, ``c2``, ...
- the project's own ``Criterion``: ``{"id", "text", "weight", "kind"}`` (plus optional ``tags``).

A named rubric that declares ``instance_criteria: allowed|required`` supplies the judge prompt and
the aggregation; the item supplies the criteria. ``parse_instance_criteria`` is the one validator
(the wire, the CLI and rubric generation all call it); ``criteria_hash`` names a parsed list in
results and cache keys.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError

from judge_server.rubrics.criteria import MAX_WEIGHT, Criterion

InstanceCriteriaPolicy = Literal["forbidden", "allowed", "required"]

#: Hard bound on one item's criteria before any parsing; the server's tighter bound is
#: JUDGE_MAX_INLINE_CRITERIA (each criterion is an engine call per item).
MAX_INSTANCE_CRITERIA = 1024
MAX_TAGS = 64
HASH_CHARS = 12
_HEALTHBENCH_KEYS = frozenset({"criterion", "points", "tags"})
# Arrow (and so `datasets`) gives every entry of a list every key any entry has, filling the
# missing ones with null: a null optional field means "not given". Points stay required.
_NULL_MEANS_ABSENT = frozenset({"weight", "kind", "tags"})


class InstanceCriteriaError(ValueError):
    """An item's criteria cannot be used; the message says which entry and why."""


class InstanceCriterion(Criterion):
    """A criterion an item brought; ``tags`` (HealthBench's axis/theme labels) travel to the
    details so per-tag scores can be computed from the results."""

    tags: tuple[Annotated[str, StringConstraints(max_length=256)], ...] = Field(
        (), max_length=MAX_TAGS, description="Free labels (HealthBench: axis:..., level:...)."
    )


def parse_instance_criteria(
    raw: Any, *, max_count: int = MAX_INSTANCE_CRITERIA
) -> tuple[InstanceCriterion, ...]:
    """Validate an item's ``rubrics`` value into criteria, or raise ``InstanceCriteriaError``.

    Refused: not a list, empty, more than ``max_count`` entries, an entry with no text, points
    or weight that are not finite numbers (``true`` and ``"7"`` are not numbers) or beyond
    +-``MAX_WEIGHT``, points of 0, duplicate ids, and a list without a positive point (nothing
    could be scored out of it). A null ``weight``, ``kind`` or ``tags`` counts as left out.
    """
    if not isinstance(raw, list):
        raise InstanceCriteriaError(f"rubrics must be a list of criteria, not {_kind(raw)}")
    if not raw:
        raise InstanceCriteriaError("rubrics is empty; leave it out to use the rubric's criteria")
    if len(raw) > max_count:
        raise InstanceCriteriaError(
            f"rubrics has {len(raw)} criteria; at most {max_count} per item "
            "(JUDGE_MAX_INLINE_CRITERIA): each is an engine call"
        )
    criteria = tuple(_entry(entry, i) for i, entry in enumerate(raw))
    ids = [c.id for c in criteria]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise InstanceCriteriaError(f"rubrics has duplicate criterion ids: {dupes}")
    if not any(c.weight > 0 for c in criteria):
        raise InstanceCriteriaError(
            "rubrics has no criterion with positive points: the score is points met over the "
            "positive points, so at least one is needed"
        )
    return criteria


def _entry(entry: Any, i: int) -> InstanceCriterion:
    where = f"rubrics[{i}]"
    if not isinstance(entry, Mapping):
        raise InstanceCriteriaError(f"{where} must be an object, not {_kind(entry)}")
    entry = {k: v for k, v in entry.items() if not (v is None and k in _NULL_MEANS_ABSENT)}
    if "criterion" in entry or "points" in entry:
        data = _from_healthbench(entry, where, i)
    else:
        data = dict(entry)
    weight = data.get("weight", 1.0)
    # pydantic would take "7" and true as numbers; a client that sent them made a mistake.
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        name = "points" if "points" in entry else "weight"
        raise InstanceCriteriaError(f"{where}.{name} must be a number, not {_kind(weight)}")
    # An int is compared exactly (math.isfinite on a huge int raises OverflowError).
    if isinstance(weight, float) and not math.isfinite(weight):
        raise InstanceCriteriaError(f"{where}: points must be finite, not {weight}")
    if abs(weight) > MAX_WEIGHT:
        raise InstanceCriteriaError(
            f"{where}: points must be between -{MAX_WEIGHT:g} and {MAX_WEIGHT:g}"
        )
    text = data.get("text")
    if isinstance(text, str) and not text.strip():
        raise InstanceCriteriaError(f"{where}.text is blank")
    try:
        return InstanceCriterion.model_validate(data)
    except ValidationError as exc:
        raise InstanceCriteriaError(_first_error(exc, where)) from None


def _from_healthbench(entry: Mapping[str, Any], where: str, i: int) -> dict[str, Any]:
    unknown = sorted(str(k) for k in entry if k not in _HEALTHBENCH_KEYS)
    if unknown:
        raise InstanceCriteriaError(
            f"{where}: unknown keys {unknown} (HealthBench criteria have criterion, points, tags)"
        )
    if "points" not in entry:
        raise InstanceCriteriaError(f"{where}.points is missing")
    text = entry.get("criterion")
    if not isinstance(text, str) or not text.strip():
        raise InstanceCriteriaError(f"{where}.criterion must be non-empty text")
    data: dict[str, Any] = {"id": f"c{i + 1}", "text": text, "weight": entry["points"]}
    if "tags" in entry:
        data["tags"] = entry["tags"]
    return data


def _first_error(exc: ValidationError, where: str) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return f"{where}{'.' + loc if loc else ''}: {first['msg']}"


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def criteria_wire(criteria: Sequence[Criterion]) -> list[dict[str, Any]]:
    """Criteria in the project's format, as an item's ``rubrics`` value (what generation
    writes; ``parse_instance_criteria`` reads it back unchanged)."""
    return [{"id": c.id} | c.model_dump(mode="json", exclude_defaults=True) for c in criteria]


def criteria_hash(criteria: Sequence[Criterion]) -> str:
    """A short sha256 of the criteria's canonical content, in the order given (ids, texts,
    weights, kinds, tags): what a result reports beside the rubric version."""
    canonical = json.dumps(
        [c.model_dump(mode="json") for c in criteria], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:HASH_CHARS]


__all__ = [
    "MAX_INSTANCE_CRITERIA",
    "InstanceCriteriaError",
    "InstanceCriteriaPolicy",
    "InstanceCriterion",
    "criteria_hash",
    "criteria_wire",
    "parse_instance_criteria",
]
