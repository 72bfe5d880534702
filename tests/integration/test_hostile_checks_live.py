"""The real server keeps its event loop free while it judges hostile items.

On the old main, an inline composite rubric with ``^(a+)+$`` on 25 characters blocked every
request and ``/health`` for 3.2 s, and 20 verify items with math references blocked it 6.3 s.
Here ``/health`` is probed throughout while the server judges a catastrophic regex, a batch of
verify items with costly math references and answers that never finish in sympy: every probe
answers fast, the endless answers end ``judge_error`` at the check deadline, and every other
item in the same requests gets its honest verdict.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import sympy

from judge_server.settings import DEFAULT_CHECK_TIMEOUT_S

HEALTH_BOUND_S = 1.0  # generous: a blocked loop answered after 3-6 s
# sympy runs 20+ s on this (measured): only the deadline ends it.
ENDLESS = ("The answer is $(x+1)^{999}$.", "x^2+1")


def costly(k: int) -> tuple[str, str]:
    """``(x+k)^12`` against its expansion: 0.15-0.9 s of sympy each, 6.2 s for k = 1..20 on one
    core (measured), distinct so that no cache helps. Honest work, heavy in bulk."""
    expanded = sympy.latex(sympy.expand((sympy.Symbol("x") + k) ** 12))
    return f"The answer is $(x+{k})^{{12}}$.", expanded


class HealthProbe:
    """GET /health in a loop from its own thread, recording each answer's latency."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                status = client.get("/health").status_code
                self.latencies.append(time.perf_counter() - start)
                self.statuses.append(status)
                time.sleep(0.05)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def score(base_url: str, rubric: str | dict[str, Any], items: list[dict[str, Any]]) -> list[Any]:
    resp = httpx.post(
        f"{base_url}/v1/score",
        json={"rubric": rubric, "items": items, "options": {"cache": False}},
        timeout=300,
    )
    assert resp.status_code == 200, resp.text
    results: list[Any] = resp.json()["results"]
    return results


def test_health_stays_fast_while_hostile_checks_run(server_url: str) -> None:
    verify_items = [
        {"id": f"endless{i}", "prompt": "Expand.", "response": ENDLESS[0], "reference": ENDLESS[1]}
        for i in range(2)
    ]
    verify_items += [
        {"id": f"costly{k}", "prompt": "Simplify.", "response": r, "reference": ref}
        for k, (r, ref) in enumerate(costly(k) for k in range(1, 21))
    ]
    verify_items += [
        {"id": "right", "prompt": "2+2?", "response": "#### 4", "reference": "4"},
        {"id": "wrong", "prompt": "2+2?", "response": "The answer is 5.", "reference": "4"},
    ]
    regex_rubric = {
        "name": "inline_backtracking",
        "mode": "composite",
        "components": [{"check": "regex_must", "pattern": "^(a+)+$"}],
    }
    regex_items = [
        {"id": "evil", "prompt": "p", "response": "a" * 25 + "!"},
        {"id": "evil_long", "prompt": "p", "response": "a" * 100_000 + "!"},
        {"id": "match", "prompt": "p", "response": "a" * 25},
    ]

    with HealthProbe(server_url) as probe:
        time.sleep(0.3)  # a baseline before the load
        outcome: dict[str, list[Any]] = {}
        verify = threading.Thread(
            target=lambda: outcome.update(verify=score(server_url, "verify", verify_items))
        )
        start = time.perf_counter()
        verify.start()
        outcome["regex"] = score(server_url, regex_rubric, regex_items)
        verify.join()
        took = time.perf_counter() - start
        time.sleep(0.3)

    worst = max(probe.latencies)
    print(
        f"\n/health during hostile checks: {len(probe.latencies)} probes, "
        f"max {worst * 1000:.0f} ms; requests took {took:.1f} s"
    )
    assert set(probe.statuses) == {200}
    assert len(probe.latencies) >= 20
    assert worst < HEALTH_BOUND_S, f"/health took {worst:.2f} s: the event loop was blocked"

    verdicts = {r["id"]: r for r in outcome["verify"]}
    for i in range(2):
        endless = verdicts[f"endless{i}"]
        assert (endless["status"], endless["reward"]) == ("judge_error", None), endless
        assert f"{DEFAULT_CHECK_TIMEOUT_S:g} s deadline" in endless["error"]
    for i in range(20):
        row = verdicts[f"costly{i}"]
        assert (row["status"], row["reward"]) == ("ok", 1.0), row
        assert row["details"]["method"] == "math_verify"
    assert (verdicts["right"]["status"], verdicts["right"]["reward"]) == ("ok", 1.0)
    assert (verdicts["wrong"]["status"], verdicts["wrong"]["reward"]) == ("ok", 0.0)

    regex = {r["id"]: r for r in outcome["regex"]}
    assert (regex["evil"]["status"], regex["evil"]["reward"]) == ("ok", 0.0)
    assert (regex["evil_long"]["status"], regex["evil_long"]["reward"]) == ("ok", 0.0)
    assert (regex["match"]["status"], regex["match"]["reward"]) == ("ok", 1.0)
