"""Requests that got no answer, told plainly: where they went, what broke and what to check (no I/O)."""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

import httpx

from ims_nb.client.retry import never_sent
from ims_nb.errors import TransportError, mask_secrets

#: The port of a URL that names none, for messages that say where a connection went.
DEFAULT_PORTS = {"https": 443, "http": 80}


def transport_error(request: httpx.Request, error: Exception, secrets: tuple[str, ...]) -> TransportError:
    """The ``TransportError`` of ``request`` failing with ``error``: where, what and a hint, ``secrets`` masked."""
    where = f"{request.url.host}:{request.url.port or DEFAULT_PORTS.get(request.url.scheme, '')}"
    message = f"{type(error).__name__} on {request.method} {request.url.path} at {where}: {error}"
    hint = transport_hint(error, request.url.host, where)
    if hint is not None:
        message = f"{message}; {hint}"
    message = mask_secrets(message, secrets)
    return TransportError(
        message, method=request.method, url=str(request.url.copy_with(query=None)), sent=not never_sent(error)
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps (``__cause__`` or ``__context__``), a few levels deep."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def certificate_problem(error: BaseException) -> str | None:
    """The reason when ``error`` (or what it wraps) is a failed TLS certificate verification, else None."""
    for seen in _causes(error):
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or str(seen)
    return None


def transport_hint(error: BaseException, host: str, where: str) -> str | None:
    """What to check when a request to ``where`` (host:port) failed with ``error`` before any answer, else None."""
    problem = certificate_problem(error)
    if problem is not None:
        return (f"the TLS certificate of {host} could not be verified ({problem}): give ca_bundle=PATH for a "
                "private CA, or insecure=True to skip the check")  # fmt: skip
    if any(isinstance(seen, socket.gaierror) for seen in _causes(error)):
        return (f"the host {host} is not known (DNS): check the region and the endpoint for a typo, "
                "and the machine's DNS")  # fmt: skip
    if any(_refused(seen) for seen in _causes(error)):
        return (f"nothing accepts connections at {where} (refused): is the endpoint or the simulator running, "
                "and on this port? (a simulator's port changes on each start: take its new --sim line)")  # fmt: skip
    if isinstance(error, httpx.TimeoutException):
        return (f"{where} did not answer in time: check the network, a proxy (HTTPS_PROXY, NO_PROXY) or a "
                "firewall between here and the endpoint")  # fmt: skip
    return None


def _refused(error: BaseException) -> bool:
    return (
        isinstance(error, ConnectionRefusedError)
        or (isinstance(error, OSError) and error.errno == errno.ECONNREFUSED)
        or "Connection refused" in str(error)
        or "All connection attempts failed" in str(error)
    )
