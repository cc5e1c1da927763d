"""Properties of ``preflight`` over random and malformed input (Hypothesis).

Whatever the records, bucket URL, key template, format, mode, region or profile: ``preflight`` and
``preflight_summary`` either answer well-formed frames or raise ``ims_nb.errors.ConfigError`` (the documented
error), never anything else (warnings are errors in this suite, so a pandas warning counts as a failure too).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ims_nb.errors import ConfigError
from ims_nb.preflight import SUMMARY_COLUMNS, VIOLATION_COLUMNS, preflight, preflight_summary
from ims_nb.rules import DEFAULT_PROFILE, RULES_BY_ID, SIMULATOR_PROFILE, STRICT, RegionProfile, Severity, Verdict

GiB = 1024**3
PROJECT = "0123456789abcdef0123456789abcdef"
ALLOWED = RegionProfile("allowed", Verdict.ALLOWED, Verdict.ALLOWED, "test")
CODE = re.compile(r"IMG\.\d{4}")

odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", " ", "null", "None", "NaN", "true", "FALSE", "1e3", "-1", "\x00", "\n", "<NA>", "ümlaut"]),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.binary(max_size=4),
    st.tuples(st.integers()),
)
SIZES = [0, GiB, 128 * GiB, 128 * GiB + 1, 1024 * GiB - 1, 1024 * GiB, 2**63 - 1]
REALISTIC: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(st.uuids().map(str), st.text(max_size=10)),
    "name": st.one_of(st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True), st.text(max_size=20)),
    "status": st.sampled_from(["active", "queued", "saving", "killed", "deleted", "ACTIVE"]),
    "__platform": st.sampled_from(["CentOS", "Ubuntu", "Windows", "SUSE", "Red Hat", "Oracle Linux", "Debian", ""]),
    "__imagetype": st.sampled_from(["private", "gold", "shared", "market", ""]),
    "visibility": st.sampled_from(["private", "public", "shared"]),
    "virtual_env_type": st.sampled_from(["FusionCompute", "DataImage", "IsoImage", "Ironic"]),
    "owner": st.sampled_from([PROJECT, "other-tenant", ""]),
    "__image_size": st.one_of(st.sampled_from(SIZES), st.sampled_from(SIZES).map(str), st.integers()),
    "__originalimagename": st.one_of(st.uuids().map(str), st.just("")),
    "__productcode": st.sampled_from(["", "00301-abc"]),
    "__system__cmkid": st.sampled_from(["", "kms-key"]),
    "__whole_image": st.sampled_from([True, False, "true", "false"]),
    "__os_version": st.text(max_size=10),
    "disk_format": st.sampled_from(["zvhd2", "qcow2", "iso"]),
    "min_disk": st.integers(0, 2048),
    "__root_origin": st.sampled_from(["file", ""]),
    "created_at": st.sampled_from(["2024-01-02T03:04:05Z", "yesterday", ""]),
    "tags": st.one_of(st.lists(st.text(max_size=5), max_size=3), st.text(max_size=10)),
    "enterprise_project_id": st.sampled_from(["0", ""]),
    "architecture": st.sampled_from(["x86", "arm", ""]),
    "protected": st.booleans(),
}
record = st.builds(
    lambda extra, known: {**extra, **known},
    st.dictionaries(st.text(max_size=8), odd, max_size=3),
    st.fixed_dictionaries({}, optional={f: st.one_of(s, s, odd) for f, s in REALISTIC.items()}),
)
records = st.lists(record, max_size=6)
anything = st.one_of(  # what a caller might pass as images, right or wrong
    records,
    record,
    st.lists(st.one_of(record, odd), min_size=1, max_size=4),
    st.lists(st.text(max_size=8), min_size=1, max_size=3),  # ids, with no client
    odd,
)
TEMPLATE_PARTS = ["{name}", "{id}", "{id8}", "{ext}", "{platform}", "{format}", "{", "}", "{{", "}}", "{nope}", "{0}",
                  "{}", "{name!r}", "{id8:>12}", "{name.x}", "{name[0]}", "{ext:{id}}", "/", "//", " ", ".", ":", "\n",
                  "exports", ".qcow2", "*", "ü"]  # fmt: skip
key_template = st.lists(st.one_of(st.sampled_from(TEMPLATE_PARTS), st.text(max_size=4)), max_size=8).map("".join)
bucket = st.one_of(
    st.sampled_from(["ims-exports-cn-north-4", "ims-archive-warm", "192.168.0.1", "", "ab", "a" * 64, "A-b", "x..y"]),
    st.text(alphabet="abz09.-_A :\n", max_size=70),
    st.text(max_size=10),
)
well_formed_url = st.one_of(
    st.builds(lambda b, k: f"{b}:{k}", bucket, key_template),
    st.builds(lambda b, k: f"{b}:{k}" + "x" * 130, bucket, key_template),
    st.text(max_size=30),
)
FORMATS = ["qcow2", "vhd", "zvhd", "vmdk", "raw", "QCOW2", "zvhd2", ""]
REGIONS = ["cn-north-4", "eu-west-0", "ae-ad-1", "my-kualalumpur-1", "xx"]
profile = st.sampled_from([None, DEFAULT_PROFILE, STRICT, SIMULATOR_PROFILE, ALLOWED])
well_typed = st.fixed_dictionaries(
    {
        "bucket_url": well_formed_url,
        "file_format": st.one_of(st.none(), st.sampled_from(FORMATS), st.text(max_size=6)),
        "quick": st.booleans(),
        "region": st.one_of(st.none(), st.sampled_from(REGIONS)),
        "profile": profile,
    }
)
wild = st.fixed_dictionaries(
    {
        "bucket_url": st.one_of(well_formed_url, odd),
        "file_format": st.one_of(st.none(), st.sampled_from(FORMATS), odd),
        "quick": st.one_of(st.booleans(), odd),
        "region": st.one_of(st.none(), st.sampled_from(REGIONS), odd),
        "profile": profile,
    }
)


def check_violations(violations: pd.DataFrame) -> None:
    assert list(violations.columns) == list(VIOLATION_COLUMNS)
    assert {str(violations[c].dtype) for c in VIOLATION_COLUMNS} == {"string"}
    for rule, severity, message, code in zip(
        violations["rule"], violations["severity"], violations["message"], violations["code"], strict=True
    ):
        assert rule in RULES_BY_ID, rule
        assert severity in (Severity.ERROR.value, Severity.WARNING.value), severity
        assert isinstance(message, str) and message.strip(), (rule, message)
        if severity == Severity.ERROR.value and RULES_BY_ID[rule].code is not None:
            assert isinstance(code, str) and CODE.fullmatch(code), (rule, code)


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_preflight_raises_nothing_but_config_error_whatever_it_is_given() -> None:
    tried: Counter[str] = Counter()

    @SETTINGS
    @given(images=anything, arguments=st.one_of(well_typed, wild))
    def check(images: Any, arguments: dict[str, Any]) -> None:
        tried["cases"] += 1
        try:
            violations = preflight(images, **arguments)
        except ConfigError:
            tried["config errors"] += 1
            return
        tried["answered"] += 1
        check_violations(violations)

    check()
    print(f"\nhypothesis preflight, wild input: {dict(tried)}")
    assert tried["cases"] == tried["answered"] + tried["config errors"] and tried["config errors"] > 20


def test_preflight_rows_are_well_formed_for_any_records_urls_and_templates() -> None:
    tried: Counter[str] = Counter()

    @SETTINGS
    @given(images=records, arguments=well_typed)
    def check(images: list[dict[str, Any]], arguments: dict[str, Any]) -> None:
        tried["cases"] += 1
        try:
            violations = preflight(images, **arguments)
        except ConfigError as error:
            assert "key template" in str(error), error  # the only thing that can be wrong here
            tried["config errors"] += 1
            return
        tried["answered"] += 1
        tried["violations"] += len(violations)
        tried.update(f"rule {rule}" for rule in violations["rule"])
        check_violations(violations)

    check()
    print(f"\nhypothesis preflight, records: {dict(tried)}")
    assert tried["answered"] > 100 and tried["violations"] > 100
    assert len([key for key in tried if key.startswith("rule ")]) >= 6  # many rules were reached


def test_preflight_summary_raises_only_config_error_and_agrees_with_preflight() -> None:
    tried: Counter[str] = Counter()

    @SETTINGS
    @given(images=records, arguments=st.one_of(well_typed, wild))
    def check(images: list[dict[str, Any]], arguments: dict[str, Any]) -> None:
        tried["cases"] += 1
        try:
            summary = preflight_summary(images, **arguments)
        except ConfigError:
            tried["config errors"] += 1
            return
        tried["answered"] += 1
        assert list(summary.columns) == list(SUMMARY_COLUMNS) and len(summary) == len(images)
        violations = preflight(images, **arguments)
        check_violations(violations)
        errors = violations[violations["severity"] == Severity.ERROR.value]
        blocked = sum(len(b) for b in summary["blocking"])
        warned = sum(len(w) for w in summary["warnings"])
        assert (blocked, warned) == (len(errors), len(violations) - len(errors))
        for exportable, blocking, recommended in zip(
            summary["exportable"], summary["blocking"], summary["recommended"], strict=True
        ):
            assert bool(exportable) == (not blocking)
            assert pd.isna(recommended) or recommended in ("normal", "fast")

    check()
    print(f"\nhypothesis preflight_summary: {dict(tried)}")
    assert tried["answered"] > 50
