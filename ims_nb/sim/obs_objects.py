"""OBS object requests: HEAD and GET (with ranges; a kept body, or zeros for an export's file), PUT and DELETE."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from starlette.responses import Response, StreamingResponse

from ims_nb.sim.backend import Bucket, SimBackend
from ims_nb.sim.errors import obs_error
from ims_nb.sim.store import BODY

#: The largest body a PUT object keeps (the simulator holds bodies in memory); beyond it, 400 EntityTooLarge.
MAX_OBJECT_BYTES = 5 * 1024 * 1024
CHUNK = 1 << 20
OCTETS = "binary/octet-stream"


def handle_object(
    backend: SimBackend, method: str, bucket: Bucket, key: str, headers: dict[str, str], body: bytes, request_id: str
) -> Response:
    """Answer a request on one object (the caller has authenticated it and checked write permission)."""
    if method == "PUT":
        return _put(backend, bucket, key, headers, body, request_id)
    if method == "DELETE":
        backend.delete_object(bucket.name, key)
        return Response(status_code=204, headers={"x-obs-request-id": request_id})
    found = backend.object_at(bucket.name, key)
    if found is None:
        raise obs_error(404, "NoSuchKey", "The specified key does not exist.")
    size = int(found["size"])
    answer = _object_headers(found, request_id)
    start, end = _byte_range(headers.get("range"), size)
    status = 206 if headers.get("range") else 200
    if status == 206:
        answer["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = end - start + 1 if size else 0
    answer["Content-Length"] = str(length)
    if method == "HEAD":  # the same headers as GET, Content-Type included
        return Response(status_code=status, headers=answer, media_type=OCTETS)
    kept = found.get(BODY)
    if kept is not None:
        return Response(kept[start : start + length], status_code=status, headers=answer, media_type=OCTETS)
    return StreamingResponse(_zeros(length), status_code=status, headers=answer, media_type=OCTETS)


def _put(
    backend: SimBackend, bucket: Bucket, key: str, headers: dict[str, str], body: bytes, request_id: str
) -> Response:
    if len(body) > MAX_OBJECT_BYTES:
        raise obs_error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
    given_md5 = headers.get("content-md5")
    if given_md5 is not None and given_md5 != base64.b64encode(hashlib.md5(body).digest()).decode():  # noqa: S324
        raise obs_error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
    stored = backend.put_object(bucket.name, key, body)
    return Response(status_code=200, headers={"ETag": f'"{stored["etag"]}"', "x-obs-request-id": request_id})


def _object_headers(found: dict[str, Any], request_id: str) -> dict[str, str]:
    return {
        "ETag": f'"{found["etag"]}"',
        "Last-Modified": http_time(found["created"]),
        "Accept-Ranges": "bytes",
        "x-obs-request-id": request_id,
    }


def _byte_range(header: str | None, size: int) -> tuple[int, int]:
    if not header:
        return 0, max(size - 1, 0)
    try:
        unit, _, spec = header.partition("=")
        first, _, last = spec.partition("-")
        if unit.strip() != "bytes" or "," in spec:
            raise ValueError
        if first == "":
            start, end = max(size - int(last), 0), size - 1
        else:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        if start > end or start >= size:
            raise ValueError
    except ValueError:
        raise obs_error(416, "InvalidRange", "The requested range is not satisfiable.") from None
    return start, end


async def _zeros(length: int) -> AsyncIterator[bytes]:
    block = bytes(CHUNK)
    while length > 0:
        step = min(length, CHUNK)
        yield block[:step]
        length -= step


def http_time(iso: str) -> str:
    """RFC 1123 (``Wed, 01 Jul 2015 01:19:21 GMT``) from the simulator's ISO seconds."""
    moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return format_datetime(moment, usegmt=True)
