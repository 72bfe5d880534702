"""The benchmark's fixed workload: the same model, prompts and responses in every section."""

from __future__ import annotations

import functools
import random
import re
from typing import Any

from judge_server.engines.base import ChatMessage
from judge_server.judges import JudgeItem
from judge_server.judges.modes import parse_rubric
from judge_server.judges.pointwise import PointwiseSpec
from judge_server.judges.prompting import judge_messages
from judge_server.rubrics.spec import RubricSpec

TOPICS = [
    "the ocean",
    "a city at night",
    "learning to cook",
    "a mountain hike",
    "an old library",
    "a rainy market",
    "a train journey",
    "a winter garden",
]
SENTENCES = [
    "The light changed slowly as the afternoon went on.",
    "Nobody in the group expected the weather to turn so quickly.",
    "Small details, like the smell of bread, made the place feel alive.",
    "There was a long pause before anyone answered the question.",
    "Every path seemed to lead back to the same square.",
    "The numbers did not add up, so they checked them twice.",
    "A short explanation was followed by a careful example.",
    "The conclusion repeated the main point in simpler words.",
]

#: Sentences per response in the throughput sections: judge prompts of about 150 tokens.
SHORT_RESPONSE_SENTENCES = 3

RUBRIC_TEMPLATE = (
    "You are grading a response against one criterion.\n\n[Request]\n{prompt}\n\n"
    "[Response]\n{response}\n\n[Criterion]\n{criterion}\n\nDoes the response meet the "
    "criterion? Answer Yes or No."
)
CRITERIA = [
    "The response stays on the topic of the request.",
    "The response is written in complete sentences.",
    "The response contains a concrete example.",
    "The response has a clear conclusion.",
    "The response avoids repeating itself.",
    "The response is free of factual errors.",
    "The response uses a friendly tone.",
    "The response mentions the weather.",
]

# The pointwise judge of the throughput sections, and the same prompt in the form users write
# today for a generating judge: only the answer instruction differs.
POINTWISE_NAME = "bench-helpfulness"
POINTWISE_SYSTEM = "You are a strict, fair grader of AI assistant responses."
POINTWISE_TEMPLATE = (
    "Rate how helpful the assistant's response is to the user's request.\n\n"
    "[User request]\n{prompt}\n\n[Assistant response]\n{response}\n\n"
    "Consider correctness, relevance, completeness and clarity. Use the scale 1 (useless or "
    "wrong) to 9 (excellent). "
)
POINTWISE_ANSWER = "Reply with a single digit from 1 to 9 and nothing else."
NAIVE_ANSWER = 'Reply in the form "Score: N", where N is a digit from 1 to 9.'
NAIVE_SCORE = re.compile(r"Score:\s*([1-9])\b", re.IGNORECASE)


def items(n: int, sentences_per_response: int, seed: int = 0, start: int = 0) -> list[JudgeItem]:
    """``n`` items numbered from ``start``; the number sits early in the prompt, so items of
    different ranges share no prefix-cache block."""
    rng = random.Random(seed * 1_000_003 + start)
    out = []
    for i in range(start, start + n):
        topic = TOPICS[i % len(TOPICS)]
        body = " ".join(rng.choice(SENTENCES) for _ in range(sentences_per_response))
        out.append(
            JudgeItem(id=str(i), prompt=f"Write a short piece about {topic}. ({i})", response=body)
        )
    return out


def short_items(n: int, start: int) -> list[JudgeItem]:
    return items(n, SHORT_RESPONSE_SENTENCES, start=start)


def pointwise_definition() -> dict[str, Any]:
    return {
        "name": POINTWISE_NAME,
        "description": "judge-server bench: pointwise helpfulness (1-9).",
        "mode": "pointwise",
        "system": POINTWISE_SYSTEM,
        "template": POINTWISE_TEMPLATE + POINTWISE_ANSWER,
        "scores": {"min": 1, "max": 9},
    }


def pointwise_rubric() -> PointwiseSpec:
    rubric = parse_rubric(pointwise_definition())
    assert isinstance(rubric, PointwiseSpec)
    return rubric


@functools.cache
def _naive_rubric() -> RubricSpec:
    return parse_rubric({**pointwise_definition(), "template": POINTWISE_TEMPLATE + NAIVE_ANSWER})


def naive_messages(item: JudgeItem) -> list[ChatMessage]:
    """The same judge prompt, asking for a parseable "Score: N" instead of one digit."""
    return judge_messages(_naive_rubric(), item)


def parse_naive_score(text: str) -> int | None:
    match = NAIVE_SCORE.search(text)
    return int(match.group(1)) if match else None


def item_json(item: JudgeItem) -> dict[str, Any]:
    return {"id": item.id, "prompt": item.prompt, "response": item.response}


def criteria_rubric(k: int) -> RubricSpec:
    return parse_rubric(
        {
            "name": f"bench-k{k}",
            "mode": "rubric",
            "template": RUBRIC_TEMPLATE,
            "criteria": [{"id": f"c{i}", "text": text} for i, text in enumerate(CRITERIA[:k])],
        }
    )
