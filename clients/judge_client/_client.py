"""Sync and async clients.

``_BaseJudgeClient`` holds everything that does no I/O: configuration, request bodies,
chunking, merging and the retry decisions. ``JudgeClient`` and ``AsyncJudgeClient`` only
add the I/O, so the two cannot drift apart in behaviour.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from ._config import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEOUT,
    READ_TIMEOUT_MARGIN_S,
    RetryPolicy,
    Timeout,
)
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    make_status_error,
)
from ._models import ItemResult, Message, ScoreItem, ScoreResponse
from ._retry import retry_delay, should_retry
from ._version import __version__

__all__ = ["AsyncJudgeClient", "JudgeClient"]

logger = logging.getLogger("judge_client")

Rubric = str | Mapping[str, Any]
Prompt = str | Sequence[Message | Mapping[str, Any]]
ItemLike = ScoreItem | Mapping[str, Any]
JSON = dict[str, Any]

_PROMPT: TypeAdapter[str | list[Message]] = TypeAdapter(str | list[Message])


class _BaseJudgeClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        admin_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.admin_token = admin_token
        self.timeout = timeout if isinstance(timeout, Timeout) else Timeout.uniform(timeout)
        self.retry = retry
        self.chunk_size = chunk_size
        self._custom_headers = dict(headers or {})
        self._rng = random.Random()

    # -- requests ---------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.base_url + path

    @staticmethod
    def _rubric_path(name: str) -> str:
        if not name:
            raise ValueError("rubric name must not be empty")
        return "/v1/rubrics/" + quote(name, safe="@")

    def _headers(self, *, admin: bool) -> httpx.Headers:
        headers = httpx.Headers(
            {"accept": "application/json", "user-agent": f"judge-client/{__version__}"}
        )
        # Rubric mutations use the admin token when one is configured.
        token = (self.admin_token or self.api_key) if admin else self.api_key
        if token:
            headers["authorization"] = f"Bearer {token}"
        # Caller-supplied headers win, matched case-insensitively.
        headers.update(self._custom_headers)
        return headers

    def _httpx_timeout(self, judge_timeout_s: float | None) -> httpx.Timeout:
        t = self.timeout
        read = t.read
        if judge_timeout_s is not None and read is not None:
            read = max(read, judge_timeout_s + READ_TIMEOUT_MARGIN_S)
        return httpx.Timeout(connect=t.connect, read=read, write=t.write, pool=t.pool)

    def _retry_delay(
        self,
        attempt: int,
        max_retries: int | None,
        status_code: int | None,
        headers: httpx.Headers | None,
    ) -> float | None:
        """Seconds to wait before retrying, or ``None`` to give up now."""
        budget = self.retry.max_retries if max_retries is None else max_retries
        if attempt >= budget or not should_retry(status_code):
            return None
        retry_after = headers.get("retry-after") if headers is not None else None
        return retry_delay(attempt, retry_after, self.retry, self._rng)

    @staticmethod
    def _log_retry(request: httpx.Request, reason: str, attempt: int, delay: float) -> None:
        logger.info(
            "retrying %s %s after %s in %.2fs (retry %d)",
            request.method,
            request.url.path,
            reason,
            delay,
            attempt + 1,
        )

    @staticmethod
    def _make_status_error(response: httpx.Response) -> APIStatusError:
        return make_status_error(response)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise APIResponseValidationError(
                f"{response.request.method} {response.request.url.path}: body is not JSON",
                body=response.text,
            ) from exc

    @classmethod
    def _json_object(cls, response: httpx.Response) -> JSON:
        body = cls._json(response)
        if not isinstance(body, dict):
            raise APIResponseValidationError("expected a JSON object", body=body)
        return body

    # -- score ------------------------------------------------------------------------

    @staticmethod
    def _prepare_items(items: Sequence[ItemLike]) -> list[JSON]:
        prepared: list[JSON] = []
        for position, item in enumerate(items):
            model = item if isinstance(item, ScoreItem) else ScoreItem.model_validate(item)
            payload = {k: v for k, v in model.model_dump(mode="json").items() if v is not None}
            payload.setdefault("id", str(position))
            prepared.append(payload)
        # The server only sees one chunk at a time, so it cannot catch duplicates across
        # chunks; and merging matches results to items by id.
        seen: set[str] = set()
        for payload in prepared:
            if payload["id"] in seen:
                raise ValueError(f"duplicate item id {payload['id']!r}")
            seen.add(payload["id"])
        return prepared

    def _chunks(self, items: list[JSON]) -> list[list[JSON]]:
        # An empty batch still makes one request: the server decides whether it is valid.
        n = self.chunk_size
        return [items[i : i + n] for i in range(0, len(items), n)] or [[]]

    @staticmethod
    def _options(timeout_s: float | None, cache: bool | None) -> JSON:
        options: JSON = {}
        if timeout_s is not None:
            options["timeout_s"] = timeout_s
        if cache is not None:
            options["cache"] = cache
        return options

    def _score_body(
        self, rubric: Rubric, chunk: list[JSON], timeout_s: float | None, cache: bool | None
    ) -> JSON:
        body: JSON = {"rubric": rubric if isinstance(rubric, str) else dict(rubric), "items": chunk}
        if options := self._options(timeout_s, cache):
            body["options"] = options
        return body

    def _parse_score(
        self, response: httpx.Response, sent: list[JSON], retries: int
    ) -> ScoreResponse:
        body = self._json(response)
        try:
            parsed = ScoreResponse.model_validate(body)
        except ValidationError as exc:
            raise APIResponseValidationError(f"malformed score response: {exc}", body=body) from exc
        sent_ids = [item["id"] for item in sent]
        by_id = {result.id: result for result in parsed.results}
        if len(parsed.results) != len(sent_ids) or by_id.keys() != set(sent_ids):
            raise APIResponseValidationError(
                f"score response has results for ids {sorted(by_id)}, expected {sent_ids}",
                body=body,
            )
        parsed.results = [by_id[item_id] for item_id in sent_ids]
        parsed._retries = retries
        return parsed

    @staticmethod
    def _merge(parts: Sequence[ScoreResponse]) -> ScoreResponse:
        """Concatenate chunk responses; ``rubric`` and ``model`` come from the first chunk.

        Chunks can only disagree on the rubric version if it was replaced mid-call; that is
        logged as a warning. Pin ``"name@version"`` to rule it out.
        """
        first = parts[0]
        if len(parts) == 1:
            return first
        versions = sorted({part.rubric.version for part in parts})
        if len(versions) > 1:
            logger.warning(
                "rubric %r changed during a chunked score call; versions: %s",
                first.rubric.name,
                versions,
            )
        merged = first.model_copy(
            update={"results": [result for part in parts for result in part.results]}
        )
        merged._retries = sum(part.retries for part in parts)
        return merged

    @staticmethod
    def _single_item(
        prompt: Prompt, response: str, reference: str | None, metadata: Mapping[str, Any] | None
    ) -> list[ScoreItem]:
        return [
            ScoreItem.model_validate(
                {
                    "prompt": prompt if isinstance(prompt, str) else list(prompt),
                    "response": response,
                    "reference": reference,
                    "metadata": None if metadata is None else dict(metadata),
                }
            )
        ]

    @staticmethod
    def _rewards(response: ScoreResponse) -> list[float | None]:
        return [result.reward if result.ok else None for result in response.results]

    def _group_body(
        self,
        rubric: Rubric,
        prompt: Prompt,
        responses: Sequence[str],
        reference: str | None,
        timeout_s: float | None,
        cache: bool | None,
    ) -> JSON:
        prompt_value = _PROMPT.validate_python(prompt if isinstance(prompt, str) else list(prompt))
        body: JSON = {
            "rubric": rubric if isinstance(rubric, str) else dict(rubric),
            "prompt": _PROMPT.dump_python(prompt_value, mode="json"),
            "responses": list(responses),
        }
        if reference is not None:
            body["reference"] = reference
        if options := self._options(timeout_s, cache):
            body["options"] = options
        return body

    @staticmethod
    def _rubric_list(body: JSON) -> list[JSON]:
        rubrics = body.get("rubrics")
        if not isinstance(rubrics, list):
            raise APIResponseValidationError("expected {'rubrics': [...]}", body=body)
        return rubrics


class JudgeClient(_BaseJudgeClient):
    """Blocking client. Thread-safe; reuse one instance and ``close()`` it when done.

    ``transport`` replaces the network (``httpx.MockTransport`` in tests); ``http_client``
    lends a configured ``httpx.Client`` that this client will not close. ``sleep`` is
    what waits between retries.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        admin_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            base_url,
            api_key=api_key,
            admin_token=admin_token,
            headers=headers,
            timeout=timeout,
            retry=retry,
            chunk_size=chunk_size,
        )
        if transport is not None and http_client is not None:
            raise ValueError("pass either transport or http_client, not both")
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(transport=transport)
        self._sleep = sleep

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        admin: bool = False,
        judge_timeout_s: float | None = None,
        max_retries: int | None = None,
    ) -> tuple[httpx.Response, int]:
        """Send with retries; return the 2xx response and the number of retries taken."""
        request = self._http.build_request(
            method,
            self._url(path),
            json=json,
            headers=self._headers(admin=admin),
            timeout=self._httpx_timeout(judge_timeout_s),
        )
        attempt = 0
        while True:
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                delay = self._retry_delay(attempt, max_retries, None, None)
                if delay is None:
                    if isinstance(exc, httpx.TimeoutException):
                        raise APITimeoutError(request=request) from exc
                    raise APIConnectionError(f"Connection error: {exc}", request=request) from exc
                self._log_retry(request, type(exc).__name__, attempt, delay)
            else:
                if response.is_success:
                    return response, attempt
                delay = self._retry_delay(
                    attempt, max_retries, response.status_code, response.headers
                )
                if delay is None:
                    raise self._make_status_error(response)
                self._log_retry(request, str(response.status_code), attempt, delay)
            self._sleep(delay)
            attempt += 1

    def score(
        self,
        rubric: Rubric,
        items: Sequence[ItemLike],
        *,
        timeout_s: float | None = None,
        cache: bool | None = None,
    ) -> ScoreResponse:
        """Score ``items``, sending ``chunk_size`` items per request, one chunk at a time."""
        prepared = self._prepare_items(items)
        return self._merge(
            [self._score_chunk(rubric, chunk, timeout_s, cache) for chunk in self._chunks(prepared)]
        )

    def _score_chunk(
        self, rubric: Rubric, chunk: list[JSON], timeout_s: float | None, cache: bool | None
    ) -> ScoreResponse:
        response, retries = self._request(
            "POST",
            "/v1/score",
            json=self._score_body(rubric, chunk, timeout_s, cache),
            judge_timeout_s=timeout_s,
        )
        return self._parse_score(response, chunk, retries)

    def score_one(
        self,
        rubric: Rubric,
        prompt: Prompt,
        response: str,
        reference: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        cache: bool | None = None,
    ) -> ItemResult:
        items = self._single_item(prompt, response, reference, metadata)
        return self.score(rubric, items, timeout_s=timeout_s, cache=cache).results[0]

    def rewards(
        self,
        rubric: Rubric,
        items: Sequence[ItemLike],
        *,
        timeout_s: float | None = None,
        cache: bool | None = None,
    ) -> list[float | None]:
        """Rewards in item order; ``None`` where an item was not judged successfully."""
        return self._rewards(self.score(rubric, items, timeout_s=timeout_s, cache=cache))

    def score_group(
        self,
        rubric: Rubric,
        prompt: Prompt,
        responses: Sequence[str],
        reference: str | None = None,
        *,
        timeout_s: float | None = None,
        cache: bool | None = None,
    ) -> JSON:
        body = self._group_body(rubric, prompt, responses, reference, timeout_s, cache)
        response, _ = self._request("POST", "/v1/score/group", json=body, judge_timeout_s=timeout_s)
        return self._json_object(response)

    def list_rubrics(self) -> list[JSON]:
        response, _ = self._request("GET", "/v1/rubrics")
        return self._rubric_list(self._json_object(response))

    def get_rubric(self, name: str) -> JSON:
        response, _ = self._request("GET", self._rubric_path(name))
        return self._json_object(response)

    def put_rubric(self, name: str, definition: Mapping[str, Any]) -> JSON:
        response, _ = self._request(
            "PUT", self._rubric_path(name), json=dict(definition), admin=True
        )
        return self._json_object(response)

    def delete_rubric(self, name: str) -> None:
        self._request("DELETE", self._rubric_path(name), admin=True)

    def health(self) -> bool:
        return self._probe("/health")

    def ready(self) -> bool:
        return self._probe("/ready")

    def _probe(self, path: str) -> bool:
        # Probes answer for now, without retries: callers poll. Unreachable or 5xx means
        # False; other statuses (404, 401) mean misconfiguration and raise.
        try:
            self._request("GET", path, max_retries=0)
        except APIConnectionError:
            return False
        except APIStatusError as exc:
            if exc.status_code >= 500:
                return False
            raise
        return True


class AsyncJudgeClient(_BaseJudgeClient):
    """Asyncio client; ``score`` sends up to ``max_concurrency`` chunks at once.

    Same arguments as ``JudgeClient``, with async ``transport``/``http_client``/``sleep``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        admin_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            base_url,
            api_key=api_key,
            admin_token=admin_token,
            headers=headers,
            timeout=timeout,
            retry=retry,
            chunk_size=chunk_size,
        )
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency!r}")
        if transport is not None and http_client is not None:
            raise ValueError("pass either transport or http_client, not both")
        self.max_concurrency = max_concurrency
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport)
        self._sleep = sleep

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        admin: bool = False,
        judge_timeout_s: float | None = None,
        max_retries: int | None = None,
    ) -> tuple[httpx.Response, int]:
        """Send with retries; return the 2xx response and the number of retries taken."""
        request = self._http.build_request(
            method,
            self._url(path),
            json=json,
            headers=self._headers(admin=admin),
            timeout=self._httpx_timeout(judge_timeout_s),
        )
        attempt = 0
        while True:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                delay = self._retry_delay(attempt, max_retries, None, None)
                if delay is None:
                    if isinstance(exc, httpx.TimeoutException):
                        raise APITimeoutError(request=request) from exc
                    raise APIConnectionError(f"Connection error: {exc}", request=request) from exc
                self._log_retry(request, type(exc).__name__, attempt, delay)
            else:
                if response.is_success:
                    return response, attempt
                delay = self._retry_delay(
                    attempt, max_retries, response.status_code, response.headers
                )
                if delay is None:
                    raise self._make_status_error(response)
                self._log_retry(request, str(response.status_code), attempt, delay)
            await self._sleep(delay)
            attempt += 1

    async def score(
        self,
        rubric: Rubric,
        items: Sequence[ItemLike],
        *,
        timeout_s: float | None = None,
        cache: bool | None = None,
    ) -> ScoreResponse:
        """Score ``items`` in chunks of ``chunk_size``, ``max_concurrency`` chunks at a time.

        If one chunk fails, the others are cancelled and its exception is raised.
        """
        prepared = self._prepare_items(items)
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def bounded(chunk: list[JSON]) -> ScoreResponse:
            async with semaphore:
                return await self._score_chunk(rubric, chunk, timeout_s, cache)

        tasks = [asyncio.ensure_future(bounded(chunk)) for chunk in self._chunks(prepared)]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return self._merge(parts)

    async def _score_chunk(
        self, rubric: Rubric, chunk: list[JSON], timeout_s: float | None, cache: bool | None
    ) -> ScoreResponse:
        response, retries = await self._request(
            "POST",
            "/v1/score",
            json=self._score_body(rubric, chunk, timeout_s, cache),
            judge_timeout_s=timeout_s,
        )
        return self._parse_score(response, chunk, retries)

    async def score_one(
        self,
        rubric: Rubric,
        prompt: Prompt,
        response: str,
        reference: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        cache: bool | None = None,
    ) -> ItemResult:
        items = self._single_item(prompt, response, reference, metadata)
        return (await self.score(rubric, items, timeout_s=timeout_s, cache=cache)).results[0]

    async def rewards(
        self,
        rubric: Rubric,
        items: Sequence[ItemLike],
        *,
        timeout_s: float | None = None,
        cache: bool | None = None,
    ) -> list[float | None]:
        """Rewards in item order; ``None`` where an item was not judged successfully."""
        return self._rewards(await self.score(rubric, items, timeout_s=timeout_s, cache=cache))

    async def score_group(
        self,
        rubric: Rubric,
        prompt: Prompt,
        responses: Sequence[str],
        reference: str | None = None,
        *,
        timeout_s: float | None = None,
        cache: bool | None = None,
    ) -> JSON:
        body = self._group_body(rubric, prompt, responses, reference, timeout_s, cache)
        response, _ = await self._request(
            "POST", "/v1/score/group", json=body, judge_timeout_s=timeout_s
        )
        return self._json_object(response)

    async def list_rubrics(self) -> list[JSON]:
        response, _ = await self._request("GET", "/v1/rubrics")
        return self._rubric_list(self._json_object(response))

    async def get_rubric(self, name: str) -> JSON:
        response, _ = await self._request("GET", self._rubric_path(name))
        return self._json_object(response)

    async def put_rubric(self, name: str, definition: Mapping[str, Any]) -> JSON:
        response, _ = await self._request(
            "PUT", self._rubric_path(name), json=dict(definition), admin=True
        )
        return self._json_object(response)

    async def delete_rubric(self, name: str) -> None:
        await self._request("DELETE", self._rubric_path(name), admin=True)

    async def health(self) -> bool:
        return await self._probe("/health")

    async def ready(self) -> bool:
        return await self._probe("/ready")

    async def _probe(self, path: str) -> bool:
        try:
            await self._request("GET", path, max_retries=0)
        except APIConnectionError:
            return False
        except APIStatusError as exc:
            if exc.status_code >= 500:
                return False
            raise
        return True
