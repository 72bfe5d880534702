"""Group scoring from pairwise comparisons (Pref-GRPO): pure logic, no I/O.

A group is the responses a policy sampled for one prompt. Each response's reward is its win
rate: the points it took over the comparisons it was part of, where a comparison of i and j
gives P(i beats j) to i and the rest to j, so every comparison hands out exactly one point.
A failed comparison hands out nothing and counts for nobody: a judge failure is never a loss.

Identical texts are judged once: comparisons are planned between responses, but the judge
sees distinct texts, and two copies of one text meet as a tie (0.5 each) without a judge call.

A reward depends only on the response text. Under ``round_robin`` or ``anchor`` two copies of one
text sit at different positions and meet different opponents, so the outcomes of all copies of
a text are pooled and every copy gets the text's win rate (and its Bradley-Terry score).

A Bradley-Terry fit of the same outcomes is reported alongside: a log-strength per distinct
text, with P(i beats j) = sigmoid(s_i - s_j).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Pairing = Literal["all_pairs", "round_robin", "anchor"]
Pair = tuple[int, int]

DEFAULT_ROUNDS = 2
DEFAULT_ANCHORS = 2
TIE = 0.5


def all_pairs(n: int) -> list[Pair]:
    """Every pair once: n(n-1)/2 comparisons."""
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def round_robin_pairs(n: int, rounds: int) -> list[Pair]:
    """In round r (1..rounds) each response meets the one r places after it, cyclically.

    Every response takes part in 2 x rounds comparisons, n x rounds in all (the first round alone
    connects the whole group); rounds >= (n - 1) / 2 is every pair.
    """
    pairs: set[Pair] = set()
    for r in range(1, min(rounds, n // 2) + 1):
        for i in range(n):
            j = (i + r) % n
            pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def anchor_pairs(n: int, anchors: Sequence[int]) -> list[Pair]:
    """Every pair with at least one anchor: each response meets every anchor."""
    chosen = set(anchors)
    return [(i, j) for i, j in all_pairs(n) if i in chosen or j in chosen]


@dataclass(frozen=True)
class GroupPlan:
    texts: list[str]
    """The distinct response texts, sorted: a pair of texts is always shown to the judge in the
    same order, so a reordered or overlapping group hits the result cache."""
    text_of: list[int]
    """Response index -> index into ``texts``."""
    pairs: list[Pair]
    """The comparisons between responses (i < j)."""
    calls: list[Pair]
    """Distinct-text pairs (a < b) the judge must compare, each once. Sorted, so calls showing
    the same text first are adjacent and share their prompt prefix in the engine's cache."""


def plan_group(
    responses: Sequence[str],
    pairing: Pairing = "all_pairs",
    *,
    rounds: int | None = None,
    anchors: int | None = None,
) -> GroupPlan:
    texts = sorted(set(responses))
    index = {text: k for k, text in enumerate(texts)}
    text_of = [index[text] for text in responses]
    first_seen: dict[str, int] = {}
    for i, text in enumerate(responses):
        first_seen.setdefault(text, i)
    n = len(responses)
    if pairing == "all_pairs":
        pairs = all_pairs(n)
    elif pairing == "round_robin":
        pairs = round_robin_pairs(n, rounds or DEFAULT_ROUNDS)
    else:
        # Anchors are distinct texts: two copies of one anchor would add no information.
        pairs = anchor_pairs(n, list(first_seen.values())[: anchors or DEFAULT_ANCHORS])
    calls = sorted(
        {
            (min(text_of[i], text_of[j]), max(text_of[i], text_of[j]))
            for i, j in pairs
            if text_of[i] != text_of[j]
        }
    )
    return GroupPlan(texts=texts, text_of=text_of, pairs=pairs, calls=calls)


def pair_outcomes(plan: GroupPlan, p_first: Mapping[Pair, float | None]) -> list[float | None]:
    """P(response i beats response j) for each planned pair (i, j), from the judge's
    P(text a beats text b) per call; None where that call failed."""
    outcomes: list[float | None] = []
    for i, j in plan.pairs:
        a, b = plan.text_of[i], plan.text_of[j]
        if a == b:
            outcomes.append(TIE)
            continue
        p = p_first[(min(a, b), max(a, b))]
        outcomes.append(None if p is None else (p if a < b else 1.0 - p))
    return outcomes


@dataclass(frozen=True)
class Standing:
    """A response's record: its text's outcomes pooled over all copies of the text, shared out
    equally among the copies (so copies have equal standings, and a text without copies has
    exactly its own). Counts are whole numbers except for a share of a pooled count that does
    not divide evenly."""

    wins: float
    """Points taken: the sum of P(this response wins) over its judged comparisons."""
    comparisons: float
    """Comparisons it took part in that have an outcome (the win rate's denominator)."""
    identical: float
    """Of those, ties with a copy of its own text (no judge call)."""
    failed: float
    """Comparisons that failed; they count neither as wins nor in the denominator."""

    @property
    def ok(self) -> bool:
        # Ties with its own copies say nothing about a response whose every judged comparison
        # failed: it stays a failure rather than a 0.5.
        judged = self.comparisons - self.identical
        return self.comparisons > 0 and (judged > 0 or self.failed == 0)

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.comparisons if self.ok else None


def standings(plan: GroupPlan, outcomes: Sequence[float | None]) -> list[Standing]:
    """One standing per response; copies of one text share one pooled standing."""
    texts = len(plan.texts)
    wins = [0.0] * texts
    counts = [0] * texts
    identical = [0] * texts
    failed = [0] * texts
    for (i, j), p in zip(plan.pairs, outcomes, strict=True):
        a, b = plan.text_of[i], plan.text_of[j]
        if p is None:
            failed[a] += 1
            failed[b] += 1
            continue
        wins[a] += p
        wins[b] += 1.0 - p
        counts[a] += 1
        counts[b] += 1
        if a == b:
            identical[a] += 2
    copies = Counter(plan.text_of)
    pooled = [
        Standing(
            wins[t] / copies[t],
            _share(counts[t], copies[t]),
            _share(identical[t], copies[t]),
            _share(failed[t], copies[t]),
        )
        for t in range(texts)
    ]
    return [pooled[t] for t in plan.text_of]


def _share(total: int, copies: int) -> float:
    # A count stays an int where it divides evenly, as it always does without copies.
    return total // copies if total % copies == 0 else total / copies


def text_strengths(plan: GroupPlan, outcomes: Sequence[float | None]) -> list[float | None]:
    """Bradley-Terry over distinct texts, one score per response (copies share their text's).

    Each text is fitted at the position of its first copy, so a group without copies is fitted
    exactly as ``bradley_terry`` over its responses.
    """
    first: dict[int, int] = {}
    for k, t in enumerate(plan.text_of):
        first.setdefault(t, k)
    at = [first[t] for t in plan.text_of]
    # A tie between two copies becomes a text's tie with itself: no information, but it keeps
    # a text of copies only in the fit (as a group of copies only is a plain tie).
    fit = bradley_terry(len(at), [(at[i], at[j]) for i, j in plan.pairs], outcomes)
    return [fit[k] for k in at]


def bradley_terry(
    n: int,
    pairs: Sequence[Pair],
    outcomes: Sequence[float | None],
    *,
    prior: float = 0.1,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> list[float | None]:
    """Bradley-Terry log-strengths (mean 0 over the judged responses), fitted to soft wins.

    The prior is a virtual opponent of strength 0 that each response beats ``prior`` times and
    loses to ``prior`` times: it keeps the strengths finite when a response wins (or loses)
    everything, and ties disconnected parts of a sparse comparison graph to one scale. The
    penalised likelihood is strictly concave, so damped Newton steps converge in a few
    iterations (the textbook MM iteration needs thousands when one response dominates).
    None for a response with no judged comparison.
    """
    judged = [(i, j, p) for (i, j), p in zip(pairs, outcomes, strict=True) if p is not None]
    theta = [0.0] * n

    def objective(t: Sequence[float]) -> float:
        value = sum(
            p * _log_sigmoid(t[i] - t[j]) + (1 - p) * _log_sigmoid(t[j] - t[i])
            for i, j, p in judged
        )
        return value + prior * sum(_log_sigmoid(x) + _log_sigmoid(-x) for x in t)

    for _ in range(max_iter):
        grad = [prior * (1.0 - 2.0 * _sigmoid(x)) for x in theta]
        # negative Hessian: a weighted graph Laplacian plus the prior's diagonal (positive definite)
        hess = [[0.0] * n for _ in range(n)]
        for k, x in enumerate(theta):
            hess[k][k] = 2.0 * prior * _sigmoid(x) * (1.0 - _sigmoid(x))
        for i, j, p in judged:
            q = _sigmoid(theta[i] - theta[j])
            grad[i] += p - q
            grad[j] -= p - q
            w = q * (1.0 - q)
            hess[i][i] += w
            hess[j][j] += w
            hess[i][j] -= w
            hess[j][i] -= w
        step = _solve_spd(hess, grad)
        slope = sum(g * d for g, d in zip(grad, step, strict=True))
        if slope < tol:
            break
        base, size = objective(theta), 1.0
        while size > 1e-8:
            trial = [x + size * d for x, d in zip(theta, step, strict=True)]
            if objective(trial) >= base + 1e-4 * size * slope:
                break
            size /= 2
        theta = trial
    seen = {k for i, j, _ in judged for k in (i, j)}
    if not seen:
        return [None] * n
    mean = sum(theta[k] for k in seen) / len(seen)
    return [theta[k] - mean if k in seen else None for k in range(n)]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _solve_spd(a: list[list[float]], b: list[float]) -> list[float]:
    """Solve a x = b for a symmetric positive definite a, by Cholesky (a is small: n x n)."""
    n = len(b)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = a[i][j] - sum(low[i][k] * low[j][k] for k in range(j))
            low[i][j] = math.sqrt(s) if i == j else s / low[j][j]
    y = [0.0] * n
    for i in range(n):
        y[i] = (b[i] - sum(low[i][k] * y[k] for k in range(i))) / low[i][i]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(low[k][i] * x[k] for k in range(i + 1, n))) / low[i][i]
    return x
