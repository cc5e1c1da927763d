"""ims-nb's one exception tree, and the warnings it emits.

::

    ImsNbError                      anything ims-nb raises on purpose
    ├── ConfigError                 bad region, missing or unreadable credentials, bad argument
    ├── ApiError                    the service answered with an error (status, code, message, request id)
    │   ├── AuthError               401/403 from the gateway, IAM or OBS: credentials refused, not permitted;
    │   │                           ``reason`` says why, and a final one (wrong SK, unknown or locked AK, clock
    │   │                           skew, wrong password) stops the client from sending anything more
    │   ├── ThrottledError          429: the gateway's flow control (APIGW.0308)
    │   └── ServerError             5xx: the service failed
    ├── TransportError              the request did not get a usable answer (connect, timeout, protocol, bad body)
    │   └── MalformedAnswerError    a 2xx answer whose body cannot be read (cut off, not JSON, missing fields)
    ├── OutcomeUnknownError         an export was sent but its answer was lost: the job may or may not exist
    └── WaitTimeoutError            a wait reached its deadline with jobs still live (their last records kept)

    SimulatorWarning                ims-nb fell back to the embedded simulator (no real credentials)
    InsecureTransportWarning        ``insecure=True``: certificates are not verified, or plain HTTP leaves the machine
    EstateWarning                   an estate call went on without a region or project that failed (``status``)
"""

from __future__ import annotations

import logging
import re
import threading
from enum import StrEnum
from typing import Any

#: Values that look like secrets in free text (signatures, tokens), masked before any message is shown.
_SECRET_PATTERNS = (
    re.compile(r"(Signature=)[0-9a-f]+"),
    re.compile(r"(X-Auth-Token[\"']?\s*[:=]\s*[\"']?)[^\s\"',]+", re.IGNORECASE),
    re.compile(r"(Authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,]+", re.IGNORECASE),  # the whole value
    re.compile(r"(X-Subject-Token[\"']?\s*[:=]\s*[\"']?)[^\s\"',]+", re.IGNORECASE),
    re.compile(r"\bMII[A-Za-z0-9_\-+/=]{40,}"),
    re.compile(r"(\b(?:OBS|AWS) [A-Za-z0-9]{8,}:)[A-Za-z0-9+/=]{16,}"),  # an OBS/V2 Authorization's signature
)


_KNOWN_SECRETS: set[str] = set()
_KNOWN_LOCK = threading.Lock()
#: Loggers (ours and the HTTP stack's) whose records are masked: httpcore logs response headers at DEBUG.
MASKED_LOGGERS = ("ims_nb", "httpx", "httpcore", "httpcore.http11", "httpcore.http2", "httpcore.connection",
                  "httpcore.proxy", "hpack")  # fmt: skip


def register_secrets(*values: str | None) -> None:
    """Remember secrets (SK, security token, password, IAM token) so every message and log masks them."""
    with _KNOWN_LOCK:
        _KNOWN_SECRETS.update(v for v in values if v and len(v) >= 4)


def mask_secrets(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Replace known secrets, signatures and tokens in ``text`` with ``***``."""
    with _KNOWN_LOCK:
        known = tuple(_KNOWN_SECRETS)
    for secret in (*secrets, *known):
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


class SecretFilter(logging.Filter):
    """Masks secrets in log records before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_FILTER = SecretFilter()
for _name in MASKED_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


class ImsNbError(Exception):
    """Base of every error ims-nb raises on purpose."""


class ConfigError(ImsNbError, ValueError):
    """Raised before any request when a region, credential, endpoint or argument is wrong."""


class ApiError(ImsNbError):
    """Raised when the service answers with an error.

    Attributes:
        status: the HTTP status.
        code: the service code (``IMG.0071``, ``APIGW.0301``), or the status as text when the body had none.
        message: the service's message.
        request_id: the ``X-Request-Id`` of the answer, for Huawei support.
        method, url: what was asked.
    """

    def __init__(
        self, status: int, code: str, message: str, request_id: str | None = None, *, method: str = "", url: str = ""
    ) -> None:
        self.status = status
        self.code = code
        self.message = mask_secrets(message)
        self.request_id = request_id
        self.method = method
        self.url = url
        where = f" ({method} {url})" if method else ""
        rid = f" [request id {request_id}]" if request_id else ""
        super().__init__(f"{status} {code}: {self.message}{where}{rid}")

    def __reduce__(self) -> tuple[Any, ...]:
        where = {"method": self.method, "url": self.url}
        return (_rebuild, (self.__class__, (self.status, self.code, self.message, self.request_id), where))


def _rebuild(cls: type[ApiError], args: tuple[Any, ...], kwargs: dict[str, Any]) -> ApiError:
    """Unpickle an ``ApiError`` with its keyword-only fields (its message names the request)."""
    return cls(*args, **kwargs)


class AuthReason(StrEnum):
    """Why the service refused the credentials (``AuthError.reason``)."""

    WRONG_SECRET_KEY = "wrong-secret-key"  # the signature did not verify: the SK is not the AK's
    UNKNOWN_ACCESS_KEY = "unknown-access-key"
    CLOCK_SKEW = "clock-skew"  # the signing time is more than 15 minutes from the service's
    ACCESS_KEY_LOCKED = "access-key-locked"  # after repeated failed signatures, for 5 minutes
    WRONG_PASSWORD = "wrong-password"  # an IAM password login was refused
    TOKEN_EXPIRED = "token-expired"
    NOT_PERMITTED = "not-permitted"  # 403: valid credentials, not allowed to do this
    OTHER = "other"


#: Refusals that sending again cannot fix: after the first, a client sends nothing more (each refused signature
#: counts towards the gateway's lockout of the AK, and failed logins towards the IAM user's).
FINAL_REASONS = frozenset({AuthReason.WRONG_SECRET_KEY, AuthReason.UNKNOWN_ACCESS_KEY, AuthReason.CLOCK_SKEW,
                           AuthReason.ACCESS_KEY_LOCKED, AuthReason.WRONG_PASSWORD})  # fmt: skip


class AuthError(ApiError):
    """Raised on 401/403: the credentials were refused or do not permit the operation.

    Attributes (besides ``ApiError``'s):
        reason: an ``AuthReason``.
        hint: what to do about it, in words (the start of the message when known).
        skew_seconds: for ``CLOCK_SKEW``, this machine's clock minus the service's (``Date`` header), when measured.
        sent: False when the client refused to send the request because its credentials were refused before.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        reason: str = AuthReason.OTHER,
        hint: str | None = None,
        skew_seconds: float | None = None,
        sent: bool = True,
        *,
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(status, code, message, request_id, method=method, url=url)
        self.reason = AuthReason(reason)
        self.hint = None if hint is None else mask_secrets(hint)
        self.skew_seconds = skew_seconds
        self.sent = sent
        if self.hint:
            self.args = (f"{self.hint}. {self.args[0]}",)

    @property
    def final(self) -> bool:
        """True when sending again cannot help: fix the credentials or the clock, then connect again."""
        return self.reason in FINAL_REASONS

    def again(self) -> AuthError:
        """The error for a request not sent because these credentials were refused already."""
        hint = f"not sent: this client's credentials were refused already ({self.hint or self.reason})"
        return AuthError(self.status, self.code, self.message, self.request_id, self.reason, hint, self.skew_seconds,
                         False, method=self.method, url=self.url)  # fmt: skip

    def __reduce__(self) -> tuple[Any, ...]:
        fields = (self.status, self.code, self.message, self.request_id, self.reason, self.hint, self.skew_seconds,
                  self.sent)  # fmt: skip
        return (_rebuild, (self.__class__, fields, {"method": self.method, "url": self.url}))


class ThrottledError(ApiError):
    """Raised on 429: the gateway's request-rate limit was reached."""


class ServerError(ApiError):
    """Raised on 5xx: the service (or its gateway) failed."""


class TransportError(ImsNbError):
    """Raised when a request got no usable answer: connect failure, timeout, broken connection, unreadable body.

    The original exception is chained as ``__cause__``.
    """

    def __init__(self, message: str, *, method: str = "", url: str = "", sent: bool = True) -> None:
        self.method = method
        self.url = url
        self.sent = sent  # False when the request provably never left (connect error)
        super().__init__(mask_secrets(message))


class MalformedAnswerError(TransportError):
    """Raised when a successful answer's body cannot be read (cut off, not JSON, lacking what it must hold).

    A safe GET that gets one is asked again (within the retry policy) before this is raised.
    """


class OutcomeUnknownError(ImsNbError):
    """Raised when an export was submitted but its answer was lost (timeout, dropped connection, 5xx).

    The job may or may not exist. Do not resubmit blindly: look for an ``IMG.0148`` answer or the
    target object before trying again.
    """

    def __init__(self, image_id: str, bucket_url: str, reason: str) -> None:
        self.image_id = image_id
        self.bucket_url = bucket_url
        self.reason = mask_secrets(reason)
        super().__init__(f"export of image {image_id} to {bucket_url}: outcome unknown ({self.reason})")


class WaitTimeoutError(ImsNbError, TimeoutError):
    """Raised when a wait reaches its deadline; ``records`` holds the last record of every job seen,
    ``live`` the jobs that had not finished. The remote jobs go on."""

    def __init__(self, timeout: float, records: dict[str, dict[str, Any]], live: list[str]) -> None:
        self.records = records
        self.live = live
        super().__init__(
            f"{len(live)} job(s) still running after {timeout:g} s: {', '.join(live[:5])}"
            + (" ..." if len(live) > 5 else "")
        )


class SimulatorWarning(UserWarning):
    """Emitted when ims-nb talks to the embedded simulator because no real credentials are configured."""


class EstateWarning(UserWarning):
    """An estate call went on without the regions or projects that failed; ``Estate.status`` says why."""


class InsecureTransportWarning(UserWarning):
    """Emitted by ``connect(insecure=True)``: certificates are not verified, or plain HTTP goes to a remote host."""


def api_error(
    status: int, body: Any, text: str, request_id: str | None, *, method: str = "", url: str = ""
) -> ApiError:
    """The right ``ApiError`` subclass for a status and a body in any of the service's shapes."""
    code, message = error_fields(body)
    code = code or str(status)
    message = message or text.strip()[:500] or f"HTTP {status}"
    cls: type[ApiError] = ApiError
    if status in (401, 403):
        cls = AuthError
    elif status == 429:
        cls = ThrottledError
    elif status >= 500:
        cls = ServerError
    return cls(status, code, message, request_id, method=method, url=url)


def error_fields(body: Any) -> tuple[str | None, str | None]:
    """(code, message) from IMS ``{"error": {"code", "message"}}``, gateway ``{"error_code", "error_msg"}``,
    IAM ``{"error": {"code": 401, "message", "title"}}`` or ``{"errorCode", "errorMsg"}`` bodies."""
    if not isinstance(body, dict):
        return None, None
    for code_key, message_key in (("error_code", "error_msg"), ("errorCode", "errorMsg"), ("code", "message")):
        if code_key in body or message_key in body:
            code, message = body.get(code_key), body.get(message_key)
            return (None if code is None else str(code)), (None if message is None else str(message))
    for value in body.values():
        if isinstance(value, dict):
            found = error_fields(value)
            if found != (None, None):
                return found
    return None, None
