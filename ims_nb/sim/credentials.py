"""Credentials in one region's simulator backend: who signed a request (a permanent or temporary AK), IAM tokens."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from ims_nb.sim.iam import RegionIam
from ims_nb.sim.inventory import Account
from ims_nb.sim.store import Store
from ims_nb.sim.sts import TemporaryKey, TokenProblem, token_hash

TOKEN_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Principal:
    """Who a request is from, once the gateway has authenticated it."""

    user: str
    project_id: str | None
    access_key: str | None
    obs_write: bool


@dataclass(frozen=True)
class Signer:
    """Whose key signed a request and its SK: a permanent AK, or a temporary one (``problem`` says why its security
    token is refused, if it is)."""

    account: Account
    secret_key: str
    temporary: bool = False
    problem: TokenProblem | None = None


class RegionCredentials(RegionIam):
    """The keys and tokens side of one region's backend, over the account's shared ``Iam``."""

    store: Store | None
    lock: threading.RLock

    def account_by_ak(self, access_key: str) -> Account | None:
        return self.iam.account_by_ak(access_key)

    def signer(self, access_key: str, security_token: str | None, now: float) -> Signer | None:
        """The key behind ``access_key`` (permanent, or temporary checked with its security token at ``now``, real
        time); None when IAM never issued it. A permanent AK ignores a security token, as the services do."""
        account = self.account_by_ak(access_key)
        if account is not None:
            return Signer(account, account.sk)
        key = self.temporary.get(access_key)
        if key is None:
            return None
        return Signer(self.accounts[key.user], key.secret, True, key.problem(security_token, now))

    def issue_token(self, account: Account, project_id: str | None, methods: list[str]) -> tuple[str, dict[str, Any]]:
        """A new 24 h token (real time, as the gateway checks it) and its body record."""
        token = "MII" + secrets.token_urlsafe(384)
        issued = time.time()
        record = {
            "user": account.name,
            "project_id": project_id,
            "methods": methods,
            "issued_at": issued,
            "expires_at": issued + TOKEN_TTL_SECONDS,
        }
        with self.lock:
            digest = token_hash(token)
            self.tokens[digest] = record
            if self.store is not None:
                self.store.put_token(digest, record)
        return token, record

    def token(self, token: str) -> dict[str, Any] | None:
        return self.tokens.get(token_hash(token))

    def issue_temporary_key(self, account: Account, duration_seconds: int) -> tuple[TemporaryKey, str]:
        """A temporary AK/SK for ``account`` and its security token, valid ``duration_seconds`` of real time."""
        return self.temporary.issue(account.name, duration_seconds, time.time())

    def expire_tokens(self) -> int:
        """Control plane: make every issued token (and temporary AK) expire now; returns how many tokens."""
        with self.lock:
            self.temporary.expire(time.time() - 1)
            for digest, record in self.tokens.items():
                record["expires_at"] = time.time() - 1
                if self.store is not None:
                    self.store.put_token(digest, record)
            return len(self.tokens)
