"""What a service-shaped answer is: the IMS, gateway, IAM and OBS error bodies the fuzz suites accept."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import httpx

IMS_CODE = re.compile(r"IMG\.\d{4}")
GATEWAY_CODE = re.compile(r"APIGW\.\d{4}")
SIM_CODE = re.compile(r"SIM\.\d{4}")


def describe(response: httpx.Response) -> str:
    request = response.request
    body = "" if request.method == "HEAD" else response.text[:400]
    return f"{request.method} {request.url} -> {response.status_code} {response.headers.get('content-type')} {body!r}"


def parse_xml(response: httpx.Response) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(response.content)
    except ElementTree.ParseError as exc:
        raise AssertionError(f"not well-formed XML ({exc}): {describe(response)}") from None


def classify(response: httpx.Response) -> tuple[str, str]:
    """(shape, code) of an error body: ``ims``, ``gateway``, ``iam`` or ``obs``; fails on anything else."""
    where = describe(response)
    assert "Traceback" not in response.text, where
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("application/xml"):
        root = parse_xml(response)
        assert root.tag == "Error", where
        fields = {child.tag: child.text or "" for child in root}
        assert {"Code", "Message", "RequestId"} <= set(fields), where
        assert fields["Code"] and fields["Message"], where
        assert fields["RequestId"] == response.headers["x-obs-request-id"], where
        assert response.headers["x-obs-error-code"] == fields["Code"], where
        return "obs", fields["Code"]
    assert content_type.startswith("application/json"), where
    body = response.json()
    assert isinstance(body, dict), where
    if set(body) == {"error_code", "error_msg", "request_id"}:
        assert isinstance(body["error_msg"], str) and body["error_msg"], where
        assert body["request_id"] == response.headers["x-request-id"], where
        code = body["error_code"]
        assert isinstance(code, str) and (GATEWAY_CODE.fullmatch(code) or SIM_CODE.fullmatch(code)), where
        return "gateway", code
    error = body.get("error")
    assert set(body) == {"error"} and isinstance(error, dict), where
    assert isinstance(error.get("message"), str) and error["message"], where
    if set(error) == {"code", "message"}:
        assert isinstance(error["code"], str) and IMS_CODE.fullmatch(error["code"]), where
        return "ims", error["code"]
    assert set(error) == {"code", "message", "title"}, where
    assert error["code"] == response.status_code and isinstance(error["title"], str), where
    return "iam", str(error["code"])


def refusal(response: httpx.Response, *shapes: str) -> str:
    """The code of a 4xx refusal whose body has one of ``shapes``; fails on a 5xx or any other body."""
    assert 400 <= response.status_code < 500, describe(response)
    if response.request.method == "HEAD":
        assert response.content == b"", describe(response)
        return ""
    shape, code = classify(response)
    assert shape in shapes, f"{shape} body where {shapes} expected: {describe(response)}"
    if shape == "gateway" and code.startswith("APIGW"):
        assert not code.startswith("APIGW.06"), describe(response)  # the 06xx codes are internal errors
    return code


def no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, describe(response)
    assert "Traceback" not in response.text, describe(response)
    if response.request.method == "HEAD":
        assert response.content == b"", describe(response)
