"""What every fuzz suite shares: Hypothesis settings (``IMS_NB_FUZZ_SCALE``), case counts, request strategies."""

from __future__ import annotations

import json
import os
import string
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: ``IMS_NB_FUZZ_SCALE=10`` multiplies every example count (the README's numbers are for scale 1).
SCALE = max(1, int(os.environ.get("IMS_NB_FUZZ_SCALE", "1") or 1))


def fuzz(examples: int) -> settings:
    """Deterministic runs of ``examples`` (times the scale) examples, no deadline, no example database."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def case_summary(title: str, cases: Counter[str], extra: Callable[[], str] = str) -> Any:
    """A module fixture (autouse) that prints, after the module, how many cases of each kind were tried."""

    @pytest.fixture(scope="module", autouse=True)
    def _summary() -> Iterator[None]:
        yield
        parts = ", ".join(f"{name} {count}" for name, count in cases.items())
        print(f"\n{title}: {sum(cases.values())} ({parts}){extra()}")

    return _summary


# --- requests: JSON, text, ids, raw queries and gateway paths ---------------------------------

#: ListImages query parameters, from the reference (docs/SDK), not from the simulator's code.
LISTING_NAMES = (
    "__imagetype",
    "__isregistered",
    "__os_bit",
    "__os_type",
    "__platform",
    "__support_diskintensive",
    "__support_highperformance",
    "__support_kvm",
    "__support_kvm_gpu_type",
    "__support_kvm_infiniband",
    "__support_largememory",
    "__support_xen",
    "__support_xen_gpu_type",
    "__support_xen_hana",
    "container_format",
    "disk_format",
    "enterprise_project_id",
    "id",
    "limit",
    "marker",
    "member_status",
    "min_disk",
    "min_ram",
    "name",
    "owner",
    "protected",
    "sort_dir",
    "sort_key",
    "status",
    "tag",
    "virtual_env_type",
    "visibility",
    "flavor_id",
    "created_at",
    "updated_at",
    "architecture",
    "__whole_image",
    "__system__cmkid",
)
OBS_SUB_RESOURCES = (
    "acl",
    "location",
    "storageClass",
    "storagePolicy",
    "prefix",
    "marker",
    "max-keys",
    "delimiter",
    "encoding-type",
    "uploads",
    "versionId",
    "response-content-type",
    "policy",
    "apiversion",
    "x-obs-acl",
    "partNumber",
    "uploadId",
    "LOCATION",
)


#: Characters a raw query may carry as they are (httpx refuses ``#`` and encodes ``"<>`` and space).
RAW_QUERY_SAFE = "".join(c for c in string.printable[:94] if c not in '#"<>%&=+')
QUERY_JUNK = (
    "%",
    "%Z",
    "%zz",
    "%ff",
    "%FE%FF",
    "%e2%82",
    "%c3",
    "%%",
    "%2",
    "%00",
    "%0A",
    "%20",
    "+",
    "%2B",
    "%26",
    "%3D",
    "&",
    "=",
    ";",
    "?",
    "/",
    "%u1234",
    "%EF%BB%BF",
)

json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=16)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)
#: Any text, with a good share of separators, escapes, controls and characters XML cannot carry.
odd_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"])
    | st.sampled_from(":/ .-_%+&=?#\\\t\n\x00\x01\x0b\x1f\ufffe"),
    max_size=40,
)
#: Ids for paths: any text.
ID_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)


@st.composite
def raw_component(draw: st.DrawFn, texts: st.SearchStrategy[str], junk_one_in: int = 4) -> str:
    """A query key or value, encoded one of several ways, sometimes with percent-encoding junk."""
    text = draw(texts)
    style = draw(st.sampled_from(["quote", "plus", "raw", "raw"]))
    if style == "quote":
        encoded = quote(text, safe="")
    elif style == "plus":
        encoded = quote_plus(text)
    else:
        encoded = "".join(c if c in RAW_QUERY_SAFE else quote(c, safe="") for c in text)
    if draw(st.integers(1, junk_one_in)) == 1:
        at = draw(st.integers(0, len(encoded)))
        encoded = encoded[:at] + draw(st.sampled_from(QUERY_JUNK)) + encoded[at:]
    return encoded


listing_values = (
    st.sampled_from(
        [
            "",
            "true",
            "false",
            "1",
            "0",
            "1000",
            "1001",
            "-1",
            "99999999999",
            "private",
            "gold",
            "shared",
            "market",
            "Linux",
            "Windows",
            "64",
            "asc",
            "desc",
            "name",
            "size",
            "created_at",
            "gt:2020-01-01T00:00:00Z",
            "lte:2025-12-31 23:59:59",
            "eq:",
            "xx:2020-01-01T00:00:00Z",
            "env=prod",
            "=",
            "all_granted_eps",
            "0",
            "s6.small.1",
            "accepted",
            "x86",
            "arm",
            "active",
            "qcow2",
            "\u0663",
            "1e3",
            " 5",
        ]
    )
    | st.text(max_size=12)
    | st.integers(-5, 2000).map(str)
)
odd_listing_names = st.sampled_from(["LIMIT", "limit ", "__imageType", "x", "apiversion"]) | st.text(max_size=10)
#: Mostly known names (one in ten is not), so that most queries get past the name check to the values.
listing_names = st.integers(0, 9).flatmap(lambda n: odd_listing_names if n == 0 else st.sampled_from(LISTING_NAMES))


@st.composite
def raw_queries(draw: st.DrawFn) -> str:
    pairs = []
    for _ in range(draw(st.integers(0, 5))):
        key = draw(raw_component(listing_names, junk_one_in=12))
        value = draw(raw_component(listing_values))
        form = draw(st.sampled_from(["k=v"] * 8 + ["k", "k=", "=v", "k==v", "k=v=w"]))
        pairs.append(
            form.replace("k", "\x01")
            .replace("v", "\x02")
            .replace("w", value)
            .replace("\x01", key)
            .replace("\x02", value)
        )
    if pairs and draw(st.integers(0, 3)) == 0:  # repeat a pair
        pairs.append(draw(st.sampled_from(pairs)))
    separator = draw(st.sampled_from(["&", "&", "&", "&&"]))
    query = separator.join(pairs)
    if draw(st.integers(0, 5)) == 0:
        query = draw(st.sampled_from(["&", "&&", "=", "?"])) + query
    if draw(st.integers(0, 5)) == 0:
        query += draw(st.sampled_from(["&", "=", "%"]))
    return query


@st.composite
def gateway_paths(draw: st.DrawFn, world: dict[str, Any]) -> str:
    some_id = draw(st.sampled_from(world["all_ids"]) | ID_TEXT | st.sampled_from(["", ".", "..", "job", "quota"]))
    encoded = quote(some_id, safe=draw(st.sampled_from(["", "/", ":@"])))
    project = draw(st.sampled_from([world["project_id"], "0" * 32, encoded]))
    prefix = draw(st.sampled_from(["v1", "v2", "v2.1", "v3", "v3.0"]))
    template = draw(
        st.sampled_from(
            [
                "/v2/cloudimages",
                "/v2/cloudimages/{id}",
                "/v2/images/{id}",
                "/v2/images",
                "/v1/cloudimages/{id}/file",
                "/v2.1/cloudimages/{id}/file",
                "/v1/{project}/jobs/{id}",
                "/v1/cloudimages/job/{id}",
                "/v1/cloudimages/quota",
                "/v3/projects",
                "/v3/auth/tokens",
                "/v3.0/OS-CREDENTIAL/securitytokens",
                "/{prefix}/{id}/{id}",
                "/{prefix}",
                "/",
                "/v2/cloudimages/../images/{id}",
            ]
        )
    )
    path = template.replace("{id}", encoded).replace("{project}", project).replace("{prefix}", prefix)
    return path + draw(st.sampled_from(["", "", "/", "//"]))


random_bodies = st.sampled_from([b""]) | st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode())
