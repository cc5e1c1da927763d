"""The API gateway in front of IMS and IAM: AK/SK and token authentication, lockout, throttling."""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from ims_nb import signing
from ims_nb.sim.backend import Principal, Signer, SimBackend
from ims_nb.sim.errors import SimError, gateway_error, unauthorized
from ims_nb.sim.sts import TokenProblem

MAX_SKEW_SECONDS = 15 * 60
LOCKOUT_FAILURES = 5
LOCKOUT_SECONDS = 5 * 60


@dataclass
class _AkRecord:
    failures: int = 0
    locked_until: float = 0.0


@dataclass
class Throttle:
    """A token bucket per caller: ``rate`` requests per second with bursts up to ``burst``."""

    rate: float
    burst: float
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def allow(self, caller: str, now: float) -> bool:
        tokens, last = self.buckets.get(caller, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[caller] = (tokens, now)
            return False
        self.buckets[caller] = (tokens - 1, now)
        return True


@dataclass(frozen=True)
class SignedRequest:
    """What the gateway needs of an HTTP request to verify it."""

    method: str
    path: str  # as sent, percent-encoded
    raw_query: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def path_decoded(self) -> str:
        return unquote(self.path)


class Gateway:
    """Authenticates requests like Huawei's API gateway, against the backend's accounts.

    Args:
        backend: holds the accounts and tokens.
        real_time: the gateway's wall clock (signatures and tokens are checked in real time).
    """

    def __init__(self, backend: SimBackend, real_time: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.real_time = real_time
        self.throttle: Throttle | None = None
        self._aks: dict[str, _AkRecord] = {}
        self._lock = threading.Lock()

    def set_throttle(self, rate: float | None, burst: float | None = None) -> None:
        """Per-caller throttling (off when ``rate`` is None): beyond it, 429 APIGW.0308."""
        self.throttle = None if rate is None else Throttle(rate, burst or max(1.0, rate))

    def reset_lockouts(self) -> None:
        with self._lock:
            self._aks.clear()

    def authenticate(self, request: SignedRequest, *, needs_project: bool) -> Principal:
        """The caller, or a 401/403/429 in the gateway's shape."""
        token = request.headers.get("x-auth-token")
        if token is not None:
            principal = self._by_token(token)
        elif "authorization" in request.headers:
            principal = self._by_signature(request)
        else:
            raise unauthorized("x-auth-token not found")
        if needs_project:
            principal = self._with_project(principal, request.headers.get("x-project-id"))
        self._check_throttle(principal.access_key or principal.user)
        return principal

    def _by_token(self, token: str) -> Principal:
        record = self.backend.token(token)
        if record is None:
            raise unauthorized("decrypt token fail")
        if record["expires_at"] <= self.real_time():
            expired = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(record["expires_at"]))
            raise gateway_error("APIGW.0307", f"The token must be updated: token expires, expires_at: {expired}", 401)
        account = self.backend.accounts[record["user"]]
        return Principal(account.name, record["project_id"], None, account.obs_write)

    def _by_signature(self, request: SignedRequest) -> Principal:
        try:
            parsed = signing.parse_authorization(request.headers["authorization"])
        except ValueError as exc:
            raise unauthorized(f"verify aksk signature fail, {exc}") from None
        now = self.real_time()
        signer = self.backend.signer(parsed.access_key, request.headers.get("x-security-token"), now)
        if signer is None:
            raise unauthorized("Get secretKey failed, ak not exist")
        _check_security_token(signer)
        with self._lock:
            record = self._aks.setdefault(parsed.access_key, _AkRecord())
            if record.locked_until > now:
                raise unauthorized("AK access failed to reach the limit,forbidden")
        problem = self._signature_problem(request, parsed, signer.secret_key, now)
        with self._lock:
            if problem is None:
                record.failures = 0
            else:
                record.failures += 1
                if record.failures >= LOCKOUT_FAILURES:
                    record.locked_until = now + LOCKOUT_SECONDS
                    record.failures = 0
        if problem is not None:
            raise unauthorized(problem)
        return Principal(signer.account.name, None, parsed.access_key, signer.account.obs_write)

    def _signature_problem(
        self, request: SignedRequest, parsed: signing.ParsedAuthorization, secret_key: str, now: float
    ) -> str | None:
        sdk_date = request.headers.get("x-sdk-date")
        if sdk_date is None:
            return "verify aksk signature fail, X-Sdk-Date not found"
        try:
            signed_at = signing.parse_sdk_date(sdk_date).timestamp()
        except ValueError:
            return f"verify aksk signature fail, X-Sdk-Date {sdk_date!r} is not in the format YYYYMMDDTHHMMSSZ"
        if abs(now - signed_at) > MAX_SKEW_SECONDS:
            return "signature expired: X-Sdk-Date is more than 15 minutes away from the server time"
        missing = [name for name in parsed.signed_headers if name not in request.headers]
        if missing or "host" not in parsed.signed_headers:
            return "verify aksk signature fail, signed headers must include host and exist on the request"
        pairs = signing.parse_query(request.raw_query)
        body_hash = signing.payload_hash(request.body, request.headers)
        # The SDK sorts query pairs before encoding them, the APIG signing guide after: accept both.
        for sort_encoded in (False, True):
            canonical = signing.canonical_request(
                request.method,
                request.path,
                pairs,
                request.headers,
                parsed.signed_headers,
                body_hash,
                sort_encoded=sort_encoded,
            )
            expected = signing.signature(secret_key, signing.string_to_sign(canonical, sdk_date))
            if hmac.compare_digest(expected, parsed.signature):
                return None
        return "verify aksk signature fail"

    def _with_project(self, principal: Principal, header_project: str | None) -> Principal:
        project = principal.project_id or header_project
        if project is None:
            raise unauthorized("X-Project-Id not found")
        # A project of another region (or none of the account's) is refused as APIG does: APIGW.0310 "project
        # unavailable" (403), per the APIG error-code table in ../shared/reference/ims-api.md.
        if all(project != p.id for p in self.backend.projects) or (header_project and header_project != project):
            raise gateway_error("APIGW.0310", f"The project {project} is unavailable to this user.", 403)
        return Principal(principal.user, project, principal.access_key, principal.obs_write)

    def _check_throttle(self, caller: str) -> None:
        throttle = self.throttle
        if throttle is None:
            return
        with self._lock:
            allowed = throttle.allow(caller, self.real_time())
        if not allowed:
            raise gateway_error(
                "APIGW.0308",
                f"The throttling threshold has been reached: policy user over ratelimit,limit:{throttle.rate:g}",
                429,
            )


def _check_security_token(signer: Signer) -> None:
    """A temporary AK comes with its own, unexpired ``X-Security-Token`` (signed like any other header)."""
    if signer.problem is TokenProblem.EXPIRED:
        raise gateway_error("APIGW.0307", "The token must be updated: security token expires", 401)
    if signer.problem is not None:
        raise unauthorized(f"verify security token fail, the security token is {signer.problem}")


def not_found() -> SimError:
    return gateway_error("APIGW.0101", "The API does not exist or has not been published in the environment.", 404)
