"""Service-shaped refusals the simulator answers with (IMS, API gateway, IAM and OBS bodies)."""

from __future__ import annotations

from enum import StrEnum


class Shape(StrEnum):
    """Which service's error body a refusal is rendered with."""

    IMS = "ims"  # {"error": {"code": "IMG.xxxx", "message": ...}}
    GATEWAY = "gateway"  # {"error_code": "APIGW.xxxx", "error_msg": ..., "request_id": ...}
    IAM = "iam"  # {"error": {"code": 401, "message": ..., "title": ...}}
    OBS = "obs"  # <Error><Code>NoSuchBucket</Code>...</Error>


class SimError(Exception):
    """A refusal: HTTP status, service code and message, rendered in the service's own shape."""

    def __init__(self, status: int, code: str, message: str, shape: Shape = Shape.IMS) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.shape = shape


def ims_error(code: str, message: str, status: int = 400) -> SimError:
    return SimError(status, code, message, Shape.IMS)


def gateway_error(code: str, message: str, status: int) -> SimError:
    return SimError(status, code, message, Shape.GATEWAY)


def iam_error(status: int, message: str) -> SimError:
    return SimError(status, str(status), message, Shape.IAM)


def obs_error(status: int, code: str, message: str) -> SimError:
    return SimError(status, code, message, Shape.OBS)


def unauthorized(message: str) -> SimError:
    """APIGW.0301: incorrect IAM authentication information (401)."""
    return gateway_error("APIGW.0301", f"Incorrect IAM authentication information: {message}", 401)
