"""Images an item brings to a vision-language judge: how they ride through the string seam.

Judges render prompts as strings (``engines.base``). An image stands in that string as a slot,
``SLOT_OPEN + sha256 + SLOT_CLOSE`` (two private-use characters around the hex digest of its
bytes), written by the item parser where the image part was; item text never holds the slot
characters (``without_slots``). So the image's position survives the rubric template, a prompt's
text names its images' content (result cache keys and "identical response" checks see different
images as different text), and a text-only item's prompt is exactly what it always was.

The bytes travel beside the prompt in the item's context (``providing``, set by scoring for the
item it judges, as ``engines.usage`` counts its calls): an engine turns each slot into the
model's own image placeholder token and hands the decoded images to vLLM's multimodal input.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from judge_server.engines.base import EngineError

SLOT_OPEN = "\ue001"
SLOT_CLOSE = "\ue002"
REPLACEMENT = "\ufffd"
_SLOT = re.compile(f"{SLOT_OPEN}([0-9a-f]{{64}}){SLOT_CLOSE}")
_NO_SLOTS = str.maketrans({SLOT_OPEN: REPLACEMENT, SLOT_CLOSE: REPLACEMENT})
#: every character ``without_slots`` replaces: what its fast path looks for
_SLOT_CHARS = tuple(chr(code) for code in _NO_SLOTS)


@dataclass(frozen=True)
class ImageData:
    """An image's encoded bytes (PNG, JPEG, ...) and their sha256."""

    data: bytes
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> ImageData:
        return cls(data, hashlib.sha256(data).hexdigest())

    @property
    def slot(self) -> str:
        return f"{SLOT_OPEN}{self.sha256}{SLOT_CLOSE}"


def without_slots(text: str) -> str:
    """Item text with the slot characters replaced, so only the parser places images."""
    # str.translate walks every character through the table; most text holds no slot
    # character (ASCII text none at all), and a search for one runs at C speed.
    if text.isascii() or not any(char in text for char in _SLOT_CHARS):
        return text
    return text.translate(_NO_SLOTS)


_EMPTY: Mapping[str, ImageData] = MappingProxyType({})
_current: ContextVar[Mapping[str, ImageData]] = ContextVar("judge_server_images", default=_EMPTY)


class providing:  # lower case: it reads as the function it was, ``with providing(images)``
    """Engine calls made inside the block (and in tasks it starts) may use these images. A
    class, not a generator: it is entered once per item judged."""

    __slots__ = ("_table", "_token")

    def __init__(self, images: Iterable[ImageData]) -> None:
        table = {image.sha256: image for image in images}
        self._table: Mapping[str, ImageData] = MappingProxyType(table) if table else _EMPTY

    def __enter__(self) -> None:
        self._token = _current.set(self._table)

    def __exit__(self, *_exc: object) -> None:
        _current.reset(self._token)


def prompt_parts(prompt: str) -> list[str | ImageData] | None:
    """The prompt cut at its image slots, or None when it has no images in this context (a
    text-only item: its prompt is plain text, slot characters included, as it always was)."""
    table = _current.get()
    if not table or SLOT_OPEN not in prompt:
        return None
    parts: list[str | ImageData] = []
    start = 0
    for found in _SLOT.finditer(prompt):
        image = table.get(found.group(1))
        if image is None:
            raise EngineError("the prompt names an image the item did not bring")
        parts.extend([prompt[start : found.start()], image])
        start = found.end()
    parts.append(prompt[start:])
    return [p for p in parts if p != ""]


def encode_with_images(
    prompt: str, encode: Callable[[str], list[int]], image_token_id: int
) -> tuple[list[int], list[ImageData]]:
    """Token ids with one ``image_token_id`` per slot (vLLM expands it to the image's feature
    positions), and the images in prompt order."""
    parts = prompt_parts(prompt)
    if parts is None:
        return encode(prompt), []
    tokens: list[int] = []
    images: list[ImageData] = []
    for part in parts:
        if isinstance(part, ImageData):
            tokens.append(image_token_id)
            images.append(part)
        else:
            tokens.extend(encode(part))
    return tokens, images


def decoded_prompt(
    prompt: str, encode: Callable[[str], list[int]], image_token_id: int | None
) -> tuple[list[int], list[Any]]:
    """``encode_with_images`` with the images decoded for vLLM (PIL images). CPU work: call it
    in a thread. ``EngineError`` for images to a model without an image token."""
    if image_token_id is None:
        raise EngineError("the judge model does not take images")
    tokens, images = encode_with_images(prompt, encode, image_token_id)
    try:
        return tokens, [open_image(image.data) for image in images]
    except ValueError as exc:
        raise EngineError(str(exc)) from None


#: the encodings taken; Pillow would otherwise try every format it has a plugin for
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")


def open_image(data: bytes, max_pixels: int | None = None) -> Any:
    """The decoded RGB image (a PIL image); ``ValueError`` saying why when the bytes are not a
    PNG, JPEG, WebP or GIF image or it has more than ``max_pixels`` pixels. CPU work: call it
    in a thread."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as img:
            width, height = img.size
            if max_pixels is not None and width * height > max_pixels:
                raise ValueError(
                    f"the image is {width}x{height} pixels; at most {max_pixels} "
                    "(JUDGE_MAX_IMAGE_PIXELS)"
                )
            return img.convert("RGB")  # decodes every pixel: a truncated file fails here
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ValueError(f"the image cannot be read: {exc}") from None
    except (OSError, SyntaxError) as exc:  # Pillow's errors for corrupt data
        raise ValueError(f"the image cannot be decoded: {exc}") from None


def image_feature_tokens(model_path: str) -> int:
    """The positions one image takes in the prompt once vLLM expands its placeholder, as far
    as the model config says (``image_seq_len``, ``mm_tokens_per_image``, or the vision
    encoder's patches, pixel-shuffled by ``scale_factor``); 1 when it says nothing. A model
    that splits large images into tiles takes a multiple of it: a lower bound."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError):
        return 1
    for name in ("image_seq_len", "mm_tokens_per_image"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    vision = getattr(config, "vision_config", None)
    size, patch = getattr(vision, "image_size", None), getattr(vision, "patch_size", None)
    if not (isinstance(size, int) and isinstance(patch, int) and patch > 0):
        return 1
    scale = getattr(config, "scale_factor", 1)
    scale = scale if isinstance(scale, int) and scale > 0 else 1
    return max(1, (size // patch) ** 2 // scale**2)


def image_token_id(model_path: str) -> int | None:
    """The id of the model's image placeholder token (``image_token_id`` or, for LLaVA,
    ``image_token_index`` in its config); None for a text-only model."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError):
        return None
    for name in ("image_token_id", "image_token_index"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None
