"""Image URLs a request names, fetched before its items are read: only those under a prefix
of ``JUDGE_IMAGE_URL_PREFIXES`` (none by default: the server then fetches nothing).

Bounded: distinct URLs per request, fetches in flight across requests, bytes per image (the
declared length first, then while reading), one deadline for the request's fetches together,
no redirects (a redirect could leave
the allowed prefixes). A failed fetch is a message that the items naming the URL get as their
``invalid_input``; it never fails the request.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Mapping

import httpx

from judge_server.judges.image_parts import allowed_url, part_urls
from judge_server.settings import Settings

#: distinct image URLs one request may have fetched; items naming more are refused
MAX_URLS_PER_REQUEST = 64
#: image fetches in flight across all requests (per event loop): many requests naming many
#: URLs wait for a slot instead of opening a connection each
MAX_CONCURRENT_FETCHES = 16
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _fetch_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(MAX_CONCURRENT_FETCHES)
    return slots


async def fetch_images(
    contents: Iterable[object],
    settings: Settings,
    *,
    refusal: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Mapping[str, bytes | str]:
    """URL -> its bytes, or why they could not be had, for the allowed URLs in ``contents``.
    With a ``refusal`` (the judge cannot see images: ``image_checks.text_only``) nothing is
    fetched and every URL gets that refusal."""
    prefixes = tuple(settings.image_url_prefixes)
    urls = sorted(u for u in part_urls(contents) if allowed_url(u, prefixes))
    if refusal is not None:
        return dict.fromkeys(urls, refusal)
    if not urls:
        return {}
    fetched: dict[str, bytes | str] = {
        url: f"more than {MAX_URLS_PER_REQUEST} image URLs in one request"
        for url in urls[MAX_URLS_PER_REQUEST:]
    }
    urls = urls[:MAX_URLS_PER_REQUEST]
    limit = settings.max_image_bytes
    async with httpx.AsyncClient(
        follow_redirects=False, timeout=settings.image_fetch_timeout_s, transport=transport
    ) as client:
        tasks = [asyncio.ensure_future(_fetch(client, url, limit)) for url in urls]
        done, pending = await asyncio.wait(tasks, timeout=settings.image_fetch_timeout_s)
        for task in pending:
            task.cancel()
        for url, task in zip(urls, tasks, strict=True):
            fetched[url] = (
                task.result()
                if task in done
                else f"fetching the image took over {settings.image_fetch_timeout_s} s"
            )
    return fetched


async def _fetch(client: httpx.AsyncClient, url: str, limit: int) -> bytes | str:
    async with _fetch_slots():
        return await _fetch_one(client, url, limit)


async def _fetch_one(client: httpx.AsyncClient, url: str, limit: int) -> bytes | str:
    try:
        async with client.stream("GET", url) as resp:
            if resp.is_redirect:
                return "the image URL redirects; redirects are not followed"
            if resp.status_code != 200:
                return f"fetching the image answered HTTP {resp.status_code}"
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                return f"the image is {declared} bytes; at most {limit} (JUDGE_MAX_IMAGE_BYTES)"
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    return f"the image is over {limit} bytes (JUDGE_MAX_IMAGE_BYTES)"
            return bytes(body)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        # InvalidURL is no HTTPError: a URL httpx will not send is this item's problem only.
        return f"the image could not be fetched ({type(exc).__name__})"
