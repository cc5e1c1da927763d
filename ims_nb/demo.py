"""What the notebooks do on a simulator that they never do on a real account: sample picks and a sample history."""

from __future__ import annotations

import logging

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.config import on_simulator
from ims_nb.client.protocol import ClientLike
from ims_nb.exports.history import jobs_frame
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.exports.watch import watch
from ims_nb.selection import exportability
from ims_nb.targets import bucket_choices
from ims_nb.vocab import FILE_FORMATS

log = logging.getLogger("ims_nb")
HISTORY_TEMPLATE = "history/{name}-{id8}.{ext}"


class SimulatedTime:
    """A clock and a sleep for ``watch`` that move a simulator client's clock instead of waiting (instant)."""

    def __init__(self, client: ClientLike, *, step: float = 1.0) -> None:
        self._client = client
        self._step = step  # shorter sleeps are gathered into one move of the simulator's clock
        self._owed = 0.0
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self.now += seconds
        self._owed += seconds
        if self._owed >= self._step:
            self._client.simulator_clock(advance=self._owed)
            self._owed = 0.0


def ensure_history(client: ClientLike, ledger: Ledger, *, exports: int = 24) -> str:
    """On a simulator whose ledger has few finished exports, export a sample in every format and run the
    simulator's clock through them, so the history charts have something to show. On a real account: nothing.

    Returns:
        What was done, in one sentence.
    """
    finished = int(jobs_frame(ledger)["duration_s"].notna().sum())
    if not on_simulator(client):
        return f"a real account: the history is the ledger's {finished} finished export(s); nothing was launched"
    if finished >= exports:
        return f"the ledger already holds {finished} finished exports"
    usable = [c.name for c in bucket_choices(client) if c.problem is None]
    if not usable:
        return "the simulator has no usable bucket; nothing was launched"
    images = client.images().sort_values("id").reset_index(drop=True)
    time = SimulatedTime(client)
    launched = 0
    for number, file_format in enumerate(FILE_FORMATS):
        share = images.iloc[number :: len(FILE_FORMATS)]
        plan = plan_exports(share, bucket=usable[0], key_template=HISTORY_TEMPLATE, file_format=file_format,
                            client=client)  # fmt: skip
        plan = plan[plan["exportable"].fillna(False).astype(bool)].head((exports - finished) // len(FILE_FORMATS) + 1)
        launched += len(launch(plan, client=client, ledger=ledger, concurrency=1, clock=time, sleep=time.sleep))
    watch(ledger, client=client, clock=time, sleep=time.sleep)
    done = int(jobs_frame(ledger)["duration_s"].notna().sum())
    return f"exported {launched} sample image(s) on the simulator; the ledger now holds {done} finished exports"


def sample_picks(images: pd.DataFrame, client: ClientLike, *, good: int = 2, refused: int = 1) -> list[str]:
    """On the client's own embedded simulator: the ids of the ``good`` smallest exportable images and of ``refused``
    refused ones (private ones first, smallest first); otherwise none.

    The notebooks' headless path exports these. Only a kernel that started its own simulator (nbval, CI) gets
    picks: under ``make lab`` (a shared simulator, used by hand) and on a real account, running every cell sends
    nothing that was not picked by hand.
    """
    if not on_simulator(client) or getattr(client.settings, "simulator", None) is None:
        return []
    ok = exportability(images, client=client).to_numpy()
    by_size = images.assign(_ok=ok).sort_values(["size_bytes", "id"])
    refusals = by_size[~by_size["_ok"]]
    refusals = refusals.assign(_public=refusals["image_type"] != "private").sort_values(["_public", "size_bytes", "id"])
    chosen = by_size[by_size["_ok"]].head(good)["id"].tolist() + refusals.head(refused)["id"].tolist()
    return [str(i) for i in chosen]
