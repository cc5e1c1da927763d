"""Pure request-signing functions: Huawei APIG SDK-HMAC-SHA256, and the OBS signature re-exported from signing_obs."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from ims_nb.signing_obs import OBS_AUTH_PREFIX as OBS_AUTH_PREFIX
from ims_nb.signing_obs import OBS_HEADER_PREFIX as OBS_HEADER_PREFIX
from ims_nb.signing_obs import OBS_SUB_RESOURCES as OBS_SUB_RESOURCES
from ims_nb.signing_obs import obs_authorization as obs_authorization
from ims_nb.signing_obs import obs_canonical_resource as obs_canonical_resource
from ims_nb.signing_obs import obs_date as obs_date
from ims_nb.signing_obs import obs_signature as obs_signature
from ims_nb.signing_obs import obs_string_to_sign as obs_string_to_sign

ALGORITHM = "SDK-HMAC-SHA256"
SDK_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

QueryValue = str | int | float | bool | None
QueryItems = Iterable[tuple[str, QueryValue]]


def _encode(value: str) -> str:
    """RFC 3986 percent-encoding, as the SDK does it (only ``~`` and unreserved kept)."""
    return quote(value, safe="~")


def _query_text(value: QueryValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def format_sdk_date(moment: datetime) -> str:
    """Format a moment as ``X-Sdk-Date`` (UTC, ``YYYYMMDDTHHMMSSZ``)."""
    return moment.astimezone(UTC).strftime(SDK_DATE_FORMAT)


def parse_sdk_date(text: str) -> datetime:
    """Parse an ``X-Sdk-Date`` value; raises ``ValueError`` when it is not in the SDK format."""
    return datetime.strptime(text, SDK_DATE_FORMAT).replace(tzinfo=UTC)


def canonical_uri(path: str) -> str:
    """Canonical URI: each segment decoded then RFC 3986-encoded, always ending with ``/``."""
    segments = [_encode(unquote(segment)) for segment in path.split("/")]
    uri = "/".join(segments) or "/"
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(items: QueryItems, *, sort_encoded: bool = False) -> str:
    """Canonical query: pairs sorted by key then value and RFC 3986-encoded, joined with ``&``.

    The official SDK sorts the pairs before encoding them (the default); ``sort_encoded`` sorts
    the encoded pairs instead, as the APIG signing guide describes. The two differ only when a
    name or value holds characters that get percent-encoded.
    """
    texts = [(key, _query_text(value)) for key, value in items]
    if sort_encoded:
        pairs = sorted((_encode(key), _encode(value)) for key, value in texts)
    else:
        pairs = [(_encode(key), _encode(value)) for key, value in sorted(texts)]
    return "&".join(f"{key}={value}" for key, value in pairs)


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Split a raw query string into decoded pairs, keeping repeats and blank values."""
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Names the SDK signs: every header whose name has no ``_``, lower-cased and sorted."""
    return sorted({name.lower() for name in headers if "_" not in name})


def canonical_headers(headers: Mapping[str, str], names: Sequence[str]) -> str:
    """The ``name:value\\n`` block for the signed header names (values trimmed)."""
    lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
    return "".join(f"{name}:{lowered.get(name, '')}\n" for name in names)


def payload_hash(body: bytes | None, headers: Mapping[str, str] | None = None) -> str:
    """Hex SHA-256 of the body, or ``UNSIGNED-PAYLOAD`` when the request says so."""
    for name, value in (headers or {}).items():
        if name.lower() == "x-sdk-content-sha256" and value == UNSIGNED_PAYLOAD:
            return UNSIGNED_PAYLOAD
    return hashlib.sha256(body or b"").hexdigest()


def canonical_request(
    method: str,
    path: str,
    query: QueryItems,
    headers: Mapping[str, str],
    names: Sequence[str],
    body_hash: str,
    *,
    sort_encoded: bool = False,
) -> str:
    """The six-line canonical request that is hashed into the string to sign."""
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query, sort_encoded=sort_encoded),
            canonical_headers(headers, names),
            ";".join(names),
            body_hash,
        ]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    """``SDK-HMAC-SHA256\\n<date>\\n<hex sha256(canonical request)>``."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(secret_key: str, to_sign: str) -> str:
    """Lower-case hex HMAC-SHA256 keyed with the raw secret key (no key derivation)."""
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(access_key: str, names: Sequence[str], sig: str) -> str:
    """The ``Authorization`` header value."""
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(names)}, Signature={sig}"


@dataclass(frozen=True)
class ParsedAuthorization:
    """The three fields of an SDK-HMAC-SHA256 ``Authorization`` header."""

    access_key: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization:
    """Parse an ``Authorization`` header; raises ``ValueError`` naming what is malformed."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            raise ValueError(f"malformed Authorization field {part.strip()!r}")
        fields[key] = val
    missing = [key for key in ("Access", "SignedHeaders", "Signature") if not fields.get(key)]
    if missing:
        raise ValueError(f"Authorization lacks {', '.join(missing)}")
    names = tuple(fields["SignedHeaders"].split(";"))
    return ParsedAuthorization(fields["Access"], names, fields["Signature"])


def sign_request(
    *,
    access_key: str,
    secret_key: str,
    method: str,
    path: str,
    query: QueryItems,
    headers: Mapping[str, str],
    body: bytes | None,
) -> str:
    """Authorization value for a request whose headers already hold ``Host`` and ``X-Sdk-Date``."""
    sdk_date = next((v for k, v in headers.items() if k.lower() == "x-sdk-date"), None)
    if sdk_date is None:
        raise ValueError("headers must contain X-Sdk-Date before signing")
    names = signed_header_names(headers)
    canonical = canonical_request(method, path, query, headers, names, payload_hash(body, headers))
    return authorization(access_key, names, signature(secret_key, string_to_sign(canonical, sdk_date)))
