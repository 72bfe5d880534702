"""The per-item fast paths give what the long way gives (the long way written out here)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from judge_server.cache.base import CachedResult
from judge_server.cache.keys import _canonical
from judge_server.cache.memory import MemoryCache
from judge_server.engines.images import ImageData, prompt_parts, providing
from judge_server.engines.usage import Usage, measure, record
from judge_server.judges.base import shape
from judge_server.judges.items import Judgment
from judge_server.judges.modes import parse_rubric

VALUES: list[Any] = [
    "é\x00\"'\\ \u2028 🙂",
    {"b": 1, "a": [1e16, 0.1, -0.0, True, None, math.inf, -math.inf], "é": {"z": "", "y": {}}},
    {2: "int keys", 1: [[], {}]},
    [{"role": "user", "content": "hi"}],
    {"prompt": "p", "response": "r", "reference": None, "metadata": {"k": [1, 2.5, "v"]}},
    12345678901234567890123,
    None,
]


@pytest.mark.parametrize("value", VALUES)
def test_canonical_json_is_json_dumps(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert _canonical(value) == expected


def test_canonical_json_refuses_what_json_refuses_and_goes_on() -> None:
    with pytest.raises(TypeError):
        _canonical({"metadata": {"x": object()}})
    with pytest.raises(TypeError):  # keys json.dumps cannot write either
        _canonical({("a",): 1})
    with pytest.raises(TypeError):  # nor sort
        _canonical({1: "a", "b": 2})
    assert _canonical({"a": [1]}) == '{"a":[1]}'  # a failed call leaves nothing behind
    nan = _canonical({"x": math.nan})
    assert nan == json.dumps({"x": math.nan}, separators=(",", ":")) == '{"x":NaN}'


def _spec(kind: str) -> Any:
    shaping: dict[str, Any] = {"kind": kind}
    if kind == "power":
        shaping["exponent"] = 2.0
    return parse_rubric(
        {"name": "r", "mode": "pointwise", "template": "{prompt} {response}", "shaping": shaping}
    )


@pytest.mark.parametrize("kind", ["none", "power"])
@pytest.mark.parametrize("reward", [-0.5, -0.0, 0.0, 5e-324, 0.25, 1.0, 1.5, 1, True])
def test_shape_gives_the_clamped_reward_and_its_details(kind: str, reward: float) -> None:
    rubric = _spec(kind)
    details = {"x": 1}
    shaped = shape(rubric, Judgment(reward, details))
    expected = rubric.shaping.apply(reward)
    assert math.copysign(1, shaped.reward) == math.copysign(1, expected)  # never -0.0
    assert shaped.reward == expected and type(shaped.reward) is float
    assert shaped.details == (details if kind == "none" else {"x": 1, "unshaped_reward": reward})


def test_usage_copy_and_record() -> None:
    with measure() as usage:
        record(10, 3)
        record(5, 0)
    assert usage == Usage(15, 3, 2)
    copy = usage.copy()
    assert copy == usage and copy is not usage
    record(1, 1)  # outside any measure: counted nowhere
    assert usage == Usage(15, 3, 2)


def test_providing_sets_the_images_for_the_block_only() -> None:
    image = ImageData(b"x", "a" * 64)
    with providing([image]):
        assert prompt_parts(f"p{image.slot}") == ["p", image]
        with providing([]):
            assert prompt_parts(f"p{image.slot}") is None
        assert prompt_parts(f"p{image.slot}") == ["p", image]
    assert prompt_parts(f"p{image.slot}") is None


async def test_memory_get_many_is_get_of_each_key() -> None:
    many, one = MemoryCache(max_entries=10, ttl_s=60), MemoryCache(max_entries=10, ttl_s=60)
    for cache in (many, one):
        await cache.put("a", CachedResult(0.5, {"d": {"x": [1]}}))
        await cache.put("b", CachedResult(1.0))
    keys = ["a", "missing", "b", "a"]
    got = await many.get_many(keys)
    assert got == [await one.get(key) for key in keys]
    assert many.stats == one.stats and many.stats.hits == 3 and many.stats.misses == 1
    assert got[0] is not None and got[3] is not None and got[0].details is not got[3].details
    got[0].details["d"]["x"].append(2)  # a copy: the cache keeps its own
    assert (await many.get("a")) == CachedResult(0.5, {"d": {"x": [1]}})


def test_usage_copy_keeps_every_field() -> None:
    """``copy`` lists the fields by hand: a field added to ``Usage`` must be added there too."""
    from dataclasses import fields

    usage = Usage(**{f.name: i + 1 for i, f in enumerate(fields(Usage))})
    copied = usage.copy()
    assert copied == usage and copied is not usage
