"""Answers from IMS, IAM and OBS read into values: JSON bodies, API errors, images pages, job ids, tokens (no I/O)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import httpx

from ims_nb.errors import ApiError, ConfigError, MalformedAnswerError, TransportError, api_error, register_secrets

T = TypeVar("T")


def loads(content: bytes) -> Any:
    """A JSON answer's body as Python values: orjson when it is installed (listing pages are the client's largest
    CPU cost, and orjson decodes them about three times as fast), else the standard library; both raise a
    ``ValueError`` on a body that is not JSON."""
    return _DECODE(content)


def _decoder() -> Callable[[bytes], Any]:
    try:
        from orjson import loads as fast
    except ImportError:  # orjson is a dependency; an install without it still works, slower
        return json.loads
    return fast


_DECODE = _decoder()


def check(response: httpx.Response) -> httpx.Response:
    """Return a successful answer; raise the matching ``ApiError`` for any other."""
    if response.is_success:
        return response
    raise error_for(response)


def error_for(response: httpx.Response) -> ApiError:
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            body = _xml_error(response.content)
    headers = response.headers
    if body is None and "x-obs-error-code" in headers:  # OBS answers HEAD (and some errors) without a body
        body = {"code": headers["x-obs-error-code"], "message": headers.get("x-obs-error-message", "")}
    request = response.request
    return api_error(
        response.status_code,
        body,
        response.text,
        headers.get("X-Request-Id") or headers.get("x-obs-request-id"),
        method=request.method,
        url=str(request.url.copy_with(query=None)),
    )


def _xml_error(content: bytes) -> dict[str, str] | None:
    """OBS errors: ``<Error><Code>NoSuchBucket</Code><Message>...</Message></Error>``."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return None
    fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in root}
    return {"code": fields["Code"], "message": fields.get("Message", "")} if "Code" in fields else None


def json_body(response: httpx.Response) -> Any:
    """The JSON body of a successful answer; an unreadable one is a ``MalformedAnswerError``."""
    try:
        return loads(response.content)
    except ValueError:
        request = response.request
        raise MalformedAnswerError(
            f"the answer to {request.method} {request.url.path} is not valid JSON",
            method=request.method,
            url=str(request.url),
        ) from None


def parse_images_page(response: httpx.Response) -> list[dict[str, Any]]:
    body = json_body(check(response))
    images = body.get("images") if isinstance(body, dict) else None
    if not isinstance(images, list):
        raise MalformedAnswerError(
            "the image listing has no 'images' list", method="GET", url=str(response.request.url)
        )
    return [image for image in images if isinstance(image, dict)]


def parse_job_id(response: httpx.Response) -> str:
    body = json_body(check(response))
    job_id = body.get("job_id") if isinstance(body, dict) else None
    if not isinstance(job_id, str) or not job_id:
        raise MalformedAnswerError("the export answer has no job_id", method="POST", url=str(response.request.url))
    return job_id


def parse_object(response: httpx.Response) -> dict[str, Any]:
    body = json_body(check(response))
    if not isinstance(body, dict):
        raise MalformedAnswerError(
            "expected a JSON object", method=response.request.method, url=str(response.request.url)
        )
    return body


def object_parser(parse: Callable[[dict[str, Any]], T] | None) -> Callable[[httpx.Response], Any]:
    """A parser of a JSON object answer (``parse_object``) by ``parse`` (``iam_read``'s; None: the object itself):
    a ``MalformedAnswerError`` it raises (the object lacks what it must hold) names the request, and a safe GET
    that gets one asks again, like a cut-off body."""
    if parse is None:
        return parse_object
    reader = parse

    def parsed(response: httpx.Response) -> T:
        answer = parse_object(response)
        try:
            return reader(answer)
        except MalformedAnswerError as exc:
            exc.method, exc.url = exc.method or response.request.method, exc.url or str(response.request.url)
            raise

    return parsed


def parse_project_id(response: httpx.Response, region: str) -> str:
    projects = parse_object(response).get("projects")
    ids = [p.get("id") for p in projects if isinstance(p, dict)] if isinstance(projects, list) else []
    if len(ids) != 1 or not isinstance(ids[0], str):
        raise ConfigError(f"cannot discover the project id of region {region!r} ({len(ids)} projects); "
                          "pass project_id= or set HUAWEICLOUD_SDK_PROJECT_ID")  # fmt: skip
    return ids[0]


@dataclass(frozen=True)
class Token:
    """An IAM token, its expiry (POSIX seconds) and the project it is scoped to (never shown in reprs)."""

    value: str
    expires_at: float
    project_id: str | None

    def __repr__(self) -> str:
        return f"Token(value='***', expires_at={self.expires_at}, project_id={self.project_id!r})"


def parse_token(response: httpx.Response) -> Token:
    body = parse_object(response)
    value = response.headers.get("X-Subject-Token")
    found = body.get("token")
    token: dict[str, Any] = found if isinstance(found, dict) else {}
    try:
        expires = datetime.fromisoformat(str(token["expires_at"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        raise TransportError(
            "the IAM token answer has no valid expires_at", method="POST", url=str(response.request.url)
        ) from None
    if not value:
        raise TransportError("the IAM answer has no X-Subject-Token", method="POST", url=str(response.request.url))
    register_secrets(value)
    project = token.get("project")
    return Token(value, expires, project.get("id") if isinstance(project, dict) else None)
