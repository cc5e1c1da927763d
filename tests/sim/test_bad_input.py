"""Bad input never breaks the simulator: fuzzed requests over real HTTP get a service-shaped 4xx.

Hypothesis drives malformed bodies, odd query strings, random methods and paths, oversized bodies
and bad signatures at every route family (IMS, IAM, OBS, control plane). Whatever it sends, the
answer is never a 5xx nor a traceback: it is a 2xx when the request happens to be valid, otherwise
an error body in the documented shape of the service that refused it.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import string
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import example, given
from hypothesis import strategies as st

from ims_nb import signing
from ims_nb.client.auth import AkSkAuth, ObsAuth
from ims_nb.sim import Simulator
from tests.sim.answers import SIM_CODE, classify, describe, no_server_error, parse_xml, refusal
from tests.sim.strategies import (
    ID_TEXT,
    LISTING_NAMES,
    OBS_SUB_RESOURCES,
    case_summary,
    fuzz,
    gateway_paths,
    json_values,
    listing_names,
    listing_values,
    odd_text,
    random_bodies,
    raw_queries,
)

GiB = 1024**3
IMAGES = "/v2/cloudimages"
EXPORT_BUCKET = "ims-exports-cn-north-4"
FILE_FORMATS = ("qcow2", "vhd", "zvhd", "vmdk")
BODY_FIELDS = ("bucket_url", "file_format", "is_quick_export")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
MAX_RESET_IMAGES = 500
CASES: Counter[str] = Counter()


class Repeated(bytes):
    """A long repetitive body that Hypothesis reports in a few characters."""

    def __new__(cls, unit: bytes, times: int) -> Repeated:
        made = super().__new__(cls, unit * times)
        made.unit, made.times = unit, times  # type: ignore[attr-defined]
        return made

    def __repr__(self) -> str:
        return f"Repeated({self.unit!r}, {self.times})"  # type: ignore[attr-defined]


_summary = case_summary("bad-input cases tried", CASES)


def not_a_signature_failure(response: httpx.Response) -> None:
    """A request signed correctly must never be refused as badly signed."""
    where = describe(response)
    json_body = response.headers.get("content-type", "").startswith("application/json") and response.content
    if response.status_code == 401 and json_body:
        body = response.json()
        assert body.get("error_code") != "APIGW.0301", f"a correctly signed request was refused: {where}"
    assert response.headers.get("x-obs-error-code") != "SignatureDoesNotMatch", f"OBS signature refused: {where}"


# --- strategies ------------------------------------------------------------------------------

bucket_names = (
    st.sampled_from(
        [
            EXPORT_BUCKET,
            "ims-exports-scratch",
            "ims-archive-cold",
            "ims-exports-ap-southeast-1",
            "no-such-bucket",
            "Upper",
            "a",
            "x" * 64,
            "192.168.1.1",
            "-bad",
            "a..b",
            "",
        ]
    )
    | odd_text
)
file_keys = (
    st.sampled_from(
        ["img.qcow2", "dir/img.vhd", "a b.qcow2", "dir/", "/lead", "x" * 130, "ü.qcow2", "", "a//b", "ok_name-1.2"]
    )
    | odd_text
)
bucket_urls = (
    st.builds(lambda b, sep, k: f"{b}{sep}{k}", bucket_names, st.sampled_from([":", "::", "", "/", " : "]), file_keys)
    | odd_text
    | st.builds(
        lambda k: f"{EXPORT_BUCKET}:fuzz/{k}.qcow2",
        st.text(string.ascii_letters + string.digits, min_size=1, max_size=12),
    )
)
file_formats = st.sampled_from(FILE_FORMATS + ("QCOW2", "zvhd2", "raw", "iso", "", " qcow2")) | st.text(max_size=8)


#: JSON nested deeper than a recursive parser goes.
deep_json = st.builds(
    Repeated, st.sampled_from([b"[", b'{"a":', b'{"auth":{"identity":']), st.sampled_from([200, 5000, 60000])
)


def _json_bytes(value: Any, style: str) -> bytes:
    if style == "compact":
        return json.dumps(value, separators=(",", ":")).encode()
    if style == "unicode":
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    if style == "pretty":
        return json.dumps(value, indent=2).encode()
    return json.dumps(value).encode("utf-16")  # json.loads detects UTF-16 bytes


encodings = st.sampled_from(["compact", "unicode", "pretty", "utf16"])


@st.composite
def export_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Export bodies with each field present or not, of the right type or not, plus unknown fields."""
    body: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > 1:
        body["bucket_url"] = draw(bucket_urls | json_values)
    if draw(st.booleans()):
        body["file_format"] = draw(file_formats | json_values)
    if draw(st.booleans()):
        body["is_quick_export"] = draw(st.booleans() | json_values)
    if draw(st.integers(0, 9)) == 0:
        extra = draw(
            st.dictionaries(
                st.text(max_size=12).filter(lambda k: k not in BODY_FIELDS), json_values, min_size=1, max_size=2
            )
        )
        body.update(extra)
    return body


def expected_export_codes(body: dict[str, Any]) -> set[str] | None:
    """What the service must answer for a defect the body shape alone shows (None: depends on more)."""
    if set(body) - set(BODY_FIELDS):
        return {"IMG.0001"}
    if not isinstance(body.get("bucket_url"), str):
        return {"IMG.0001"}
    if "is_quick_export" in body and not isinstance(body["is_quick_export"], bool):
        return {"IMG.0001"}
    if body.get("file_format") is not None and not isinstance(body["file_format"], str):
        return {"IMG.0001"}
    return None


@st.composite
def export_bodies(draw: st.DrawFn) -> tuple[str, bytes, set[str] | None]:
    """(label, raw body, codes the refusal must carry or None)."""
    kind = draw(st.sampled_from(["bytes", "broken-json", "non-object", "object", "object", "object", "deep", "valid"]))
    if kind == "bytes":
        return kind, draw(st.binary(max_size=300)), None
    if kind == "broken-json":
        text = _json_bytes(draw(export_objects()), draw(encodings)).decode("utf-8", "replace")
        cut = draw(st.integers(1, max(1, len(text) - 1)))
        junk = draw(st.sampled_from(["", ",", "}", "]", "'", "\x00", "NaN", "{", '"']))
        raw = (text[:cut] + junk).encode("utf-8", "replace")
        try:
            json.loads(raw)
        except ValueError:
            return kind, raw, {"IMG.0001", "IMG.0007"}
        return kind, raw, None
    if kind == "non-object":
        value = draw(json_values.filter(lambda v: not isinstance(v, dict)))
        return kind, _json_bytes(value, draw(encodings)), {"IMG.0001"}
    if kind == "deep":
        return kind, draw(deep_json), {"IMG.0001"}
    if kind == "valid":
        name = draw(st.text(string.ascii_lowercase + string.digits + "-_.", min_size=1, max_size=20))
        quick = draw(st.booleans())
        body: dict[str, Any] = {"bucket_url": f"{EXPORT_BUCKET}:fuzz/{name}"}
        if quick:
            body["is_quick_export"] = True
        else:
            body["file_format"] = draw(st.sampled_from(FILE_FORMATS))
        return kind, _json_bytes(body, draw(encodings)), None
    obj = draw(export_objects())
    return kind, _json_bytes(obj, draw(encodings)), expected_export_codes(obj)


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture()
def world(fresh_sim: Simulator) -> dict[str, Any]:
    """What the fuzzers aim at: credentials, exportable image ids, buckets and objects."""
    info = fresh_sim.info
    control = httpx.get(f"{info.endpoint}/_sim/credentials").json()
    state = httpx.get(f"{info.endpoint}/_sim/state").json()
    with httpx.Client(base_url=info.endpoint, auth=AkSkAuth(info.ak, info.sk, project_id=info.project_id)) as client:
        listed = client.get(IMAGES, params={"__imagetype": "private", "status": "active", "limit": 1000})
        images = listed.json()["images"]
    exportable = [
        image["id"]
        for image in images
        if image["owner"] == info.project_id
        and int(image["__image_size"]) < 100 * GiB
        and image.get("__platform") not in ("Windows", "SUSE", "Red Hat", "Ubuntu", "Oracle Linux")
        and not image.get("__whole_image")
        and image.get("virtual_env_type") != "IsoImage"
        and not image.get("__productcode")
        and not image.get("__system__cmkid")
    ]
    assert len(exportable) >= 10
    operator = next(user for user in control["users"] if user["name"] == "ims-operator")
    return {
        "info": info,
        "project_id": info.project_id,
        "domain_name": control["domain_name"],
        "operator": operator,
        "all_ids": [image["id"] for image in images],
        "exportable": exportable[:12],
        "buckets": [bucket["name"] for bucket in state["buckets"]],
        "objects": [(obj["bucket"], obj["key"]) for obj in state["objects"]],
    }


@pytest.fixture()
def plain(fresh_sim: Simulator) -> Iterator[httpx.Client]:
    """An unauthenticated client on the simulator (one connection for many requests)."""
    with httpx.Client(base_url=fresh_sim.endpoint) as client:
        yield client


# --- 1. export bodies ------------------------------------------------------------------------


def test_export_bodies_never_break_the_export_route(ims: httpx.Client, world: dict[str, Any]) -> None:
    ids = (
        st.sampled_from(world["exportable"])
        | st.sampled_from(world["all_ids"])
        | st.sampled_from(["00000000-0000-0000-0000-000000000000", "x", "not-an-image"])
    )

    @fuzz(600)
    @given(
        case=export_bodies(),
        image_id=ids,
        version=st.sampled_from(["v1", "v2.1"]),
        content_type=st.sampled_from(["application/json;charset=utf-8", "application/json", "text/plain", None]),
    )
    @example(case=("deep", Repeated(b"[", 60000), {"IMG.0001"}), image_id="x", version="v1", content_type=None)
    @example(case=("empty", b"", {"IMG.0007"}), image_id="x", version="v1", content_type=None)
    @example(case=("blank", b" \n\t ", {"IMG.0007"}), image_id="x", version="v2.1", content_type=None)
    @example(
        case=("latin1", '{"bucket_url": "b\xe9:k"}'.encode("latin-1"), {"IMG.0001"}),
        image_id="x",
        version="v1",
        content_type=None,
    )
    @example(
        case=("nan", b'{"bucket_url": NaN, "file_format": Infinity}', {"IMG.0001"}),
        image_id="x",
        version="v1",
        content_type=None,
    )
    def run(case: tuple[str, bytes, set[str] | None], image_id: str, version: str, content_type: str | None) -> None:
        label, body, expected = case
        CASES["ims export"] += 1
        headers = {"Content-Type": content_type} if content_type else {}
        response = ims.post(f"/{version}/cloudimages/{image_id}/file", content=body, headers=headers)
        not_a_signature_failure(response)
        if response.status_code == 200:
            assert expected is None, f"{label} body accepted: {describe(response)}"
            payload = response.json()
            assert set(payload) == {"job_id"} and isinstance(payload["job_id"], str), describe(response)
            job = ims.get(f"/v1/cloudimages/job/{payload['job_id']}")
            assert job.status_code == 200 and job.json()["job_id"] == payload["job_id"], describe(job)
            CASES["ims export accepted"] += 1
            return
        code = refusal(response, "ims", "gateway")
        if expected is not None:
            assert code in expected, f"{label}: {code} not in {expected}: {describe(response)}"

    run()


def test_an_export_body_over_64_kib_is_an_ims_refusal(ims: httpx.Client, world: dict[str, Any]) -> None:
    CASES["oversized"] += 1
    body = json.dumps({"bucket_url": f"{EXPORT_BUCKET}:big.qcow2", "file_format": "qcow2", "pad": "x" * 100_000})
    response = ims.post(f"/v1/cloudimages/{world['exportable'][0]}/file", content=body.encode())
    assert response.status_code == 400 and refusal(response, "ims") == "IMG.0001"


# --- 2. listing queries ----------------------------------------------------------------------


def test_listing_queries_are_answered_or_refused_as_ims(ims: httpx.Client, world: dict[str, Any]) -> None:
    @fuzz(700)
    @given(raw=raw_queries())
    @example(raw="limit=%ff&%ff=1")
    @example(raw="limit=1&limit=2")
    @example(raw="limit=5&&&=&sort_dir=asc&")
    @example(raw="name=a+b&limit=%31")
    @example(raw="marker=" + "%" * 50)
    def run(raw: str) -> None:
        CASES["listing"] += 1
        response = ims.get(httpx.URL(IMAGES, query=raw.encode("ascii")))
        sent = response.request.url.query.decode("ascii")
        assert sent == raw, f"httpx changed the query: {raw!r} -> {sent!r}"
        not_a_signature_failure(response)
        pairs = signing.parse_query(sent)
        keys = [key for key, _ in pairs]
        must_refuse = any(key not in LISTING_NAMES for key in keys) or len(set(keys)) != len(keys)
        if response.status_code == 200:
            assert not must_refuse, describe(response)
            body = response.json()
            assert set(body) == {"images"} and isinstance(body["images"], list), describe(response)
            limit = dict(pairs).get("limit", "500")
            assert len(body["images"]) <= int(limit), describe(response)
            CASES["listing answered"] += 1
            return
        code = refusal(response, "ims")
        assert (response.status_code, code) == (400, "IMG.0001"), describe(response)

    run()


def test_listing_params_as_httpx_encodes_them(ims: httpx.Client) -> None:
    """The same, through httpx's own ``params`` encoding (space as ``+``, everything else escaped)."""
    pairs = st.lists(st.tuples(listing_names, listing_values), max_size=4)

    @fuzz(150)
    @given(params=pairs)
    def run(params: list[tuple[str, str]]) -> None:
        CASES["listing"] += 1
        response = ims.get(IMAGES, params=httpx.QueryParams(params))
        not_a_signature_failure(response)
        if response.status_code != 200:
            assert refusal(response, "ims") == "IMG.0001"

    run()


def _sdk_signed(world: dict[str, Any], path: str, query: list[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """(URI, headers) of a GET signed by the official SDK's own Signer, as huaweicloudsdkcore sends it."""
    info = world["info"]
    request = SdkRequest(
        method="GET",
        schema="http",
        host=urlsplit(info.endpoint).netloc,
        resource_path=path,
        query_params=query,
        header_params={
            "X-Sdk-Date": signing.format_sdk_date(datetime.now(UTC)),
            "X-Project-Id": info.project_id,
            "Content-Type": "application/json",
        },
    )
    Signer(BasicCredentials(info.ak, info.sk, info.project_id)).sign(request)
    return request.uri, request.header_params


def test_sdk_signed_odd_queries_and_ids_verify(plain: httpx.Client, world: dict[str, Any]) -> None:
    """The simulator canonicalises what the official SDK signs: odd values and ids never fail the signature."""
    values = listing_values | odd_text
    ids = st.sampled_from(world["all_ids"]) | ID_TEXT | st.sampled_from(["a%41", "%", "%zz", "a+b", "a%2Fb"])

    @fuzz(300)
    @given(
        pairs=st.lists(st.tuples(listing_names | odd_text, values), max_size=4),
        image_id=ids,
        route=st.sampled_from(["list", "show", "job"]),
    )
    @example(pairs=[("name", "a b+c/\xe9%"), ("limit", "1")], image_id="a%41", route="show")
    def run(pairs: list[tuple[str, str]], image_id: str, route: str) -> None:
        CASES["sdk-signed"] += 1
        path = {
            "list": IMAGES,
            "show": f"/v2/images/{quote(image_id, safe='')}",
            "job": f"/v1/cloudimages/job/{quote(image_id, safe='')}",
        }[route]
        uri, headers = _sdk_signed(world, path, pairs if route == "list" else [])
        response = plain.get(uri, headers=headers)
        not_a_signature_failure(response)
        if response.status_code != 200:
            refusal(response, "ims", "gateway")

    run()


def test_aksk_auth_signs_a_percent_in_a_path_segment_like_the_sdk(ims: httpx.Client) -> None:
    response = ims.get(f"/v2/images/{quote('a%41', safe='')}")
    assert response.status_code == 404 and classify(response) == ("ims", "IMG.0027")


# --- 3. random method and path at every route family -----------------------------------------


def test_random_requests_at_gateway_routes(ims: httpx.Client, world: dict[str, Any]) -> None:
    @fuzz(700)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        CASES["gateway routes"] += 1
        method = data.draw(st.sampled_from(METHODS))
        path = data.draw(gateway_paths(world))
        query = data.draw(st.sampled_from([""]) | raw_queries())
        body = b"" if method in ("GET", "HEAD") else data.draw(random_bodies)
        url = httpx.URL(path, query=query.encode("ascii")) if query else httpx.URL(path)
        response = ims.request(method, url, content=body)
        not_a_signature_failure(response)
        no_server_error(response)
        if response.status_code >= 400:
            refusal(response, "ims", "gateway", "iam")
        else:
            assert response.status_code in (200, 201), describe(response)

    run()


def test_random_token_requests_get_iam_refusals(plain: httpx.Client, world: dict[str, Any]) -> None:
    operator = world["operator"]
    names = st.sampled_from(["ims-operator", "ims-auditor", ""]) | json_values
    passwords = st.just(operator["password"]) | json_values
    domains = st.fixed_dictionaries({"name": st.just(world["domain_name"]) | json_values}) | json_values
    user = st.fixed_dictionaries({}, optional={"name": names, "password": passwords, "domain": domains})
    identity = st.fixed_dictionaries(
        {},
        optional={
            "methods": st.just(["password"]) | st.sampled_from([["token"], [], ["password", "password"]]) | json_values,
            "password": st.fixed_dictionaries({"user": user}) | json_values,
        },
    )
    project = st.fixed_dictionaries(
        {}, optional={"id": st.just(world["project_id"]) | json_values, "name": st.just("cn-north-4") | json_values}
    )
    scope = st.fixed_dictionaries({"project": project | json_values}) | json_values
    auth = st.fixed_dictionaries({}, optional={"identity": identity | json_values, "scope": scope})
    bodies = (
        st.fixed_dictionaries({"auth": auth | json_values}).map(lambda v: json.dumps(v).encode())
        | json_values.map(lambda v: json.dumps(v).encode())
        | st.binary(max_size=80)
        | deep_json
    )

    user_ok = {"name": "ims-operator", "password": operator["password"], "domain": {"name": world["domain_name"]}}
    valid = {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": user_ok}},
            "scope": {"project": {"name": "cn-north-4"}},
        }
    }

    @fuzz(400)
    @given(body=bodies, query=st.sampled_from(["", "nocatalog=true", "x=%ff&&"]))
    @example(body=Repeated(b"[", 50000), query="")
    @example(body=json.dumps(valid).encode(), query="nocatalog=true")
    @example(body=b'{"auth": {"identity": {"methods": ["password"], "password": {"user": {"domain": 1}}}}}', query="")
    def run(body: bytes, query: str) -> None:
        CASES["iam tokens"] += 1
        response = plain.post(
            f"/v3/auth/tokens?{query}", content=body, headers={"Content-Type": "application/json;charset=utf8"}
        )
        if response.status_code == 201:
            assert response.headers["X-Subject-Token"] and "token" in response.json(), describe(response)
            CASES["iam tokens issued"] += 1
            return
        code = refusal(response, "iam")
        assert code in ("400", "401"), describe(response)

    run()


def test_project_queries(ims: httpx.Client) -> None:
    @fuzz(120)
    @given(raw=raw_queries() | st.sampled_from(["name=cn-north-4", "name=", "name=%ff", "name=a&name=b"]))
    def run(raw: str) -> None:
        CASES["iam projects"] += 1
        response = ims.get(httpx.URL("/v3/projects", query=raw.encode("ascii")))
        not_a_signature_failure(response)
        if response.status_code == 200:
            body = response.json()
            assert isinstance(body["projects"], list) and set(body) == {"projects", "links"}, describe(response)
        else:
            refusal(response, "iam", "gateway")

    run()


@st.composite
def obs_requests(draw: st.DrawFn, world: dict[str, Any]) -> tuple[str, httpx.URL, dict[str, str]]:
    method = draw(st.sampled_from(["GET", "GET", "GET", "HEAD", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"]))
    existing = draw(st.sampled_from(world["objects"]))
    choice = draw(st.sampled_from(["bucket", "bucket", "bucket", "object", "random-bucket", "random-key", "root"]))
    bucket = existing[0] if choice in ("object", "random-key") else draw(st.sampled_from(world["buckets"]))
    key = ""
    if choice == "object":
        key = existing[1]
    elif choice == "random-key":
        key = draw(odd_text.filter(bool))
    elif choice == "random-bucket":
        bucket = draw(odd_text.filter(bool))
    elif choice == "root":
        bucket = ""
    path = "/" + quote(bucket, safe="") + ("/" + quote(key, safe="/") if key else "")
    pairs = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(
            st.sampled_from(OBS_SUB_RESOURCES)
            | st.text(string.ascii_letters + "-_.", min_size=1, max_size=10)
            | odd_text.filter(bool)
        )
        value = draw(st.none() | listing_values | odd_text)
        if value is None:
            pairs.append(quote(name, safe=""))
        else:
            plus = draw(st.booleans())  # a space as '+' (form encoding) or as %20
            pairs.append(f"{quote(name, safe='')}={quote_plus(value) if plus else quote(value, safe='')}")
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["Range"] = draw(
            st.sampled_from(
                [
                    "bytes=0-99",
                    "bytes=-10",
                    "bytes=5-",
                    "bytes=9-3",
                    "bytes=0-0,2-3",
                    "lines=1-2",
                    "bytes=x-y",
                    "bytes=99999999999999-",
                ]
            )
        )
    if method == "GET" and choice == "object" and headers.get("Range", "-").endswith("-"):
        headers["Range"] = "bytes=0-1023"  # the stored export is many GiB of zeros: no unbounded reads
    return method, httpx.URL(path, query="&".join(pairs).encode("ascii")), headers


@pytest.mark.parametrize("signature_type", ["obs", "v2"])
def test_random_obs_requests(fresh_sim: Simulator, world: dict[str, Any], signature_type: str) -> None:
    info = fresh_sim.info
    client = httpx.Client(base_url=info.endpoint, auth=ObsAuth(info.ak, info.sk, signature_type=signature_type))

    @fuzz(350)
    @given(request=obs_requests(world))
    @example(request=("GET", httpx.URL(f"/{EXPORT_BUCKET}", query=b"response-content-type=a+b"), {}))
    def run(request: tuple[str, httpx.URL, dict[str, str]]) -> None:
        CASES["obs"] += 1
        method, url, headers = request
        response = client.request(method, url, headers=headers)
        not_a_signature_failure(response)
        no_server_error(response)
        if response.status_code >= 400:
            refusal(response, "obs")
        elif method != "HEAD" and response.headers.get("content-type", "").startswith("application/xml"):
            parse_xml(response)

    with client:
        run()


# --- control plane ---------------------------------------------------------------------------

numbers = st.integers(-(10**6), 10**6) | st.floats(allow_nan=True, allow_infinity=True)
small_images = st.integers(0, MAX_RESET_IMAGES)


def _unknown_fields(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    if draw(st.integers(0, 6)) == 0:
        body[draw(st.text(max_size=8))] = draw(json_values)
    return body


@st.composite
def control_requests(draw: st.DrawFn, world: dict[str, Any]) -> tuple[str, str, bytes]:
    action = draw(st.sampled_from(["reset", "clock", "faults", "faults", "throttle", "objects", "other", "random"]))
    body: Any
    if action == "reset":
        body = draw(
            st.fixed_dictionaries(
                {}, optional={"seed": st.integers(0, 3) | json_values, "images": small_images | json_values}
            )
        )
        images = body.get("images")
        if isinstance(images, int) and not isinstance(images, bool) and images > MAX_RESET_IMAGES:
            body["images"] = MAX_RESET_IMAGES  # no fuzzed world larger than this
        method, path = "POST", "/_sim/reset"
    elif action == "clock":
        body = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "advance": numbers
                    | st.sampled_from([1e300, "1e300", "inf", "NaN", "5", "-1", 10**30])
                    | json_values,
                    "scale": numbers | st.sampled_from([1e300, "inf", 0, -1, "nan"]) | json_values,
                    "manual": st.booleans() | json_values,
                },
            )
        )
        method, path = draw(st.sampled_from(["POST", "POST", "GET"])), "/_sim/clock"
    elif action == "faults":
        body = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "kind": st.sampled_from(["response", "latency", "drop", "throttle"]) | json_values,
                    "method": st.sampled_from([None, "GET", "get", "POST"]) | json_values,
                    "path": st.sampled_from([".*", "^/v2/cloudimages$", "(", "[a-", "^/never$", "cloudimages"])
                    | json_values,
                    "count": st.sampled_from([None, 1, 2, 0, -1]) | json_values,
                    "status": st.sampled_from([200, 204, 304, 404, 429, 500, 503, 101, 600, 99]) | json_values,
                    "body": st.sampled_from(["", "{", '{"x": 1}']) | json_values,
                    "headers": st.sampled_from([{}, {"Content-Type": "text/plain"}, {"X-A": "b"}]) | json_values,
                    "delay": st.sampled_from([0, 0.01, 601, -1]) | json_values,
                },
            )
        )
        method, path = draw(st.sampled_from(["POST", "POST", "POST", "GET", "DELETE"])), "/_sim/faults"
    elif action == "throttle":
        body = draw(st.fixed_dictionaries({}, optional={"rate": numbers | json_values, "burst": numbers | json_values}))
        method, path = "POST", "/_sim/throttle"
    elif action == "objects":
        body = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "bucket": st.sampled_from(world["buckets"]) | json_values,
                    "key": st.text(string.ascii_letters + "/_-", min_size=1, max_size=12) | json_values,
                    "size": st.integers(-5, 10**12) | json_values,
                },
            )
        )
        method, path = "POST", "/_sim/objects"
    elif action == "other":
        method, path = draw(
            st.sampled_from(
                [
                    ("POST", "/_sim/tokens/expire"),
                    ("POST", "/_sim/lockouts/reset"),
                    ("GET", "/_sim/state"),
                    ("GET", "/_sim/credentials"),
                    ("GET", "/_sim/health"),
                    ("GET", "/_sim/faults"),
                    ("DELETE", "/_sim/faults"),
                ]
            )
        )
        body = draw(st.fixed_dictionaries({}) | json_values)
    else:
        method = draw(st.sampled_from(METHODS))
        path = "/_sim/" + quote(draw(ID_TEXT), safe="/")
        body = draw(json_values)
    if isinstance(body, dict):
        body = _unknown_fields(draw, body) if action not in ("reset", "faults", "objects") else body
    raw = draw(st.sampled_from(["json", "json", "json", "json", "bytes", "broken", "deep"]))
    if raw == "bytes":
        content = draw(st.binary(max_size=40))
    elif raw == "deep":
        content = draw(deep_json)
    elif raw == "broken":
        content = json.dumps(body).encode()[:-1] or b"{"
    else:
        content = json.dumps(body).encode()
    return method, path, content


def _probe(fault: dict[str, Any], fault_body: str, ims: httpx.Client) -> None:
    """A request after an accepted fault: the fault's own effect if it matches, a normal answer otherwise."""
    if fault["kind"] == "latency" and fault["delay"] > 0.2:
        return
    matches = (fault["method"] is None or fault["method"].upper() == "GET") and re.search(fault["path"], IMAGES)
    try:
        response = ims.get(IMAGES, params={"limit": 1})
    except httpx.TransportError:
        assert matches and fault["kind"] == "drop", f"connection lost after fault {fault}"
        return
    if matches and fault["kind"] == "response":
        assert response.status_code == fault["status"] and response.text == fault_body, (fault, describe(response))
    elif matches and fault["kind"] == "throttle":
        assert response.status_code == 429 and classify(response) == ("gateway", "APIGW.0308"), describe(response)
    else:
        assert response.status_code == 200 and "images" in response.json(), (fault, describe(response))


def test_random_control_plane_requests(
    ims: httpx.Client, plain: httpx.Client, world: dict[str, Any], fresh_sim: Simulator
) -> None:
    endpoint = fresh_sim.endpoint

    @fuzz(550)
    @given(request=control_requests(world))
    @example(request=("POST", "/_sim/faults", Repeated(b"[", 50000)))
    @example(request=("POST", "/_sim/clock", b'{"advance": Infinity}'))
    @example(request=("POST", "/_sim/clock", b'{"advance": 1e300}'))
    @example(request=("POST", "/_sim/clock", b'{"scale": NaN}'))
    @example(request=("POST", "/_sim/throttle", b'{"rate": NaN}'))
    @example(request=("POST", "/_sim/objects", b'{"bucket": [], "key": "k"}'))
    @example(request=("POST", "/_sim/faults", b'{"kind": "response", "method": 5}'))
    @example(request=("POST", "/_sim/faults", b'{"kind": "response", "headers": [1], "status": 200}'))
    @example(request=("POST", "/_sim/faults", b'{"kind": "response", "body": 5, "status": 200}'))
    @example(request=("POST", "/_sim/faults", b'{"kind": "response", "status": 101}'))
    @example(request=("POST", "/_sim/faults", b'{"kind": "response", "status": 204, "body": "x"}'))
    def run(request: tuple[str, str, bytes]) -> None:
        CASES["control"] += 1
        method, path, content = request
        try:
            response = plain.request(method, path, content=content)
            no_server_error(response)
            if not response.request.url.path.startswith("/_sim/"):  # "/_sim/.." and such normalise elsewhere
                if response.status_code >= 400:
                    refusal(response, "gateway", "ims", "iam", "obs")
            elif response.status_code >= 400:
                code = refusal(response, "gateway")
                assert SIM_CODE.fullmatch(code) or method == "HEAD", describe(response)
            elif method != "HEAD":
                answer = response.json()
                assert isinstance(answer, dict), describe(response)
                json.dumps(answer, allow_nan=False)  # strict JSON: no NaN or Infinity
                if path == "/_sim/faults" and method == "POST":
                    _probe(answer["faults"][-1], json.loads(content).get("body", ""), ims)
                elif path == "/_sim/clock":  # the clock still reads, and jobs can still be planned on it
                    for after in (plain.get("/_sim/clock"), plain.get("/_sim/state")):
                        assert after.status_code == 200, describe(after)
                    export = ims.post(
                        f"/v1/cloudimages/{world['exportable'][0]}/file",
                        json={"bucket_url": f"{EXPORT_BUCKET}:clock/{CASES['control']}.qcow2", "file_format": "qcow2"},
                    )
                    assert export.status_code in (200, 400), describe(export)
                elif path == "/_sim/throttle":
                    probe = ims.get(IMAGES, params={"limit": 1})
                    assert probe.status_code in (200, 429), describe(probe)
                elif path == "/_sim/objects":
                    with httpx.Client(base_url=endpoint, auth=ObsAuth(fresh_sim.info.ak, fresh_sim.info.sk)) as obs:
                        head = obs.head(f"/{answer['bucket']}/{quote(answer['key'], safe='/')}")
                    assert head.status_code == 200, describe(head)
                    assert int(head.headers["content-length"]) == answer["size"], describe(head)
        finally:
            plain.delete("/_sim/faults")
            plain.post("/_sim/throttle", json={"rate": None})
            if path.startswith(("/_sim/reset", "/_sim/clock")):  # each example starts from the seeded world
                plain.post("/_sim/clock", json={"manual": True})
                plain.post("/_sim/reset", json={"seed": 0, "images": 200})

    try:
        run()
    finally:
        plain.post("/_sim/clock", json={"manual": True}).raise_for_status()
        plain.post("/_sim/reset", json={"seed": 0, "images": 200}).raise_for_status()
        plain.post("/_sim/throttle", json={"rate": None}).raise_for_status()


def _raw_exchange(sim: Simulator, request: bytes) -> bytes:
    """Send raw bytes on a fresh connection and return everything the server sends until it closes."""
    where = urlsplit(sim.endpoint)
    with socket.create_connection((where.hostname or "127.0.0.1", where.port or 80), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "path",
    [
        IMAGES,
        "/v1/cloudimages/x/file",
        "/v3/projects",
        f"/{EXPORT_BUCKET}/README.txt",
        "/no-such-bucket",
        "/_sim/health",
        "/_sim/nothing",
        "/?apiversion",
    ],
)
def test_head_answers_carry_no_body_on_the_wire(fresh_sim: Simulator, path: str) -> None:
    CASES["head"] += 1
    answer = _raw_exchange(fresh_sim, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 ") and int(head.split()[1]) < 500, answer[:300]
    assert rest == b"", answer[:300]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /v2/cloudimages?name=\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /v1/cloudimages/x/file HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /v1/cloudimages/x/file HTTP/1.1\r\nHost: x\r\nContent-Length: 12x\r\n\r\n",
        b"GET /v2/cloudimages HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
        b"GET /v2/clo udimages HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
def test_malformed_http_is_refused_before_the_simulator(fresh_sim: Simulator, request_bytes: bytes) -> None:
    """Not HTTP at all: the HTTP server (uvicorn/h11) refuses it with its own plain-text 400, never a 5xx.

    These never reach the ASGI application, so their body is uvicorn's, not a service's (a known limit).
    """
    CASES["malformed http"] += 1
    answer = _raw_exchange(fresh_sim, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"Traceback" not in answer


# --- 4. oversized bodies ---------------------------------------------------------------------


def test_a_13_mb_body_is_refused_by_the_gateway(ims: httpx.Client, world: dict[str, Any]) -> None:
    CASES["oversized"] += 1
    response = ims.post(f"/v1/cloudimages/{world['exportable'][0]}/file", content=b"x" * (13 * 1024 * 1024))
    assert response.status_code == 413 and refusal(response, "gateway") == "APIGW.0201"


def test_a_13_mb_streamed_body_is_refused_by_the_gateway(fresh_sim: Simulator, world: dict[str, Any]) -> None:
    CASES["oversized"] += 1

    def chunks() -> Iterator[bytes]:
        for _ in range(13):
            yield b"y" * (1024 * 1024)

    response = httpx.post(f"{fresh_sim.endpoint}/v1/cloudimages/x/file", content=chunks())
    assert response.status_code == 413 and refusal(response, "gateway") == "APIGW.0201"


def test_a_13_mb_obs_body_is_an_obs_refusal(obs: httpx.Client, world: dict[str, Any]) -> None:
    CASES["oversized"] += 1
    response = obs.put(f"/{EXPORT_BUCKET}/big.bin", content=b"z" * (13 * 1024 * 1024))
    assert response.status_code == 400 and refusal(response, "obs") == "EntityTooLarge"


@pytest.mark.parametrize("path", ["/v1/cloudimages/x/file", "/v3/auth/tokens", "/_sim/reset"])
def test_a_declared_content_length_over_the_limit_is_refused_unread(fresh_sim: Simulator, path: str) -> None:
    CASES["oversized"] += 1
    where = urlsplit(fresh_sim.endpoint)
    connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=10)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Length", str(20 * 1024 * 1024))
        connection.putheader("Content-Type", "application/json")
        connection.endheaders()  # and no body at all: the gateway must not wait for it
        answer = connection.getresponse()
        body = json.loads(answer.read())
    finally:
        connection.close()
    assert answer.status == 413
    assert set(body) == {"error_code", "error_msg", "request_id"} and body["error_code"] == "APIGW.0201"
    assert body["request_id"] == answer.getheader("X-Request-Id")


# --- 5. unsigned and badly signed requests ---------------------------------------------------

#: Header-safe text: printable ASCII, trimmed (h11 refuses leading or trailing blanks in a value).
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(str.strip)


@st.composite
def bad_credentials(draw: st.DrawFn, world: dict[str, Any]) -> tuple[str, dict[str, str], str]:
    """(how, headers to set after signing, tamper): never a correct signature."""
    info = world["info"]
    how = draw(
        st.sampled_from(
            ["none", "garbage", "fields", "wrong-sk", "unknown-ak", "skewed", "tampered", "token", "bad-date"]
        )
    )
    headers: dict[str, str] = {}
    if how == "garbage":
        headers["Authorization"] = draw(printable.filter(lambda s: not s.strip().startswith(("OBS ", "AWS "))))
    elif how == "fields":
        access = draw(st.sampled_from([info.ak, "", "AKUNKNOWN"]) | printable)
        names = draw(st.sampled_from(["host;x-sdk-date", "", "host", "x-sdk-date", ";;", "nope"]) | printable)
        sig = draw(st.text("0123456789abcdef", max_size=64) | printable)
        sep = draw(st.sampled_from([", ", ",", " ", ",,"]))
        headers["Authorization"] = f"SDK-HMAC-SHA256 Access={access}{sep}SignedHeaders={names}{sep}Signature={sig}"
        headers["X-Sdk-Date"] = draw(st.sampled_from([signing.format_sdk_date(datetime.now(UTC)), "x"]))
    elif how == "token":
        headers["X-Auth-Token"] = draw(printable.filter(lambda s: s.strip()) | st.just("MII" + "A" * 300))
    tamper = draw(st.sampled_from(["query", "body", "header", "date", "path"])) if how == "tampered" else ""
    if how == "bad-date":
        odd_dates = st.sampled_from(["", "2024-01-02T03:04:05Z", "99999999T999999Z", "20240230T000000Z"])
        headers["X-Sdk-Date"] = draw(odd_dates | printable)
    return how, headers, tamper


def test_unsigned_and_badly_signed_requests_get_apigw_0301(
    fresh_sim: Simulator, plain: httpx.Client, world: dict[str, Any]
) -> None:
    info = fresh_sim.info
    exportable = world["exportable"][0]
    routes = st.sampled_from(
        [
            ("GET", IMAGES),
            ("GET", f"/v2/images/{world['all_ids'][0]}"),
            ("POST", f"/v1/cloudimages/{exportable}/file"),
            ("POST", f"/v2.1/cloudimages/{exportable}/file"),
            ("GET", f"/v1/cloudimages/job/{'a' * 32}"),
            ("GET", f"/v1/{info.project_id}/jobs/{'a' * 32}"),
            ("GET", "/v1/cloudimages/quota"),
            ("GET", "/v3/projects"),
            ("GET", "/v3/auth/tokens"),
        ]
    )

    @fuzz(450)
    @given(
        route=routes,
        credentials=bad_credentials(world),
        query=st.sampled_from(["", "limit=1", "x=%ff&&"]),
        body=st.binary(max_size=40),
    )
    def run(route: tuple[str, str], credentials: tuple[str, dict[str, str], str], query: str, body: bytes) -> None:
        CASES["unsigned"] += 1
        method, path = route
        how, headers, tamper = credentials
        content = body if method == "POST" else b""
        url = f"{info.endpoint}{path}" + (f"?{query}" if query else "")
        request = httpx.Request(method, url, content=content)
        if how in ("wrong-sk", "unknown-ak", "skewed", "tampered", "bad-date"):
            ak = "AKUNKNOWN00000000000" if how == "unknown-ak" else info.ak
            sk = "not-the-secret" if how == "wrong-sk" else info.sk
            shift = timedelta(minutes=16) if how == "skewed" else timedelta(0)
            auth = AkSkAuth(ak, sk, project_id=info.project_id, clock=lambda: datetime.now(UTC) - shift)
            request = next(auth.sync_auth_flow(request))
            if tamper:
                request = _tampered(request, tamper)
        request.headers.update(headers)
        response = plain.send(request)
        assert response.status_code == 401, describe(response)
        if method != "HEAD":
            assert classify(response) == ("gateway", "APIGW.0301"), describe(response)

    try:
        run()
    finally:  # the fuzzing locked the operator's AK: unlock it for whatever runs next
        plain.post("/_sim/lockouts/reset").raise_for_status()


def _tampered(request: httpx.Request, how: str) -> httpx.Request:
    """The signed request with one signed part changed (the route stays the same)."""
    headers = httpx.Headers(request.headers)
    url, content = request.url, request.content
    segments = url.path.split("/")
    long_segments = [n for n, segment in enumerate(segments) if len(segment) >= 32]
    if how == "path" and long_segments:
        n = long_segments[-1]
        segments[n] = segments[n][:-1] + ("b" if segments[n][-1] != "b" else "c")
        url = url.copy_with(path="/".join(segments))
    elif how == "body":
        content = content + b" "
    elif how == "header":
        headers["x-project-id"] = "0" * 32
    elif how == "date":
        moment = signing.parse_sdk_date(headers["x-sdk-date"]) - timedelta(seconds=1)
        headers["x-sdk-date"] = signing.format_sdk_date(moment)
    else:
        url = url.copy_merge_params({"tampered": "1"})
    if "content-length" in headers:
        del headers["content-length"]
    return httpx.Request(request.method, url, content=content, headers=headers)


def test_badly_signed_obs_requests_get_obs_refusals(fresh_sim: Simulator, plain: httpx.Client) -> None:
    info = fresh_sim.info
    dates = (
        st.sampled_from(
            [
                signing.obs_date(datetime.now(UTC)),
                "",
                "x",
                "Mon, 01 Jan 99999999999 00:00:00 GMT",
                "Mon, 01 Jan 1970 25:61:61 GMT",
                "1 Jan 1 0:0:0 +9999",
                "Mon, 01 Jan 2000 00:00:00 GMT",
            ]
        )
        | printable
    )

    @fuzz(250)
    @given(
        prefix=st.sampled_from(["OBS ", "AWS "]),
        access=st.sampled_from([info.ak, "", "AKUNKNOWN"]) | printable,
        sig=printable,
        date=dates,
        date_header=st.sampled_from(["Date", "x-obs-date", "x-amz-date"]),
        path=st.sampled_from([f"/{EXPORT_BUCKET}", "/", "/nobucket/key", f"/{EXPORT_BUCKET}/README.txt"]),
        method=st.sampled_from(["GET", "HEAD", "PUT"]),
    )
    @example(
        prefix="OBS ",
        access=info.ak,
        sig="x",
        date="Mon, 01 Jan 99999999999 00:00:00 GMT",
        date_header="Date",
        path="/",
        method="GET",
    )
    def run(prefix: str, access: str, sig: str, date: str, date_header: str, path: str, method: str) -> None:
        CASES["obs unsigned"] += 1
        headers = {"Authorization": f"{prefix}{access}:{sig}".strip(), date_header: date}
        response = plain.request(method, path, headers=headers)
        assert response.status_code == 403, describe(response)
        code = refusal(response, "obs")
        if method != "HEAD":
            assert code in ("AccessDenied", "InvalidAccessKeyId", "RequestTimeTooSkewed", "SignatureDoesNotMatch")

    run()
