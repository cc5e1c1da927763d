"""IMS and IAM endpoints behind the gateway: route table, request parsing and response shapes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from ims_nb import signing
from ims_nb.sim import sts
from ims_nb.sim.backend import Principal, SimBackend
from ims_nb.sim.clock import SIM_EPOCH
from ims_nb.sim.errors import SimError, iam_error, ims_error
from ims_nb.sim.gateway import Gateway, SignedRequest, not_found
from ims_nb.sim.iam import Project
from ims_nb.sim.inventory import Account
from ims_nb.sim.responses import error_response, json_response

IMAGE_ID = r"(?P<image_id>[^/]+)"
#: How long before the simulated epoch the demo users' permanent keys were created.
KEY_AGE_SECONDS = 30 * 86400
JOB_ID = r"(?P<job_id>[^/]+)"


@dataclass
class ApiRequest:
    """A request as the handlers see it: routed, authenticated and with its body read."""

    signed: SignedRequest
    params: dict[str, str]
    principal: Principal | None
    request_id: str

    @property
    def query(self) -> list[tuple[str, str]]:
        """Decoded pairs; ``+`` means a space here, as in form encoding (signatures keep it literal)."""
        return signing.parse_query(self.signed.raw_query.replace("+", "%20"))


Handler = Callable[[SimBackend, ApiRequest], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: str  # "project" (IMS), "user" (IAM, no project needed) or "none"


def list_images(backend: SimBackend, request: ApiRequest) -> Response:
    assert request.principal is not None
    images = backend.list_images(request.query, request.principal.project_id)
    return json_response({"images": images}, request_id=request.request_id)


def show_image(backend: SimBackend, request: ApiRequest) -> Response:
    assert request.principal is not None
    image = backend.image(request.params["image_id"], request.principal.project_id)
    if image is None:
        raise ims_error("IMG.0027", f"The image {request.params['image_id']} does not exist.", status=404)
    native = dict(image)
    native.update(
        {
            "__image_location": f"obs://ims-images-{backend.region}/{image['id']}",
            "__is_config_init": "true",
            "deleted": False,
            "deleted_at": None,
        }
    )
    return json_response(native, request_id=request.request_id)


def export_image(backend: SimBackend, request: ApiRequest) -> Response:
    assert request.principal is not None
    job_id = backend.export_image(request.principal, request.params["image_id"], request.signed.body)
    return json_response({"job_id": job_id}, request_id=request.request_id)


def show_job(backend: SimBackend, request: ApiRequest) -> Response:
    assert request.principal is not None
    if request.params["project_id"] != request.principal.project_id:
        raise ims_error("IMG.0047", "The job belongs to another project.", status=403)
    return json_response(backend.job_view(request.params["job_id"], progress=False), request_id=request.request_id)


def show_job_progress(backend: SimBackend, request: ApiRequest) -> Response:
    return json_response(backend.job_view(request.params["job_id"], progress=True), request_id=request.request_id)


def show_quota(backend: SimBackend, request: ApiRequest) -> Response:
    return json_response(backend.quota(), request_id=request.request_id)


def list_projects(backend: SimBackend, request: ApiRequest) -> Response:
    """GET /v3/projects: the account's projects of every region, filtered by name, parent_id, domain_id, enabled."""
    projects = [p.view(backend.domain_id) for p in backend.iam.matching(dict(request.query))]
    body = {"projects": projects, "links": {"self": "/v3/projects", "previous": None, "next": None}}
    return json_response(body, request_id=request.request_id)


def list_auth_projects(backend: SimBackend, request: ApiRequest) -> Response:
    """GET /v3/auth/projects: the projects the caller can access (every project of the account: no policies here)."""
    projects = [p.view(backend.domain_id) for p in backend.iam.projects]
    return json_response({"projects": projects, "links": {"self": "/v3/auth/projects"}}, request_id=request.request_id)


def create_token(backend: SimBackend, request: ApiRequest) -> Response:
    """POST /v3/auth/tokens with the password method: 201, token in ``X-Subject-Token``."""
    try:
        body = json.loads(request.signed.body or b"null")
        identity = body["auth"]["identity"]
        methods = identity["methods"]
        user = identity["password"]["user"]
        name, password = user["name"], user["password"]
        domain = user.get("domain", {}).get("name")
        scope = body["auth"].get("scope", {})
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise iam_error(
            400, "The request body is invalid: expected auth.identity.password.user {name, password, domain{name}}."
        ) from None
    if methods != ["password"] or not all(isinstance(v, str) for v in (name, password)):
        raise iam_error(400, "Only the password method is supported, with string name and password.")
    account = backend.accounts.get(name)
    if account is None or account.password != password or domain != backend.domain_name:
        raise iam_error(401, "The username or password is wrong.")
    project = _scoped_project(backend, scope)
    project_id = None if project is None else project.id
    token, record = backend.issue_token(account, project_id, methods)
    token_body = {
        "expires_at": _iam_time(record["expires_at"]),
        "issued_at": _iam_time(record["issued_at"]),
        "methods": methods,
        "user": {
            "id": account.user_id,
            "name": account.name,
            "domain": {"id": backend.domain_id, "name": backend.domain_name},
            "password_expires_at": "",
        },
        "roles": [{"id": "0", "name": "te_admin" if account.obs_write else "readonly"}],
        "catalog": [],
    }
    if project is not None:
        token_body["project"] = {
            "id": project.id,
            "name": project.name,
            "domain": {"id": backend.domain_id, "name": backend.domain_name},
        }
    else:
        token_body["domain"] = {"id": backend.domain_id, "name": backend.domain_name}
    return json_response({"token": token_body}, 201, request.request_id, {"X-Subject-Token": token})


def _scoped_project(backend: SimBackend, scope: Any) -> Project | None:
    """The project a token is scoped to: any project of the account (IAM is global), by id or by name."""
    if not isinstance(scope, dict) or "project" not in scope:
        return None
    project = scope["project"]
    if not isinstance(project, dict):
        raise iam_error(400, "scope.project must be an object with a name or an id.")
    found = backend.iam.project(project_id=project.get("id"), name=project.get("name"))
    if found is not None:
        return found
    raise iam_error(401, "The project in the scope does not exist or is not available to the user.")


def verify_token(backend: SimBackend, request: ApiRequest) -> Response:
    subject = request.signed.headers.get("x-subject-token", "")
    record = backend.token(subject)
    if record is None or record["expires_at"] <= datetime.now(UTC).timestamp():
        raise iam_error(404, "The token does not exist or has expired.")
    body = {
        "token": {
            "expires_at": _iam_time(record["expires_at"]),
            "issued_at": _iam_time(record["issued_at"]),
            "methods": record["methods"],
            "user": {"name": record["user"]},
        }
    }
    return json_response(body, request_id=request.request_id, headers={"X-Subject-Token": subject})


def show_credential(backend: SimBackend, request: ApiRequest) -> Response:
    """GET /v3.0/OS-CREDENTIAL/credentials/{access_key}: the permanent key and its user (an IAM user's own only)."""
    owner = backend.iam.account_by_ak(request.params["access_key"])
    if owner is None:
        raise iam_error(404, "Could not find credential: no permanent access key has this id.")
    _own_only(request.principal, owner)
    since = _iam_time(SIM_EPOCH.timestamp() - KEY_AGE_SECONDS)
    credential = {"user_id": owner.user_id, "access": owner.ak, "status": "active", "create_time": since,
                  "last_use_time": since, "description": ""}  # fmt: skip
    return json_response({"credential": credential}, request_id=request.request_id)


def show_user(backend: SimBackend, request: ApiRequest) -> Response:
    """GET /v3/users/{user_id}: Keystone's show-user (an IAM user may show only themselves)."""
    user = backend.iam.account_by_id(request.params["user_id"])
    if user is None:
        raise iam_error(404, f"Could not find user: {request.params['user_id']}.")
    _own_only(request.principal, user)
    body = {"id": user.user_id, "name": user.name, "domain_id": backend.domain_id, "enabled": True,
            "description": "", "pwd_status": True, "pwd_strength": "high", "access_mode": "default",
            "password_expires_at": None, "last_project_id": backend.project_id,
            "links": {"self": f"/v3/users/{user.user_id}"}}  # fmt: skip
    return json_response({"user": body}, request_id=request.request_id)


def _own_only(caller: Principal | None, subject: Account) -> None:
    """The simulated account has no administrator: each IAM user may look up only themselves (403 otherwise)."""
    if caller is None or caller.user != subject.name:
        raise iam_error(403, "You are not authorized to perform the requested action: identity:get_user.")


def create_security_token(backend: SimBackend, request: ApiRequest) -> Response:
    """POST /v3.0/OS-CREDENTIAL/securitytokens with the token method: 201, a temporary AK/SK and its token."""
    assert request.principal is not None
    duration = _token_duration(request.signed.body)
    key, security_token = backend.issue_temporary_key(backend.accounts[request.principal.user], duration)
    credential = {"access": key.access, "secret": key.secret, "securitytoken": security_token,
                  "expires_at": _iam_time(key.expires_at)}  # fmt: skip
    return json_response({"credential": credential}, 201, request.request_id)


def _token_duration(raw_body: bytes) -> int:
    """``auth.identity.token.duration_seconds`` (default 900) of a token-method body, within 900..86400."""
    try:
        identity = json.loads(raw_body or b"null")["auth"]["identity"]
        methods, token = identity["methods"], identity.get("token", {})
        duration = token.get("duration_seconds", sts.DEFAULT_DURATION_SECONDS)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise iam_error(400, "The request body is invalid: expected auth.identity {methods, token}.") from None
    if methods != ["token"]:
        raise iam_error(400, 'Only the token method is supported: auth.identity.methods must be ["token"].')
    limits = (sts.MIN_DURATION_SECONDS, sts.MAX_DURATION_SECONDS)
    if type(duration) is not int or not limits[0] <= duration <= limits[1]:
        raise iam_error(400, f"token.duration_seconds must be an integer from {limits[0]} to {limits[1]}.")
    return duration


def _iam_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _route(method: str, path: str, handler: Handler, auth: str = "project") -> Route:
    return Route(method, re.compile(f"^{path}/?$"), handler, auth)


ROUTES = (
    _route("GET", "/v2/cloudimages", list_images),
    _route("GET", f"/v2/images/{IMAGE_ID}", show_image),
    _route("POST", f"/v1/cloudimages/{IMAGE_ID}/file", export_image),
    _route("POST", f"/v2.1/cloudimages/{IMAGE_ID}/file", export_image),
    _route("GET", f"/v1/(?P<project_id>[^/]+)/jobs/{JOB_ID}", show_job),
    _route("GET", f"/v1/cloudimages/job/{JOB_ID}", show_job_progress),
    _route("GET", "/v1/cloudimages/quota", show_quota),
    _route("POST", "/v3/auth/tokens", create_token, auth="none"),
    _route("GET", "/v3/auth/tokens", verify_token, auth="user"),
    _route("GET", "/v3/projects", list_projects, auth="user"),
    _route("GET", "/v3/auth/projects", list_auth_projects, auth="user"),
    _route("POST", "/v3.0/OS-CREDENTIAL/securitytokens", create_security_token, auth="user"),
    _route("GET", "/v3.0/OS-CREDENTIAL/credentials/(?P<access_key>[^/]+)", show_credential, auth="user"),
    _route("GET", "/v3/users/(?P<user_id>[^/]+)", show_user, auth="user"),
)
#: First path segments that belong to the gateway rather than to OBS path-style buckets.
API_PREFIXES = frozenset({"v1", "v2", "v2.1", "v3", "v3.0"})


def match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    for route in ROUTES:
        found = route.pattern.match(path)
        if found and route.method == method:
            return route, found.groupdict()
    raise not_found()


def handle(backend: SimBackend, gateway: Gateway, signed: SignedRequest, request_id: str) -> Response:
    """Route, authenticate and answer one gateway request; every refusal is service-shaped."""
    try:
        route, params = match(signed.method, signed.path_decoded)
        principal = None
        if route.auth != "none":
            principal = gateway.authenticate(signed, needs_project=route.auth == "project")
        return route.handler(backend, ApiRequest(signed, params, principal, request_id))
    except SimError as error:
        return error_response(error, request_id)
