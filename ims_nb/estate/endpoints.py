"""Each region's IMS, IAM and OBS endpoints, resolved the official SDK's way (env, ``regions.yaml``, the table)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ims_nb.client import config
from ims_nb.client.config import Endpoints
from ims_nb.errors import ConfigError

#: The official SDK's per-region override file, and the variable that names another one.
ENV_REGIONS_FILE = "HUAWEICLOUD_SDK_REGIONS_FILE"
DEFAULT_REGIONS_FILE = Path(".huaweicloud") / "regions.yaml"
#: ``HUAWEICLOUD_SDK_REGION_<SERVICE>_<REGION>`` (huaweicloudsdkcore's ``EnvRegionProvider``).
ENV_REGION_PREFIX = "HUAWEICLOUD_SDK_REGION"
#: The official SDK's service names of the three endpoints a client talks to.
SERVICES = ("IMS", "IAM", "OBS")

RegionsFile = dict[str, list[str]]


def env_override_name(service: str, region: str) -> str:
    """``HUAWEICLOUD_SDK_REGION_IMS_CN_NORTH_4`` for ``("IMS", "cn-north-4")``, as the SDK spells it."""
    return f"{ENV_REGION_PREFIX}_{service.upper()}_{region.replace('-', '_').upper()}"


def regions_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$HUAWEICLOUD_SDK_REGIONS_FILE``, else ``~/.huaweicloud/regions.yaml``."""
    env = os.environ if environ is None else environ
    named = env.get(ENV_REGIONS_FILE)
    return Path(named) if named else Path.home() / DEFAULT_REGIONS_FILE


def read_regions_file(path: Path) -> RegionsFile:
    """``{"IMScn-north-4": [endpoints...]}`` from the SDK's regions file; a missing file is an empty map.

    Items without an ``id`` or any endpoint are skipped, and ``endpoint`` comes after ``endpoints``, as the SDK
    reads them (``ProfileRegionCache``).

    Raises:
        ConfigError: the file is not YAML of service → list of ``{id, endpoint(s)}``.
    """
    if not path.is_file():
        return {}
    import yaml  # type: ignore[import-untyped]  # PyYAML, as the official SDK reads this file

    try:
        found = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the regions file {path}: {type(exc).__name__}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the regions file {path} is not YAML ({type(exc).__name__})") from None
    if found is None:
        return {}
    if not isinstance(found, dict) or not all(isinstance(items, list) for items in found.values()):
        raise ConfigError(f"the regions file {path} must map each service to a list of {{id, endpoint}} items")
    return {
        f"{str(service).upper()}{item['id']}": endpoints
        for service, items in found.items()
        for item in items
        if isinstance(item, dict) and item.get("id") and (endpoints := _item_endpoints(item))
    }


def _item_endpoints(item: dict[str, Any]) -> list[str]:
    listed = item.get("endpoints") or []
    endpoints = [str(e) for e in listed] if isinstance(listed, list) else []
    return endpoints + ([str(item["endpoint"])] if item.get("endpoint") else [])


class EndpointResolver:
    """Where each region's services are: a simulator's map, else env overrides, the regions file, the table.

    Args:
        simulator_regions: a simulator line's ``regions`` map (region → endpoint, project id): every service of a
            region at its one endpoint, and nothing else consulted.
        environ: the environment to read (default ``os.environ``).
        insecure: allow plain HTTP to hosts that are not loopback (as ``connect(insecure=True)``).
    """

    def __init__(
        self,
        simulator_regions: Mapping[str, Mapping[str, str]] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        insecure: bool = False,
    ) -> None:
        self.simulator_regions = simulator_regions
        self._env = os.environ if environ is None else environ
        self._insecure = insecure
        self._file: RegionsFile | None = None

    @property
    def regions_file(self) -> RegionsFile:
        if self._file is None:
            self._file = read_regions_file(regions_file_path(self._env))
        return self._file

    def known(self, region: str) -> bool:
        """Whether ``region`` has endpoints: in the simulator's map, or the region table, or an IMS override."""
        if self.simulator_regions is not None:
            return region in self.simulator_regions
        return region in config.REGIONS or self._override("IMS", region) is not None

    def endpoints(self, region: str) -> Endpoints:
        """The region's IMS, IAM and OBS endpoints.

        Raises:
            ConfigError: the region is neither in the simulator's map, nor overridden, nor in the table; or an
                endpoint found is not a usable URL.
        """
        if self.simulator_regions is not None:
            if region not in self.simulator_regions:
                known = ", ".join(self.simulator_regions)
                raise ConfigError(f"the simulator serves no region {region!r} (it serves {known})")
            return Endpoints.override(self.simulator_regions[region]["endpoint"], insecure=self._insecure)
        table = Endpoints.for_region(region) if region in config.REGIONS else None
        found = {}
        for service in SERVICES:
            chosen = self._override(service, region)
            if chosen is None and service == "IAM":
                chosen = self._env.get(config.ENV_IAM_ENDPOINT) or None
            if chosen is None and table is not None:
                chosen = getattr(table, service.lower())
            if chosen is None:
                config.check_region(region)  # raises, listing the known regions
            found[service.lower()] = config.check_endpoint(str(chosen), insecure=self._insecure)
        return Endpoints(**found)

    def _override(self, service: str, region: str) -> str | None:
        """The first endpoint of the env variable, else of the regions file, for one service and region."""
        value = self._env.get(env_override_name(service, region))
        if value:
            return value.split(",")[0].strip()
        listed = self.regions_file.get(service + region)
        return listed[0] if listed else None

    def iam_endpoint(self, region: str) -> str:
        """Where to ask IAM for the account's projects (IAM is global: any region's endpoint answers)."""
        return self.endpoints(region).iam
