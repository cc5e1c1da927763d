"""The rule table (``ims_nb.rules``): each rule on hand-built frames, region profiles, bucket_url parsing, templates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ims_nb.errors import ConfigError
from ims_nb.frames import images_frame
from ims_nb.preflight import VIOLATION_COLUMNS, build_plan, evaluate
from ims_nb.rules import (
    DEFAULT_PROFILE,
    MISSING,
    RULES,
    RULES_BY_ID,
    SIMULATOR_PROFILE,
    STRICT,
    RegionProfile,
    Severity,
    Verdict,
    bucket_url_problem,
    fill,
    profile_for,
    template_fields,
)

GiB = 1024**3
PROJECT = "0123456789abcdef0123456789abcdef"
IMAGE_ID = "1a2b3c4d-0000-4000-8000-00000000beef"
PARENT_ID = "9f8e7d6c-0000-4000-8000-00000000cafe"
ALLOWED = RegionProfile("allowed", Verdict.ALLOWED, Verdict.ALLOWED, "a region that allows both")
DESIGN_RULE_IDS = (  # DESIGN.md, "Interfaces other parts rely on"
    "image-not-private", "image-not-active", "full-ecs-image", "iso-image", "restricted-os-origin",
    "koogallery-origin", "size-limit", "fast-export-required", "encrypted-fast-export", "format-unsupported",
    "format-with-fast-export", "bucket-url-invalid", "bucket-not-found", "bucket-region-mismatch",
    "bucket-not-standard", "object-exists", "object-extension-mismatch", "already-exporting",
)  # fmt: skip
DESIGN_MD = Path(__file__).resolve().parent.parent.parent / "shared" / "DESIGN.md"


def record(**fields: Any) -> dict[str, Any]:
    """An ImageInfo record the service exports (CentOS-derived, 10 GiB, private, active); ``fields`` override."""
    base: dict[str, Any] = {
        "id": IMAGE_ID,
        "name": "web-01",
        "status": "active",
        "__platform": "CentOS",
        "__os_version": "CentOS 7.9 64bit",
        "__imagetype": "private",
        "visibility": "private",
        "virtual_env_type": "FusionCompute",
        "disk_format": "zvhd2",
        "owner": PROJECT,
        "__image_size": str(10 * GiB),
        "__originalimagename": PARENT_ID,
        "__whole_image": False,
        "__system__cmkid": "",
        "__productcode": "",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not DROP}


DROP = object()  # a field value meaning "leave the field out"


def judge(
    records: list[dict[str, Any]],
    *,
    bucket_url: str = "ims-exports-cn-north-4:exports/{id8}.{ext}",
    file_format: str | None = "qcow2",
    quick: bool = False,
    profile: RegionProfile = STRICT,
    region: str | None = "cn-north-4",
    project_id: str | None = PROJECT,
    **lookups: Any,
) -> pd.DataFrame:
    """``build_plan`` + ``evaluate`` on hand-built records; ``lookups`` set plan columns a client would fill."""
    plan = build_plan(
        images_frame(records),
        bucket_url=bucket_url,
        file_format=file_format,
        quick=quick,
        region=region,
        project_id=project_id,
    )
    for column, value in lookups.items():
        plan[column] = pd.Series(value, index=plan.index, dtype=plan[column].dtype)
    return evaluate(plan, profile)


def fired(violations: pd.DataFrame) -> set[str]:
    return set(violations["rule"])


def only(violations: pd.DataFrame, rule: str) -> pd.Series:
    """The single violation row of ``rule``."""
    rows = violations[violations["rule"] == rule]
    assert len(rows) == 1, violations.to_string()
    return rows.iloc[0]


# --- the rule table itself ------------------------------------------------------------------------


def test_every_design_rule_id_is_in_the_table_and_nothing_else() -> None:
    assert {rule.id for rule in RULES} == set(DESIGN_RULE_IDS)
    assert len(RULES) == len(RULES_BY_ID) == len(DESIGN_RULE_IDS)  # no id twice


def test_the_rule_list_in_design_md_matches_the_table() -> None:
    if not DESIGN_MD.exists():
        pytest.skip(f"{DESIGN_MD} is not here")
    text = DESIGN_MD.read_text().split("Rule ids are stable strings", 1)[1].split("- Exports:", 1)[0]
    assert set(re.findall(r"`([a-z0-9-]+)`", text)) == {rule.id for rule in RULES}


def test_every_rule_is_complete_data() -> None:
    plan = build_plan(images_frame([record()]), bucket_url="b:k", file_format="qcow2", quick=False,
                      region="cn-north-4", project_id=PROJECT)  # fmt: skip
    for rule in RULES:
        assert rule.severity in (Severity.ERROR, Severity.WARNING), rule.id
        assert rule.columns and set(rule.columns) <= set(plan.columns), rule.id
        assert set(template_fields(rule.message)) <= set(plan.columns), rule.id
        assert set(template_fields(rule.fix)) <= set(plan.columns), rule.id
        assert rule.source, rule.id
        if rule.severity is Severity.ERROR:
            assert rule.code is not None and re.fullmatch(r"IMG\.\d{4}", rule.code), rule.id
        result = rule.check(plan, STRICT)
        assert isinstance(result, pd.Series) and result.dtype == bool and len(result) == 1, rule.id


def test_a_clean_image_passes_every_rule() -> None:
    assert judge([record()]).empty
    assert judge([record()], quick=True, file_format=None, bucket_url="b-1:x/{name}.{ext}").empty


# --- each rule fires on its case and not on its neighbours ------------------------------------

# (rule, record fields, judge() arguments, expected code, what the message must name)
FIRES: list[tuple[str, dict[str, Any], dict[str, Any], str | None, str]] = [
    ("image-not-private", {"__imagetype": "gold", "visibility": "public", "owner": "public-owner"}, {},
     "IMG.0077", "gold"),
    ("image-not-private", {"__imagetype": DROP, "visibility": "public"}, {}, "IMG.0077", "public"),
    ("image-not-private", {"__imagetype": "market", "visibility": "public", "__productcode": "00301-abc"}, {},
     "IMG.0078", "market"),
    ("image-not-private", {"__imagetype": "shared", "visibility": "shared", "owner": "other-tenant"}, {},
     "IMG.0106", "other-tenant"),
    ("image-not-private", {"owner": DROP}, {}, "IMG.0106", MISSING),
    ("image-not-active", {"status": "queued"}, {}, "IMG.0046", "queued"),
    ("image-not-active", {"status": "killed"}, {}, "IMG.0046", "killed"),
    ("image-not-active", {"status": DROP}, {}, "IMG.0046", MISSING),
    ("full-ecs-image", {"__whole_image": True}, {}, "IMG.0128", "web-01"),
    ("full-ecs-image", {"__whole_image": "true"}, {}, "IMG.0128", "full-ECS"),
    ("iso-image", {"virtual_env_type": "IsoImage"}, {}, "IMG.0167", "ISO"),
    ("koogallery-origin", {"__productcode": "00301-8f2a1c"}, {}, "IMG.0078", "00301-8f2a1c"),
    ("restricted-os-origin", {"__platform": "Windows"}, {}, "IMG.0071", "Windows"),
    ("restricted-os-origin", {"__platform": "SUSE"}, {}, "IMG.0071", PARENT_ID),
    ("restricted-os-origin", {"__platform": "Red Hat"}, {}, "IMG.0071", "Red Hat"),
    ("restricted-os-origin", {"__platform": "Oracle Linux"}, {}, "IMG.0071", "Oracle Linux"),
    ("restricted-os-origin", {"__platform": "Ubuntu"}, {}, "IMG.0071", "Ubuntu"),
    ("size-limit", {"__image_size": str(1024 * GiB)}, {"quick": True, "file_format": None}, "IMG.0071", "1024.0 GiB"),
    ("size-limit", {"__image_size": str(1300 * GiB)}, {}, "IMG.0071", "1300.0 GiB"),
    ("fast-export-required", {"__image_size": str(128 * GiB + 1)}, {}, "IMG.0160", "128.0 GiB"),
    ("fast-export-required", {"__image_size": str(700 * GiB)}, {"file_format": "vmdk"}, "IMG.0160", "700.0 GiB"),
    ("encrypted-fast-export", {"__system__cmkid": "kms-key-42"}, {"quick": True, "file_format": None},
     "IMG.0071", "kms-key-42"),
    ("format-unsupported", {}, {"file_format": "raw", "bucket_url": "b-1:x.raw"}, "IMG.0072", "raw"),
    ("format-unsupported", {}, {"file_format": None, "bucket_url": "b-1:x"}, "IMG.0001", MISSING),
    ("format-with-fast-export", {}, {"quick": True, "file_format": "qcow2"}, "IMG.0001", "qcow2"),
    ("bucket-url-invalid", {}, {"bucket_url": "Bad_Bucket:x/{id8}.{ext}"}, "IMG.0109", "Bad_Bucket"),
    ("bucket-url-invalid", {}, {"bucket_url": ":x.qcow2"}, "IMG.0068", "empty"),
    ("bucket-url-invalid", {}, {"bucket_url": "b-1:x y.qcow2"}, "IMG.0175", "x y.qcow2"),
    ("bucket-url-invalid", {}, {"bucket_url": "b-1:x*y.qcow2"}, "IMG.0075", "x*y.qcow2"),
    ("bucket-url-invalid", {}, {"bucket_url": "b-1:"}, "IMG.0073", "empty"),
    ("bucket-url-invalid", {}, {"bucket_url": "b-1"}, "IMG.0017", "b-1"),
    ("bucket-not-found", {}, {"bucket_exists": False}, "IMG.0069", "ims-exports-cn-north-4"),
    ("bucket-region-mismatch", {}, {"bucket_exists": True, "bucket_region": "ap-southeast-1"},
     "IMG.0058", "ap-southeast-1"),
    ("bucket-not-standard", {}, {"bucket_exists": True, "bucket_class": "WARM"}, "IMG.0069", "WARM"),
    ("bucket-not-standard", {}, {"bucket_exists": True, "bucket_class": "DEEP_ARCHIVE"}, "IMG.0069", "DEEP_ARCHIVE"),
    ("object-exists", {}, {"object_exists": True, "bucket_url": "b-1:exports/web.qcow2"}, "IMG.0070",
     "exports/web.qcow2"),
    ("object-extension-mismatch", {}, {"bucket_url": "b-1:exports/web.vhd"}, None, "exports/web.vhd"),
    ("object-extension-mismatch", {}, {"quick": True, "file_format": None, "bucket_url": "b-1:web.qcow2"}, None,
     "web.qcow2"),
    ("already-exporting", {}, {"exporting": True, "exporting_job": "ff80808212345678"}, "IMG.0148",
     "ff80808212345678"),
]  # fmt: skip

# (rule, record fields, judge() arguments): a near miss the rule must let through
SPARES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("image-not-private", {}, {}),
    ("image-not-private", {"owner": "someone-else"}, {"project_id": None}),  # no project known: no owner check
    ("image-not-active", {"status": "active"}, {}),
    ("full-ecs-image", {"__whole_image": False}, {}),
    ("full-ecs-image", {"__whole_image": DROP}, {}),
    ("iso-image", {"virtual_env_type": "DataImage"}, {}),
    ("koogallery-origin", {"__productcode": ""}, {}),
    ("koogallery-origin", {"__imagetype": "market", "visibility": "public", "__productcode": "00301-a"}, {}),
    ("restricted-os-origin", {"__platform": "Windows", "__originalimagename": "", "__root_origin": "file"}, {}),
    ("restricted-os-origin", {"__platform": "Debian"}, {}),
    ("restricted-os-origin", {"__platform": "Ubuntu"}, {"profile": ALLOWED}),
    ("size-limit", {"__image_size": str(1024 * GiB - 1)}, {"quick": True, "file_format": None}),
    ("fast-export-required", {"__image_size": str(128 * GiB)}, {}),  # exactly 128 GiB: normal export allowed
    ("fast-export-required", {"__image_size": str(200 * GiB)}, {"quick": True, "file_format": None}),
    ("fast-export-required", {"__image_size": str(1024 * GiB)}, {}),  # size-limit's case, not this one
    ("fast-export-required", {"__image_size": str(200 * GiB)}, {"profile": ALLOWED}),
    ("encrypted-fast-export", {"__system__cmkid": "kms-key-42"}, {}),
    ("encrypted-fast-export", {}, {"quick": True, "file_format": None}),
    ("format-unsupported", {}, {"file_format": "vmdk", "bucket_url": "b-1:x.vmdk"}),
    ("format-unsupported", {}, {"file_format": None, "quick": True}),
    ("format-with-fast-export", {}, {"file_format": None, "quick": True}),
    ("format-with-fast-export", {}, {"file_format": "qcow2"}),
    ("bucket-url-invalid", {}, {"bucket_url": "my.bucket-1:dir/sub_dir/file-1.2.qcow2"}),
    ("bucket-not-found", {}, {"bucket_exists": True}),
    ("bucket-not-found", {}, {}),  # not looked up (no client): unknown is not "missing"
    ("bucket-region-mismatch", {}, {"bucket_exists": True, "bucket_region": "cn-north-4"}),
    ("bucket-not-standard", {}, {"bucket_exists": True, "bucket_class": "STANDARD"}),
    ("object-exists", {}, {"object_exists": False}),
    ("object-extension-mismatch", {}, {"bucket_url": "b-1:exports/web.QCOW2"}),
    ("object-extension-mismatch", {}, {"quick": True, "file_format": None, "bucket_url": "b-1:web.zvhd2"}),
    ("object-extension-mismatch", {}, {"bucket_url": "b 1:web.vhd"}),  # bucket-url-invalid already says it
    ("already-exporting", {}, {"exporting": False}),
]


@pytest.mark.parametrize(("rule", "fields", "arguments", "code", "named"), FIRES)
def test_a_rule_fires_on_its_case(rule: str, fields: dict[str, Any], arguments: dict[str, Any], code: str | None,
                                  named: str) -> None:  # fmt: skip
    violations = judge([record(**fields)], **arguments)
    row = only(violations, rule)
    assert row["image_id"] == IMAGE_ID
    assert row["severity"] == RULES_BY_ID[rule].severity.value
    assert (pd.isna(row["code"]) and code is None) or row["code"] == code
    assert named in row["message"], row["message"]
    assert row["fix"] is not None and not pd.isna(row["fix"])


def test_no_message_puts_a_fixed_article_before_a_filled_word() -> None:
    """ "a {platform}" reads "a Ubuntu": an article must fit its word, so none stands before a field."""
    templates = [text for rule in RULES for text in (rule.message, rule.fix)]
    assert not [t for t in templates if re.search(r"\b(a|an) \{", t, re.IGNORECASE)]
    row = only(judge([record(__platform="Ubuntu")], profile=STRICT), "restricted-os-origin")
    assert "created from the Ubuntu public image" in row["message"] and " a Ubuntu" not in row["message"]


@pytest.mark.parametrize(
    ("rule", "fields", "arguments"), SPARES, ids=[f"{r}-{n}" for n, (r, _, _) in enumerate(SPARES)]
)
def test_a_rule_spares_its_neighbour(rule: str, fields: dict[str, Any], arguments: dict[str, Any]) -> None:
    assert rule not in fired(judge([record(**fields)], **arguments))


def test_each_case_fires_its_rule_and_the_expected_companions_only() -> None:
    """On a clean base, a case trips only its own rule (plus a companion where two constraints really meet)."""
    companions = {"format-unsupported": {"object-extension-mismatch"}, "bucket-url-invalid": set()}
    for rule, fields, arguments, _, _ in FIRES:
        extra = fired(judge([record(**fields)], **arguments)) - {rule} - companions.get(rule, set())
        assert not extra, (rule, fields, arguments, extra)


def test_rules_judge_each_row_on_its_own() -> None:
    records = [
        record(id="a" * 8 + IMAGE_ID[8:]),
        record(id="b" * 8 + IMAGE_ID[8:], status="saving"),
        record(id="c" * 8 + IMAGE_ID[8:], __platform="Windows", __whole_image=True),
    ]
    violations = judge(records)
    by_image = {image: set(rules) for image, rules in violations.groupby("image_id")["rule"]}
    assert by_image == {
        "bbbbbbbb" + IMAGE_ID[8:]: {"image-not-active"},
        "cccccccc" + IMAGE_ID[8:]: {"full-ecs-image", "restricted-os-origin"},
    }
    assert list(violations.columns) == list(VIOLATION_COLUMNS)
    assert all(str(violations[c].dtype) == "string" for c in VIOLATION_COLUMNS)


def test_not_private_codes_follow_the_service_order() -> None:
    """A public gold image is IMG.0077 even when owned elsewhere; a market one IMG.0078; shared ones IMG.0106."""
    records = [
        record(id="gold", __imagetype="gold", visibility="public", owner="x"),
        record(id="market", __imagetype="market", visibility="public", owner="x", __productcode="0030-1"),
        record(id="shared", __imagetype="shared", visibility="shared", owner="x"),
    ]
    codes = judge(records, bucket_url="b-1:x.qcow2").set_index("image_id")["code"].to_dict()
    assert codes == {"gold": "IMG.0077", "market": "IMG.0078", "shared": "IMG.0106"}


# --- region profiles --------------------------------------------------------------------------


def test_default_profile_makes_the_relaxed_rules_unconfirmed_warnings() -> None:
    assert profile_for("cn-north-4") is DEFAULT_PROFILE and profile_for(None) is DEFAULT_PROFILE
    violations = judge(
        [record(id="ubuntu", __platform="Ubuntu"), record(id="big", __image_size=str(200 * GiB))],
        profile=DEFAULT_PROFILE,
    )
    ubuntu, big = only(violations, "restricted-os-origin"), only(violations, "fast-export-required")
    for row in (ubuntu, big):
        assert row["severity"] == "warning"
        assert "unconfirmed" in row["message"] and "cn-north-4" in row["message"]
    assert "Ubuntu" in ubuntu["message"] and "200.0 GiB" in big["message"]


def test_default_profile_keeps_the_other_restricted_platforms_errors() -> None:
    violations = judge([record(__platform="Windows")], profile=DEFAULT_PROFILE)
    row = only(violations, "restricted-os-origin")
    assert row["severity"] == "error" and "unconfirmed" not in row["message"]


@pytest.mark.parametrize(
    "profile",
    [STRICT, SIMULATOR_PROFILE, profile_for("eu-west-0"), profile_for("ae-ad-1"), profile_for("my-kualalumpur-1")],
    ids=lambda p: p.name,
)
def test_strict_and_dedicated_region_profiles_make_them_errors(profile: RegionProfile) -> None:
    violations = judge([record(id="ubuntu", __platform="Ubuntu"), record(id="big", __image_size=str(200 * GiB))],
                       profile=profile)  # fmt: skip
    assert set(zip(violations["image_id"], violations["rule"], violations["severity"], strict=True)) == {
        ("ubuntu", "restricted-os-origin", "error"),
        ("big", "fast-export-required", "error"),
    }
    assert not violations["message"].str.contains("unconfirmed").any()


def test_an_allowed_profile_lets_both_through() -> None:
    assert judge([record(id="ubuntu", __platform="Ubuntu"), record(id="big", __image_size=str(200 * GiB))],
                 profile=ALLOWED).empty  # fmt: skip


def test_the_unconfirmed_note_without_a_region() -> None:
    row = only(judge([record(__platform="Ubuntu")], profile=DEFAULT_PROFILE, region=None), "restricted-os-origin")
    assert "(unconfirmed: " in row["message"]


# --- bucket_url parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bucket_url", "code", "named"),
    [
        ("no-colon-here", "IMG.0017", "bucket:object"),
        (":x.qcow2", "IMG.0068", "empty"),
        ("ab:x.qcow2", "IMG.0109", "3 to 63"),
        ("a" * 64 + ":x.qcow2", "IMG.0109", "3 to 63"),
        ("My-Bucket:x.qcow2", "IMG.0109", "lowercase"),
        ("my_bucket:x.qcow2", "IMG.0109", "my_bucket"),
        ("my bucket:x.qcow2", "IMG.0109", "my bucket"),
        ("bucket\n:x.qcow2", "IMG.0109", "lowercase"),
        ("-bucket:x.qcow2", "IMG.0109", "start and end"),
        ("bucket.:x.qcow2", "IMG.0109", "start and end"),
        ("my..bucket:x.qcow2", "IMG.0109", ".."),
        ("my-.bucket:x.qcow2", "IMG.0109", ".-"),
        ("my.-bucket:x.qcow2", "IMG.0109", ".-"),
        ("192.168.1.10:x.qcow2", "IMG.0109", "IP address"),
        ("256.300.1.999:x.qcow2", "IMG.0109", "IP address"),
        ("bucket:", "IMG.0073", "empty"),
        ("bucket:dir/", "IMG.0073", "empty"),
        ("bucket:my image.qcow2", "IMG.0175", "spaces"),
        ("bucket:dir name/x.qcow2", "IMG.0175", "spaces"),
        ("bucket: x.qcow2", "IMG.0175", "spaces"),
        ("bucket:" + "x" * 129, "IMG.0074", "longer than 128"),
        ("bucket:" + "d/" * 600 + "x.qcow2", "IMG.0074", "longer"),
        ("bucket:x*y.qcow2", "IMG.0075", "x*y.qcow2"),
        ("bucket:x:y.qcow2", "IMG.0075", "x:y.qcow2"),
        ("bucket:/x.qcow2", "IMG.0075", "''"),
        ("bucket:dir//x.qcow2", "IMG.0075", "''"),
        ("bucket:dir/x.qcow2\n", "IMG.0075", "x.qcow2"),
        ("bucket:ümlaut.qcow2", "IMG.0075", "ümlaut"),
    ],
)
def test_bucket_url_problems(bucket_url: str, code: str, named: str) -> None:
    found, problem = bucket_url_problem(bucket_url)
    assert found == code
    assert problem is not None and named in problem, problem


@pytest.mark.parametrize(
    "bucket_url",
    [
        "abc:x",
        "a" * 63 + ":x.qcow2",
        "my.bucket-01:exports/2024/web_01.qcow2",
        "1bucket9:x.qcow2",
        "10.0.0.bucket:x.qcow2",
        "1.2.3.4.5:x.qcow2",
        "bucket:" + "x" * 128,
        "bucket:" + "d/" * 400 + "x",
        "bucket:.hidden",
        "bucket:a-b_c.d",
    ],
)
def test_valid_bucket_urls(bucket_url: str) -> None:
    assert bucket_url_problem(bucket_url) == (None, None)


@pytest.mark.parametrize("bucket_url", [None, 42, b"bucket:x", ["bucket:x"]])
def test_a_bucket_url_that_is_not_text(bucket_url: Any) -> None:
    assert bucket_url_problem(bucket_url)[0] == "IMG.0017"


def test_a_bad_bucket_url_is_a_violation_not_an_exception() -> None:
    row = only(judge([record()], bucket_url="BAD:x.qcow2"), "bucket-url-invalid")
    assert row["code"] == "IMG.0109" and "BAD" in row["message"] and "BAD:x.qcow2" in row["message"]


# --- key templates ------------------------------------------------------------------------------


def keys(template: str, records: list[dict[str, Any]] | None = None, **arguments: Any) -> list[str]:
    arguments = {"file_format": "qcow2", "quick": False, **arguments}
    plan = build_plan(images_frame(records or [record()]), bucket_url=f"bucket:{template}", region=None,
                      project_id=None, **arguments)  # fmt: skip
    return list(plan["key"])


def test_key_template_fields() -> None:
    image = record(name="My image (v2)/final", __platform="Red Hat")
    assert keys("{name}", [image]) == ["My-image-v2-final"]
    assert keys("{id}", [image]) == [IMAGE_ID]
    assert keys("exports/{id8}.{ext}", [image]) == ["exports/1a2b3c4d.qcow2"]
    assert keys("{platform}/{name}.{format}", [image], file_format="vmdk") == ["Red-Hat/My-image-v2-final.vmdk"]
    assert keys("{id8}.{ext}", [image], file_format=None, quick=True) == ["1a2b3c4d.zvhd2"]
    assert keys("{name}", [record(name=None)]) == ["image"]
    assert keys("{platform}", [record(__platform=DROP)]) == ["other"]
    assert keys("{{literal}}-{id8}", [image]) == ["{literal}-1a2b3c4d"]


def test_a_template_without_fields_gives_one_object_for_all() -> None:
    records = [record(id="a" * 36), record(id="b" * 36)]
    assert keys("exports/fixed.qcow2", records) == ["exports/fixed.qcow2"] * 2
    assert keys("a{{b}}", records) == ["a{b}"] * 2


@pytest.mark.parametrize(
    "template",
    ["{nmae}", "{size}", "{}", "{0}", "{name.upper}", "{name[0]}", "{name:{ext}}", "{id8:d}", "{name!z}", "x{", "}",
     "{name", "{id8:=5}", "{id8:_>10}", "{name!r}", "{ext!s}"],
)  # fmt: skip
def test_a_bad_key_template_is_a_config_error(template: str) -> None:
    with pytest.raises(ConfigError, match="key template"):
        keys(template)


def test_expanded_keys_are_checked_per_row() -> None:
    records = [record(id="good-id-" + "0" * 28), record(id="bad*id-" + "0" * 29)]
    violations = judge(records, bucket_url="ims-b:exports/{id}.{ext}")
    assert list(violations["rule"]) == ["bucket-url-invalid"]
    assert violations["image_id"].iloc[0].startswith("bad*id")


# --- messages -----------------------------------------------------------------------------------


def test_fill_names_missing_values_whatever_the_spec() -> None:
    rows = pd.DataFrame({"name": pd.array(["a", None], dtype="string"), "size_gb": [1.25, float("nan")]})
    assert fill("{name} is {size_gb:.1f} GiB", rows) == ["a is 1.2 GiB", f"{MISSING} is {MISSING} GiB"]
    assert fill("constant", rows) == ["constant", "constant"]
    assert fill("{name!r}", rows.iloc[:1]) == ["'a'"]
    assert fill("", rows) == ["", ""]


# --- vectorised -----------------------------------------------------------------------------------


def _varied_records(count: int) -> list[dict[str, Any]]:
    kinds = [
        {},
        {"status": "saving"},
        {"__platform": "Windows"},
        {"__platform": "Ubuntu"},
        {"__image_size": str(200 * GiB)},
        {"__image_size": str(2048 * GiB)},
        {"__whole_image": True},
        {"virtual_env_type": "IsoImage"},
        {"__productcode": "00301-1"},
        {"__imagetype": "gold", "visibility": "public"},
        {"__system__cmkid": "kms"},
        {"name": "odd name/with*chars"},
    ]
    return [record(id=f"{n:08x}-0000-4000-8000-000000000000", **kinds[n % len(kinds)]) for n in range(count)]


@pytest.fixture(scope="module")
def big_plan() -> pd.DataFrame:
    plan = build_plan(images_frame(_varied_records(100_000)), bucket_url="ims-b:exports/{name}-{id8}.{ext}",
                      file_format="qcow2", quick=False, region="cn-north-4", project_id=PROJECT)  # fmt: skip
    plan["bucket_exists"] = pd.array([True, False] * 50_000, dtype="boolean")
    plan["object_exists"] = pd.array([False, True, None, False] * 25_000, dtype="boolean")
    return plan


def test_evaluate_runs_on_100_000_rows(big_plan: pd.DataFrame) -> None:
    for profile in (STRICT, DEFAULT_PROFILE):
        violations = evaluate(big_plan, profile)
        assert len(violations) > 100_000
        assert {"restricted-os-origin", "size-limit", "bucket-not-found", "object-exists"} <= fired(violations)


def _refuse(*_: Any, **__: Any) -> Any:
    raise AssertionError("a rule iterated over rows")


ROW_ITERATORS = [
    (pd.DataFrame, "iterrows"),
    (pd.DataFrame, "itertuples"),
    (pd.DataFrame, "apply"),
    (pd.DataFrame, "map"),
    (pd.Series, "apply"),
    (pd.Series, "map"),
    (pd.Series, "__iter__"),
    (pd.Series, "items"),
    (pd.Series, "tolist"),
]


def test_no_rule_check_iterates_rows(big_plan: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    for cls, name in ROW_ITERATORS:
        monkeypatch.setattr(cls, name, _refuse)
    for profile in (STRICT, DEFAULT_PROFILE, ALLOWED):
        for rule in RULES:
            hits = rule.check(big_plan, profile)
            assert len(hits) == len(big_plan), rule.id
            if rule.codes is not None:
                rule.codes(big_plan[hits])
            if rule.soft is not None:
                rule.soft(big_plan[hits], profile)


def test_evaluate_uses_no_row_wise_apply(big_plan: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    for cls, name in [(pd.DataFrame, "iterrows"), (pd.DataFrame, "apply"), (pd.Series, "apply")]:
        monkeypatch.setattr(cls, name, _refuse)
    assert not evaluate(big_plan.iloc[:5000], DEFAULT_PROFILE).empty
