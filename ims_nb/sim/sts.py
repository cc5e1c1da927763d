"""IAM temporary access keys (``POST /v3.0/OS-CREDENTIAL/securitytokens``): issue, check with their token, expire."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import threading
from dataclasses import dataclass, replace
from enum import StrEnum

#: What IAM accepts for ``token.duration_seconds`` (15 min to 24 h), and what it gives when none is asked for.
MIN_DURATION_SECONDS = 15 * 60
MAX_DURATION_SECONDS = 24 * 3600
DEFAULT_DURATION_SECONDS = MIN_DURATION_SECONDS
_AK_ALPHABET = string.ascii_uppercase + string.digits
_SK_ALPHABET = string.ascii_letters + string.digits


def token_hash(token: str) -> str:
    """How the simulator keeps tokens: their SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenProblem(StrEnum):
    """Why a temporary AK's request is refused although its signature may be right."""

    MISSING = "missing"  # no security token came with the temporary AK
    WRONG = "wrong"  # the security token is not the one issued with this AK
    EXPIRED = "expired"  # the temporary AK and its token are past their expiry


@dataclass(frozen=True)
class TemporaryKey:
    """One issued temporary AK: its SK, the digest of its security token, whose it is and until when (real time)."""

    access: str
    secret: str
    token_digest: str
    user: str
    expires_at: float

    def __repr__(self) -> str:
        return f"TemporaryKey(access={self.access!r}, user={self.user!r}, expires_at={self.expires_at})"

    def problem(self, security_token: str | None, now: float) -> TokenProblem | None:
        """None when ``security_token`` is this key's and the key has not expired at ``now``."""
        if not security_token:
            return TokenProblem.MISSING
        if not hmac.compare_digest(token_hash(security_token), self.token_digest):
            return TokenProblem.WRONG
        if self.expires_at <= now:
            return TokenProblem.EXPIRED
        return None


class TemporaryKeys:
    """The temporary AKs IAM has issued, by AK. Kept in memory only: a restarted simulator has forgotten them,
    and a client asks for new ones when they are refused."""

    def __init__(self) -> None:
        self._keys: dict[str, TemporaryKey] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def issue(self, user: str, duration_seconds: int, now: float) -> tuple[TemporaryKey, str]:
        """A new temporary AK/SK for ``user``, valid ``duration_seconds`` from ``now``; returns it and its token."""
        security_token = "gQ" + secrets.token_urlsafe(256)
        key = TemporaryKey(
            access="".join(secrets.choice(_AK_ALPHABET) for _ in range(20)),
            secret="".join(secrets.choice(_SK_ALPHABET) for _ in range(40)),
            token_digest=token_hash(security_token),
            user=user,
            expires_at=now + duration_seconds,
        )
        with self._lock:
            self._keys[key.access] = key
        return key, security_token

    def get(self, access_key: str) -> TemporaryKey | None:
        return self._keys.get(access_key)

    def expire(self, now: float) -> int:
        """Make every issued key expire at ``now``; returns how many there are."""
        with self._lock:
            self._keys = {ak: replace(key, expires_at=min(key.expires_at, now)) for ak, key in self._keys.items()}
            return len(self._keys)
