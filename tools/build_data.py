"""Regenerate the committed files under ``data/`` from the simulator (seed 0), deterministically.

Run with the project's venv (pyarrow is needed: the ``[parquet]`` extra, part of ``[lab]``):
``.venv/bin/python tools/build_data.py [--root DIR]``. It writes

- ``data/sample/inventory-seed0.parquet``: ``client.images()`` of a seed-0, 200-image simulator, dtypes kept;
- ``data/sample/inventory-seed0.csv``: the same rows as text (times ISO 8601 UTC, tags joined with ``;``);
- ``data/sample/DATA_DICTIONARY.md``: every column, its pandas dtype and what it holds;
- ``data/examples/export-plan.csv``: what ``ims-nb export IDS --bucket B --format qcow2 --dry-run -o FILE``
  writes for the first ``EXAMPLE_IMAGES`` exportable images of that world (whatever columns the plan has today).

``tests/test_data.py`` checks that the committed files equal what this script makes today.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

import ims_nb
from ims_nb.cli import main as cli_main
from ims_nb.frames import IMAGE_COLUMNS
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent
SEED, IMAGES = 0, 200
SAMPLE = Path("data/sample")
PARQUET, CSV, DICTIONARY = (SAMPLE / name for name in ("inventory-seed0.parquet", "inventory-seed0.csv",
                                                       "DATA_DICTIONARY.md"))  # fmt: skip
PLAN = Path("data/examples/export-plan.csv")
BUCKET = "ims-exports-cn-north-4"
EXAMPLE_IMAGES = 5
FILE_FORMAT = "qcow2"
TAG_SEPARATOR = ";"
#: What each column of ``images_frame`` holds (the dictionary's third column).
MEANINGS = {
    "id": "image id (UUID)",
    "name": "image name",
    "status": "IMS status: queued, saving, active, killed, deleted",
    "platform": "OS platform (`__platform`): Ubuntu, CentOS, Windows, ...",
    "os_version": "OS version text (`__os_version`)",
    "os_type": "Linux or Windows (`__os_type`)",
    "os_bit": "32 or 64 (`__os_bit`)",
    "image_type": "gold (public), private, shared or market (`__imagetype`)",
    "visibility": "public, private or shared",
    "virtual_env_type": "FusionCompute (ECS), Ironic (BMS), DataImage, IsoImage",
    "disk_format": "format the image is stored in (zvhd2, qcow2, ...)",
    "whole_image": "a full-ECS image (`__whole_image`): cannot be exported",
    "encrypted": "encrypted with a KMS key (`kms_key_id` set)",
    "kms_key_id": "KMS key of an encrypted image (`__system__cmkid`)",
    "source_image_id": "image it was copied or created from (`__originalimagename`)",
    "product_code": "KooGallery product code (`__productcode`): market images cannot be exported",
    "size_bytes": "image size in bytes (`__image_size`)",
    "size_gb": "image size in GiB",
    "min_disk_gb": "smallest system disk it boots on, GiB",
    "created_at": "creation time, UTC",
    "updated_at": "last update time, UTC",
    "tags": "tags as `key.value` strings (a list; joined with `;` in the CSV)",
    "enterprise_project_id": "enterprise project (`0`: default)",
    "architecture": "x86 or arm",
    "owner": "project id of the owner",
    "protected": "protected from deletion",
    "root_origin": "ECS or file the image came from (`__root_origin`)",
    "backup_id": "CBR backup it was made from (`__backup_id`)",
    "min_ram_mb": "smallest memory it runs in, MiB",
    "hw_firmware_type": "bios or uefi",
}


@contextlib.contextmanager
def simulator() -> Iterator[Simulator]:
    """The seed-0 world every committed file comes from."""
    with Simulator(seed=SEED, images=IMAGES, manual_clock=True) as sim:
        yield sim


def inventory(sim: Simulator) -> pd.DataFrame:
    """``client.images()`` of ``sim``: the sample dataset."""
    info = sim.info
    with ims_nb.connect(ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint) as client:
        return client.images()


def csv_text(frame: pd.DataFrame) -> str:
    """The CSV twin: times in ISO 8601 UTC, tags joined with ``TAG_SEPARATOR``, missing values empty."""
    text = frame.copy()
    text["tags"] = text["tags"].map(TAG_SEPARATOR.join)
    for column in ("created_at", "updated_at"):
        text[column] = text[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(text.to_csv(index=False, lineterminator="\n"))


def dictionary_text(frame: pd.DataFrame) -> str:
    """The data dictionary: every column of ``frame``, its dtype and its meaning."""
    lines = [
        "# Data dictionary: `inventory-seed0`",
        "",
        f"`client.images()` of the simulator's seed-{SEED} world ({len(frame)} images, one row each), as written "
        "by `tools/build_data.py`: `inventory-seed0.parquet` keeps the dtypes below; `inventory-seed0.csv` holds "
        "the same rows as text (times ISO 8601 UTC, tags joined with `;`, missing values empty).",
        "",
        "| column | dtype | holds |",
        "|---|---|---|",
    ]
    lines += [
        f"| `{column}` | `{dtype}` | {MEANINGS.get(column, '')} |" for column, dtype in frame.dtypes.astype(str).items()
    ]
    return "\n".join(lines) + "\n"


def exportable_ids(sim: Simulator, images: pd.DataFrame) -> list[str]:
    """The first ``EXAMPLE_IMAGES`` images preflight lets through to ``BUCKET`` in ``FILE_FORMAT``."""
    info = sim.info
    with ims_nb.connect(ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint) as client:
        target = f"{BUCKET}:{{name}}-{{id8}}.{{ext}}"
        summary = ims_nb.preflight_summary(images, bucket_url=target, file_format=FILE_FORMAT, client=client,
                                           profile=SIMULATOR_PROFILE)  # fmt: skip
    return list(summary.loc[summary["exportable"].astype(bool), "image_id"].head(EXAMPLE_IMAGES))


def plan_csv(sim: Simulator, images: pd.DataFrame, folder: Path) -> str:
    """What ``ims-nb export IMAGE_ID... --bucket BUCKET --format F --dry-run -o FILE`` writes for a few images."""
    chosen = exportable_ids(sim, images)
    output = folder / "plan.csv"
    argv = ["export", *chosen, "--bucket", BUCKET, "--format", FILE_FORMAT, "--dry-run", "-o", str(output), "--ledger",
            str(folder / "ledger.sqlite"), "--sim", json.dumps(sim.info.as_json_dict())]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as errors:
        code = cli_main(argv)
    if code != 0:
        raise RuntimeError(f"ims-nb export --dry-run exited {code}: {errors.getvalue()}")
    return output.read_text()


def build(root: Path) -> list[Path]:
    """Write every committed file under ``root``; the paths written."""
    with simulator() as sim, tempfile.TemporaryDirectory(prefix="ims-nb-data-") as folder:
        frame = inventory(sim)
        assert list(frame.columns) == list(IMAGE_COLUMNS), "the inventory's columns changed: update MEANINGS"
        plan = plan_csv(sim, frame, Path(folder))
    for path in (PARQUET, PLAN):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(root / PARQUET, index=False)
    (root / CSV).write_text(csv_text(frame))
    (root / DICTIONARY).write_text(dictionary_text(frame))
    (root / PLAN).write_text(plan)
    return [root / path for path in (PARQUET, CSV, DICTIONARY, PLAN)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the project folder to write data/ in")
    for path in build(parser.parse_args(argv).root):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
