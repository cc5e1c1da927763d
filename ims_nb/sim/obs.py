"""OBS endpoints (path style, and virtual-host style by Host header): buckets, metadata and objects.

Requests are signed ``OBS AK:sig`` (OBS mode) or ``AWS AK:sig`` (V2 mode, which esdk-obs-python
uses with path-style or IP endpoints); answers use the matching header prefix and XML flavour.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.responses import Response

from ims_nb import signing
from ims_nb.sim.backend import Bucket, Signer, SimBackend
from ims_nb.sim.errors import SimError, obs_error
from ims_nb.sim.obs_objects import handle_object
from ims_nb.sim.responses import OBS_XMLNS, S3_XMLNS, error_response, escape, xml_response

MAX_SKEW_SECONDS = 15 * 60
V2_CLASS_NAMES = {"WARM": "STANDARD_IA", "COLD": "GLACIER"}
MAX_KEYS = 1000  # the default page, and the most one page holds (a larger max-keys gets this many)
WRITE_METHODS = ("PUT", "DELETE")


@dataclass(frozen=True)
class ObsRequest:
    method: str
    bucket: str
    key: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    path_style: bool
    request_id: str
    body: bytes = b""

    @property
    def sub_resources(self) -> dict[str, str | None]:
        return {name: (value or None) for name, value in self.query}


def split_target(path: str, host: str, buckets: dict[str, Bucket]) -> tuple[str, str, bool]:
    """(bucket, key, path_style) from the decoded path and the Host header."""
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    for name in buckets:
        if hostname.startswith(name + ".") and hostname != name:
            return name, path.lstrip("/"), False
    labels = hostname.split(".")
    if "obs" in labels[1:]:  # <bucket>.obs.<region>...: virtual-host style naming a bucket that does not exist
        return ".".join(labels[: labels.index("obs", 1)]), path.lstrip("/"), False
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key, True


def _signature_type(authorization: str) -> str:
    return "obs" if authorization.startswith("OBS ") else "v2"


def authenticate(backend: SimBackend, request: ObsRequest, real_now: float) -> tuple[str, Signer]:
    """The signature mode (``obs`` or ``v2``) and signer of a correctly signed request, or an OBS refusal."""
    authorization = request.headers.get("authorization", "")
    if not authorization.startswith(("OBS ", "AWS ")):
        raise obs_error(403, "AccessDenied", "Anonymous access is not allowed; sign the request.")
    mode = _signature_type(authorization)
    access_key, _, given = authorization[4:].partition(":")
    security_token = request.headers.get(signing.OBS_HEADER_PREFIX[mode] + "security-token")
    signer = backend.signer(access_key, security_token, real_now)
    if signer is None:
        raise obs_error(403, "InvalidAccessKeyId", "The access key Id you provided does not exist in our records.")
    if signer.problem is not None:  # missing, not this AK's, or expired: OBS says the same for all three
        raise obs_error(403, "InvalidAccessKeyId", "The security token is invalid.")
    date_header = request.headers.get(signing.OBS_HEADER_PREFIX[mode] + "date") or request.headers.get("date")
    try:
        signed_at = parsedate_to_datetime(date_header or "").timestamp()
    except (TypeError, ValueError, OverflowError):  # OverflowError: a year beyond what a timestamp holds
        raise obs_error(403, "AccessDenied", "The request has no valid Date header.") from None
    if abs(real_now - signed_at) > MAX_SKEW_SECONDS:
        raise obs_error(
            403, "RequestTimeTooSkewed", "The difference between the request time and the server's time is too large."
        )
    resource = signing.obs_canonical_resource(
        request.bucket, request.key, request.sub_resources, path_style=request.path_style, signature_type=mode
    )
    to_sign = signing.obs_string_to_sign(request.method, request.headers, resource, signature_type=mode)
    if not hmac.compare_digest(signing.obs_signature(signer.secret_key, to_sign), given):
        raise obs_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    return mode, signer


def handle(backend: SimBackend, request: ObsRequest, real_now: float) -> Response:
    """Answer one OBS request; errors are OBS XML (no body for HEAD)."""
    head = request.method == "HEAD"
    try:
        if "apiversion" in request.sub_resources and head:
            if request.bucket and request.bucket not in backend.buckets:
                raise obs_error(404, "NoSuchBucket", "The specified bucket does not exist")
            return Response(status_code=200, headers={"x-obs-api": "3.0", "x-obs-request-id": request.request_id})
        mode, signer = authenticate(backend, request, real_now)
        if not request.bucket:
            if request.method != "GET":
                raise _not_allowed()
            return _list_buckets(backend, request, mode)
        bucket = backend.buckets.get(request.bucket)
        if bucket is None:
            raise obs_error(404, "NoSuchBucket", "The specified bucket does not exist")
        if request.key:
            if request.method not in ("HEAD", "GET", *WRITE_METHODS) or (request.method == "PUT" and request.query):
                raise _not_allowed()  # PUT ?acl, ?tagging and the like are not modelled
            if request.method in WRITE_METHODS and not signer.account.obs_write:
                raise obs_error(403, "AccessDenied", "Access Denied")
            return handle_object(
                backend, request.method, bucket, request.key, request.headers, request.body, request.request_id
            )
        return _bucket(backend, request, bucket, mode)
    except SimError as error:
        return error_response(error, request.request_id, head=head)


def _not_allowed() -> SimError:
    return obs_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")


def _prefix(mode: str) -> str:
    return signing.OBS_HEADER_PREFIX[mode]


def _xmlns(mode: str) -> str:
    return OBS_XMLNS if mode == "obs" else S3_XMLNS


def _list_buckets(backend: SimBackend, request: ObsRequest, mode: str) -> Response:
    entries = "".join(
        f"<Bucket><Name>{b.name}</Name><CreationDate>{_obs_time(b.created)}</CreationDate>"
        f"<Location>{b.location}</Location><BucketType>OBJECT</BucketType></Bucket>"
        for b in sorted(backend.buckets.values(), key=lambda b: b.name)
    )
    owner = f"<Owner><ID>{backend.domain_id}</ID><DisplayName>{backend.domain_name}</DisplayName></Owner>"
    body = (
        f'<ListAllMyBucketsResult xmlns="{_xmlns(mode)}">{owner}<Buckets>{entries}</Buckets></ListAllMyBucketsResult>'
    )
    return xml_response(body, request_id=request.request_id)


def _bucket(backend: SimBackend, request: ObsRequest, bucket: Bucket, mode: str) -> Response:
    subs = {name.lower() for name in request.sub_resources}
    rid = request.request_id
    if request.method == "HEAD" and not subs:
        headers = {_prefix(mode) + "version": "3.0", "x-obs-version": "3.0"}
        if mode == "obs":
            headers["x-obs-bucket-location"] = bucket.location
            if bucket.storage_class != "STANDARD":  # Standard buckets carry no storage-class header
                headers["x-obs-storage-class"] = bucket.storage_class
        else:
            headers["x-amz-bucket-region"] = bucket.location
            if bucket.storage_class != "STANDARD":
                headers["x-default-storage-class"] = V2_CLASS_NAMES.get(bucket.storage_class, bucket.storage_class)
        return xml_response("", request_id=rid, headers=headers, head=True)
    if request.method != "GET":
        raise _not_allowed()
    if subs == {"location"}:
        if mode == "obs":
            return xml_response(f'<Location xmlns="{OBS_XMLNS}">{bucket.location}</Location>', request_id=rid)
        body = (
            f'<CreateBucketConfiguration xmlns="{S3_XMLNS}">'
            f"<LocationConstraint>{bucket.location}</LocationConstraint></CreateBucketConfiguration>"
        )
        return xml_response(body, request_id=rid)
    if subs in ({"storageclass"}, {"storagepolicy"}):
        if mode == "obs":
            return xml_response(
                f'<StorageClass xmlns="{OBS_XMLNS}">{bucket.storage_class}</StorageClass>', request_id=rid
            )
        name = V2_CLASS_NAMES.get(bucket.storage_class, bucket.storage_class)
        body = f'<StoragePolicy xmlns="{S3_XMLNS}"><DefaultStorageClass>{name}</DefaultStorageClass></StoragePolicy>'
        return xml_response(body, request_id=rid)
    if subs - {"prefix", "marker", "max-keys", "delimiter", "encoding-type"}:
        raise obs_error(400, "InvalidArgument", f"Unsupported sub-resource(s): {', '.join(sorted(subs))}.")
    return _list_objects(backend, request, bucket, mode)


def _max_keys(text: str | None) -> int:
    """max-keys as OBS reads it: 1000 when absent, at most 1000; anything but a positive integer is refused."""
    try:
        max_keys = int(text if text is not None else MAX_KEYS)
        if max_keys < 1:
            raise ValueError
    except ValueError:
        raise obs_error(400, "InvalidArgument", "max-keys must be a positive integer.") from None
    return min(max_keys, MAX_KEYS)


def _entries(
    objects: list[dict[str, Any]], prefix: str, marker: str, delimiter: str
) -> list[tuple[str, dict[str, Any] | None]]:
    """(key, object) or (common prefix, None) after ``marker`` (exclusive), in key order."""
    entries: list[tuple[str, dict[str, Any] | None]] = []
    for o in objects:
        if not o["key"].startswith(prefix) or o["key"] <= marker:
            continue
        rest = o["key"][len(prefix) :]
        if delimiter and delimiter in rest:  # rolled up into a CommonPrefixes entry, listed once
            common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if common > marker and (not entries or entries[-1][0] != common):
                entries.append((common, None))
            continue
        entries.append((o["key"], o))
    return entries


def _list_objects(backend: SimBackend, request: ObsRequest, bucket: Bucket, mode: str) -> Response:
    query = dict(request.query)
    prefix, marker, delimiter = query.get("prefix", ""), query.get("marker", ""), query.get("delimiter", "")
    max_keys = _max_keys(query.get("max-keys"))
    entries = _entries(backend.list_objects(bucket.name), prefix, marker, delimiter)
    shown, truncated = entries[:max_keys], len(entries) > max_keys
    storage_class = bucket.storage_class  # in V2 mode, under its S3 name
    owner = f"<ID>{backend.domain_id}</ID>"
    if mode == "v2":
        storage_class = V2_CLASS_NAMES.get(storage_class, storage_class)
        owner += f"<DisplayName>{backend.domain_name}</DisplayName>"
    contents = "".join(
        f"<Contents><Key>{escape(o['key'])}</Key><LastModified>{_obs_time(o['created'])}</LastModified>"
        f'<ETag>"{o["etag"]}"</ETag><Size>{o["size"]}</Size><Owner>{owner}</Owner>'
        f"<StorageClass>{storage_class}</StorageClass></Contents>"
        if o is not None
        else f"<CommonPrefixes><Prefix>{escape(name)}</Prefix></CommonPrefixes>"
        for name, o in shown
    )
    next_marker = f"<NextMarker>{escape(shown[-1][0])}</NextMarker>" if truncated and shown else ""
    delimiter_xml = f"<Delimiter>{escape(delimiter)}</Delimiter>" if delimiter else ""
    body = (
        f'<ListBucketResult xmlns="{_xmlns(mode)}"><Name>{bucket.name}</Name><Prefix>{escape(prefix)}</Prefix>'
        f"<Marker>{escape(marker)}</Marker>{next_marker}<MaxKeys>{max_keys}</MaxKeys>{delimiter_xml}"
        f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{contents}</ListBucketResult>"
    )
    return xml_response(body, request_id=request.request_id)


def _obs_time(iso: str) -> str:
    return iso.replace("Z", ".000Z")


def describe_bucket(bucket: Bucket) -> dict[str, Any]:
    return {"name": bucket.name, "location": bucket.location, "storage_class": bucket.storage_class}
