"""Cache keys: a hash of everything that can change a judge's output, and nothing else.

The key covers the judge model, by name and by content (``models``: the hashes of the judge's and
the reward models' files, read at every call since they are known only once the engines have
started), the engine settings that change outputs (dtype, context length, ...), the rubric
version (a hash of the rubric's content), the scoring mode, the item's canonical inputs and the
version of the scoring code (``SCORING_LOGIC_VERSION``).
It is a sha256 over canonical JSON (sorted keys, no whitespace), so the order of keys in a
mapping never matters and any change of value always does. The item's ``id`` is
deliberately left out: two items with the same inputs get the same verdict.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]

#: Bump when the key layout or the format of a stored value changes: old entries become misses.
# 2: a composite's cached reward now applies its components' shaping.
# 3: keys carry SCORING_LOGIC_VERSION.
# 4: the models' content identity is a part of the key (it was a second hash over the key).
CACHE_SCHEMA_VERSION = 4

#: Bump when a change to the scoring code can change the reward or details of an item whose
#: rubric, model and inputs are unchanged: prompt building and escaping (judges/prompting,
#: conversation, the engines' chat rendering), verdict reading (judges/verdict*, likelihood,
#: pointwise, pairwise), answer extraction and equivalence (judges/answers, verify), checks
#: that refuse a response, shaping and aggregation (judges/base, composite), or what counts
#: as ``ok`` (service/scoring). A refactor that keeps every reward and detail as it was needs
#: no bump. After a bump old entries are misses, never answers of the old logic. The rubric's
#: own content is versioned separately (rubric_version).
# 1: issue 10 (token escaping, master-key guards, failures that were verdicts).
# 2: the mention rule (a short reference must be named), guards on pointwise and pairwise
#    rubrics that show the reference, instance criteria (issue 15).
# 3: guard fixes: pairwise decides only on the item's own refusal, verify guards only what its
#    exact check leaves undecided, yes/no sides, "A or B", dotted initials, LaTeX symbols.
SCORING_LOGIC_VERSION = 3


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


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# The C encoder behind it, built once too (``encode`` builds one per call); without the
# circular-reference check, whose state a failed call leaves behind (an unserialisable value
# would make later keys fail): wire inputs, decoded from JSON, hold no cycles.
_C_CANONICAL = (
    None
    if c_make_encoder is None
    else c_make_encoder(
        None, _CANONICAL.default, encode_basestring, None, ":", ",", True, False, True
    )
)


def _canonical(value: object) -> str:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, the
    encoder built once: built per call, it is most of the cost of a small item's key."""
    if _C_CANONICAL is None:  # a Python without the json module's C part
        return _CANONICAL.encode(value)
    return "".join(_C_CANONICAL(value, 0))


class KeyMaker:
    """``cache_key`` for many items of one judge call: the parts every item shares are
    serialised and hashed once, and each item's key hashes on from there. The keys are
    ``cache_key``'s, byte for byte: sorted keys put the item at one place in the canonical
    JSON, and a value serialises the same nested as alone."""

    def __init__(
        self,
        *,
        model_id: str,
        models: Mapping[str, object],
        engine_fingerprint: Mapping[str, object],
        rubric_version: str,
        mode: str,
    ) -> None:
        payload = {
            "schema": CACHE_SCHEMA_VERSION,
            "scoring": SCORING_LOGIC_VERSION,
            "model": model_id,
            "models": dict(models),
            "engine": dict(engine_fingerprint),
            "rubric_version": rubric_version,
            "mode": mode,
            # Stands for the item while the parts around it are serialised; random, so no
            # other part can hold the same text.
            "item": secrets.token_hex(16),
        }
        head, slot, tail = _canonical(payload).partition(f'"item":"{payload["item"]}"')
        assert slot, "the item's slot is in the canonical payload"
        self._head = hashlib.sha256(f'{head}"item":'.encode())
        self._tail = tail.encode()

    def key(self, item: Mapping[str, object]) -> str:
        """Values must be JSON-serialisable (wire inputs always are); anything else raises
        TypeError rather than being stringified into a key that could collide."""
        digest = self._head.copy()
        digest.update(_canonical(dict(item)).encode())
        digest.update(self._tail)
        return digest.hexdigest()


def cache_key(
    *,
    model_id: str,
    models: Mapping[str, object],
    engine_fingerprint: Mapping[str, object],
    rubric_version: str,
    mode: str,
    item: Mapping[str, object],
) -> str:
    """sha256 hex of the canonical JSON of every part that can change the result.

    Values must be JSON-serialisable (wire inputs always are); anything else raises TypeError
    rather than being stringified into a key that could collide.
    """
    maker = KeyMaker(
        model_id=model_id,
        models=models,
        engine_fingerprint=engine_fingerprint,
        rubric_version=rubric_version,
        mode=mode,
    )
    return maker.key(item)
