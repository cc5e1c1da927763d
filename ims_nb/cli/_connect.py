"""Connecting a client verb: the connection options (``--sim``, ``--ak``, ...) become one ``ims_nb.connect`` call."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import httpx

from ims_nb.cli._console import SIMULATOR_PREFIX, Console
from ims_nb.cli._options import estate_chosen
from ims_nb.cli._output import TableColumn
from ims_nb.cli._progress import ProgressLine
from ims_nb.client import ImsClient, config
from ims_nb.client.connection import connect, connect_simulator
from ims_nb.errors import ApiError, ConfigError, EstateWarning

if TYPE_CHECKING:
    import pandas as pd

    from ims_nb.client.protocol import ClientLike
    from ims_nb.estate import Estate
    from ims_nb.exports.ledger import Ledger
    from ims_nb.exports.plan_file import PlanRow

READ_STDIN = "-"
#: The columns an estate's tables start with.
SCOPE_TABLE = (TableColumn("region", "REGION", drop_order=6), TableColumn("project_name", "PROJECT", drop_order=7))
#: The path of the image listing, whose pages a progress line counts.
LISTING_PATH = "/v2/cloudimages"


def connect_from_args(
    args: argparse.Namespace, console: Console, *, stdin: TextIO | None = None, **options: Any
) -> ImsClient:
    """A client from the connection options (see ``CONNECTION_HELP``); ``options`` go to ``connect``.

    Raises:
        ConfigError: a bad ``--sim`` line, ``--sim`` mixed with other connection options, an ``--ak``
            without its SK, or anything ``connect`` refuses.
    """
    console.keep_secret(os.environ.get(config.ENV_SK), os.environ.get(config.ENV_SECURITY_TOKEN))
    options = {**_transport_options(args), **options}
    if args.region:
        config.check_region(args.region)  # before any fallback to a simulator, which would play any name
    line = _simulator_line(args.sim, stdin or sys.stdin) if args.sim is not None else None
    if line is not None:
        console.keep_secret(line["sk"])
        client = _connect_simulator(args, line, options)
        where = f"{line['endpoint']} (region {line['region']})"
        console.notice(f"{SIMULATOR_PREFIX} using the simulator at {where} from --sim")
    elif args.ak:
        sk, token = _secret_of(args.ak)
        console.keep_secret(sk, token)
        client = connect(
            args.region, ak=args.ak, sk=sk, project_id=args.project_id, security_token=token,
            endpoint=args.endpoint, **options,
        )  # fmt: skip
    else:
        client = connect(args.region, project_id=args.project_id, endpoint=args.endpoint, **options)
    if client.settings.credentials is not None:
        console.keep_secret(*client.settings.credentials.secrets)
    return client


def connect_estate_from_args(args: argparse.Namespace, console: Console, *, stdin: TextIO | None = None) -> Estate:
    """An estate from ``--regions``/``--projects`` and the connection options (``--sim``, ``--ak``, or the
    credentials chain); ``--region``, ``--endpoint`` and ``--project-id`` belong to one-region calls.

    Raises:
        ConfigError: what ``estate_chosen`` refuses (``--regions`` missing, or with a one-region option), or what
            ``connect_estate`` refuses.
    """
    from ims_nb.estate import connect_estate

    if not estate_chosen(args):
        raise ConfigError("this needs an estate: give --regions all or --regions R1,R2")
    console.keep_secret(os.environ.get(config.ENV_SK), os.environ.get(config.ENV_SECURITY_TOKEN))
    projects = args.projects.split(",") if args.projects else None
    options: dict[str, Any] = {"projects": projects, **_transport_options(args)}
    if args.sim is not None:
        raw = (stdin or sys.stdin).readline() if args.sim == READ_STDIN else args.sim
        line = config.parse_simulator_line(raw, "the --sim value")
        console.keep_secret(line["sk"])
        options["simulator"] = json.loads(raw)
        console.notice(f"{SIMULATOR_PREFIX} using the simulator at {line['endpoint']} from --sim")
    if args.ak:
        sk, token = _secret_of(args.ak)
        console.keep_secret(sk, token)
        options.update(ak=args.ak, sk=sk, security_token=token)
    estate = connect_estate(args.regions, **options)
    console.keep_secret(*estate.secrets)
    return estate


def estate_images(estate: Estate, console: Console, **listing: Any) -> pd.DataFrame:
    """``estate.images(**listing)``; a region or project that failed is a warning line, not a lost listing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EstateWarning)
        frame = estate.images(**listing)
    for warning in caught:
        console.notice(f"ims-nb {console.verb}: warning: {warning.message}")
    return frame


def estate_images_by_id(estate: Estate, console: Console, image_ids: list[str]) -> pd.DataFrame:
    """The estate's rows of these images (an image several projects see: a row each); every id no scope knows is
    named in one ConfigError."""
    frame = estate_images(estate, console)
    missing = [image_id for image_id in image_ids if image_id not in set(frame["id"])]
    if missing:
        raise ConfigError(f"no such image in the estate: {', '.join(missing)}")
    chosen = frame[frame["id"].isin(image_ids)]
    order = {image_id: n for n, image_id in enumerate(image_ids)}
    return chosen.sort_values("id", key=lambda ids: ids.map(order), kind="stable").reset_index(drop=True)


def with_scope(frame: pd.DataFrame, plan: pd.DataFrame, estate: Estate | None) -> pd.DataFrame:
    """An estate's ``frame`` (one row per ``plan`` row, in its order) with ``region``, ``project_id`` and
    ``project_name`` first, as ``ims-nb images --regions`` shows them; one region's frame as it is."""
    from ims_nb.vocab import SCOPE_COLUMNS

    if estate is None:
        return frame

    names = {p.id: p.name for p in estate.projects}
    out = frame.drop(columns=[c for c in SCOPE_COLUMNS if c in frame.columns]).reset_index(drop=True)
    scopes = {"region": plan["region"], "project_id": plan["project_id"], "project_name": plan["project_id"].map(names)}
    for position, column in enumerate(SCOPE_COLUMNS):
        out.insert(position, column, scopes[column].astype("string").to_numpy())
    return out


def connect_any(args: argparse.Namespace, console: Console) -> ImsClient | Estate:
    """The estate the options choose (``--regions``), else the one client; either is a context manager."""
    return connect_estate_from_args(args, console) if estate_chosen(args) else connect_from_args(args, console)


def selected_images(
    client: ClientLike | Estate, console: Console, image_ids: list[str], max_items: int | None, filters: dict[str, Any]
) -> Any:
    """The images a verb works on: ``image_ids`` when given, else those the filters select; an estate's as its
    frame (with each row's scope), one client's as records."""
    from ims_nb.estate import Estate

    if isinstance(client, Estate):
        if image_ids:
            return estate_images_by_id(client, console, image_ids)
        return estate_images(client, console, max_items=max_items, **filters)
    if image_ids:
        return images_by_id(client, image_ids)
    return list(client.iter_images(max_items=max_items, **filters))


def scoped_table(table: tuple[TableColumn, ...], estate: Estate | None) -> tuple[TableColumn, ...]:
    """An estate's table: region and project first; one region's as it is."""
    return table if estate is None else (*SCOPE_TABLE, *table)


def plan_images(client: ClientLike | Estate, console: Console, plan_rows: list[PlanRow]) -> Any:
    """The images of a plan file's rows: an estate's each in the region and project its row names (when it does),
    one row per image in the plan's order.

    Raises:
        ConfigError: an image no scope has, or one that several projects list with no scope in its row to choose.
    """
    images = selected_images(client, console, [row.image_id for row in plan_rows], None, {})
    if isinstance(images, list):  # one client's records: one per id already
        return images
    wanted = {row.image_id: row for row in plan_rows}
    keep = [(wanted[i].region or r) == r and (wanted[i].project_id or p) == p
            for i, r, p in zip(images["id"], images["region"], images["project_id"], strict=True)]  # fmt: skip
    chosen = images[keep]
    twice = chosen["id"][chosen["id"].duplicated()]
    if len(twice):
        raise ConfigError(f"image {twice.iloc[0]} is in several projects of the estate: give the plan's rows their "
                          "region and project_id columns (as export --regions --dry-run -o writes them)")  # fmt: skip
    missing = [row.image_id for row in plan_rows if row.image_id not in set(chosen["id"])]
    if missing:
        raise ConfigError(f"no such image in the region and project of its plan row: {', '.join(missing)}")
    return chosen.reset_index(drop=True)


def home_client(client: ImsClient | Estate) -> ImsClient:
    """One client's self; an estate's first scope's client, whose ledger file its exports share (``ledger_path``)."""
    return client[client.scopes[0]] if isinstance(client, Mapping) else client


def open_ledger(client: ClientLike | Estate | None, location: str | Path) -> Ledger:
    """The ledger at ``location`` (a path or URL): bound to one client's account; an estate's (or, without a
    client, the whole ledger) open to each scope's, which launch and watch bind per scope
    (``ims_nb.exports.estate``)."""
    from ims_nb.exports.ledger import Ledger, ledger_for

    return Ledger(location) if client is None or isinstance(client, Mapping) else ledger_for(client, location)


def ledger_missing(location: str | Path) -> bool:
    """Whether nothing was ever written at ``location``: a ledger file that does not exist yet (a database server's
    ledger is opened to be read: its tables are made on open)."""
    from ims_nb.exports import engines

    path = engines.sqlite_path(engines.ledger_url(location)) if engines.is_url(location) else Path(location)
    return path is not None and not path.exists()


class CountingTransport(httpx.HTTPTransport):
    """The default transport, counting on a progress line the listing pages that arrive (and with ``requests``,
    every request as an item)."""

    def __init__(self, progress: ProgressLine, *, requests: bool = False) -> None:
        super().__init__()
        self._progress = progress
        self._requests = requests

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if self._requests:
            self._progress.add()
        if request.method == "GET" and request.url.path.endswith(LISTING_PATH) and response.is_success:
            self._progress.page()
        return response


def _transport_options(args: argparse.Namespace) -> dict[str, Any]:
    """``insecure`` and ``ca_bundle`` for ``connect``, from ``--insecure`` and ``--ca-bundle`` when given."""
    options: dict[str, Any] = {}
    if getattr(args, "insecure", False):
        options["insecure"] = True
    if getattr(args, "ca_bundle", None):
        options["ca_bundle"] = args.ca_bundle
    return options


def _simulator_line(value: str, stdin: TextIO) -> dict[str, str]:
    if value == READ_STDIN:
        return config.parse_simulator_line(stdin.readline(), "stdin")
    return config.parse_simulator_line(value, "the --sim value")


def _connect_simulator(args: argparse.Namespace, line: dict[str, str], options: dict[str, Any]) -> ImsClient:
    if args.ak or args.endpoint or args.project_id:
        raise ConfigError("--sim brings its own endpoint and credentials: leave out --ak, --endpoint and --project-id")
    if args.region and args.region != line["region"]:
        raise ConfigError(f"the simulator plays region {line['region']!r}, not {args.region!r}")
    return connect_simulator(line, **options)


def _secret_of(ak: str) -> tuple[str, str | None]:
    """The SK (and security token) that belongs to ``--ak``: from the environment, else the credentials file."""
    env_ak, env_sk = os.environ.get(config.ENV_AK), os.environ.get(config.ENV_SK)
    if env_sk and env_ak in (None, "", ak):
        return env_sk, os.environ.get(config.ENV_SECURITY_TOKEN) or None
    path = config.credentials_file_path()
    found = config.credentials_from_file(path)
    if found is not None and found.ak == ak:
        return found.sk, found.security_token
    raise ConfigError(
        f"no SK for --ak {ak}: set {config.ENV_SK} (with {config.ENV_AK} unset or equal to it) or put both in "
        f"the [basic] section of {path}; the SK is never a command-line option"
    )


NOT_FOUND = 404


def images_by_id(client: ClientLike, image_ids: list[str]) -> list[dict[str, Any]]:
    """One record per id; every id the service does not know is named in one ConfigError."""
    records, missing = [], []
    for image_id in image_ids:
        try:
            records.append(client.image(image_id))
        except ApiError as exc:
            if exc.status != NOT_FOUND:
                raise
            missing.append(image_id)
    if missing:
        names = [image_id for image_id in missing if not _looks_like_id(image_id)]
        hint = f" (IMAGE_ID is an image's id; to choose by name, use --name {shlex.quote(names[0])})" if names else ""
        raise ConfigError(f"no such image: {', '.join(missing)}{hint}")
    return records


def _looks_like_id(text: str) -> bool:
    """Whether ``text`` has the shape of an image id (a UUID), rather than a name."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
