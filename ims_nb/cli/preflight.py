"""``ims-nb preflight``: which exports of the selected images the service would refuse, and why."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ims_nb.cli._connect import (
    CountingTransport,
    connect_estate_from_args,
    connect_from_args,
    selected_images,
    with_scope,
)
from ims_nb.cli._console import EXIT_OK, EXIT_REFUSED, Console, run_client_verb
from ims_nb.cli._filters import add_filter_options, filters_from_args
from ims_nb.cli._options import HelpFormatter, add_connection_options, add_estate_options, bucket_url, estate_chosen
from ims_nb.cli._output import (
    TEXT_FORMATS,
    OutputFormat,
    TableColumn,
    check_output,
    ellipsis_for,
    json_records,
    render_text,
    speaks_utf,
    table_lines,
    write_frame,
    yes_no,
)
from ims_nb.cli._progress import add_progress_options, progress_line
from ims_nb.cli._verbs import VERBS
from ims_nb.errors import ConfigError
from ims_nb.vocab import FILE_FORMATS

if TYPE_CHECKING:
    import pandas as pd

DESCRIPTION = """\
Check, before anything is sent, which exports (POST /v1/cloudimages/{image_id}/file) the service would \
refuse, and why: the images, the bucket, the target objects and the mode are judged by the rules of \
ims_nb.preflight, as the library's preflight() judges them. Nothing is exported.

The images are the IMAGE_IDs given, or else those the listing filters select; with neither, every image \
the account sees (no --imagetype private is implied)."""
EPILOG = """\
examples:
  ims-nb preflight --imagetype private --status active --format qcow2 \\
      --bucket-url 'my-bucket:exports/{name}-{id8}.{ext}'
  ims-nb preflight 1f34a6d9-115b-44b2-9c58-2736820a464a --bucket-url my-bucket:big.zvhd2 --quick --details
  ims-nb preflight --platform Ubuntu --bucket-url 'my-bucket:{id}.{ext}' --format vhd --output-format csv -o pf.csv
  ims-nb preflight --regions all --imagetype private --format qcow2 \\
      --bucket-url 'ims-exports-{region}:{project}/{name}-{id8}.{ext}'    # every region, each its own bucket

Key template fields: {name} and {platform} (runs of characters outside A-Za-z0-9._- become -), {id}, \
{id8} (its first 8 characters), {ext} and {format} (the file format; zvhd2 with --quick), and with \
--regions {region} and {project} (the bucket may use these two).

Output: the summary, one row per image (ID, NAME, TARGET, EXPORTABLE yes/no, BLOCKING rules, WARNINGS, \
RECOMMENDED mode), then one line per violation (severity, rule, IMG code, message and fix) of every refused \
image, and with --details of every image. --output-format csv is the summary (lists joined with ;); json is \
one record per image with all its violations. A totals line goes to stderr: \
"N images: X exportable, Y refused, Z with warnings".

Exit codes: 0 every image is exportable (warnings allowed), 3 some image would be refused, 1 the service \
or the network failed, 2 bad arguments or configuration (an IMAGE_ID that does not exist, too)."""


#: The summary table; the narrowest terminal still shows id, exportable and the blocking rules.
SUMMARY_TABLE = (
    TableColumn("image_id", "ID"),
    TableColumn("name", "NAME", drop_order=4, min_width=12),
    TableColumn("bucket_url", "TARGET", drop_order=1, min_width=20),
    TableColumn("exportable", "EXPORTABLE", show=yes_no),
    TableColumn("blocking", "BLOCKING", min_width=24),
    TableColumn("warnings", "WARNINGS", drop_order=3, min_width=16),
    TableColumn("recommended", "RECOMMENDED", drop_order=2),
)
#: An estate's summary: where each image is, then the one-region columns.
ESTATE_SUMMARY_TABLE = (
    TableColumn("region", "REGION", drop_order=5),
    TableColumn("project_name", "PROJECT", drop_order=6),
    *SUMMARY_TABLE,
)
#: The violations, never cut: the message is the point.
VIOLATION_TABLE = (
    TableColumn("image_id", "ID"),
    TableColumn("severity", "SEVERITY"),
    TableColumn("rule", "RULE"),
    TableColumn("code", "CODE"),
    TableColumn("detail", "MESSAGE; FIX"),
)


def add_preflight_parser(verbs: Any) -> None:
    """Register ``preflight`` on ``verbs``, the ``ims-nb`` parser's sub-parsers (an argparse private type)."""
    parser: argparse.ArgumentParser = verbs.add_parser(
        "preflight", help=VERBS["preflight"].help,
        description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter,
    )  # fmt: skip
    parser.add_argument(
        "image_ids", nargs="*", metavar="IMAGE_ID", help="images to check (default: those the filters select)"
    )
    target = parser.add_argument_group("export (as it would be sent)")
    target.add_argument(
        "--bucket-url", required=True, type=bucket_url, metavar="BUCKET:KEY_TEMPLATE",
        help="the OBS bucket and object key; the key may be a template (fields below), one object per image; "
        "the bucket may be one of {region} and {project} (one bucket per region)",
    )  # fmt: skip
    mode = target.add_mutually_exclusive_group(required=True)
    mode.add_argument("--format", dest="file_format", choices=FILE_FORMATS, help="normal export to this file format")
    mode.add_argument("--quick", action="store_true", help="fast export (the file is ZVHD2)")
    add_filter_options(parser, "filters (without IMAGE_IDs; documented listing filters, all optional)")
    output = parser.add_argument_group("output")
    output.add_argument(
        "--output-format", choices=[f.value for f in TEXT_FORMATS], default=OutputFormat.TABLE.value,
        help="table (summary, then violations; default), csv (the summary) or json (records with their violations)",
    )  # fmt: skip
    output.add_argument(
        "--details", action="store_true",
        help="list the violations (warnings) of exportable images too, not only those of refused ones (table)",
    )  # fmt: skip
    output.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    add_progress_options(parser)
    add_connection_options(parser)
    add_estate_options(parser)
    parser.set_defaults(run=run_preflight)


def run_preflight(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    """The ``preflight`` verb, with its errors turned into one-line messages and exit codes."""
    return run_client_verb(args, _preflight, stderr)


def _preflight(args: argparse.Namespace, console: Console) -> int:
    from ims_nb.exports.plan import review
    from ims_nb.targets import SCOPE_FIELDS, check_key_template

    check_key_template(args.bucket_url.bucket, SCOPE_FIELDS, "bucket")
    check_key_template(args.bucket_url.key)
    filters = filters_from_args(args)
    image_ids = list(dict.fromkeys(args.image_ids))
    if image_ids and (filters or args.max_items is not None):
        raise ConfigError("give IMAGE_IDs or listing filters, not both")
    output_format = OutputFormat(args.output_format)
    check_output(output_format, args.output)
    judging = {"bucket": args.bucket_url.bucket, "key_template": args.bucket_url.key, "file_format": args.file_format,
               "quick": args.quick, "shared_targets": True}  # fmt: skip
    if estate_chosen(args):
        with connect_estate_from_args(args, console) as estate:
            frame = selected_images(estate, console, image_ids, args.max_items, filters)
            judged = review(frame, client=estate, **judging)
            summary, violations = with_scope(judged.summary, judged.plan, estate), judged.violations
        table: tuple[TableColumn, ...] = ESTATE_SUMMARY_TABLE
    else:
        summary, violations = _review_one(args, console, image_ids, filters, judging)
        table = SUMMARY_TABLE
    _warn_of_shared_targets(summary, console)
    _write(summary, violations, output_format, args.details, args.output, sys.stdout, table)
    refused = int((~summary["exportable"]).sum())
    warned = int(summary["warnings"].map(len).gt(0).sum())
    images = "image" if len(summary) == 1 else "images"
    console.notice(f"{len(summary)} {images}: {len(summary) - refused} exportable, {refused} refused, "
                   f"{warned} with warnings")  # fmt: skip
    return EXIT_REFUSED if refused else EXIT_OK


def _review_one(
    args: argparse.Namespace, console: Console, image_ids: list[str], filters: dict[str, Any], judging: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The summary and violations of one region's images, judged with ``judging`` (``review``'s arguments)."""
    from ims_nb.exports.plan import review

    progress = progress_line(args, console.stream, "ims-nb preflight", "requests")
    options: dict[str, Any] = {"transport": CountingTransport(progress, requests=True)} if progress.enabled else {}
    with connect_from_args(args, console, **options) as client, progress:
        records = selected_images(client, console, image_ids, args.max_items, filters)
        judged = review(records, client=client, **judging)
    return judged.summary, judged.violations


def _warn_of_shared_targets(summary: pd.DataFrame, console: Console) -> None:
    """Several images with one target: only the first export could succeed (the others find the object)."""
    counts = summary["bucket_url"].value_counts()
    shared = counts[counts > 1]
    if not shared.empty:
        url, count = str(shared.index[0]), int(shared.iloc[0])
        more = f" (and {len(shared) - 1} more shared targets)" if len(shared) > 1 else ""
        console.notice(f"ims-nb {console.verb}: warning: {count} images would be exported to {url}{more}; "
                       "put {id8} or {name} in the key template")  # fmt: skip


def _write(
    summary: pd.DataFrame,
    violations: pd.DataFrame,
    output_format: OutputFormat,
    details: bool,
    output: Path | None,
    stdout: TextIO,
    table: tuple[TableColumn, ...],
) -> None:
    if output_format is OutputFormat.CSV:
        write_frame(summary, output_format, output, stdout, table)
        return

    def render(stream: TextIO, width: int | None) -> None:
        if output_format is OutputFormat.JSON:
            stream.write(_json_text(summary, violations, ascii_only=not speaks_utf(stream)))
        else:
            lines = _table_text(summary, violations, details, width, stream, table)
            stream.writelines(line + "\n" for line in lines)
        stream.flush()

    render_text(output, stdout, render)


def _table_text(
    summary: pd.DataFrame,
    violations: pd.DataFrame,
    details: bool,
    width: int | None,
    stream: TextIO,
    table: tuple[TableColumn, ...],
) -> list[str]:
    """The summary table, then (after a blank line) the violations of refused images (all with ``details``)."""
    lines = table_lines(summary, table, width, ellipsis_for(stream))
    position = {image_id: i for i, image_id in enumerate(summary["image_id"])}
    refused = set(summary.loc[~summary["exportable"].astype(bool), "image_id"])
    shown = violations if details else violations[violations["image_id"].isin(refused)]
    if shown.empty:
        return lines
    pairs = zip(shown["message"], shown["fix"].fillna(""), strict=True)
    detail = [f"{message}; fix: {fix}" if fix else str(message) for message, fix in pairs]
    shown = shown.assign(detail=detail, position=shown["image_id"].map(position)).sort_values("position", kind="stable")
    return [*lines, "", *table_lines(shown, VIOLATION_TABLE, None)]


def _json_text(summary: pd.DataFrame, violations: pd.DataFrame, *, ascii_only: bool) -> str:
    """One record per image (the summary columns) with ``violations``: every one, as rule, severity, code,
    message, fix."""
    found: dict[str, list[dict[str, Any]]] = {}
    for record in json_records(violations):
        found.setdefault(record.pop("image_id"), []).append(record)
    records = [{**record, "violations": found.get(record["image_id"], [])} for record in json_records(summary)]
    lines = [json.dumps(record, ensure_ascii=ascii_only) for record in records]
    return "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"
