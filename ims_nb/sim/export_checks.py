"""The server's own judgement of an export request, in the order the service applies it.

Written independently of the client's preflight rules (``ims_nb.rules``), so that a test comparing
the two is a real test. Where the reference names no code, the choice is recorded in ``CHOSEN``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ims_nb.sim.errors import SimError, ims_error

GiB = 1024**3
NORMAL_EXPORT_LIMIT = 128 * GiB  # larger images need fast export
SIZE_LIMIT = 1024 * GiB  # the image must be smaller than this
FILE_FORMATS = ("qcow2", "vhd", "zvhd", "vmdk")
RESTRICTED_PLATFORMS = ("Windows", "SUSE", "Red Hat", "RedHat", "Ubuntu", "Oracle Linux")
BODY_FIELDS = {"bucket_url", "file_format", "is_quick_export"}
MAX_BODY_BYTES = 64 * 1024

_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")  # matched whole (fullmatch): "$" would let a trailing newline through
_FILE_CHARS = re.compile(r"[A-Za-z0-9._ -]+")
_IP_FORM = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")  # OBS: not "formatted like" an IP address, valid or not

#: Codes the simulator uses where the reference found no documented one (kept in the README).
CHOSEN = {
    "restricted-os-origin": "IMG.0071",
    "size-1tb": "IMG.0071",
    "encrypted-fast-export": "IMG.0071",
    "format-with-fast-export": "IMG.0001",
    "bucket-not-standard": "IMG.0069",
    "bucket-region": "IMG.0058",
    "not-active": "IMG.0046",
}


@dataclass(frozen=True)
class ExportRequest:
    """A well-formed export body."""

    bucket: str
    key: str
    file_format: str | None
    quick: bool


def parse_body(raw: bytes) -> ExportRequest:
    """Decode and shape-check the body; every defect is an IMG.0001/0007/0017/0072 refusal."""
    if len(raw) > MAX_BODY_BYTES:
        raise ims_error("IMG.0001", f"The request body is too large ({len(raw)} bytes).")
    if not raw.strip():
        raise ims_error("IMG.0007", "The request body is empty.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting too deep
        raise ims_error("IMG.0001", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ims_error("IMG.0001", "The request body must be a JSON object.")
    unknown = sorted(set(body) - BODY_FIELDS)
    if unknown:
        raise ims_error("IMG.0001", f"Unknown field(s) in the request body: {', '.join(unknown)}.")
    bucket_url = body.get("bucket_url")
    if bucket_url is None:
        raise ims_error("IMG.0001", "bucket_url is mandatory.")
    if not isinstance(bucket_url, str):
        raise ims_error("IMG.0001", "bucket_url must be a string.")
    quick = body.get("is_quick_export", False)
    if not isinstance(quick, bool):
        raise ims_error("IMG.0001", "is_quick_export must be a boolean.")
    file_format = body.get("file_format")
    if file_format is not None and not isinstance(file_format, str):
        raise ims_error("IMG.0001", "file_format must be a string.")
    if quick and file_format is not None:
        raise ims_error(
            CHOSEN["format-with-fast-export"], "file_format cannot be specified when is_quick_export is true."
        )
    if not quick:
        if file_format is None:
            raise ims_error("IMG.0001", "file_format is mandatory unless is_quick_export is true.")
        if file_format not in FILE_FORMATS:
            raise ims_error(
                "IMG.0072", f"The file format {file_format!r} is not supported; use one of {', '.join(FILE_FORMATS)}."
            )
    bucket, key = _split_bucket_url(bucket_url)
    return ExportRequest(bucket, key, file_format, quick)


def _split_bucket_url(bucket_url: str) -> tuple[str, str]:
    if ":" not in bucket_url:
        raise ims_error("IMG.0017", f"bucket_url {bucket_url!r} is not in the format bucket:file.")
    bucket, key = bucket_url.split(":", 1)
    check_bucket_name(bucket)
    check_file_name(key)
    return bucket, key


def check_bucket_name(bucket: str) -> None:
    """OBS bucket naming rules (IMG.0068 empty, IMG.0109 otherwise)."""
    if not bucket:
        raise ims_error("IMG.0068", "The bucket name is empty.")
    problem = None
    if not 3 <= len(bucket) <= 63:
        problem = "must be 3 to 63 characters long"
    elif not _BUCKET_CHARS.fullmatch(bucket):
        problem = "may contain only lowercase letters, digits, '-' and '.'"
    elif bucket[0] in "-." or bucket[-1] in "-.":
        problem = "must start and end with a letter or digit"
    elif ".." in bucket or ".-" in bucket or "-." in bucket:
        problem = "must not contain '..', '.-' or '-.'"
    elif _IP_FORM.fullmatch(bucket):
        problem = "must not be formatted as an IP address"
    if problem:
        raise ims_error("IMG.0109", f"The bucket name {bucket!r} is invalid: it {problem}.")


def check_file_name(key: str) -> None:
    """IMS export file-name rules (IMG.0073/0074/0075/0175), applied per folder segment."""
    if not key or key.endswith("/"):
        raise ims_error("IMG.0073", "The export file name is empty.")
    if " " in key:
        raise ims_error("IMG.0175", f"The folder or file name {key!r} cannot contain spaces.")
    segments = key.split("/")
    if len(segments[-1]) > 128 or len(key) > 1023:
        raise ims_error("IMG.0074", "The export file name is too long (1 to 128 characters).")
    for segment in segments:
        if not segment or not _FILE_CHARS.fullmatch(segment):
            raise ims_error(
                "IMG.0075",
                f"The file name {key!r} is invalid: use letters, digits, '-', '.', '_' and '/' between folders.",
            )


def check_image(
    image: dict[str, Any] | None,
    image_id: str,
    project_id: str,
    request: ExportRequest,
    *,
    ubuntu_allowed: bool = False,
) -> None:
    """Refuse images the service will not export, with the service's code for each reason."""
    if image is None or image.get("status") == "deleted":
        raise ims_error("IMG.0027", f"The image {image_id} does not exist.")
    imagetype = image.get("__imagetype")
    if imagetype == "gold" or image.get("visibility") == "public" and imagetype != "market":
        raise ims_error("IMG.0077", "A public image cannot be exported.")
    if imagetype == "market":
        raise ims_error("IMG.0078", "A KooGallery image or a private image created from one cannot be exported.")
    if image.get("owner") != project_id:
        raise ims_error("IMG.0106", "The image belongs to another tenant; only its owner can export it.")
    if image.get("status") != "active":
        raise ims_error(CHOSEN["not-active"], f"The image is unavailable (status {image.get('status')}).")
    if image.get("__whole_image") is True:
        raise ims_error("IMG.0128", "A full-ECS image cannot be exported.")
    if image.get("virtual_env_type") == "IsoImage":
        raise ims_error("IMG.0167", "This operation cannot be performed for ISO images.")
    if image.get("__productcode"):
        raise ims_error("IMG.0078", "A KooGallery image or a private image created from one cannot be exported.")
    platform = image.get("__platform", "")
    derived = bool(image.get("__originalimagename"))
    if derived and platform in RESTRICTED_PLATFORMS and not (platform == "Ubuntu" and ubuntu_allowed):
        raise ims_error(
            CHOSEN["restricted-os-origin"],
            f"The image cannot be exported: it was created from a {platform} public image.",
        )
    size = int(image.get("__image_size") or 0)
    if size >= SIZE_LIMIT:
        raise ims_error(
            CHOSEN["size-1tb"], f"The image cannot be exported: its size ({size} bytes) must be less than 1 TB."
        )
    encrypted = bool(image.get("__system__cmkid"))
    if request.quick and encrypted:
        raise ims_error(
            CHOSEN["encrypted-fast-export"], "Fast export is unavailable for encrypted images; decrypt the image first."
        )
    if size > NORMAL_EXPORT_LIMIT and not request.quick:
        raise ims_error("IMG.0160", "Only images smaller than 128 GB can be exported normally; use fast export.")


def check_bucket(bucket: dict[str, Any] | None, name: str, region: str) -> None:
    """The target bucket must exist, be in the image's region and be of the Standard class."""
    if bucket is None:
        raise ims_error("IMG.0069", f"The OBS bucket {name} does not exist or is not accessible.")
    if bucket["location"] != region:
        raise ims_error(CHOSEN["bucket-region"], f"The OBS bucket {name} is in {bucket['location']}, not in {region}.")
    if bucket["storage_class"] != "STANDARD":
        raise ims_error(
            CHOSEN["bucket-not-standard"],
            f"The storage class of OBS bucket {name} is {bucket['storage_class']}; it must be STANDARD.",
        )


def already_exporting(image_id: str) -> SimError:
    return ims_error("IMG.0148", f"The image {image_id} is being exported.")


def object_exists(bucket: str, key: str) -> SimError:
    return ims_error("IMG.0070", f"The image file {key} already exists in the OBS bucket {bucket}.")


def no_obs_permission() -> SimError:
    return ims_error(
        "IMG.0026", "You do not have the OBS Tenant Administrator permission needed to export images.", status=403
    )
