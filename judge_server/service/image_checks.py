"""Items with images, checked before any judging: the judge (its mode and model) and the engine
must take images, and every image must decode (Pillow, in a worker thread: decoding is CPU
work) within the pixel bound.
Each problem is that item's ``invalid_input``; the other items go on."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from judge_server.engines.base import JudgeEngine
from judge_server.engines.images import ImageData, open_image
from judge_server.judges import Judge, JudgeItem
from judge_server.judges.image_parts import ImageLimits
from judge_server.service.scoring import Rejected, ScoreInput
from judge_server.settings import Settings


def _image_problems(images: Sequence[ImageData], max_pixels: int) -> dict[str, str]:
    """sha256 -> why that image cannot be judged, for each distinct image that cannot."""
    problems: dict[str, str] = {}
    seen: set[str] = set()
    for image in images:
        if image.sha256 in seen:
            continue
        seen.add(image.sha256)
        try:
            open_image(image.data, max_pixels)
        except ValueError as exc:
            problems[image.sha256] = str(exc)
    return problems


def image_limits(
    settings: Settings, fetched: Mapping[str, bytes | str] | None = None
) -> ImageLimits:
    """What one item's image parts may hold (``judges.image_parts``), with the request's
    fetched image URLs (``service.image_fetch``)."""
    return ImageLimits(
        settings.max_images_per_item,
        settings.max_image_bytes,
        tuple(settings.image_url_prefixes),
        fetched or {},
    )


def text_only(judge: Judge, engine: JudgeEngine, model_id: str) -> str | None:
    """Why ``judge`` on ``engine`` cannot judge images (``model_id``: the model its rewards
    come from), or None when it can."""
    if not judge.takes_images:
        whose = (
            "a component's model" if judge.rubric.mode == "composite" else f"its model {model_id}"
        )
        return (
            f"rubric {judge.rubric.name!r} ({judge.rubric.mode} mode) judges text only: "
            f"{whose} does not take images; send text only"
        )
    if not engine.takes_images:
        return (
            f"the judge model {engine.model_id} does not take images (a text-only model); "
            "send text only, or serve a vision-language judge model"
        )
    return None


async def image_checked(
    items: Sequence[ScoreInput], settings: Settings, refusal: str | None
) -> list[ScoreInput]:
    """``items``, those whose images cannot be judged turned into their refusal (``refusal``:
    ``text_only``'s, for every item with images)."""
    with_images = [item for item in items if isinstance(item, JudgeItem) and item.images]
    if not with_images:
        return list(items)
    if refusal is not None:
        refused = {id(item) for item in with_images}
        return [Rejected(item.id, refusal) if id(item) in refused else item for item in items]
    images = [image for item in with_images for image in item.images]
    problems = await asyncio.to_thread(_image_problems, images, settings.max_image_pixels)
    checked: list[ScoreInput] = []
    for item in items:
        bad = (
            next((problems[i.sha256] for i in item.images if i.sha256 in problems), None)
            if isinstance(item, JudgeItem)
            else None
        )
        checked.append(Rejected(item.id, bad) if bad is not None else item)
    return checked
