"""``ims_nb.connect_estate()``: one credential set, the account's projects from IAM, each region's endpoints."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from typing import Any

import httpx

from ims_nb.client import config
from ims_nb.client.aio import AsyncImsClient
from ims_nb.client.base import ClientSettings
from ims_nb.client.config import Credentials
from ims_nb.client.connection import checked_simulator_options, transport_settings
from ims_nb.client.refusals import CredentialGuard
from ims_nb.errors import ConfigError, SimulatorWarning
from ims_nb.estate.endpoints import EndpointResolver
from ims_nb.estate.estate import Estate
from ims_nb.estate.fanout import FanOut, run_sync
from ims_nb.estate.projects import (
    ALL,
    AUTH_PROJECTS_PATH,
    Project,
    parse_projects,
    regions_argument,
    select,
)

#: Requests in flight per region, and started per second per region, unless told otherwise.
DEFAULT_CONCURRENCY = 4
DEFAULT_RATE = 20.0


def connect_estate(
    regions: str | Iterable[str] = ALL,
    projects: Iterable[str] | None = None,
    *,
    ak: str | None = None,
    sk: str | None = None,
    security_token: str | None = None,
    include_subprojects: bool = True,
    exclude: Collection[str] = (),
    max_concurrency: int = DEFAULT_CONCURRENCY,
    max_rate: float | None = DEFAULT_RATE,
    simulator: Any = None,
    **options: Any,
) -> Estate:
    """An ``Estate`` over the account's projects in ``regions`` (``"all"``, a list, or ``"R1,R2"``).

    Projects come from IAM (``GET /v3/auth/projects``): sub-projects (``cn-north-4_dev``) are included unless
    ``include_subprojects=False`` or named in ``exclude``; ``projects`` keeps only those named (names or ids).
    Credentials chain as ``ims_nb.connect``'s (arguments, the SDK's environment and credentials file), else a
    simulator: ``simulator`` (its JSON line as a dict or a ``Simulator``), ``$IMS_NB_SIM``, or an embedded one
    serving ``regions``. ``simulator`` may instead be the options of that embedded one (``regions``, a list, and
    ``connect``'s ``seed``, ``images``, ``time_scale``, ``manual_clock``): used only when no credentials and no
    ``$IMS_NB_SIM`` are found, as ``connect(simulator={...})``.
    Endpoints resolve the SDK's way (``EndpointResolver``), or from the simulator's map.

    Args:
        max_concurrency: requests in flight per region at most.
        max_rate: requests started per second per region at most (None: no limit).
        **options: the transport options of ``connect`` (``timeout``, ``retry``, ``transport`` (an async one),
            ``page_size``, ``ca_bundle``, ``insecure``, ``signing_clock``).

    Raises:
        ConfigError: a bad argument, a region without endpoints, a region or project the account lacks.
        AuthError: IAM refused the credentials (nothing else is sent).
    """
    wanted = regions_argument(regions)
    names = None if projects is None else [projects] if isinstance(projects, str) else list(projects)
    if max_concurrency < 1:
        raise ConfigError(f"max_concurrency must be at least 1, not {max_concurrency}")
    extra, insecure = transport_settings(dict(options))
    if extra["verify"] is True:  # one CA store load (~40 ms) for IAM discovery, every fan-out and the sync clients
        extra["verify"] = httpx.create_ssl_context()
    credentials = config.resolve_credentials(ak, sk, None, security_token)
    owned = None
    embedded = _embedded_options(simulator)
    if embedded is not None:
        simulator = None  # options of a simulator to start, not one to use
    if credentials is None or simulator is not None:  # a simulator's map, with its credentials unless given
        line, owned = _simulator_line(simulator, wanted, embedded or {})
        credentials = credentials or Credentials(line["ak"], line["sk"], None, None, config.SOURCE_SIMULATOR)
        resolver = EndpointResolver(_region_map(line), insecure=insecure)
        home = str(line["region"])
    else:
        resolver = EndpointResolver(insecure=insecure)
        home = wanted[0] if wanted != ALL else config.resolve_region(None)
    try:
        on_sim = owned is not None or resolver.simulator_regions is not None
        base = ClientSettings(home, resolver.endpoints(home), credentials, is_simulator=on_sim, announced=True, **extra)
        found = run_sync(_discover(base, resolver))
        chosen = select(found, wanted, names, include_subprojects=include_subprojects, exclude=exclude)
        settings = {r: _region_settings(base, r, resolver) for r in dict.fromkeys(p.region for p in chosen)}
    except BaseException:
        if owned is not None:
            owned.stop()
        raise
    guard = CredentialGuard(credentials.ak)
    guard.confirmed = True  # IAM answered the listing: the credentials are good
    return Estate(FanOut(settings, max_concurrency, max_rate, guard), chosen, simulator=owned)


async def _discover(base: ClientSettings, resolver: EndpointResolver) -> list[Project]:
    """The account's projects, asked of the home region's IAM endpoint with the estate's credentials."""
    async with AsyncImsClient(base) as client:
        return await client.iam_read(AUTH_PROJECTS_PATH, lambda answer: parse_projects(answer, resolver.known))


def _region_settings(base: ClientSettings, region: str, resolver: EndpointResolver) -> ClientSettings:
    return replace(base, region=region, endpoints=resolver.endpoints(region))


def _region_map(line: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """A simulator line's ``regions``; a single-region line is its own one-region map."""
    regions = line.get("regions")
    if isinstance(regions, dict) and regions:
        return {
            str(k): {"endpoint": str(v["endpoint"]), "project_id": str(v["project_id"])} for k, v in regions.items()
        }
    return {str(line["region"]): {"endpoint": str(line["endpoint"]), "project_id": str(line["project_id"])}}


def _embedded_options(simulator: Any) -> dict[str, Any] | None:
    """The options of an embedded simulator when ``simulator`` is a dict of them (not a simulator's line), else None.

    Raises:
        ConfigError: an unknown option, a wrong type, or ``regions`` that is not a non-empty list of names.
    """
    if not isinstance(simulator, Mapping) or "endpoint" in simulator:
        return None
    options = dict(simulator)
    regions = options.pop("regions", None)
    if regions is not None and (isinstance(regions, str) or not regions or
                                not all(isinstance(r, str) for r in regions)):  # fmt: skip
        raise ConfigError(f"simulator option regions must be a non-empty list of region names, not {regions!r}")
    checked = checked_simulator_options(options)
    return checked if regions is None else {**checked, "regions": list(regions)}


def _simulator_line(
    simulator: Any, wanted: str | list[str], options: Mapping[str, Any]
) -> tuple[Mapping[str, Any], Any]:
    """(the simulator's line, the simulator this call started or None): ``simulator``, else ``$IMS_NB_SIM``,
    else an embedded one with ``options`` serving their ``regions``, else ``wanted`` (the default region for
    ``"all"``)."""
    if simulator is not None:
        info = getattr(simulator, "info", simulator)
        line = info.line() if hasattr(info, "line") else info
        config.simulator_info(line, "the simulator")  # the five fields, or a ConfigError
        return line, None
    raw = os.environ.get(config.ENV_SIMULATOR)
    started = None
    if raw:
        config.parse_simulator_line(raw, f"${config.ENV_SIMULATOR}")  # the five fields, or a ConfigError
        line = json.loads(raw)
    else:
        from ims_nb.sim import Simulator

        own = dict(options)
        regions = own.pop("regions", None) or ([config.DEFAULT_REGION] if wanted == ALL else wanted)
        try:
            started = Simulator(regions=regions, **{"seed": 0, **own}).start()
        except ValueError as exc:
            raise ConfigError(f"the simulator could not start: {exc}") from None
        line = started.info.line()
    message = f"SIMULATOR: no credentials configured; the estate is the simulator's at {line['endpoint']}"
    warnings.warn(message, SimulatorWarning, stacklevel=3)
    return line, started
