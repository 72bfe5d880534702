"""Who may call what: API keys for scoring and reads, the admin token for rubric changes, and
the bind check that keeps an unkeyed server on loopback.

- With ``api_keys`` set, every scoring and read route needs one of them (or the admin token) as
  ``Authorization: Bearer <key>``. ``Basic`` with the key as the password is accepted too, so a
  trainer that can only be given a URL (OpenRLHF and slime post with aiohttp, which sends a URL's
  ``user:password@`` as Basic) can carry one: ``http://judge:<key>@host:8000/get_reward``.
- Rubric changes need the admin token, never a scoring key; with no admin token configured they
  are refused (403 ``admin_token_required``): a mutation is never open.
- Every comparison is constant-time over SHA-256 digests (equal lengths, nothing to learn from
  timing), and every configured secret is compared, so the time does not say which one matched.
- ``/health`` and ``/ready`` stay open for probes; ``/metrics`` follows ``metrics_access``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable

from fastapi import Depends, Request
from pydantic import SecretStr

from judge_server.api.deps import get_service, on_loop
from judge_server.api.errors import ApiError
from judge_server.settings import Settings

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def matches(given: str, secrets: Iterable[SecretStr]) -> bool:
    """True when ``given`` equals one of ``secrets``; compares against all of them, always."""
    given_digest = _digest(given)
    found = False
    for secret in secrets:
        found |= hmac.compare_digest(given_digest, _digest(secret.get_secret_value()))
    return found


#: Fixed, so an id is the same on every replica and after restarts; it keeps a key id from
#: being looked up in a table made for plain SHA-256 or for another application.
KEY_ID_SALT = b"judge-server key id v2"


@functools.lru_cache(maxsize=64)
def key_id(secret: str) -> str:
    """A name for a key that logs and the rubric history can show, stable across replicas and
    restarts. scrypt (about 50 ms, 16 MiB), so an id seen in a history is no cheap oracle for
    guessing a weak key offline. Memoised: warm it off the event loop (``warm_key_ids``)."""
    digest = hashlib.scrypt(secret.encode(), salt=KEY_ID_SALT, n=2**14, r=8, p=1, dklen=8)
    return "key:" + digest.hex()


def warm_key_ids(settings: Settings) -> None:
    """Derive the admin token's id (the only credential a change is made with) ahead, in a
    thread at startup, so no request pays the KDF on the event loop."""
    if settings.admin_token is not None:
        key_id(settings.admin_token.get_secret_value())


def caller_id(request: Request) -> str | None:
    """The key id of the credential a request presents (None without one). Only for routes
    behind ``Admin``: the admin token's id is memoised, another key's would be derived here."""
    given = credential(request)
    return None if given is None else key_id(given)


def is_admin(request: Request) -> bool:
    """The request presents the admin token (who changed a rubric is shown only to admins)."""
    token = get_service(request).settings.admin_token
    given = credential(request)
    return token is not None and given is not None and matches(given, [token])


def credential(request: Request) -> str | None:
    """The secret a request presents: a Bearer token, or the password of Basic credentials."""
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    value = value.strip()
    if not value:
        return None
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return password or user or None
    return None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def require_api_key(request: Request) -> None:
    """Scoring and read routes: open without ``api_keys``; otherwise a key or the admin token."""
    settings = get_service(request).settings
    if not settings.api_keys:
        return
    given = credential(request)
    allowed = [*settings.api_keys, *([settings.admin_token] if settings.admin_token else [])]
    if given is None:
        raise _unauthorized("this server needs an API key: send 'Authorization: Bearer <key>'")
    if not matches(given, allowed):
        raise _unauthorized("the API key is not valid")


def require_admin(request: Request) -> None:
    """Rubric changes: the admin token only; refused outright when none is configured."""
    settings = get_service(request).settings
    token = settings.admin_token
    if token is None:
        raise ApiError(
            403,
            "admin_token_required",
            "rubric changes are disabled: set JUDGE_ADMIN_TOKEN on the server and send it as "
            "'Authorization: Bearer <token>' (or edit the files in the rubrics directory)",
        )
    given = credential(request)
    if given is not None and matches(given, [token]):
        return
    if given is not None and matches(given, settings.api_keys):
        raise ApiError(
            403,
            "forbidden",
            "a scoring key cannot change rubrics: send the admin token",
        )
    raise _unauthorized("rubric changes need 'Authorization: Bearer <admin token>'")


def require_metrics_access(request: Request) -> None:
    """``/metrics``: open unless ``metrics_access`` is ``key`` (then as a read route)."""
    if get_service(request).settings.metrics_access == "key":
        require_api_key(request)


def is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False  # another host name: it may resolve anywhere
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_bind(settings: Settings) -> str | None:
    """Why the server must not start on ``settings.host``, or None when it may."""
    if is_loopback(settings.host) or settings.api_keys or settings.trust_network:
        return None
    return (
        f"refusing to listen on {settings.host!r} without API keys: anyone who reaches the port "
        "could score on your hardware and read your rubrics. Set JUDGE_API_KEYS (comma-"
        "separated) or --api-key, or bind to 127.0.0.1; on a network you trust, pass "
        "--trust-network (JUDGE_TRUST_NETWORK=true)."
    )


ApiKey = Depends(on_loop(require_api_key))
Admin = Depends(on_loop(require_admin))
MetricsAccess = Depends(on_loop(require_metrics_access))
