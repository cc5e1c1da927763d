"""Pure OBS request-signing functions (esdk-obs-python ``obs.auth.Authentication``), in OBS and V2 modes."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote

#: Sub-resources that take part in the OBS canonical resource (the SDK's allow list, lower-cased).
OBS_SUB_RESOURCES = frozenset(
    [
        "acl",
        "backtosource",
        "policy",
        "torrent",
        "logging",
        "location",
        "storageinfo",
        "quota",
        "storageclass",
        "storagepolicy",
        "requestpayment",
        "versions",
        "versioning",
        "versionid",
        "uploads",
        "uploadid",
        "partnumber",
        "website",
        "notification",
        "dispolicy",
        "lifecycle",
        "deletebucket",
        "delete",
        "cors",
        "restore",
        "tagging",
        "replication",
        "metadata",
        "encryption",
        "publicaccessblock",
        "bucketstatus",
        "policystatus",
        "x-obs-accesslabel",
        "inventory",
        "obscompresspolicy",
        "object-lock",
        "retention",
        "directcoldaccess",
        "append",
        "position",
        "truncate",
        "modify",
        "rename",
        "length",
        "name",
        "fileinterface",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "x-image-save-bucket",
        "x-image-save-object",
        "x-image-process",
        "x-oss-process",
        "x-workflow-prefix",
        "x-workflow-start",
        "x-workflow-limit",
        "x-workflow-template-name",
        "x-workflow-graph-name",
        "x-workflow-execution-state",
        "x-workflow-execution-type",
        "x-workflow-next-marker",
        "obsworkflowtriggerpolicy",
        "obsbucketalias",
        "obsalias",
    ]
)
OBS_AUTH_PREFIX = {"obs": "OBS", "v2": "AWS"}
OBS_HEADER_PREFIX = {"obs": "x-obs-", "v2": "x-amz-"}


def obs_date(moment: datetime) -> str:
    """RFC 1123 ``Date`` header value in GMT."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def obs_canonical_resource(
    bucket: str,
    key: str,
    sub_resources: Mapping[str, str | None],
    *,
    path_style: bool,
    signature_type: str = "obs",
) -> str:
    """``/bucket[/]key?sub`` as the OBS SDK builds it (path style has no ``/`` after the bucket)."""
    resource = ""
    if bucket:
        resource = "/" + bucket + ("" if path_style else "/")
    if key:
        if not resource.endswith("/"):
            resource += "/"
        resource += quote(key, safe="/~")
    resource = resource or "/"
    interesting = sorted(
        (name, value)
        for name, value in sub_resources.items()
        if name.lower() in OBS_SUB_RESOURCES or name.lower().startswith(OBS_HEADER_PREFIX[signature_type])
    )
    if interesting:
        resource += "?" + "&".join(
            quote(name, safe="/") if value is None else f"{quote(name, safe='/')}={value}"
            for name, value in interesting
        )
    return resource


def obs_string_to_sign(
    method: str,
    headers: Mapping[str, str],
    resource: str,
    *,
    signature_type: str = "obs",
) -> str:
    """``VERB\\nContent-MD5\\nContent-Type\\nDate\\n`` + signed ``x-obs-*`` headers + resource."""
    prefix = OBS_HEADER_PREFIX[signature_type]
    lowered = {name.lower(): str(value) for name, value in headers.items()}
    date = "" if prefix + "date" in lowered else lowered.get("date", "")
    lines = [method.upper(), lowered.get("content-md5", ""), lowered.get("content-type", ""), date]
    extra = sorted(name for name in lowered if name.startswith(prefix))
    meta_prefix = prefix + "meta-"
    for name in extra:
        value = lowered[name].strip() if name.startswith(meta_prefix) else lowered[name]
        lines.append(f"{name}:{value}")
    return "\n".join(lines) + "\n" + resource


def obs_signature(secret_key: str, to_sign: str) -> str:
    """Base64 HMAC-SHA1 of the string to sign, keyed with the raw secret key."""
    digest = hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def obs_authorization(access_key: str, sig: str, *, signature_type: str = "obs") -> str:
    """``OBS AK:sig`` (or ``AWS AK:sig`` in V2 mode)."""
    return f"{OBS_AUTH_PREFIX[signature_type]} {access_key}:{sig}"
