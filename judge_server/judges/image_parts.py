"""Image content parts (OpenAI-style ``{"type": "image_url", "image_url": {"url": ...}}``) read
into an item: each image becomes a slot in the item's text (``engines.images``) and its bytes
join the item's images.

Bounded before any decoding: images per item, bytes per image (from the base64 length, before
decoding it). ``data:image/...;base64,`` URLs are taken; an http(s) URL only under an allowed
prefix (``JUDGE_IMAGE_URL_PREFIXES``), fetched before the items are read
(``service.image_fetch``); any other is refused. Whether the bytes are an image is decided later,
off the event loop (``service.image_checks``). Every refusal is the item's ``invalid_input``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from judge_server.engines.images import ImageData, without_slots
from judge_server.judges.items import InvalidItemError

_DATA_URL = re.compile(r"data:image/[A-Za-z0-9.+-]{1,32};base64,", re.IGNORECASE)


@dataclass(frozen=True)
class ImageLimits:
    max_images: int = 4
    max_bytes: int = 4 * 1024 * 1024
    url_prefixes: tuple[str, ...] = ()
    fetched: Mapping[str, bytes | str] = field(default_factory=dict)
    """The allowed URLs' bytes, or why they could not be fetched."""


#: the longest image URL taken (a data URL is bounded by its bytes instead)
MAX_URL_CHARS = 2048


def allowed_url(url: str, prefixes: Sequence[str]) -> bool:
    """Whether ``url`` is an http(s) URL under one of ``prefixes``, compared as httpx will
    fetch it (scheme, host, port, normalised path), never as text: "prefix/../secret" would
    start with the prefix and fetch "secret". Userinfo and dot segments are refused outright,
    and so is a URL httpx cannot parse."""
    if not prefixes or len(url) > MAX_URL_CHARS:
        return False
    try:
        parsed = httpx.URL(url)
        raw_path = urlsplit(url).path
    except (httpx.InvalidURL, ValueError):
        return False
    dots = {".", ".."}.intersection(re.split(r"[/\\]", unquote(raw_path)))
    if parsed.scheme not in ("http", "https") or parsed.userinfo or dots:
        return False
    return any(_under(parsed, prefix) for prefix in prefixes)


def _under(url: httpx.URL, prefix: str) -> bool:
    try:
        base = httpx.URL(prefix)
    except (httpx.InvalidURL, ValueError):
        return False
    same_origin = (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)
    return same_origin and url.path.startswith(base.path)


def _url(part: Mapping[str, Any]) -> object:
    ref = part.get("image_url")
    return ref.get("url") if isinstance(ref, Mapping) else ref


def part_urls(contents: Iterable[object]) -> set[str]:
    """The image URLs of the image parts in ``contents`` (messages' or responses' content)."""
    return {
        url
        for content in contents
        if isinstance(content, list)
        for part in content
        if isinstance(part, Mapping)
        and part.get("type") == "image_url"
        and isinstance(url := _url(part), str)
    }


@dataclass
class ImageReader:
    """Reads one item's content parts, collecting its images. Every item's text loses the slot
    characters, images or not: only the parser places a slot, so text can never forge one (and
    share an image item's cache key). Text without those private-use characters is unchanged."""

    limits: ImageLimits
    images: list[ImageData] = field(default_factory=list)

    def text(self, text: str) -> str:
        return without_slots(text)

    def image_slot(self, part: Mapping[str, Any], where: str) -> str:
        """The slot standing for an ``image_url`` part; its image joins the item's."""
        if len(self.images) >= self.limits.max_images:
            raise InvalidItemError(
                f"{where}: more than {self.limits.max_images} images in one item "
                "(JUDGE_MAX_IMAGES_PER_ITEM)"
            )
        url = _url(part)
        if not isinstance(url, str):
            raise InvalidItemError(f"{where}: an image_url part needs image_url.url, a string")
        image = ImageData.of(self._image_bytes(url, where))
        self.images.append(image)
        return image.slot

    def _image_bytes(self, url: str, where: str) -> bytes:
        head = _DATA_URL.match(url)
        if head is None and allowed_url(url, self.limits.url_prefixes):
            got = self.limits.fetched.get(url, "the image was not fetched")
            if isinstance(got, str):
                raise InvalidItemError(f"{where}: {got}")
            return got
        if head is None:
            raise InvalidItemError(
                f"{where}: this image_url is not taken: send the image inline as a data URL "
                "(data:image/png;base64,...); http(s) URLs are fetched only under a prefix "
                "of JUDGE_IMAGE_URL_PREFIXES"
            )
        payload = url[head.end() :]
        limit = self.limits.max_bytes
        # Checked on the base64 length, before decoding: a huge payload costs no memory.
        if len(payload) // 4 * 3 > limit + 2:
            raise InvalidItemError(
                f"{where}: the image is over {limit} bytes (JUDGE_MAX_IMAGE_BYTES)"
            )
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidItemError(f"{where}: the image's data URL is not valid base64") from None
        if not data:
            raise InvalidItemError(f"{where}: the image's data URL holds no bytes")
        if len(data) > limit:
            raise InvalidItemError(
                f"{where}: the image is {len(data)} bytes; at most {limit} (JUDGE_MAX_IMAGE_BYTES)"
            )
        return data


def metadata_text(value: Any) -> Any:
    """``value`` (an item's metadata) with the slot characters replaced in every string in it."""
    if isinstance(value, str):
        return without_slots(value)
    if isinstance(value, Mapping):
        return {metadata_text(key): metadata_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [metadata_text(item) for item in value]
    return value


def parts_text(content: list[Any], where: str, reader: ImageReader | None) -> str:
    """Text and image parts as item text: images as slots (with a reader; without one an
    image part cannot be judged)."""
    pieces: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            text = str(part["text"])
            pieces.append(reader.text(text) if reader is not None else text)
        elif kind == "image_url" and reader is not None:
            pieces.append(reader.image_slot(part, where))
        elif isinstance(part, Mapping):
            raise InvalidItemError(f"{where}: a {kind!r} content part cannot be judged as text")
        else:
            raise InvalidItemError(f"{where}: content must be text, a list of parts, or null")
    return "".join(pieces)
