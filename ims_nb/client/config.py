"""Where to connect and as whom: regions, endpoints and the credentials chain.

The chain: explicit arguments, then the official SDK's environment variables, then the official
SDK's credentials file (``~/.huaweicloud/credentials`` or ``$HUAWEICLOUD_SDK_CREDENTIALS_FILE``,
section ``[basic]``), then a simulator: the one ``make lab`` started (``$IMS_NB_SIM``) or an
embedded one started on demand.
"""

from __future__ import annotations

import configparser
import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ims_nb.errors import ConfigError

if TYPE_CHECKING:
    pass

#: The 33 regions of the official IMS SDK (huaweicloudsdkims 3.1.219).
REGIONS = (
    "af-south-1", "af-north-1", "ae-ad-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ap-southeast-4", "ap-southeast-5", "cn-north-1", "cn-north-2", "cn-north-4", "cn-north-9",
    "cn-north-11", "cn-north-12", "cn-east-2", "cn-east-3", "cn-east-4", "cn-east-5", "cn-south-1",
    "cn-south-2", "cn-south-4", "cn-southwest-2", "cn-southwest-3", "eu-west-0", "eu-west-101",
    "la-north-2", "la-south-2", "me-east-1", "my-kualalumpur-1", "na-mexico-1", "ru-moscow-1",
    "sa-brazil-1", "tr-west-1",
)  # fmt: skip
DEFAULT_REGION = "cn-north-4"

ENV_AK = "HUAWEICLOUD_SDK_AK"
ENV_SK = "HUAWEICLOUD_SDK_SK"
ENV_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"
ENV_CREDENTIALS_FILE = "HUAWEICLOUD_SDK_CREDENTIALS_FILE"
ENV_REGION = "HUAWEICLOUD_SDK_REGION"
ENV_IAM_ENDPOINT = "HUAWEICLOUD_SDK_IAM_ENDPOINT"
ENV_SIMULATOR = "IMS_NB_SIM"

SOURCE_ARGUMENTS = "arguments"
SOURCE_ENVIRONMENT = "environment"
SOURCE_FILE = "credentials file"
SOURCE_SIMULATOR = "simulator"


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the three services one client talks to."""

    ims: str
    iam: str
    obs: str

    @classmethod
    def for_region(cls, region: str) -> Endpoints:
        check_region(region)
        return cls(
            ims=f"https://ims.{region}.myhuaweicloud.com",
            iam=f"https://iam.{region}.myhuaweicloud.com",
            obs=f"https://obs.{region}.myhuaweicloud.com",
        )

    @classmethod
    def override(cls, endpoint: str, *, insecure: bool = False) -> Endpoints:
        """One URL for IMS, IAM and OBS (the simulator, or a private deployment); see ``check_endpoint``."""
        base = check_endpoint(endpoint, insecure=insecure)
        return cls(ims=base, iam=base, obs=base)

    @property
    def plain_remote_hosts(self) -> list[str]:
        """Hosts reached over plain HTTP that are not loopback (allowed only with ``insecure=True``)."""
        hosts = []
        for url in (self.ims, self.iam, self.obs):
            parts = urlsplit(url)
            if parts.scheme == "http" and parts.hostname and not is_loopback_host(parts.hostname):
                hosts.append(parts.hostname)
        return sorted(set(hosts))


@dataclass(frozen=True)
class Credentials:
    """An AK/SK pair, with the project and an optional security token. Secrets never show in reprs."""

    ak: str
    sk: str = field(repr=False)
    project_id: str | None = None
    security_token: str | None = field(default=None, repr=False)
    source: str = SOURCE_ARGUMENTS

    def __str__(self) -> str:
        return f"AK {self.ak} from {self.source}"

    def __repr__(self) -> str:
        token = "None" if self.security_token is None else "'***'"
        return (
            f"Credentials(ak={self.ak!r}, sk='***', project_id={self.project_id!r}, "
            f"security_token={token}, source={self.source!r})"
        )

    def __post_init__(self) -> None:
        for what, value in (("AK", self.ak), ("SK", self.sk), ("project id", self.project_id),
                            ("security token", self.security_token)):  # fmt: skip
            if value is not None and not header_safe(value):
                raise ConfigError(
                    f"the {what} from {self.source} has a character an HTTP header cannot carry "
                    "(a space, a newline or a non-ASCII letter); check how it was written or read"
                )

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.sk, self.security_token) if s)


def header_safe(value: str) -> bool:
    """Printable ASCII without spaces: what a credential sent in a header may hold (the value is never shown)."""
    return value.isascii() and value.isprintable() and " " not in value


@dataclass(frozen=True)
class Password:
    """IAM password login details (the password never shows in reprs)."""

    username: str
    password: str = field(repr=False)
    domain: str

    def __repr__(self) -> str:
        return f"Password(username={self.username!r}, password='***', domain={self.domain!r})"


def check_region(region: str, source: str | None = None) -> str:
    """The region id, or a ``ConfigError`` that lists the known ones (and names ``source``, where it came from)."""
    if region not in REGIONS:
        where = f" in {source} (correct or unset it)" if source else ""
        raise ConfigError(f"unknown region {region!r}{where}; known regions: {', '.join(REGIONS)}")
    return region


def check_endpoint(endpoint: str, *, insecure: bool = False) -> str:
    """An endpoint URL without a trailing slash.

    Plain HTTP is accepted for loopback hosts, and for others only with ``insecure=True`` (requests, signatures
    and answers then cross the network in the clear).
    """
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
    except (ValueError, TypeError, AttributeError):
        raise ConfigError(f"endpoint must be an http(s) URL with a host, not {endpoint!r}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"endpoint must be an http(s) URL with a host, not {endpoint!r}")
    if parts.scheme == "http" and not insecure and not is_loopback_host(host):
        raise ConfigError(
            f"plain HTTP is only allowed to loopback addresses, not {host!r}: use https, or pass insecure=True "
            f"to send requests and signatures to {host} in the clear"
        )
    return endpoint.rstrip("/")


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credentials_from_env(environ: dict[str, str] | None = None) -> Credentials | None:
    """The official SDK's environment variables, when both AK and SK are set."""
    env = os.environ if environ is None else environ
    ak, sk = env.get(ENV_AK), env.get(ENV_SK)
    if not ak and not sk:
        return None
    if not ak or not sk:
        missing = ENV_SK if ak else ENV_AK
        raise ConfigError(f"{missing} is not set, but its partner is: set both or neither")
    return Credentials(ak, sk, env.get(ENV_PROJECT_ID) or None, env.get(ENV_SECURITY_TOKEN) or None, SOURCE_ENVIRONMENT)


def credentials_file_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(ENV_CREDENTIALS_FILE) or Path.home() / ".huaweicloud" / "credentials")


def credentials_from_file(path: Path) -> Credentials | None:
    """The ``[basic]`` section of the official SDK's credentials file, when the file exists."""
    if not path.is_file():
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the credentials file {path}: {type(exc).__name__}") from None
    if not parser.has_section("basic"):
        return None
    section = parser["basic"]
    ak, sk = section.get("ak"), section.get("sk")
    if not ak or not sk:
        raise ConfigError(f"the credentials file {path} has a [basic] section without both ak and sk")
    return Credentials(ak, sk, section.get("project_id") or None, section.get("security_token") or None, SOURCE_FILE)


#: The fields of the JSON line ``ims-nb sim`` prints (its ``sk`` is a secret).
SIMULATOR_FIELDS = ("endpoint", "region", "project_id", "ak", "sk")


def parse_simulator_line(text: str, source: str) -> dict[str, str]:
    """The fields of a simulator's JSON line; ``source`` names where ``text`` came from in the error.

    Raises:
        ConfigError: ``text`` is not a JSON object with every field of ``SIMULATOR_FIELDS``.
    """
    try:
        found = json.loads(text)
    except ValueError:
        found = None
    return simulator_info(found, source)


def simulator_info(found: Any, source: str) -> dict[str, str]:
    """The fields of a simulator's line from a parsed JSON object, or a ConfigError naming ``source``."""
    try:
        return {key: str(found[key]) for key in SIMULATOR_FIELDS}
    except (KeyError, TypeError, IndexError):
        fields = ", ".join(SIMULATOR_FIELDS)
        raise ConfigError(f"{source} is not the JSON line `ims-nb sim` prints (with {fields})") from None


def simulator_line(environ: dict[str, str] | None = None) -> dict[str, str] | None:
    """The JSON line of the simulator ``make lab`` started, if any."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_SIMULATOR)
    return parse_simulator_line(raw, f"${ENV_SIMULATOR}") if raw else None


def resolve_credentials(
    ak: str | None, sk: str | None, project_id: str | None, security_token: str | None
) -> Credentials | None:
    """Arguments, then environment, then the credentials file; None means "use a simulator"."""
    if ak or sk:
        if not ak or not sk:
            raise ConfigError("give both ak and sk, or neither")
        return Credentials(ak, sk, project_id, security_token, SOURCE_ARGUMENTS)
    found = credentials_from_env() or credentials_from_file(credentials_file_path())
    if found is not None and (project_id or security_token):
        found = Credentials(
            found.ak, found.sk, project_id or found.project_id, security_token or found.security_token, found.source
        )
    return found


def resolve_region(region: str | None) -> str:
    if region:
        return check_region(region)
    return env_region() or DEFAULT_REGION


def env_region() -> str | None:
    """``$HUAWEICLOUD_SDK_REGION`` when set, checked (a typo is an error, on a simulator too), else None."""
    region = os.environ.get(ENV_REGION)
    return check_region(region, ENV_REGION) if region else None


def on_simulator(client: object | None) -> bool:
    """Whether a client talks to a simulator rather than a real account (False for None or an object without
    ``settings``, such as a test double)."""
    return bool(getattr(getattr(client, "settings", None), "is_simulator", False))
