"""The registered modes, and the three things done by mode: parse a rubric, describe all rubrics
(JSON schema), build a rubric's judge.

A new mode is one module (its spec, its judge, ``MODE = JudgeMode(...)``) plus one line in
``MODES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from judge_server.engines.base import RewardModel
from judge_server.judges import (
    composite,
    likelihood,
    pairwise,
    pointwise,
    process,
    process_reward_model,
    reward_model,
    rubric,
    simulated_user,
    verdict,
    verify,
)
from judge_server.judges.base import Judge
from judge_server.judges.items import JudgeFailure
from judge_server.judges.registration import BuildContext, JudgeMode, Resolver
from judge_server.judges.workers import CheckPool, shared_pool
from judge_server.rubrics.spec import RubricError, RubricSpec

MODES: tuple[JudgeMode[Any], ...] = (
    pointwise.MODE,
    verdict.MODE,
    rubric.MODE,
    composite.MODE,
    pairwise.MODE,
    verify.MODE,
    likelihood.MODE,
    reward_model.MODE,
    simulated_user.MODE,
    process.MODE,
    process_reward_model.MODE,
)

_registered: dict[str, JudgeMode[Any]] = {mode.name: mode for mode in MODES}


def register_mode(mode: JudgeMode[Any]) -> None:
    """Add a mode beyond ``MODES`` (a plugin, a test). Its name must be new."""
    if mode.name in _registered:
        raise ValueError(f"mode {mode.name!r} is already registered")
    _registered[mode.name] = mode


def unregister_mode(name: str) -> None:
    """Remove a mode added by ``register_mode``; the built-in ones stay."""
    if any(mode.name == name for mode in MODES):
        raise ValueError(f"mode {name!r} is built in")
    _registered.pop(name, None)


def registered_modes() -> Mapping[str, JudgeMode[Any]]:
    return dict(_registered)


def parse_rubric(data: Any, *, source: str = "rubric") -> RubricSpec:
    """Validate raw data with its mode's spec, turning every problem into one readable
    ``RubricError`` ("field: why; field: why")."""
    if not isinstance(data, dict):
        raise RubricError(f"{source}: a rubric must be a mapping, got {type(data).__name__}")
    known = ", ".join(_registered)
    if "mode" not in data:
        raise RubricError(f"{source}: mode: Field required (one of: {known})")
    mode = data["mode"]
    entry = _registered.get(mode) if isinstance(mode, str) else None
    if entry is None:
        raise RubricError(f"{source}: mode: unknown mode {mode!r} (one of: {known})")
    spec: type[RubricSpec] = entry.spec
    try:
        return spec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_explain(err, entry) for err in exc.errors())
        raise RubricError(f"{source}: {problems}") from exc


def _explain(err: ErrorDetails, entry: JudgeMode[Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(root)"
    if err["type"] != "extra_forbidden" or len(err["loc"]) != 1:
        return f"{loc}: {err['msg']}"
    # A top-level key of another mode: say whose it is, not just "extra inputs".
    owners = [m.name for m in _registered.values() if loc in m.spec.model_fields]
    where = f"; it belongs to {', '.join(owners)} mode" if owners else ""
    return f"{loc}: not a field of {entry.name} rubrics{where}"


def rubric_schema() -> dict[str, Any]:
    """JSON schema of a rubric: the union of the registered modes' specs, keyed by ``mode``."""
    specs = tuple(mode.spec for mode in _registered.values())
    union = Annotated[Union[specs], Field(discriminator="mode")]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(union).json_schema()


def judge_for(
    rubric: RubricSpec,
    resolve: Resolver | None = None,
    depth: int = 0,
    reward_models: Mapping[str, RewardModel] | None = None,
    checks: CheckPool | None = None,
) -> Judge:
    """Build the judge for one request. ``resolve`` looks up component rubrics (composite);
    ``reward_models`` are the reward models this server loaded (reward_model and
    process_reward_model modes);
    ``checks`` runs CPU-bound checks (default: the process's shared pool)."""
    context = BuildContext(
        resolve=resolve,
        reward_models=reward_models or {},
        depth=depth,
        dispatch=_build,
        checks=checks if checks is not None else shared_pool(),
    )
    return _build(rubric, context)


def _build(rubric: RubricSpec, context: BuildContext) -> Judge:
    entry = _registered.get(rubric.mode)
    if entry is None or not isinstance(rubric, entry.spec):
        raise JudgeFailure(f"mode {rubric.mode!r} is not available in this server")
    return entry.build(rubric, context)
