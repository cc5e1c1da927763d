"""Endpoint resolution the SDK's way, from real files and environments (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ims_nb.errors import ConfigError
from ims_nb.estate.endpoints import EndpointResolver, env_override_name, read_regions_file
from ims_nb.estate.projects import Project, regions_argument, select
from ims_nb.sim.estate import regions_file

SIM_MAP = {"cn-north-4": {"endpoint": "http://127.0.0.1:9001", "project_id": "p1"},
           "ap-southeast-1": {"endpoint": "http://127.0.0.1:9002", "project_id": "p2"}}  # fmt: skip


def test_the_env_variable_is_spelled_as_the_sdk_spells_it() -> None:
    assert env_override_name("ims", "cn-north-4") == "HUAWEICLOUD_SDK_REGION_IMS_CN_NORTH_4"


def test_the_regions_file_the_simulator_writes_resolves_every_service(tmp_path: Path) -> None:
    path = tmp_path / "regions.yaml"
    path.write_text(regions_file(SIM_MAP))
    resolver = EndpointResolver(environ={"HUAWEICLOUD_SDK_REGIONS_FILE": str(path)})
    found = resolver.endpoints("ap-southeast-1")
    assert (found.ims, found.iam, found.obs) == ("http://127.0.0.1:9002",) * 3
    table = resolver.endpoints("cn-east-3")  # not in the file: the region table
    assert table.ims == "https://ims.cn-east-3.myhuaweicloud.com"


def test_endpoints_lists_come_before_endpoint_and_bad_items_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "regions.yaml"
    path.write_text("ims:\n  - id: r1\n    endpoint: https://b\n    endpoints: [https://a]\n  - endpoint: https://x\n")
    assert read_regions_file(path) == {"IMSr1": ["https://a", "https://b"]}
    assert read_regions_file(tmp_path / "missing.yaml") == {}
    path.write_text("IMS: [\n")
    with pytest.raises(ConfigError, match="not YAML"):
        read_regions_file(path)


def test_env_overrides_win_over_the_file_and_name_unknown_regions(tmp_path: Path) -> None:
    path = tmp_path / "regions.yaml"
    path.write_text(regions_file(SIM_MAP))
    env = {"HUAWEICLOUD_SDK_REGIONS_FILE": str(path),
           "HUAWEICLOUD_SDK_REGION_IMS_CN_NORTH_4": "https://ims.private.example,https://ims.backup.example",
           "HUAWEICLOUD_SDK_REGION_IMS_XX_PRIVATE_1": "https://ims.xx.example",
           "HUAWEICLOUD_SDK_REGION_OBS_XX_PRIVATE_1": "https://obs.xx.example",
           "HUAWEICLOUD_SDK_IAM_ENDPOINT": "https://iam.global.example"}  # fmt: skip
    resolver = EndpointResolver(environ=env)
    found = resolver.endpoints("cn-north-4")
    assert found.ims == "https://ims.private.example" and found.obs == "http://127.0.0.1:9001"
    assert found.iam == "http://127.0.0.1:9001"  # the per-region file entry comes before the global IAM variable
    assert resolver.known("xx-private-1") and not resolver.known("xx-private-2")
    private = resolver.endpoints("xx-private-1")
    assert private.ims == "https://ims.xx.example" and private.iam == "https://iam.global.example"
    with pytest.raises(ConfigError, match="unknown region"):
        EndpointResolver(environ={"HUAWEICLOUD_SDK_REGION_IMS_XX_PRIVATE_1": "https://i"}).endpoints(
            "xx-private-1"
        )  # no OBS endpoint for a region outside the table


def test_a_simulator_map_is_all_there_is() -> None:
    resolver = EndpointResolver(SIM_MAP)
    assert resolver.endpoints("cn-north-4").obs == "http://127.0.0.1:9001"
    assert not resolver.known("cn-east-3")
    with pytest.raises(ConfigError, match="serves no region"):
        resolver.endpoints("cn-east-3")


def test_plain_http_to_a_remote_host_needs_insecure() -> None:
    env = {"HUAWEICLOUD_SDK_REGION_IMS_CN_NORTH_4": "http://ims.example"}
    with pytest.raises(ConfigError, match="plain HTTP"):
        EndpointResolver(environ=env).endpoints("cn-north-4")
    assert EndpointResolver(environ=env, insecure=True).endpoints("cn-north-4").ims == "http://ims.example"


def test_project_selection() -> None:
    projects = [Project("a", "cn-north-4", "cn-north-4"), Project("b", "cn-north-4_dev", "cn-north-4"),
                Project("c", "ap-southeast-1", "ap-southeast-1"), Project("d", "ap-southeast-1_off", "ap-southeast-1",
                                                                          enabled=False)]  # fmt: skip
    assert [p.id for p in select(projects, "all", None)] == ["c", "a", "b"]
    assert [p.id for p in select(projects, ["cn-north-4"], None, include_subprojects=False)] == ["a"]
    assert [p.id for p in select(projects, "all", ["b", "ap-southeast-1"])] == ["c", "b"]
    assert [p.id for p in select(projects, "all", None, exclude=["cn-north-4_dev"])] == ["c", "a"]
    with pytest.raises(ConfigError, match="eu-west-0"):
        select(projects, ["eu-west-0"], None)
    assert regions_argument("cn-north-4, ap-southeast-1") == ["cn-north-4", "ap-southeast-1"]
    with pytest.raises(ConfigError):
        regions_argument([])
