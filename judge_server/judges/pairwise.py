"""Pairwise: reward = P(the item's response is better than ``metadata.response_b``).

Judges prefer whichever answer they see first (or second) more often than chance, so by default
the pair is judged in both orders and the two readings are averaged:
``p = (P_AB(A) + 1 - P_BA(A)) / 2``, where the second call shows the responses swapped. A judge
that only follows position gets p = 0.5 and ``agree = False``, instead of a confident verdict.
The template puts the shared ``{prompt}`` first, so the two orders share their prefix.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

from pydantic import Field

from judge_server.engines.base import ChatMessage, JudgeEngine
from judge_server.judges.answer_guard import pair_judgment
from judge_server.judges.base import CheckedJudge
from judge_server.judges.items import InvalidItemError, JudgeItem, Judgment
from judge_server.judges.prompting import judge_messages
from judge_server.judges.registration import JudgeMode, with_checks
from judge_server.judges.verdicts import read_verdict
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.tokens import PairTokens

#: the metadata key that carries the second response of a pairwise item
RESPONSE_B = "response_b"

Winner = Literal["a", "b", "tie"]


class PairwiseSpec(RubricSpec):
    template_fields: ClassVar[frozenset[str]] = frozenset({"response_a", "response_b"})
    system_fields: ClassVar[frozenset[str]] = template_fields
    required_fields: ClassVar[tuple[str, ...]] = ("response_a", "response_b")

    mode: Literal["pairwise"]
    pair: PairTokens = Field(default_factory=PairTokens)
    both_orders: bool = Field(
        True, description="Judge (A, B) and (B, A) and average (position debiasing)."
    )


def winner(p_a: float) -> Winner:
    return "a" if p_a > 0.5 else ("b" if p_a < 0.5 else "tie")


def second_response(item: JudgeItem) -> str:
    other = item.metadata.get(RESPONSE_B)
    if not isinstance(other, str):
        raise InvalidItemError(
            f"a pairwise item needs the second response as a string in metadata.{RESPONSE_B}"
        )
    return other


class PairwiseJudge(CheckedJudge[PairwiseSpec]):
    def readings(self, item: JudgeItem | None) -> int:
        return 2 if self.rubric.both_orders else 1

    def validate(self, item: JudgeItem) -> None:
        super().validate(item)
        second_response(item)

    def preview(self, item: JudgeItem) -> list[list[ChatMessage]]:
        a, b = item.response, second_response(item)
        orders = [(a, b), (b, a)] if self.rubric.both_orders else [(a, b)]
        return [self._messages(item, first, second) for first, second in orders]

    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        a, b = item.response, second_response(item)
        if a == b:
            # Identical texts are a tie by definition; no judge call can say otherwise.
            return Judgment(
                reward=0.5, details={"p_a": 0.5, "winner": "tie", "identical": True, "orders": []}
            )
        if (guarded := await pair_judgment(self.rubric, item, b, self.checks)) is not None:
            return guarded  # against a reference, a refused response never wins
        if not self.rubric.both_orders:
            row = await self._order(item, engine, "ab")
            return Judgment(reward=row["p_a"], details=self._details([row]))
        rows = await asyncio.gather(
            self._order(item, engine, "ab"), self._order(item, engine, "ba")
        )
        details = self._details(list(rows))
        details["agree"] = rows[0]["winner"] == rows[1]["winner"]
        return Judgment(reward=details["p_a"], details=details)

    def _messages(self, item: JudgeItem, first: str, second: str) -> list[ChatMessage]:
        return judge_messages(self.rubric, item, response_a=first, response_b=second)

    async def _order(
        self, item: JudgeItem, engine: JudgeEngine, order: Literal["ab", "ba"]
    ) -> dict[str, Any]:
        """One reading. ``p_a`` is always P(the item's response is better), whichever
        position it was shown in."""
        a, b = item.response, second_response(item)
        first, second = (a, b) if order == "ab" else (b, a)
        pair = self.rubric.pair
        read = await read_verdict(
            engine,
            self._messages(item, first, second),
            {"a": pair.a, "b": pair.b},
            reasoning=self.rubric.reasoning,
            default_verdict_prompt="Now reply with only the final verdict: A or B.",
            min_valid_mass=self.rubric.min_valid_mass,
        )
        p_first = read.distribution["a"]
        p_a = p_first if order == "ab" else 1.0 - p_first
        row: dict[str, Any] = {
            "order": order,
            "p_a": p_a,
            "winner": winner(p_a),
            "valid_mass": read.valid_mass,
            "prompt_tokens": read.num_prompt_tokens,
            "cached_prompt_tokens": read.num_cached_tokens,
        }
        if read.reasoning is not None:
            row["reasoning"] = read.reasoning
        return row

    @staticmethod
    def _details(rows: list[dict[str, Any]]) -> dict[str, Any]:
        p_a = sum(r["p_a"] for r in rows) / len(rows)
        return {
            "p_a": p_a,
            "winner": winner(p_a),
            "orders": rows,
            "valid_mass": min(r["valid_mass"] for r in rows),
            "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
            "cached_prompt_tokens": sum(r["cached_prompt_tokens"] for r in rows),
        }


MODE = JudgeMode(PairwiseSpec, with_checks(PairwiseJudge))
