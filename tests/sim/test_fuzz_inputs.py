"""Fuzzed library inputs and simulator requests: a documented answer, never an unexpected exception or a 500.

Hypothesis drives ``bucket_url`` and key templates through ``preflight``, ``preflight_summary``,
``plan_exports`` and ``review`` (without and with a client), image records with missing, extra and wrongly
typed fields through ``images_frame``, ``preflight`` and ``plan_exports``, and, adding to
``tests/test_sim_bad_input.py``, random requests at every gateway route with a real IAM token and OBS
requests addressed by virtual host. The library returns its documented frames or raises ``ConfigError``
(``images_frame``: ``TypeError`` for a record that is not a mapping, as documented); the simulator answers
2xx or a service-shaped 4xx.

``IMS_NB_FUZZ_SCALE=10`` multiplies every example count.
"""

from __future__ import annotations

import math
import string
from collections import Counter
from collections.abc import Generator
from contextlib import suppress
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import ims_nb
from ims_nb import signing
from ims_nb.client.auth import AkSkAuth
from ims_nb.errors import ConfigError
from ims_nb.exports.plan import PLAN_COLUMNS, plan_exports, review
from ims_nb.frames import IMAGE_COLUMNS, images_frame
from ims_nb.preflight import SUMMARY_COLUMNS, VIOLATION_COLUMNS, preflight, preflight_summary
from ims_nb.rules import DEFAULT_PROFILE, RULE_IDS, SIMULATOR_PROFILE, STRICT, Severity
from ims_nb.sim import Simulator
from tests.sim.answers import no_server_error, refusal
from tests.sim.strategies import (
    ID_TEXT,
    OBS_SUB_RESOURCES,
    case_summary,
    fuzz,
    gateway_paths,
    json_values,
    odd_text,
    random_bodies,
    raw_queries,
)

BUCKET = "ims-exports-cn-north-4"
BUCKETS = (BUCKET, "ims-exports-scratch", "ims-archive-cold", "ims-exports-ap-southeast-1", "no-such-bucket")
#: ImageInfo fields as ListImages spells them (the reference), the ones ``images_frame`` reads and a few it does not.
IMAGE_FIELDS = ("id", "name", "status", "__platform", "__os_version", "__os_type", "__os_bit", "__imagetype",
                "visibility", "virtual_env_type", "disk_format", "owner", "__system__cmkid", "__originalimagename",
                "__productcode", "__root_origin", "__backup_id", "enterprise_project_id", "architecture",
                "__image_size", "min_disk", "min_ram", "created_at", "updated_at", "__whole_image", "protected",
                "tags", "hw_firmware_type", "size", "file", "self", "schema", "__data_origin")  # fmt: skip
CASES: Counter[str] = Counter()


_summary = case_summary("library and simulator fuzz cases tried", CASES)


@pytest.fixture(scope="module")
def records(sim: Simulator) -> list[dict[str, Any]]:
    """Every image record of the session simulator (seed 0, 200 images), as ListImages returns them."""
    info = sim.info
    with ims_nb.connect(info.region, ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint) as c:
        return list(c.iter_images())


# --- what a documented answer is --------------------------------------------------------------------


def check_violations(violations: pd.DataFrame, ids: list[Any]) -> None:
    assert list(violations.columns) == list(VIOLATION_COLUMNS)
    assert set(violations["rule"]) <= set(RULE_IDS)
    assert set(violations["severity"]) <= {Severity.ERROR.value, Severity.WARNING.value}
    if all(isinstance(i, str) for i in ids):  # others become their str() (bytes decoded): not compared
        assert set(violations["image_id"].dropna()) <= set(ids)


def check_summary(summary: pd.DataFrame, violations: pd.DataFrame, count: int) -> None:
    """One row per image; ``exportable`` exactly when no error names it (checked when the ids are unique)."""
    assert list(summary.columns) == list(SUMMARY_COLUMNS) and len(summary) == count
    assert summary["exportable"].notna().all()
    assert all(isinstance(rules, list) and set(rules) <= set(RULE_IDS) for rules in summary["blocking"])
    ids = summary["image_id"]
    if ids.notna().all() and ids.is_unique:
        errors = set(violations.loc[violations["severity"] == Severity.ERROR.value, "image_id"])
        assert [not bool(e) for e in summary["exportable"]] == [i in errors for i in ids]


def check_plan(plan: pd.DataFrame, count: int) -> None:
    assert list(plan.columns)[: len(PLAN_COLUMNS)] == list(PLAN_COLUMNS) and len(plan) == count
    assert plan["exportable"].notna().all()
    assert all(set(rules) <= set(RULE_IDS) for rules in plan["blocking"])


# --- strategies -------------------------------------------------------------------------------------


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], one_in: int = 4) -> st.SearchStrategy[Any]:
    """``good``, and ``bad`` one time in ``one_in``: most examples get past the argument checks to the rules.

    (Hypothesis leans towards small integers, so the bad branch is the largest one.)
    """
    return st.integers(0, one_in - 1).flatmap(lambda n: bad if n == one_in - 1 else good)


#: Key templates: every documented field, and (one time in three) what ``check_key_template`` must refuse.
GOOD_PARTS = ("{name}", "{id}", "{id8}", "{ext}", "{platform}", "{format}", "{{", "}}", "/", "//", ".", "-", "_", " ",
              "x" * 130, "exports/", ".qcow2", ".zvhd2", "ü", "%", "\x00", "\n")  # fmt: skip
BAD_PARTS = ("{bad}", "{0}", "{}", "{id!r}", "{id:>5}", "{id.real}", "{id[0]}", "{", "}")
plain_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]).filter(lambda c: c not in "{}"), max_size=8
)
templates = mostly(
    st.lists(st.sampled_from(GOOD_PARTS) | plain_text, max_size=5).map("".join),
    st.lists(st.sampled_from(GOOD_PARTS + BAD_PARTS) | odd_text, min_size=1, max_size=5).map("".join),
    one_in=3,
)
bucket_names = st.sampled_from([*BUCKETS, "Upper", "a", "-bad", "a..b", "192.168.1.1", "x" * 64, ""]) | odd_text
bucket_urls = (
    st.builds(lambda b, sep, k: f"{b}{sep}{k}", bucket_names, st.sampled_from([":", ":", "::", "", "/"]), templates)
    | odd_text
)
#: Values of the wrong type for anything: JSON values and Python objects a caller could pass.
ODD_OBJECTS = (None, float("nan"), float("inf"), -1, 0, 2**64, -(2**70), 1.5, True, "", " ", "1e3", "true", "NULL",
               [], {}, [1, "a"], {"a": 1}, b"\xff\xfe", b"qcow2", Decimal("1.5"), datetime(2025, 1, 1, tzinfo=UTC),
               ("tuple",), {"set"}, object())  # fmt: skip
odd_values = st.sampled_from(ODD_OBJECTS) | json_values | odd_text
file_formats = mostly(st.sampled_from([None, "qcow2", "vhd", "zvhd", "vmdk"]), st.sampled_from(["QCOW2", "zvhd2", "raw",
                      ""]) | odd_values)  # fmt: skip
quick_flags = mostly(st.booleans(), st.sampled_from([None, 1, "yes", [True]]))
profiles = mostly(
    st.sampled_from([None, None, SIMULATOR_PROFILE, STRICT, DEFAULT_PROFILE]), st.sampled_from(["strict", 5])
)
regions = mostly(st.sampled_from([None, None, "cn-north-4", "eu-west-0", "nowhere"]), st.sampled_from(["", 5, b"x"]))


@st.composite
def mutated_records(draw: st.DrawFn, base: list[dict[str, Any]]) -> list[Any]:
    """Real records with fields missing, wrongly typed or added; now and then an item that is not a record."""
    found: list[Any] = []
    for record in draw(st.lists(st.sampled_from(base), max_size=6)):
        record = dict(record)
        for name in draw(st.lists(st.sampled_from(sorted(record)), max_size=4)):
            record.pop(name, None)
        for name in draw(st.lists(st.sampled_from(IMAGE_FIELDS), max_size=4)):
            record[name] = draw(odd_values)
        for _ in range(draw(st.integers(0, 2))):
            record[draw(st.text(max_size=10) | st.sampled_from(IMAGE_FIELDS))] = draw(odd_values)
        found.append(record)
    if draw(st.integers(0, 9)) == 9:  # Hypothesis leans towards small integers
        found.insert(draw(st.integers(0, len(found))), draw(odd_values))
    return found


# --- bucket_url and key templates ------------------------------------------------------------------------


def judge(records: list[Any], bucket_url: Any, file_format: Any, quick: Any, region: Any, profile: Any,
          client: Any = None) -> str:  # fmt: skip
    """preflight and preflight_summary of the same arguments: both answer, or both refuse with ConfigError."""
    arguments = {"bucket_url": bucket_url, "file_format": file_format, "quick": quick, "region": region,
                 "client": client, "profile": profile}  # fmt: skip
    try:
        violations = preflight(records, **arguments)
    except ConfigError:
        with pytest.raises(ConfigError):
            preflight_summary(records, **arguments)
        return "refused"
    summary = preflight_summary(records, **arguments)
    check_violations(violations, [r.get("id") for r in records])
    check_summary(summary, violations, len(records))
    return "judged"


def test_bucket_urls_and_key_templates_through_preflight(records: list[dict[str, Any]]) -> None:
    @fuzz(100)
    @given(
        picked=st.lists(st.sampled_from(records), max_size=5, unique_by=lambda r: r["id"]),
        bucket_url=mostly(bucket_urls, odd_values),
        file_format=file_formats,
        quick=quick_flags,
        region=regions,
        profile=profiles,
    )
    @example(picked=records[:2], bucket_url=f"{BUCKET}:{{id!r}}", file_format="qcow2", quick=False, region=None,
             profile=None)  # fmt: skip
    @example(picked=records[:2], bucket_url=f"{BUCKET}:{{id:>5}}", file_format=None, quick=True, region=None,
             profile=None)  # fmt: skip
    @example(picked=records[:1], bucket_url=b"bucket:key", file_format="qcow2", quick=False, region=None, profile=None)
    def run(picked: list[dict[str, Any]], bucket_url: Any, file_format: Any, quick: Any, region: Any,
            profile: Any) -> None:  # fmt: skip
        CASES[f"preflight bucket_url ({judge(picked, bucket_url, file_format, quick, region, profile)})"] += 1

    run()


def test_bucket_names_and_key_templates_through_plan_exports(records: list[dict[str, Any]]) -> None:
    @fuzz(100)
    @given(
        picked=st.lists(st.sampled_from(records), max_size=5, unique_by=lambda r: r["id"]),
        bucket=mostly(bucket_names, odd_values),
        key_template=mostly(templates, odd_values),
        file_format=file_formats,
        quick=mostly(st.sampled_from(["auto", True, False]), st.sampled_from(["no", None, 2])),
        profile=profiles,
    )
    @example(picked=records[:3], bucket=BUCKET, key_template="same.qcow2", file_format="qcow2", quick="auto",
             profile=None)  # fmt: skip
    @example(picked=[], bucket=BUCKET, key_template="", file_format=None, quick="auto", profile="strict")
    def run(picked: list[dict[str, Any]], bucket: Any, key_template: Any, file_format: Any, quick: Any,
            profile: Any) -> None:  # fmt: skip
        arguments = {"bucket": bucket, "key_template": key_template, "file_format": file_format, "quick": quick,
                     "profile": profile}  # fmt: skip
        try:
            plan = plan_exports(picked, **arguments)
        except ConfigError:
            CASES["plan_exports bucket/template (refused)"] += 1
            return
        checked = review(picked, **arguments)
        check_plan(plan, len(picked))
        check_violations(checked.violations, [r["id"] for r in picked])
        assert plan["bucket_url"].is_unique or len(plan) < 2
        CASES["plan_exports bucket/template (planned)"] += 1

    run()


def test_bucket_urls_with_a_client_look_up_only_valid_targets(
    records: list[dict[str, Any]], connect_sim: Any, sent: Any
) -> None:
    """With a client the buckets, objects and running exports are asked; a malformed target sends nothing."""
    client = connect_sim()

    @fuzz(30)
    @given(
        picked=st.lists(st.sampled_from(records), min_size=1, max_size=4, unique_by=lambda r: r["id"]),
        bucket=st.sampled_from(BUCKETS) | bucket_names,
        template=st.sampled_from(["{name}-{id8}.{ext}", "README.txt", "{id}.qcow2"]) | templates,
        file_format=st.sampled_from(["qcow2", "vhd", None]),
        quick=st.booleans(),
    )
    def run(picked: list[dict[str, Any]], bucket: str, template: str, file_format: str | None, quick: bool) -> None:
        sent.clear()
        outcome = judge(picked, f"{bucket}:{template}", file_format, quick, None, None, client=client)
        CASES[f"preflight with a client ({outcome})"] += 1
        asked = {request.url.path.split("/")[1] for request in sent.matching(path=r"^/(?!v\d)")}
        assert asked <= {bucket}, asked  # OBS lookups name only the target's bucket

    run()


# --- image records with missing, extra and wrongly typed fields -------------------------------------------


def test_image_records_through_images_frame(records: list[dict[str, Any]]) -> None:
    @fuzz(300)
    @given(items=mutated_records(records))
    @example(items=[{"__image_size": 2**64, "created_at": "9999-12-31T00:00:00Z", "tags": "a,,b", "name": b"\xff"}])
    @example(items=[{"__whole_image": "TRUE", "protected": 2, "__os_bit": "64.0", "min_disk": float("inf")}])
    @example(items=[{"id": None, "tags": [None, 1, {"k": "v"}]}, {}])
    def run(items: list[Any]) -> None:
        try:
            frame = images_frame(items)
        except TypeError as exc:  # documented: a record that is not a mapping, named by its position
            assert "is a" in str(exc) and "not a mapping" in str(exc)
            CASES["images_frame (TypeError: not a mapping)"] += 1
            return
        CASES["images_frame (typed)"] += 1
        assert list(frame.columns) == list(IMAGE_COLUMNS) and len(frame) == len(items)
        assert {c: str(frame[c].dtype) for c in frame.columns} == dict(IMAGE_COLUMNS)
        assert all(isinstance(tags, list) and all(isinstance(t, str) for t in tags) for tags in frame["tags"])
        sizes = frame["size_gb"].dropna()
        assert all(math.isfinite(size) for size in sizes)

    run()


def test_image_records_through_preflight_and_plan_exports(records: list[dict[str, Any]]) -> None:
    """With valid arguments, records of any shape are judged, never refused: only a non-record is a ConfigError
    (and ``plan_exports`` refuses two records that get one target)."""

    @fuzz(60)
    @given(
        items=mutated_records(records),
        template=st.sampled_from(["{name}-{id8}.{ext}", "{id}.{ext}", "{platform}/{name}.{format}"]),
        quick=st.booleans(),
    )
    def run(items: list[Any], template: str, quick: bool) -> None:
        mappings = all(isinstance(item, dict) for item in items)
        file_format = None if quick else "qcow2"
        outcome = judge(items, f"{BUCKET}:{template}", file_format, quick, None, None)
        assert outcome == "judged" or not mappings, items
        try:
            plan = plan_exports(items, bucket=BUCKET, key_template=template)
        except ConfigError as exc:
            assert not mappings or "target(s) to several images" in str(exc), exc
            planned = "refused"
        else:
            check_plan(plan, len(items))
            planned = "planned"
        CASES[f"records through preflight ({outcome}) and plan_exports ({planned})"] += 1

    run()


@pytest.mark.parametrize(
    "images",
    [None, 5, "an-image-id", ["a", 1], [b"bytes"], {"id": 1, "name": {}}, iter([{"id": "x"}]), (),
     pd.DataFrame({"id": ["x"]}), pd.DataFrame({c: [object()] for c in IMAGE_COLUMNS})],
    ids=["none", "int", "an id without client", "mixed", "bytes", "one odd record", "a generator", "empty",
         "frame lacking columns", "frame of objects"],
)  # fmt: skip
def test_images_arguments_of_the_wrong_shape(images: Any) -> None:
    CASES["images arguments of the wrong shape"] += 1
    for judge_images in (preflight, preflight_summary):
        try:
            frame = judge_images(images, bucket_url=f"{BUCKET}:{{id}}.qcow2", file_format="qcow2")
        except ConfigError:
            continue
        assert isinstance(frame, pd.DataFrame)
    with suppress(ConfigError):
        plan_exports(images, bucket=BUCKET)


@pytest.mark.parametrize("judged", [plan_exports, review, preflight, preflight_summary])
def test_a_profile_that_is_not_a_region_profile_is_a_config_error(judged: Any) -> None:
    """Regression: ``plan_exports`` and ``review`` took ``profile="strict"`` and failed in a rule with an
    AttributeError; now every entry point refuses it as ``preflight`` did."""
    arguments = {"bucket": BUCKET} if judged in (plan_exports, review) else {"bucket_url": f"{BUCKET}:x.qcow2"}
    with pytest.raises(ConfigError, match="profile must be a RegionProfile"):
        judged([], profile="strict", **arguments)


# --- the simulator: every gateway route with a real IAM token ---------------------------------------------


@pytest.fixture()
def token_world(fresh_sim: Simulator, sim_users: dict[str, Any]) -> dict[str, Any]:
    """A project-scoped IAM token of the operator (password login), and what ``gateway_paths`` aims at."""
    info = fresh_sim.info
    operator = next(user for user in sim_users["users"] if user["name"] == "ims-operator")
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": operator["name"], "password": operator["password"], "domain": {"name": sim_users["domain_name"]}}}},
        "scope": {"project": {"name": info.region}},
    }}  # fmt: skip
    response = httpx.post(f"{info.endpoint}/v3/auth/tokens", json=body)
    assert response.status_code == 201, response.text
    state = httpx.get(f"{info.endpoint}/_sim/state").json()
    with httpx.Client(base_url=info.endpoint, auth=AkSkAuth(info.ak, info.sk, project_id=info.project_id)) as client:
        images = client.get("/v2/cloudimages", params={"limit": 1000}).json()["images"]
    return {
        "token": response.headers["X-Subject-Token"],
        "project_id": info.project_id,
        "all_ids": [image["id"] for image in images],
        "buckets": [bucket["name"] for bucket in state["buckets"]],
        "objects": [(obj["bucket"], obj["key"]) for obj in state["objects"]],
    }


def test_random_requests_with_a_real_token_at_every_gateway_route(
    fresh_sim: Simulator, token_world: dict[str, Any]
) -> None:
    headers = {"X-Auth-Token": token_world["token"]}

    @fuzz(250)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        CASES["simulator: token-authenticated routes"] += 1
        method = data.draw(st.sampled_from(["GET", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]))
        path = data.draw(gateway_paths(token_world))
        query = data.draw(st.sampled_from([""]) | raw_queries())
        body = b"" if method in ("GET", "HEAD") else data.draw(random_bodies)
        project = data.draw(st.sampled_from([{}, {"X-Project-Id": token_world["project_id"]}, {"X-Project-Id": "x"}]))
        url = httpx.URL(path, query=query.encode("ascii")) if query else httpx.URL(path)
        response = client.request(method, url, content=body, headers={**headers, **project})
        no_server_error(response)
        if response.status_code >= 400:
            refusal(response, "ims", "gateway", "iam")
        else:
            assert response.status_code in (200, 201), response.status_code

    with httpx.Client(base_url=fresh_sim.endpoint) as client:
        run()


# --- the simulator: OBS addressed by virtual host ----------------------------------------------------------


class VirtualHostAuth(httpx.Auth):
    """Signs an OBS request for the bucket its ``Host`` header names (``<bucket>.obs.<region>...``)."""

    def __init__(self, access_key: str, secret_key: str) -> None:
        self._access_key = access_key
        self._secret_key = secret_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Date"] = signing.obs_date(datetime.now(UTC))
        host = request.headers.get("host", "").rsplit(":", 1)[0]
        bucket = host.split(".obs.", 1)[0] if ".obs." in host else ""
        sub = {name: (value or None) for name, value in request.url.params.multi_items()}
        resource = signing.obs_canonical_resource(bucket, request.url.path.lstrip("/"), sub, path_style=not bucket)
        to_sign = signing.obs_string_to_sign(request.method, dict(request.headers), resource)
        request.headers["Authorization"] = signing.obs_authorization(
            self._access_key, signing.obs_signature(self._secret_key, to_sign)
        )
        yield request


HOST_TEXT = st.text(string.ascii_letters + string.digits + ".-_:[]", max_size=30)


@st.composite
def virtual_host_requests(draw: st.DrawFn, world: dict[str, Any]) -> tuple[str, str, str, bool]:
    bucket = draw(st.sampled_from(world["buckets"]) | st.sampled_from(["no-such-bucket", "UPPER", ""]) | HOST_TEXT)
    host = draw(
        st.sampled_from(
            [
                f"{bucket}.obs.cn-north-4.myhuaweicloud.com",
                f"{bucket}.obs.cn-north-4.myhuaweicloud.com:443",
                f"{bucket}.obs.x",
                f"{bucket}.",
                f"obs.{bucket}",
                "obs.cn-north-4.myhuaweicloud.com",
                "[::1]:80",
                bucket,
            ]
        )  # fmt: skip
        | HOST_TEXT
    )
    existing = draw(st.sampled_from(world["objects"]))
    key = draw(st.sampled_from([existing[1], "", "no/such.qcow2"]) | ID_TEXT)
    pairs = [
        quote(name, safe="") if value is None else f"{quote(name, safe='')}={quote(value, safe='')}"
        for name, value in draw(
            st.lists(
                st.tuples(st.sampled_from(OBS_SUB_RESOURCES) | odd_text.filter(bool), st.none() | odd_text), max_size=2
            )  # fmt: skip
        )
    ]
    method = draw(st.sampled_from(["GET", "GET", "HEAD", "HEAD", "PUT", "DELETE", "POST"]))
    return method, host, "/" + quote(key, safe="/") + ("?" + "&".join(pairs) if pairs else ""), draw(st.booleans())


def test_obs_requests_addressed_by_virtual_host(fresh_sim: Simulator, token_world: dict[str, Any]) -> None:
    info = fresh_sim.info
    auth = VirtualHostAuth(info.ak, info.sk)

    @fuzz(200)
    @given(request=virtual_host_requests(token_world))
    @example(request=("GET", f"{BUCKET}.obs.cn-north-4.myhuaweicloud.com", "/?location", True))
    def run(request: tuple[str, str, str, bool]) -> None:
        CASES["simulator: OBS by virtual host"] += 1
        method, host, target, signed = request
        headers = {"Host": host, "Range": "bytes=0-1023"}
        response = client.request(method, target, headers=headers, auth=auth if signed else None)
        no_server_error(response)
        if response.status_code >= 400:
            refusal(response, *(("obs",) if signed else ("obs", "gateway", "ims", "iam")))

    with httpx.Client(base_url=info.endpoint) as client:
        run()
