"""Retry decisions (exponential backoff with full jitter, bounded in count and time) and a rate cap."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

#: Statuses worth another try for a request that is safe to repeat.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Attributes:
        max_attempts: tries in all, the first included.
        base_delay: the first backoff ceiling in seconds; it doubles with each try.
        max_delay: the largest ceiling.
        max_elapsed: no new try starts after this many seconds since the first.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_elapsed: float = 90.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2**(attempt-1))]."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, attempt - 1))
        return self.rng.uniform(0, ceiling)

    def delay(self, attempt: int, elapsed: float, retry_after: float | None = None) -> float | None:
        """Seconds to wait before try ``attempt + 1``, or None when the budget is spent."""
        if attempt >= self.max_attempts:
            return None
        wait = self.backoff(attempt) if retry_after is None else min(retry_after, self.max_delay)
        if elapsed + wait > self.max_elapsed:
            return None
        return wait


NO_RETRY = RetryPolicy(max_attempts=1)


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def never_sent(error: Exception) -> bool:
    """True when the request provably never reached the server (the connection was never made)."""
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)


def retryable_transport(error: Exception) -> bool:
    """Transport failures that a repeatable request may retry."""
    return isinstance(error, httpx.TransportError) and not isinstance(error, httpx.UnsupportedProtocol)


class RateLimiter:
    """A token bucket shared by the requests of one wait: at most ``rate`` per second, bursts of ``burst``.

    ``clock`` is injectable; ``reserve()`` returns how long the caller must sleep before sending.
    """

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token now or in the future; the seconds until it is ours."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
