# ruff: noqa: E501  (the cells are notebook content, kept one source line per notebook line)
"""Write the notebooks from their cell sources here, then run them to store their outputs (``--no-run`` skips that).

Run with the project's venv: ``.venv/bin/python tools/build_notebooks.py [names...]``. The stored outputs are
what ``pytest --nbval`` compares against, so rebuild after changing what a notebook shows.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

INVENTORY = [
    (
        "md",
        "# Inventory\n\nWhat the account holds, and what of it could be exported. Runs against the embedded "
        "simulator when no credentials are configured (or the one `make lab` started), against your account "
        "when they are.",
    ),
    (
        "code",
        "import ims_nb\nfrom ims_nb import charts\nfrom ims_nb.selection import exportability\n"
        "from ims_nb.targets import bucket_choices, default_bucket\n\n"
        'client = ims_nb.connect(simulator={"images": 200})\nclient',
    ),
    ("md", "## The images\n\nOne typed row per image: sizes in bytes and GiB, flags as booleans, times in UTC."),
    (
        "code",
        'images = client.images()\nimages[["name", "platform", "status", "image_type", "size_gb", "whole_image"]].head(8)',
    ),
    ("code", 'images.groupby(["image_type", "status"]).size().unstack(fill_value=0)'),
    ("code", "ax = charts.plot_inventory(images)"),
    ("code", "ax = charts.plot_sizes(images)"),
    ("md", "## Where exports can go\n\nOnly Standard buckets in the images' region receive exports."),
    ("code", "[choice.label for choice in bucket_choices(client)]"),
    (
        "md",
        "## Exportability of the whole inventory\n\nEvery image judged against the first usable bucket, "
        "before anything is sent: whether it can be exported, the rules that block it, and the mode to use.",
    ),
    (
        "code",
        'bucket_url = default_bucket(client) + ":{name}-{id8}.{ext}"\n'
        'summary = ims_nb.preflight_summary(images, bucket_url=bucket_url, file_format="qcow2", client=client)\n'
        'summary["exportable"].value_counts()',
    ),
    ("code", 'summary["recommended"].value_counts(dropna=False)'),
    (
        "code",
        'violations = ims_nb.preflight(images, bucket_url=bucket_url, file_format="qcow2", client=client)\n'
        'violations["rule"].value_counts()',
    ),
    (
        "md",
        "## A snapshot of the inventory\n\n`save_snapshot` writes the frame as Parquet under `data/snapshots/` "
        "(git-ignored) and returns the file's path; the same inventory gives the same file, so a later snapshot "
        "that differs sits beside it.",
    ),
    (
        "code",
        'from ims_nb.frames import save_snapshot\n\nsnapshot = save_snapshot(images, "../data/snapshots")\n'
        "snapshot.as_posix()",
    ),
    (
        "md",
        "## The sample dataset, offline\n\nThe seed-0 inventory committed under `data/sample/` reads with pandas "
        "alone: no client, no network. `data/sample/DATA_DICTIONARY.md` lists every column and its dtype.",
    ),
    (
        "code",
        'import pandas as pd\n\nsample = pd.read_parquet("../data/sample/inventory-seed0.parquet")\n'
        "sample.dtypes.astype(str).value_counts()",
    ),
    ("code", 'sample.groupby("image_type")["size_gb"].sum().round(1).sort_values(ascending=False)'),
]

EXPORT = [
    (
        "md",
        "# Export images\n\nPick images, see which exports would be refused and why, choose the target, launch, "
        "and watch. The last section makes the same calls without clicks (that is what CI runs).",
    ),
    (
        "code",
        "import ims_nb\nfrom ims_nb import charts\nfrom ims_nb.demo import Headless\nfrom ims_nb.exports.ledger import "
        "ledger_for\nfrom ims_nb.widgets import ExportPanel, ImagePicker, JobMonitor, ViolationsPreview",
    ),
    ("code", 'client = ims_nb.connect(simulator={"time_scale": 3600})\nledger = ledger_for(client)'),
    ("md", "## 1. Pick images\n\nSearch by name, id, platform or OS; filter; tick the images to export."),
    ("code", "picker = ImagePicker(client)\npicker"),
    (
        "md",
        "## 2. What the service would say\n\nFor the picked images and the target chosen below: each verdict, "
        "the rules broken, and how to fix them.",
    ),
    (
        "code",
        "monitor = JobMonitor(client, ledger)\npanel = ExportPanel(client, ledger, picker=picker, monitor=monitor)\n"
        "preview = ViolationsPreview(panel)\npreview",
    ),
    (
        "md",
        "## 3. Target and launch\n\nBucket, object key template, format and fast export; Launch asks before "
        "sending, and every export goes through the ledger once.",
    ),
    ("code", "panel"),
    ("md", "## 4. Watch\n\nOne bar per export, with its status, ETA and a stall flag."),
    ("code", "monitor"),
    (
        "md",
        "## Headless: the same calls, without clicks\n\nWhat the buttons call, in order. When this notebook runs "
        "against a simulator of its own (CI, nbval), `Headless` picks two small exportable images and one the "
        "service refuses (`sample_picks`), and they are launched and watched to the end. Under `make lab` and on a "
        "real account it picks and sends nothing: each cell shows what you picked or launched with the buttons "
        "above, or says in one sentence that nothing was done here and why.",
    ),
    (
        "code",
        "headless = Headless(client, picker=picker, panel=panel, preview=preview)\nheadless.pick()",
    ),
    ("code", "headless.ask()"),
    ("code", "headless.launch()"),
    ("code", "done = await monitor.wait()\nheadless.watched(done)"),
    ("code", "monitor"),
    ("code", "headless.chart(charts.plot_durations, done)"),
]

DURATIONS = [
    (
        "md",
        "# Job durations\n\nThe ledger's history of exports: how long they took, how fast they went, and how "
        "well the ETA model predicts them. On the simulator, a sample batch is exported first (its clock is run "
        "forward, so this takes seconds); on a real account nothing is launched.",
    ),
    (
        "code",
        "import ims_nb\nfrom ims_nb import charts\nfrom ims_nb.demo import ensure_history\nfrom ims_nb.exports import history\n"
        "from ims_nb.exports.ledger import ledger_for",
    ),
    (
        "code",
        'client = ims_nb.connect(simulator={"time_scale": 3600})\nledger = ledger_for(client)\n'
        "ensure_history(client, ledger)",
    ),
    ("code", 'jobs = ims_nb.jobs_frame(ledger)\njobs[["image_name", "format", "size_gb", "state"]].head(8)'),
    ("code", "history.duration_summary(jobs)"),
    ("code", "ax = charts.plot_durations(jobs)"),
    ("code", "ax = charts.plot_throughput(jobs)"),
    ("code", "ax = charts.plot_timeline(jobs)"),
    (
        "md",
        "## The ETA model's fit\n\nEach finished export's duration against the model's prediction from all the "
        "others (same format and size band).",
    ),
    ("code", "fit = history.eta_fit(jobs)\nhistory.eta_fit_summary(fit)"),
    ("code", "ax = charts.plot_eta_fit(fit)"),
]

#: The regions of the simulator a notebook starts for itself (``make lab``'s has one region, or its ``--regions``).
SIM_REGIONS = '["cn-north-4", "ap-southeast-1", "ap-southeast-3"]'

INVENTORY += [
    (
        "md",
        "## The estate\n\nEvery region and project of the account in one frame (`connect_estate`): each row says its "
        "`region`, `project_id` and `project_name`, and the status frame says what each region and project gave. "
        "On a simulator of its own the notebook starts one with three regions and a sub-project; under `make lab` it is the lab's.",
    ),
    (
        "code",
        f"regions = {SIM_REGIONS}\n"
        'estate = ims_nb.connect_estate(simulator={"regions": regions, "images": 40})\n'
        "estate_images = estate.images()\n"
        'estate.status[["region", "project", "images", "error"]]',
    ),
    ("code", "ax = charts.plot_regions(estate_images.assign(exportable=exportability(estate_images, client=estate)))"),
]

COVERAGE = [
    (
        "md",
        "# Coverage\n\nWhich images of the whole estate have a verified export whose object still exists, which do "
        "not, and why; then the gap exported in one batch. On a simulator of its own (CI, nbval) the gap is exported "
        "with the simulator's clock run forward, so this takes seconds; under `make lab` and on a real account "
        "nothing is sent.",
    ),
    (
        "code",
        "import ims_nb\nfrom ims_nb import charts\nfrom ims_nb.coverage import uncovered\n"
        "from ims_nb.demo import GapExport, estate_ledger\nfrom ims_nb.selection import exportability",
    ),
    (
        "code",
        f"regions = {SIM_REGIONS}\n"
        'estate = ims_nb.connect_estate(simulator={"regions": regions, "images": 40, "time_scale": 3600})\n'
        "ledger = estate_ledger(estate)\nestate.regions",
    ),
    (
        "md",
        "## The estate inventory\n\nOne typed row per image and project, each with its exportability; the status "
        "frame says what each region and project gave (a region that fails is a row with its error, not a lost "
        "estate).",
    ),
    ("code", 'images = estate.images()\nestate.status[["region", "project", "images", "error"]]'),
    (
        "code",
        "images = images.assign(exportable=exportability(images, client=estate))\n"
        'images.groupby("region").agg(\n    images=("id", "size"), size_gb=("size_gb", "sum"), '
        'exportable=("exportable", "mean")\n).round(2)',
    ),
    ("code", "ax = charts.plot_regions(images)"),
    ("code", 'ax = charts.plot_regions(images, measure="bytes")'),
    (
        "md",
        "## Coverage\n\nPer image: `covered` (a verified export whose object exists), `covered (outside the "
        "ledger)`, `stale`, `in-progress`, `failed`, `never` or `not-exportable` (with the rules that block it).",
    ),
    (
        "code",
        "before = ims_nb.coverage(images, ledger, estate)\n"
        'ims_nb.coverage_summary(before).pivot(index="region", columns="status", values="images")',
    ),
    ("code", "ax = charts.plot_coverage(before)"),
    ("code", 'ax = charts.plot_coverage(before, measure="bytes")'),
    ("md", "## The oldest uncovered images\n\nExportable, without a current export: what a backup misses longest."),
    (
        "code",
        'uncovered(before).sort_values("image_created_at")'
        '[["region", "project_name", "name", "status", "size_bytes"]].head(8)',
    ),
    (
        "md",
        "## Export the gap\n\nThe uncovered, exportable images become one plan (each to its region's Standard "
        "bucket); on a simulator of its own it is launched and watched to the end, and coverage is asked again.",
    ),
    (
        "code",
        'gap = GapExport(estate, ledger)\nplan = gap.plan(before, images)\nplan["exportable"].value_counts()',
    ),
    ("code", "gap.launch(plan)"),
    (
        "code",
        "after = ims_nb.coverage(images, ledger, estate)\n"
        'ims_nb.coverage_summary(after).pivot(index="region", columns="status", values="images")',
    ),
    ("code", "ax = charts.plot_coverage(after)"),
]

BOOKS = {"01_inventory.ipynb": INVENTORY, "02_export.ipynb": EXPORT, "03_job_durations.ipynb": DURATIONS,
         "04_coverage.ipynb": COVERAGE}  # fmt: skip


def build(name: str, cells: list[tuple[str, str]]) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = KERNELSPEC
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                      for kind, src in cells]  # fmt: skip
    path = NOTEBOOKS / name
    nbformat.write(notebook, path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="notebooks to build (default: all)")
    parser.add_argument("--no-run", action="store_true", help="write the cells only")
    args = parser.parse_args()
    for name in args.names or list(BOOKS):
        path = build(name, BOOKS[name])
        if not args.no_run:
            subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                            "--ExecutePreprocessor.timeout=300", str(path)], check=True, env=_clean_env())  # fmt: skip
        print(path)
    return 0


def _clean_env() -> dict[str, str]:
    """No credentials and no outside simulator: the notebooks start their own, as under nbval."""
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_SDK_", "IMS_NB_"))}


if __name__ == "__main__":
    raise SystemExit(main())
