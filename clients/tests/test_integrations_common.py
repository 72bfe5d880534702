"""What every trainer adapter shares (``judge_client.integrations._common``)."""

from __future__ import annotations

import numpy as np
import pytest

from judge_client.integrations._common import (
    completion_text,
    instance_criteria,
    reference_text,
    score_item,
)


def test_completion_text_keeps_tool_calls_of_assistant_turns() -> None:
    completion = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "add", "arguments": {"a": 2}}}
            ],
        },
        {"role": "tool", "content": "4"},
        {"role": "assistant", "content": [{"type": "text", "text": "It is 4."}]},
    ]
    assert completion_text(completion) == '[tool call] add({"a": 2})\n\nIt is 4.'
    assert completion_text("plain") == "plain"


def test_parquet_values_are_plain_json() -> None:
    prompt = [{"role": "user", "content": "q", "extra": np.array([1, 2])}]
    item = score_item(0, prompt, "a", reference_text(np.array(["x", "y"])))
    assert not isinstance(item, str)
    assert item.model_dump(mode="json")["prompt"][0]["extra"] == [1, 2]
    assert item.reference == '["x", "y"]'
    assert reference_text(np.int64(4)) == "4"
    assert reference_text("") is None


@pytest.mark.parametrize(
    "completion",
    [[{"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]],
)
def test_an_item_that_cannot_be_sent_says_why(completion: object) -> None:
    why = score_item(3, "q", completion, None)  # type: ignore[arg-type]
    assert isinstance(why, str)
    assert why.startswith("not sent:")
    assert "image_url" in why


def test_instance_criteria_send_an_empty_list_for_the_server_to_refuse() -> None:
    criteria = [{"criterion": "Says 4.", "points": 5}]
    assert instance_criteria([]) == []  # not None: that would judge by the rubric's criteria
    assert instance_criteria(np.array([], dtype=object)) == []
    assert instance_criteria("[]") == []
    assert instance_criteria(None) is None
    assert instance_criteria("  ") is None
    assert instance_criteria(criteria) == criteria
