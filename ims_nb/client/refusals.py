"""Refused credentials: why (the service's words, and the clock skew measured from its ``Date``), what to do,
and the guard that stops a client at the first refusal it cannot fix instead of retrying into a lockout."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx

from ims_nb import signing
from ims_nb.client.wire import error_for
from ims_nb.errors import FINAL_REASONS, ApiError, AuthError, AuthReason

#: The gateway refuses a signature whose time is further than this from its own (seconds).
MAX_CLOCK_SKEW = 15 * 60
#: Statuses of refused or unpermitted credentials.
AUTH_STATUSES = frozenset({401, 403})
#: OBS codes (403) that refuse the signature itself rather than the permission.
OBS_SIGNATURE_CODES = {"SignatureDoesNotMatch": AuthReason.WRONG_SECRET_KEY,
                       "InvalidAccessKeyId": AuthReason.UNKNOWN_ACCESS_KEY,
                       "RequestTimeTooSkewed": AuthReason.CLOCK_SKEW}  # fmt: skip
#: Words of the gateway's APIGW.0301 messages (reference/ims-api.md, "APIGW codes") and what they mean.
GATEWAY_PHRASES = (("signature expired", AuthReason.CLOCK_SKEW), ("ak not exist", AuthReason.UNKNOWN_ACCESS_KEY),
                   ("reach the limit", AuthReason.ACCESS_KEY_LOCKED),
                   ("verify aksk signature fail", AuthReason.WRONG_SECRET_KEY),
                   ("token expires", AuthReason.TOKEN_EXPIRED))  # fmt: skip
LOCKOUT_NOTE = "ims-nb sent nothing more: 5 refused signatures in a row lock an AK for 5 minutes"


def auth_reason(status: int, code: str, message: str, *, skew_seconds: float | None, login: bool) -> AuthReason:
    """Why a 401/403 was answered: the service's code and words, and the measured clock skew."""
    signature = status == 401 or code in OBS_SIGNATURE_CODES
    if signature and skew_seconds is not None and abs(skew_seconds) > MAX_CLOCK_SKEW:
        return AuthReason.CLOCK_SKEW
    if code in OBS_SIGNATURE_CODES:
        return OBS_SIGNATURE_CODES[code]
    if login and status == 401:
        return AuthReason.WRONG_PASSWORD
    if code == "APIGW.0307":
        return AuthReason.TOKEN_EXPIRED
    text = message.lower()
    for phrase, reason in GATEWAY_PHRASES:
        if phrase in text:
            return reason
    return AuthReason.NOT_PERMITTED if status == 403 else AuthReason.OTHER


def describe_skew(skew_seconds: float) -> str:
    """``17 min behind``, ``40 s ahead of``: this machine's clock against the service's."""
    size = abs(skew_seconds)
    amount = f"{size / 60:.0f} min" if size >= 90 else f"{size:.0f} s"
    return f"{amount} {'behind' if skew_seconds < 0 else 'ahead of'}"


def auth_hint(
    reason: AuthReason, *, access_key: str | None, skew_seconds: float | None, server_date: str | None
) -> str:
    """What to do about a refusal, in words."""
    ak = f"AK {access_key}" if access_key else "the AK"
    if reason is AuthReason.CLOCK_SKEW:
        if skew_seconds is not None and server_date:
            where = f"your clock is {describe_skew(skew_seconds)} the service's (Date: {server_date})"
        else:
            where = "your clock is more than 15 min away from the service's (no Date header to measure it by)"
        hint = f"{where}; fix the clock (NTP), then connect again: signatures more than 15 min off are refused"
    else:
        hint = {
            AuthReason.WRONG_SECRET_KEY: f"the service refused the signature of {ak}: the secret key (SK) is not "
            "this AK's; fix the SK, then connect again",
            AuthReason.UNKNOWN_ACCESS_KEY: f"the service does not know {ak} (mistyped, deleted, or of another "
            "account or site); fix the AK, then connect again",
            AuthReason.ACCESS_KEY_LOCKED: f"{ak} is locked after repeated refused signatures: wait 5 minutes, make "
            "sure the SK is right, then connect again",
            AuthReason.WRONG_PASSWORD: "IAM refused the login: the username, password or domain is wrong; fix "
            "it, then connect again (repeated failed logins lock the IAM user)",
            AuthReason.TOKEN_EXPIRED: "the IAM token expired; connect again",
            AuthReason.NOT_PERMITTED: "the credentials were accepted but may not do this (IAM permissions, project)",
        }.get(reason, "the service refused the credentials")
    if reason in FINAL_REASONS and reason is not AuthReason.WRONG_PASSWORD:
        hint += f" ({LOCKOUT_NOTE})"
    return hint


def explain(
    error: ApiError,
    *,
    access_key: str | None = None,
    skew_seconds: float | None = None,
    server_date: str | None = None,
    login: bool = False,
) -> AuthError:
    """The ``AuthError`` for a 401/403 answer, with its reason and what to do about it.

    Args:
        error: the answer as ``ims_nb.errors.api_error`` mapped it.
        access_key: the AK that signed the request (named in the hint: an AK is not a secret).
        skew_seconds: this machine's signing time minus the service's ``Date``, when both are known.
        server_date: the answer's ``Date`` header.
        login: the request was an IAM password login.
    """
    reason = auth_reason(error.status, error.code, error.message, skew_seconds=skew_seconds, login=login)
    hint = auth_hint(reason, access_key=access_key, skew_seconds=skew_seconds, server_date=server_date)
    skew = skew_seconds if reason is AuthReason.CLOCK_SKEW else None
    return AuthError(error.status, error.code, error.message, error.request_id, reason, hint, skew,
                     method=error.method, url=error.url)  # fmt: skip


def clock_skew(request: httpx.Request, response: httpx.Response) -> tuple[float | None, str | None]:
    """(this machine's signing time minus the service's ``Date``, in seconds; that ``Date``), None when unknown.

    The signing time is the request's ``X-Sdk-Date`` (AK/SK) or its OBS ``Date``/``x-obs-date``.
    """
    server_date = response.headers.get("Date")
    signed = request.headers.get("X-Sdk-Date")
    obs_signed = request.headers.get("x-obs-date") or request.headers.get("x-amz-date") or request.headers.get("Date")
    try:
        server = parsedate_to_datetime(server_date) if server_date else None
        client: datetime | None = signing.parse_sdk_date(signed) if signed else None
        if client is None and obs_signed:
            client = parsedate_to_datetime(obs_signed)
    except (TypeError, ValueError, OverflowError):
        return None, server_date
    if server is None or client is None or server.tzinfo is None or client.tzinfo is None:
        return None, server_date
    return (client - server).total_seconds(), server_date


class CredentialGuard:
    """One per client: until an answer proves the credentials, one request at a time; after a final refusal
    (``AuthError.final``), none. So a batch of any size or concurrency sends one refused signature, not one per
    row, job or worker, and the gateway's lockout (5 refusals in a row) is never reached by ims-nb alone.
    """

    def __init__(self, access_key: str | None) -> None:
        self.access_key = access_key
        self.confirmed = False
        self.refused: AuthError | None = None
        self.lock = threading.RLock()  # the synchronous client's
        self.async_lock = asyncio.Lock()  # the asynchronous client's (bound to a loop only when contended)

    def inherit(self, other: CredentialGuard) -> None:
        """What ``other`` learnt of the same credentials (for a client's async twin)."""
        self.confirmed, self.refused = other.confirmed, other.refused

    def check(self) -> None:
        """Raise (without sending) when these credentials were refused for good already."""
        if self.refused is not None:
            raise self.refused.again()

    def screen(self, response: httpx.Response, *, login: bool = False) -> None:
        """Note an answer: a 401/403 raises its explained ``AuthError`` (remembered when final); an answer that
        got past authentication proves the credentials."""
        status = response.status_code
        if status in AUTH_STATUSES:
            raise self.refuse(error_for(response), response, login=login)
        if status < 500 and status != 407:
            self.confirmed = True

    def refuse(self, error: ApiError, response: httpx.Response | None = None, *, login: bool = False) -> AuthError:
        """The explained error for a refusal; a final one closes the guard."""
        skew, server_date = clock_skew(response.request, response) if response is not None else (None, None)
        explained = explain(error, access_key=self.access_key, skew_seconds=skew, server_date=server_date,
                            login=login)  # fmt: skip
        if explained.final:
            self.refused = explained
        return explained
