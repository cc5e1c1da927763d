"""The fault matrix's faults: the simulator rules each installs or the event it sets off, and the run's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ims_nb.client.retry import RetryPolicy

#: A world whose first 260 export jobs all succeed, so that "exported once" means one job per image, each ending
#: verified (a job whose id was lost and which then failed is sent again, by design: see ``ims_nb.exports.launch``).
SEED = 30581
BUCKET = "ims-exports-cn-north-4"
KEY_TEMPLATE = "fault-matrix/{id8}.{ext}"
#: The default policy (five tries, full jitter) with delays 100 times shorter: the faults, not the waits, are tested.
RETRY = RetryPolicy(max_attempts=5, base_delay=0.005, max_delay=0.2, max_elapsed=90.0)
LAUNCH_CONCURRENCY = 4
#: ``watch`` on the simulated clock: polls 5 to 30 minutes apart, a rate cap that never binds, a week at most.
WATCH_OPTIONS: dict[str, Any] = {"interval": 300.0, "max_interval": 1800.0, "max_rate": 1000.0,
                                 "timeout": 7 * 24 * 3600.0}  # fmt: skip
#: Paths of the JSON APIs (IMS, IAM); OBS paths start with a bucket name.
JSON_APIS = r"^/v\d"
#: Long enough that an ordinary 1,000-image page never exceeds it on a loaded 2-core machine (at 0.25 s one did,
#: under the parallel suite, and counted as an extra retry), short enough to keep the drill quick.
SLOW_TIMEOUT = 1.0
HELD_POST = 0.05
#: A listing of 10,000 images is 11 requests: its faults come (in the same kind and bursts) every 5 requests.
LISTING_EVERY = 5
PHASES = ("listing", "plan", "launch", "watch")


@dataclass(frozen=True)
class Scenario:
    """One fault: the simulator rules it installs, or the event it sets off, and the client's timeout."""

    name: str
    injected: str  # in words, for the table
    rules: tuple[dict[str, Any], ...] = ()
    event: str | None = None  # "restart" or "expire"
    timeout: float | None = None


def _rule(kind: str, every: int, burst: int = 1, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "every": every, "burst": burst, "count": None, **fields}


SCENARIOS = (
    Scenario("none", "nothing (the baseline)"),
    Scenario("429 bursts", "429 APIGW.0308 to 3 requests in every 30", (_rule("throttle", 30, 3),)),
    Scenario(
        "500",
        "500 APIGW.0601 to every 15th request",
        (_rule("response", 15, status=500, body='{"error_code": "APIGW.0601", "error_msg": "Internal error."}'),),
    ),
    Scenario(
        "503",
        "503 to 2 requests in every 25",
        (_rule("response", 25, 2, status=503, body='{"error_code": "APIGW.0503", "error_msg": "Unavailable."}'),),
    ),
    Scenario("dropped connections", "connection closed unanswered: every 20th request", (_rule("drop", 20),)),
    Scenario(
        "slower than the timeout",
        f"every 50th request answered after {2 * SLOW_TIMEOUT:g} s; client timeout {SLOW_TIMEOUT:g} s",
        (_rule("latency", 50, delay=2 * SLOW_TIMEOUT),),
        timeout=SLOW_TIMEOUT,
    ),
    Scenario(
        "malformed JSON",
        "200 with a truncated JSON body: every 20th IMS/IAM request",
        (_rule("response", 20, status=200, body='{"images": [{"id": "', path=JSON_APIS),),
    ),
    Scenario(
        "simulator restart",
        "`ims-nb sim --state` SIGKILLed and restarted on its port: mid-listing, mid-launch (export POSTs held "
        f"{HELD_POST:g} s at the server, so that the kill cuts some off), mid-watch",
        (_rule("latency", 1, method="POST", path="/file$", delay=HELD_POST),),
        event="restart",
    ),
    Scenario(
        "token expiry",
        "every IAM token expired: mid-listing, mid-launch, twice mid-watch (password login)",
        event="expire",
    ),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
