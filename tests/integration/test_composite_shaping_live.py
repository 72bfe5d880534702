"""A component's shaping on the real server: inside a composite it scores what it scores alone.

The component has threshold shaping at 1.0, so on its own it scores 0.0 for any judge reward
below 1; a composite that used the judge's raw reward would score it as that raw reward.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.conftest import AS_ADMIN

PART = "shaping_probe_part"
COMBO = "shaping_probe_combo"
ITEM = {"id": "x", "prompt": "What is the capital of Japan?", "response": "Tokyo."}

PART_RUBRIC = {
    "mode": "pointwise",
    "description": "Helpfulness 1-9, thresholded at a perfect score.",
    "template": (
        "Rate how helpful the assistant's response is to the user's request.\n\n"
        "[User request]\n{prompt}\n\n[Assistant response]\n{response}\n\n"
        "Use the scale 1 (useless) to 9 (excellent). Reply with a single digit and nothing else."
    ),
    "scores": {"min": 1, "max": 9},
    "shaping": {"kind": "threshold", "threshold": 1.0},
}
COMBO_RUBRIC = {
    "mode": "composite",
    "components": [
        {"rubric": PART, "weight": 3},
        {"check": "length_penalty", "max_length": 400, "overlong_buffer": 200, "unit": "tokens"},
    ],
    "aggregation": {"method": "weighted"},
}


def score(server_url: str, rubric: str) -> dict[str, Any]:
    resp = httpx.post(
        f"{server_url}/v1/score", json={"rubric": rubric, "items": [ITEM]}, timeout=600
    )
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()["results"][0]
    assert result["status"] == "ok", result
    return result


def test_composite_component_keeps_its_shaping(server_url: str) -> None:
    for name, definition in ((PART, PART_RUBRIC), (COMBO, COMBO_RUBRIC)):
        put = httpx.put(
            f"{server_url}/v1/rubrics/{name}", json=definition, headers=AS_ADMIN, timeout=30
        )
        assert put.status_code in (200, 201), put.text
    try:
        alone = score(server_url, PART)
        raw = alone["details"]["unshaped_reward"]
        assert 0.0 < raw < 1.0  # else the threshold would not change the reward
        assert alone["reward"] == 0.0

        combo = score(server_url, COMBO)
        part, length = combo["details"]["components"]
        assert part["rubric"]["name"] == PART and length["score"] == 1.0
        assert part["score"] == alone["reward"] == 0.0  # not the raw reward
        assert part["details"]["unshaped_reward"] == pytest.approx(raw, abs=1e-3)
        assert combo["reward"] == pytest.approx((3 * 0.0 + 1.0) / 4)
    finally:
        for name in (COMBO, PART):
            httpx.delete(f"{server_url}/v1/rubrics/{name}", headers=AS_ADMIN, timeout=30)
