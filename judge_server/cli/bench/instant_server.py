"""A server process on the instant engine (``python -m judge_server.cli.bench.instant_server``).

``--mode judge``: the real judge-server app (settings from ``JUDGE_*`` like ``serve``) on
``InstantEngine``: what the overhead section measures. ``--mode openai``: a minimal
OpenAI-compatible chat endpoint that always answers ``Score: 5``, a stand-in for ``vllm serve``
so the naive section's plumbing runs without vLLM (tests only). ``--mode bare``: the framework's
ceiling, a plain FastAPI ``POST /v1/score`` that parses the body and answers the same JSON shape
with nothing in between (no validation models, no judging, no cache, no middleware).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from judge_server.cli.bench.instant_engine import INSTANT_GENERATION, InstantEngine
from judge_server.settings import Settings


def openai_app() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "chat.completion",
            "model": body.get("model", "instant-engine"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": INSTANT_GENERATION},
                    "finish_reason": "stop",
                }
            ],
        }

    return app


#: A pointwise item's details on the 1-9 scale, as the instant engine makes the real app answer.
BARE_DETAILS: dict[str, Any] = {
    "expected_score": 5.0,
    "argmax": 1,
    "distribution": {str(s): 1 / 9 for s in range(1, 10)},
    "valid_mass": 0.9,
}


def bare_app() -> FastAPI:
    """FastAPI as its own documentation writes a JSON route: a ``dict`` body, a ``dict`` answer."""
    app = FastAPI()

    @app.get("/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/v1/score")
    async def score(body: dict[str, Any]) -> dict[str, Any]:
        results = [
            {
                "id": item.get("id") or str(i),
                "status": "ok",
                "reward": 0.5,
                "details": BARE_DETAILS,
                "error": None,
                "cached": False,
                "usage": {"prompt_tokens": 0, "cached_prompt_tokens": 0, "engine_calls": 1},
            }
            for i, item in enumerate(body["items"])
        ]
        rubric = {"name": body["rubric"], "version": "bare"}
        return {"rubric": rubric, "model": "bare-framework", "results": results}

    return app


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    from judge_server.api import create_app
    from judge_server.judges.answer_guard import warm as warm_answer_guard

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["judge", "openai", "bare"], default="judge")
    args = parser.parse_args(argv)
    settings = Settings()
    # The instant engine is ready at once, so the server would be too with the answer guard's
    # vocabulary still being built (a second of CPU) in the measured section: build it first.
    warm_answer_guard()
    apps = {"openai": openai_app, "bare": bare_app}
    app = create_app(settings, InstantEngine()) if args.mode == "judge" else apps[args.mode]()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level=settings.log_level)


if __name__ == "__main__":
    main()
