"""The benchmark's fixed workload: the same model, prompts and responses in every section."""

from __future__ import annotations

import random

from judge_server.judges import JudgeItem
from judge_server.rubrics.models import Rubric

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


def items(n: int, sentences_per_response: int, seed: int = 0) -> list[JudgeItem]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        body = " ".join(rng.choice(SENTENCES) for _ in range(sentences_per_response))
        out.append(
            JudgeItem(id=str(i), prompt=f"Write a short piece about {topic}. ({i})", response=body)
        )
    return out


def criteria_rubric(k: int) -> Rubric:
    return Rubric.parse(
        {
            "name": f"bench-k{k}",
            "mode": "rubric",
            "template": RUBRIC_TEMPLATE,
            "criteria": [{"id": f"c{i}", "text": text} for i, text in enumerate(CRITERIA[:k])],
        }
    )
