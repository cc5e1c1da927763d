"""``ims_nb.connect()``: resolve region, endpoints and credentials (or a simulator) into a client."""

from __future__ import annotations

import logging
import os
import ssl
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from ims_nb.client import config
from ims_nb.client.aio import AsyncImsClient
from ims_nb.client.base import DEFAULT_TIMEOUT, ClientSettings
from ims_nb.client.config import Credentials, Endpoints, Password
from ims_nb.client.retry import RetryPolicy
from ims_nb.client.sync import ImsClient
from ims_nb.errors import ConfigError, InsecureTransportWarning, SimulatorWarning

log = logging.getLogger("ims_nb")
#: How the warning (and log line) of ``insecure=True`` starts.
INSECURE_PREFIX = "INSECURE"


def _settings(
    region: str | None,
    ak: str | None,
    sk: str | None,
    project_id: str | None,
    security_token: str | None,
    endpoint: str | None,
    username: str | None,
    password: str | None,
    domain: str | None,
    options: dict[str, Any],
) -> ClientSettings:
    simulator = checked_simulator_options(options.pop("simulator", None))
    extra, insecure = transport_settings(options)
    if username or password:
        if not (username and password and domain):
            raise ConfigError("a password login needs username, password and domain")
        if ak or sk:
            raise ConfigError("give either ak/sk or a password login, not both")
        region = config.resolve_region(region)
        endpoints = Endpoints.override(endpoint, insecure=insecure) if endpoint else Endpoints.for_region(region)
        return ClientSettings(region, endpoints, password=Password(username, password, domain), **extra)
    credentials = config.resolve_credentials(ak, sk, project_id, security_token)
    if credentials is not None:
        region = config.resolve_region(region)
        endpoints = Endpoints.override(endpoint, insecure=insecure) if endpoint else Endpoints.for_region(region)
        return ClientSettings(region, endpoints, credentials, **extra)
    return _simulator_settings(region, endpoint, extra, simulator, insecure)


def transport_settings(options: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(the ``ClientSettings`` fields every connection takes, insecure) from ``options``; none may be left over."""
    timeout = options.pop("timeout", DEFAULT_TIMEOUT)
    verify, insecure = _tls_verification(options)
    extra: dict[str, Any] = {
        "timeout": timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        "retry": options.pop("retry", None) or RetryPolicy(),
        "transport": _checked_transport(options.pop("transport", None), insecure),
        "verify": verify,
        "signing_clock": _signing_clock(options.pop("signing_clock", None)),
    }
    if "page_size" in options:
        extra["page_size"] = options.pop("page_size")
    if options:
        raise ConfigError(f"unknown option(s): {', '.join(sorted(options))}")
    return extra, insecure


#: Why ``verify`` is no option: certificate checks are turned off in one visible way only.
NO_VERIFY_OPTION = (
    "verify is not an option: TLS certificates are always verified; give ca_bundle=PATH to trust a private CA, "
    "or insecure=True to turn verification off (with an InsecureTransportWarning)"
)


def _tls_verification(options: dict[str, Any]) -> tuple[ssl.SSLContext | bool, bool]:
    """(what httpx verifies with, insecure) from the ``insecure`` and ``ca_bundle`` options."""
    if "verify" in options:
        raise ConfigError(NO_VERIFY_OPTION)
    insecure = options.pop("insecure", False)
    ca_bundle = options.pop("ca_bundle", None)
    if not isinstance(insecure, bool):
        raise ConfigError(f"insecure must be True or False, not {insecure!r}")
    if insecure and ca_bundle is not None:
        raise ConfigError("give ca_bundle (verification with your CA) or insecure=True (no verification), not both")
    if insecure:
        return False, True
    return (True if ca_bundle is None else _ca_context(ca_bundle)), False


def _ca_context(ca_bundle: Any) -> ssl.SSLContext:
    """An SSL context that verifies certificates (and host names) against the PEM bundle at ``ca_bundle``."""
    if not isinstance(ca_bundle, str | os.PathLike) or not str(ca_bundle):
        raise ConfigError(f"ca_bundle must be the path of a PEM file, not {ca_bundle!r}")
    path = Path(ca_bundle)
    if not path.is_file():
        raise ConfigError(f"ca_bundle {str(path)!r} is not a file")
    try:
        return ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"ca_bundle {str(path)!r} holds no usable CA certificate ({type(exc).__name__})") from None


def _checked_transport(transport: Any, insecure: bool) -> Any:
    """A transport given by the caller, unless it is an httpx one that skips certificate checks (without insecure)."""
    if transport is None or insecure or not isinstance(transport, httpx.HTTPTransport | httpx.AsyncHTTPTransport):
        return transport
    context = getattr(getattr(transport, "_pool", None), "_ssl_context", None)
    if isinstance(context, ssl.SSLContext) and (context.verify_mode == ssl.CERT_NONE or not context.check_hostname):
        raise ConfigError("the transport given does not verify TLS certificates: " + NO_VERIFY_OPTION.split(": ", 1)[1])
    return transport


def _signing_clock(clock: Any) -> Any:
    if clock is not None and not callable(clock):
        raise ConfigError(f"signing_clock must return the current time (a datetime), not be {clock!r}")
    return clock


def _warn_insecure(settings: ClientSettings) -> None:
    """The one warning (and log line) of ``insecure=True``: what it exposes with these endpoints."""
    endpoints = settings.endpoints
    remote = endpoints.plain_remote_hosts
    tls = sorted({url for url in (endpoints.ims, endpoints.iam, endpoints.obs) if url.startswith("https://")})
    if remote:
        what = f"plain HTTP to {', '.join(remote)}: requests, signatures and answers cross the network in the clear"
    elif tls:
        what = f"the TLS certificates of {', '.join(tls)} are not verified: anyone on the way can read and change "
        what += "the requests"
    else:
        what = (
            "TLS certificates would not be verified (these endpoints are plain HTTP to loopback, which needs no flag)"
        )
    message = f"{INSECURE_PREFIX} (insecure=True): {what}"
    warnings.warn(message, InsecureTransportWarning, stacklevel=3)
    log.warning("%s", message)


#: What ``connect(simulator={...})`` may set for an embedded simulator it starts.
SIMULATOR_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "seed": int,
    "images": int,
    "time_scale": (int, float),
    "manual_clock": bool,
}


#: The fastest clock the simulator keeps representable (its control plane's own bound).
MAX_TIME_SCALE = 1e6


def checked_simulator_options(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ConfigError(f"simulator must be a dict of {', '.join(SIMULATOR_OPTIONS)}, not {type(options).__name__}")
    unknown = sorted(set(options) - set(SIMULATOR_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown simulator option(s): {', '.join(unknown)} (known: {', '.join(SIMULATOR_OPTIONS)})")
    for name, value in options.items():
        kind = SIMULATOR_OPTIONS[name]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ConfigError(f"simulator option {name} has the wrong type: {value!r}")
    scale = options.get("time_scale", 1.0)
    if not 0 < scale <= MAX_TIME_SCALE:  # NaN fails too
        raise ConfigError(f"simulator option time_scale must be above 0 and at most {MAX_TIME_SCALE:g}, not {scale!r}")
    for name in ("seed", "images"):
        if options.get(name, 0) < 0:
            raise ConfigError(f"simulator option {name} must not be negative, not {options[name]!r}")
    return dict(options)


def _simulator_settings(
    region: str | None, endpoint: str | None, extra: dict[str, Any], options: dict[str, Any], insecure: bool = False
) -> ClientSettings:
    """No credentials anywhere: the simulator ``make lab`` started, or a new embedded one."""
    if endpoint:
        raise ConfigError(f"endpoint {endpoint!r} was given without credentials (ak/sk or a password login)")
    if region is not None:
        config.check_region(region)
    else:
        config.env_region()  # the simulator plays its own region, but a mistyped one is still a mistake
    line = config.simulator_line()
    simulator = None
    if line is None:
        from ims_nb.sim import Simulator

        try:
            simulator = Simulator(**{"seed": 0, **options, "region": region or config.DEFAULT_REGION}).start()
        except ValueError as exc:
            raise ConfigError(f"the simulator could not start: {exc}") from None
        line = simulator.info.as_json_dict()
    if region and region != line["region"]:
        raise ConfigError(f"the simulator plays region {line['region']!r}, not {region!r}")
    message = (
        f"SIMULATOR: no credentials configured (arguments, {config.ENV_AK}/{config.ENV_SK}, or the SDK "
        f"credentials file); using the simulator at {line['endpoint']}"
    )
    warnings.warn(message, SimulatorWarning, stacklevel=4)
    log.info("%s", message)  # the warning is the one notice a kernel shows; the log keeps a quiet record
    settings = _simulator_line_settings(line, extra, insecure, simulator)
    settings.announced = True  # so the client does not say it again as a WARNING log line
    return settings


def _simulator_line_settings(
    line: dict[str, str], extra: dict[str, Any], insecure: bool, simulator: Any = None
) -> ClientSettings:
    """The settings of a connection to a simulator from its info: flagged as a simulator, once, here."""
    credentials = Credentials(line["ak"], line["sk"], line["project_id"], None, config.SOURCE_SIMULATOR)
    endpoints = Endpoints.override(line["endpoint"], insecure=insecure)
    return ClientSettings(line["region"], endpoints, credentials, simulator=simulator, is_simulator=True, **extra)


def connect_simulator(info: Mapping[str, Any], **options: Any) -> ImsClient:
    """A client of a running simulator, from the info its ``ims-nb sim`` line holds.

    The client knows it talks to a simulator (``settings.is_simulator``): the simulator's strict rules, its
    clock's pacing and a simulator ledger apply, as they do to the embedded simulator and ``$IMS_NB_SIM``.

    Args:
        info: ``endpoint``, ``region``, ``project_id``, ``ak`` and ``sk`` (the JSON line, parsed).
        **options: the transport options of ``connect`` (``timeout``, ``retry``, ``transport``, ``page_size``,
            ``ca_bundle``, ``insecure``, ``signing_clock``).

    Raises:
        ConfigError: ``info`` lacks a field, or an option is unknown or wrong.
    """
    line = config.simulator_info(info, "the simulator info")
    extra, insecure = transport_settings(dict(options))
    settings = _simulator_line_settings(line, extra, insecure)
    if settings.verify is False:
        _warn_insecure(settings)
    return ImsClient(settings)


def connect(
    region: str | None = None,
    *,
    ak: str | None = None,
    sk: str | None = None,
    project_id: str | None = None,
    security_token: str | None = None,
    endpoint: str | None = None,
    username: str | None = None,
    password: str | None = None,
    domain: str | None = None,
    **options: Any,
) -> ImsClient:
    """A synchronous client.

    Credentials come from the arguments, else the official SDK's environment variables
    (``HUAWEICLOUD_SDK_AK``/``_SK``/``_PROJECT_ID``/``_SECURITY_TOKEN``), else its credentials file,
    else the embedded simulator (with a ``SimulatorWarning``). ``username``/``password``/``domain`` log
    in through IAM instead. ``endpoint`` replaces the regional IMS, IAM and OBS endpoints with one URL.

    Args:
        region: a region id (default ``$HUAWEICLOUD_SDK_REGION`` or cn-north-4).
        **options: ``timeout`` (seconds or ``httpx.Timeout``), ``retry`` (``RetryPolicy``),
            ``transport`` (an httpx transport), ``page_size`` (1-1000), ``simulator`` (a dict of ``seed``,
            ``images``, ``time_scale``, ``manual_clock`` for the embedded simulator started when no credentials
            and no ``$IMS_NB_SIM`` are found; ignored otherwise), ``ca_bundle`` (a PEM file of the CAs to trust
            instead of the public ones: a private deployment), ``insecure`` (True: no certificate verification,
            and plain HTTP allowed to any host, with an ``InsecureTransportWarning``), ``signing_clock`` (returns
            the UTC ``datetime`` signatures are made at; tests use it to play a skewed clock).

    Raises:
        ConfigError: an unknown region, half a credential pair, a bad endpoint (plain HTTP to a host that is not
            loopback, without ``insecure=True``), an unknown option (``verify`` among them).
    """
    settings = _settings(region, ak, sk, project_id, security_token, endpoint, username, password, domain, options)
    if settings.verify is False:
        _warn_insecure(settings)
    return ImsClient(settings)


def connect_async(
    region: str | None = None,
    *,
    ak: str | None = None,
    sk: str | None = None,
    project_id: str | None = None,
    security_token: str | None = None,
    endpoint: str | None = None,
    username: str | None = None,
    password: str | None = None,
    domain: str | None = None,
    **options: Any,
) -> AsyncImsClient:
    """An asynchronous client; the same arguments as ``connect``."""
    settings = _settings(region, ak, sk, project_id, security_token, endpoint, username, password, domain, options)
    if settings.verify is False:
        _warn_insecure(settings)
    return AsyncImsClient(settings)
