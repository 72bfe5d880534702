"""Pins the retry policy: which failures are retried and how long to wait."""

from __future__ import annotations

import calendar
import random

import pytest

from judge_client import RetryPolicy
from judge_client._retry import parse_retry_after, retry_delay, should_retry

NO_JITTER = RetryPolicy(jitter=0.0)
# 2015-10-21 07:28:00 GMT, the RFC 9110 example date.
NOW = float(calendar.timegm((2015, 10, 21, 7, 28, 0)))


class FixedRng:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("status_code", "expected"),
    [
        (None, True),  # timeout or connection error
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (599, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (413, False),
        (422, False),
        (499, False),
        (200, False),
        (301, False),
        (600, False),
    ],
)
def test_should_retry(status_code: int | None, expected: bool) -> None:
    assert should_retry(status_code) is expected


@pytest.mark.parametrize(
    ("attempt", "retry_after", "policy", "expected"),
    [
        # Exponential backoff: 0.5 * 2**attempt, capped at 8 s.
        (0, None, NO_JITTER, 0.5),
        (1, None, NO_JITTER, 1.0),
        (2, None, NO_JITTER, 2.0),
        (3, None, NO_JITTER, 4.0),
        (4, None, NO_JITTER, 8.0),
        (5, None, NO_JITTER, 8.0),
        (100, None, NO_JITTER, 8.0),
        (10_000, None, NO_JITTER, 8.0),  # no float overflow
        (3, None, RetryPolicy(initial_backoff=1.0, max_backoff=30.0, jitter=0.0), 8.0),
        (5, None, RetryPolicy(initial_backoff=1.0, max_backoff=30.0, jitter=0.0), 30.0),
        (2, None, RetryPolicy(initial_backoff=0.0, jitter=0.0), 0.0),
        # Retry-After in seconds wins over backoff, capped at max_retry_after.
        (0, "3", NO_JITTER, 3.0),
        (3, "3", NO_JITTER, 3.0),
        (0, "1.5", NO_JITTER, 1.5),
        (0, "0", NO_JITTER, 0.0),
        (0, " 2 ", NO_JITTER, 2.0),
        (0, "60", NO_JITTER, 60.0),
        (0, "61", NO_JITTER, 60.0),
        (0, "3600", NO_JITTER, 60.0),
        (0, "5", RetryPolicy(max_retry_after=2.0, jitter=0.0), 2.0),
        (0, "5", RetryPolicy(max_retry_after=0.0, jitter=0.0), 0.0),
        (0, "-5", NO_JITTER, 0.0),
        # Unusable Retry-After falls back to backoff.
        (1, "", NO_JITTER, 1.0),
        (1, "soon", NO_JITTER, 1.0),
        (1, "nan", NO_JITTER, 1.0),
        (1, "inf", NO_JITTER, 1.0),
        (1, "Wed, 99 Foo 2015 07:28:00 GMT", NO_JITTER, 1.0),
        # Retry-After as an HTTP date, relative to NOW.
        (0, "Wed, 21 Oct 2015 07:28:10 GMT", NO_JITTER, 10.0),
        (0, "Wed, 21 Oct 2015 07:28:00 GMT", NO_JITTER, 0.0),
        (0, "Wed, 21 Oct 2015 07:27:00 GMT", NO_JITTER, 0.0),
        (0, "Wed, 21 Oct 2015 08:28:00 GMT", NO_JITTER, 60.0),
        (0, "Wed, 21 Oct 2015 09:28:05 +0200", NO_JITTER, 5.0),
    ],
)
def test_retry_delay_without_jitter(
    attempt: int, retry_after: str | None, policy: RetryPolicy, expected: float
) -> None:
    assert retry_delay(attempt, retry_after, policy, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("attempt", "draw", "jitter", "expected"),
    [
        (0, 0.0, 0.25, 0.5),  # a draw of 0 removes nothing
        (0, 0.5, 0.25, 0.4375),  # 0.5 * (1 - 0.25 * 0.5)
        (0, 1.0, 0.25, 0.375),  # at most `jitter` of the delay is removed
        (2, 0.5, 0.25, 1.75),
        (4, 1.0, 0.25, 6.0),
        (9, 1.0, 0.25, 6.0),  # jitter applies after the cap
        (1, 1.0, 1.0, 0.0),
        (1, 0.3, 0.0, 1.0),
    ],
)
def test_retry_delay_jitter_arithmetic(
    attempt: int, draw: float, jitter: float, expected: float
) -> None:
    policy = RetryPolicy(jitter=jitter)
    assert retry_delay(attempt, None, policy, FixedRng(draw)) == pytest.approx(expected)


def test_jitter_does_not_apply_to_retry_after() -> None:
    assert retry_delay(0, "4", RetryPolicy(jitter=1.0), FixedRng(1.0)) == 4.0


@pytest.mark.parametrize("attempt", range(8))
def test_seeded_jitter_stays_in_band(attempt: int) -> None:
    policy = RetryPolicy()
    rng = random.Random(1234)
    base = min(policy.initial_backoff * 2**attempt, policy.max_backoff)
    delays = [retry_delay(attempt, None, policy, rng) for _ in range(200)]
    assert all(base * (1 - policy.jitter) <= d <= base for d in delays)
    assert len(set(delays)) > 1


def test_seeded_rng_is_reproducible() -> None:
    first = [retry_delay(a, None, RetryPolicy(), random.Random(7)) for a in range(5)]
    second = [retry_delay(a, None, RetryPolicy(), random.Random(7)) for a in range(5)]
    assert first == second


def test_negative_attempt_is_rejected() -> None:
    with pytest.raises(ValueError, match="attempt"):
        retry_delay(-1, None, NO_JITTER)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("12", 12.0),
        ("0.25", 0.25),
        ("-1", 0.0),
        ("later", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:28:30 -0000", None),  # naive date: zone unknown
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"initial_backoff": -0.1},
        {"max_backoff": -1.0},
        {"max_retry_after": -1.0},
        {"jitter": -0.1},
        {"jitter": 1.5},
    ],
)
def test_retry_policy_rejects_invalid_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_retry_policy_defaults() -> None:
    assert RetryPolicy() == RetryPolicy(
        max_retries=3, initial_backoff=0.5, max_backoff=8.0, jitter=0.25, max_retry_after=60.0
    )
