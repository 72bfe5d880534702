"""Cache keys: a hash of everything that can change a judge's output, and nothing else.

The key covers the judge model, the engine settings that change outputs (dtype, context length,
...), the rubric version (a hash of the rubric's content), the scoring mode and the item's
canonical inputs. It is a sha256 over canonical JSON (sorted keys, no whitespace), so the order
of keys in a mapping never matters and any change of value always does. The item's ``id`` is
deliberately left out: two items with the same inputs get the same verdict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

#: Bump when the key layout or the meaning of a cached value changes: old entries become misses.
# 2: a composite's cached reward now applies its components' shaping.
CACHE_SCHEMA_VERSION = 2


def item_fingerprint(
    prompt: str | Sequence[Mapping[str, object]],
    response: str,
    reference: str | None,
    metadata: Mapping[str, object] | None,
) -> dict[str, object]:
    """The canonical inputs of one item: prompt text or messages, response, reference, metadata.

    A text prompt and a one-message conversation stay distinct: they may render differently.
    """
    canonical_prompt: str | list[dict[str, object]] = (
        prompt if isinstance(prompt, str) else [dict(message) for message in prompt]
    )
    return {
        "prompt": canonical_prompt,
        "response": response,
        "reference": reference,
        "metadata": dict(metadata or {}),
    }


def cache_key(
    *,
    model_id: str,
    engine_fingerprint: Mapping[str, object],
    rubric_version: str,
    mode: str,
    item: Mapping[str, object],
) -> str:
    """sha256 hex of the canonical JSON of every part that can change the result.

    Values must be JSON-serialisable (wire inputs always are); anything else raises TypeError
    rather than being stringified into a key that could collide.
    """
    payload = {
        "schema": CACHE_SCHEMA_VERSION,
        "model": model_id,
        "engine": dict(engine_fingerprint),
        "rubric_version": rubric_version,
        "mode": mode,
        "item": dict(item),
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
