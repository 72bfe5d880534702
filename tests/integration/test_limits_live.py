"""Limits and hostile bodies on the real server (uvicorn in front, real vLLM behind): a body
past the bound is refused before parsing, chunked or not; bad bytes and bad Unicode are 4xx or
one item's invalid_input, and the other items are judged as usual."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from judge_server.settings import DEFAULT_MAX_BODY_BYTES

CHUNK = b" " * (1 << 20)


def test_an_oversized_body_is_413_whether_declared_or_chunked(server_url: str) -> None:
    too_big = DEFAULT_MAX_BODY_BYTES + 1
    declared = httpx.post(
        f"{server_url}/v1/score",
        content=b" " * too_big,
        headers={"content-type": "application/json"},
        timeout=120,
    )
    assert declared.status_code == 413
    assert declared.json()["error"]["type"] == "body_too_large"
    sent = 0

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        nonlocal sent
        for _ in range(too_big // len(CHUNK) + 8):
            sent += len(CHUNK)
            yield CHUNK

    try:
        chunked = httpx.post(
            f"{server_url}/v1/score",
            content=chunks(),
            headers={"content-type": "application/json"},
            timeout=120,
        )
    except httpx.HTTPError:
        chunked = None  # the server may close before the client finished sending: still refused
    if chunked is not None:
        assert chunked.status_code == 413
        assert chunked.json()["error"]["type"] == "body_too_large"
    assert httpx.get(f"{server_url}/health", timeout=10).status_code == 200


def test_bad_bytes_and_bad_unicode_never_harm_the_other_items(server_url: str) -> None:
    headers = {"content-type": "application/json"}
    not_utf8 = httpx.post(
        f"{server_url}/v1/score", content=b'{"rubric": "\xff"}', headers=headers, timeout=60
    )
    assert not_utf8.status_code == 400 and not_utf8.json()["error"]["type"] == "invalid_json"
    bad_id = (
        b'{"rubric": "helpfulness", "items": [{"id": "\\ud800", "prompt": "p", "response": "r"}]}'
    )
    resp = httpx.post(f"{server_url}/v1/score", content=bad_id, headers=headers, timeout=60)
    assert resp.status_code == 422 and resp.json()["error"]["param"] == "items.0.id"
    body = (
        b'{"rubric": "helpfulness", "items": ['
        b'{"id": "bad", "prompt": "Say hi.", "response": "Hi \\ud800 there"},'
        b'{"id": "good", "prompt": "Say hi.", "response": "Hi there!"}]}'
    )
    resp = httpx.post(f"{server_url}/v1/score", content=body, headers=headers, timeout=300)
    assert resp.status_code == 200, resp.text
    bad, good = resp.json()["results"]
    assert bad["status"] == "invalid_input" and "lone surrogate" in bad["error"]
    assert good["status"] == "ok" and 0.0 <= good["reward"] <= 1.0


def test_an_inline_rubric_of_thousands_of_criteria_is_refused_before_any_engine_call(
    server_url: str,
) -> None:
    criteria = [{"id": f"c{i}", "text": f"rule {i}"} for i in range(3000)]
    rubric = {
        "name": "huge",
        "mode": "rubric",
        "template": "{prompt}\n{response}\n{criterion} Yes or No?",
        "criteria": criteria,
    }
    items = [{"prompt": "p", "response": f"r{i}"} for i in range(5)]
    resp = httpx.post(
        f"{server_url}/v1/score", json={"rubric": rubric, "items": items}, timeout=60
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["type"] == "invalid_rubric"
    assert "JUDGE_MAX_INLINE" in resp.json()["error"]["message"]
