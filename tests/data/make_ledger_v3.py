"""How ``ledger-v3.sqlite`` was made: a ledger written by the release of commit 8c9fc90 (schema version 3).

    git worktree add /tmp/rel 8c9fc90
    PYTHONPATH=/tmp/rel python tests/data/make_ledger_v3.py tests/data/ledger-v3.sqlite
    git worktree remove /tmp/rel

Exports launched and watched on a two-region simulator (verified, failed: seed 0's job 17 fails part-way; refused:
forced again onto objects that exist), another region's project, a ``submitting`` row whose owner process is dead,
and a row written before identities, adopted with a note by a real account of its region.
"""

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import ims_nb
from ims_nb.exports.identity import Identity
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger, ledger_for
from ims_nb.exports.plan import plan_exports
from ims_nb.exports.watch import watch
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import Simulator
from ims_nb.vocab import State, Target

REGIONS = ("cn-north-4", "ap-southeast-1")
WATCH = {"timeout": 120, "interval": 0.05, "max_interval": 0.2, "max_rate": 1000}


def exportable(client, prefix):
    bucket = f"ims-exports-{client.region}"
    plan = plan_exports(client.images(imagetype="private"), bucket=bucket, key_template=prefix + "/{name}-{id8}.{ext}",
                        quick=False, profile=SIMULATOR_PROFILE)  # fmt: skip
    return plan[plan["exportable"].fillna(False).astype(bool)].reset_index(drop=True)


def main(out: Path) -> None:
    out.unlink(missing_ok=True)
    with Simulator(regions=REGIONS, seed=0, images=90, time_scale=100000.0) as sim:
        info = sim.info
        home, other = (ims_nb.connect(r, ak=info.ak, sk=info.sk, project_id=info.regions[r]["project_id"],
                                      endpoint=info.regions[r]["endpoint"]) for r in REGIONS)  # fmt: skip
        ledger = ledger_for(home, out)
        batch = exportable(home, "batch")
        launch(batch, client=home, ledger=ledger, max_rate=1000)
        watch(ledger, client=home, **WATCH)
        launch(batch.head(2), client=home, ledger=ledger, max_rate=1000, force=True)  # refused: the objects exist
        with ledger_for(other, out) as far:
            launch(exportable(other, "far").head(3), client=other, ledger=far, max_rate=1000)
            watch(far, client=other, **WATCH)
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        cut = ledger.claim(image_id="img-cut-off", target=Target(f"ims-exports-{home.region}", "cut/off.qcow2"),
                           image_name="cut-off", file_format="qcow2", quick=False, size_bytes=3 * 1024**3,
                           region=home.region)  # fmt: skip
        ledger.update(cut, owner=f"{socket.gethostname()}:{gone.stdout.strip()}")
        ledger.close()
    unbound = Ledger(out)
    old = unbound.claim(image_id="img-old", target=Target("old-bucket", "legacy/old.vhd"), image_name="old",
                        file_format="vhd", quick=False, size_bytes=None, region=REGIONS[0])  # fmt: skip
    unbound.update(old, state=State.VERIFIED, status="SUCCESS", job_id="job-legacy-1", process_percent=1.0,
                   note="exported by hand")  # fmt: skip
    unbound.bound_to(Identity("https://ims.cn-north-4.myhuaweicloud.com", REGIONS[0], "0a1b2c", "AK REALKEY")).close()
    with sqlite3.connect(out) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(db.execute("PRAGMA user_version").fetchone(), db.execute(
            "SELECT state, count(*) FROM exports GROUP BY state").fetchall())  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]))
