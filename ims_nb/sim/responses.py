"""Rendering: JSON and XML bodies, and every refusal in its service's own error shape."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any
from xml.sax.saxutils import escape as _escape

from starlette.responses import Response

from ims_nb.sim.errors import Shape, SimError

OBS_XMLNS = "http://obs.myhwclouds.com/doc/2015-06-30/"
S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
_request_numbers = itertools.count(1)
#: Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def escape(text: str) -> str:
    """XML-escape text a request supplied; characters XML cannot hold become U+FFFD, so bodies stay well-formed."""
    return _escape(_NOT_XML.sub("\ufffd", text))


def new_request_id() -> str:
    """32 hex characters, as the gateway's ``X-Request-Id``."""
    return f"{next(_request_numbers):032x}"


def dumps(body: Any) -> bytes | str:
    """A JSON body, compact: orjson where it can (a 1,000-image page is the simulator's largest CPU cost, and it
    serialises about five times as fast; the simulator stands in for a cloud, whose CPU is not the client's), else
    the standard library (an object orjson refuses, or an install without it)."""
    try:
        from orjson import dumps as fast
    except ImportError:  # orjson is a dependency; an install without it still works, slower
        return json.dumps(body, separators=(",", ":"))
    try:
        return fast(body)
    except TypeError:  # e.g. an integer beyond 64 bits, or a key that is no string
        return json.dumps(body, separators=(",", ":"))


def json_response(
    body: Any, status: int = 200, request_id: str = "", headers: dict[str, str] | None = None
) -> Response:
    merged = {"X-Request-Id": request_id, **(headers or {})}
    return Response(dumps(body), status_code=status, media_type="application/json;charset=UTF-8", headers=merged)


def xml_response(
    body: str, status: int = 200, request_id: str = "", headers: dict[str, str] | None = None, *, head: bool = False
) -> Response:
    merged = {"x-obs-request-id": request_id, "x-obs-id-2": request_id, **(headers or {})}
    document = "" if head else '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + body
    return Response(document, status_code=status, media_type="application/xml", headers=merged)


def error_response(error: SimError, request_id: str, *, head: bool = False) -> Response:
    """The refusal in the shape of the service that raised it."""
    if error.shape is Shape.OBS:
        xml = (
            f"<Error><Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        )
        return xml_response(xml, error.status, request_id, {"x-obs-error-code": error.code}, head=head)
    if error.shape is Shape.GATEWAY:
        body: dict[str, Any] = {"error_msg": error.message, "error_code": error.code, "request_id": request_id}
    elif error.shape is Shape.IAM:
        body = {"error": {"code": error.status, "message": error.message, "title": _iam_title(error.status)}}
    else:
        body = {"error": {"message": error.message, "code": error.code}}
    return json_response(body, error.status, request_id)


def _iam_title(status: int) -> str:
    return {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}.get(status, "Error")
