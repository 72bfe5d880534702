"""The README's requests, replayed against the real server on the embedded model: every
documented field and version must be what the server answers (a README that drifts fails)."""

from __future__ import annotations

import httpx
import pytest

from tests.readme import Example, curl_examples, matches

EXAMPLES = curl_examples()


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"README:{e.line}" for e in EXAMPLES])
def test_readme_request_answers_as_documented(server_url: str, example: Example) -> None:
    resp = httpx.post(f"{server_url}{example.path}", json=example.body, timeout=600)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert all(r["status"] == "ok" for r in body["results"]), body["results"]
    if example.response is not None:
        problems = matches(example.response, body)
        assert not problems, f"README.md:{example.line} drifted from the server: {problems}"
