"""The seeded IAM users: the demo operator and auditor, a team's other operators, their credentials and ids."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass


@dataclass
class Account:
    """One IAM user with its credentials, whether it may write to OBS, and its IAM user id (from the seed)."""

    name: str
    password: str
    ak: str
    sk: str
    obs_write: bool
    user_id: str = ""


def random_hex(rng: random.Random, n: int = 32) -> str:
    """``n`` hex digits drawn from ``rng`` (ids the seed determines)."""
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _token(rng: random.Random, n: int, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_MIXED = _UPPER + "abcdefghijklmnopqrstuvwxyz"
#: The name of the demo operator; a team's other operators are ``ims-operator-2``, ``ims-operator-3``, ...
OPERATOR = "ims-operator"


def _account(seed: int, rng: random.Random, name: str, password_prefix: str, obs_write: bool) -> Account:
    password, ak, sk = password_prefix + _token(rng, 12, _MIXED), _token(rng, 20, _UPPER), _token(rng, 40, _MIXED)
    return Account(name, password, ak, sk, obs_write, user_id(seed, name))


def user_id(seed: int, name: str) -> str:
    """An IAM user id (32 hex digits) that the seed and the user's name determine."""
    return hashlib.sha256(f"user:{seed}:{name}".encode()).hexdigest()[:32]


def make_accounts(seed: int) -> tuple[str, str, list[Account]]:
    """Domain id, project id and the two demo users, all derived from the seed."""
    rng = random.Random(f"accounts:{seed}")
    domain_id, project_id = random_hex(rng), random_hex(rng)
    accounts = [_account(seed, rng, OPERATOR, "Operator-", True), _account(seed, rng, "ims-auditor", "Auditor-", False)]
    return domain_id, project_id, accounts


def team_accounts(seed: int, count: int) -> list[Account]:
    """``count`` more operators of the same project (``ims-operator-2`` ...), each with a password and an AK/SK."""
    rng = random.Random(f"team:{seed}")
    return [_account(seed, rng, f"{OPERATOR}-{n}", "Operator-", True) for n in range(2, count + 2)]
