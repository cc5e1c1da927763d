"""OBS objects as the official esdk-obs-python drives them: PUT with a kept body, ETag/Last-Modified on HEAD and
GET, DELETE, and listings paged by prefix/marker/max-keys; plus write permission, persistence and deleted exports."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from obs import GetObjectHeader, ObsClient

from ims_nb.client.auth import ObsAuth
from ims_nb.sim import Simulator
from ims_nb.sim.backend import Principal, SimBackend
from ims_nb.sim.clock import SimClock
from ims_nb.sim.errors import SimError
from ims_nb.sim.obs_objects import MAX_OBJECT_BYTES
from ims_nb.sim.store import Store

SCRATCH = "ims-exports-scratch"
EXPORTS = "ims-exports-cn-north-4"


@pytest.fixture()
def world(fresh_sim: Simulator) -> Iterator[Simulator]:
    """The seeded world, reset again after the test (these tests add and delete objects)."""
    yield fresh_sim
    httpx.post(f"{fresh_sim.endpoint}/_sim/reset", json={"seed": 0, "images": 200}).raise_for_status()


@pytest.fixture()
def sdk(world: Simulator) -> Iterator[ObsClient]:
    """The official client as a notebook points it at the simulator (IP endpoint: path style, V2 signing)."""
    info = world.info
    client = ObsClient(
        access_key_id=info.ak, secret_access_key=info.sk, server=info.endpoint, max_retry_count=0, timeout=10
    )
    yield client
    client.close()


def test_put_head_get_list_delete_round_trip(sdk: ObsClient, world: Simulator) -> None:
    body = b"covered outside the ledger\n"
    put = sdk.putContent(SCRATCH, "manual/backup.qcow2", content=body)
    assert put.status == 200, put.errorCode
    etag = '"' + hashlib.md5(body).hexdigest() + '"'
    assert put.body.etag == etag
    meta = sdk.getObjectMetadata(SCRATCH, "manual/backup.qcow2")
    assert meta.status == 200 and meta.body.etag == etag and meta.body.contentLength == len(body)
    modified = parsedate_to_datetime(meta.body.lastModified)
    assert modified.timestamp() == int(world.backend.clock.now())
    got = sdk.getObject(SCRATCH, "manual/backup.qcow2", loadStreamInMemory=True)
    assert got.status == 200 and got.body.buffer == body
    part = sdk.getObject(SCRATCH, "manual/backup.qcow2", headers=GetObjectHeader(range="0-6"), loadStreamInMemory=True)
    assert part.status == 206 and part.body.buffer == body[:7]
    (entry,) = sdk.listObjects(SCRATCH, prefix="manual/").body.contents
    assert (entry.key, entry.size, entry.etag) == ("manual/backup.qcow2", len(body), etag)
    assert entry.owner.owner_id == world.backend.domain_id
    deleted = sdk.deleteObject(SCRATCH, "manual/backup.qcow2")
    assert deleted.status == 204, deleted.errorCode
    assert sdk.getObjectMetadata(SCRATCH, "manual/backup.qcow2").status == 404
    assert sdk.listObjects(SCRATCH, prefix="manual/").body.contents == []
    assert sdk.deleteObject(SCRATCH, "manual/backup.qcow2").status == 204  # a missing key: 204 too, as OBS


def test_seeded_and_exported_objects_answer_etag_and_last_modified(sdk: ObsClient) -> None:
    meta = sdk.getObjectMetadata(EXPORTS, "README.txt")
    assert meta.status == 200
    assert meta.body.etag == '"' + hashlib.md5(b"README").hexdigest() + '"'
    assert meta.body.lastModified.endswith(" GMT")


def test_listing_pages_through_more_than_1000_keys(sdk: ObsClient, world: Simulator) -> None:
    keys = [f"many/{n:05d}.bin" for n in range(2500)]
    with world.backend.lock:
        for key in keys:
            world.backend.put_object(SCRATCH, key, b"x")
    pages, marker = [], None
    while True:
        body = sdk.listObjects(SCRATCH, prefix="many/", marker=marker).body
        pages.append([entry.key for entry in body.contents])
        assert body.max_keys == 1000
        if not body.is_truncated:
            assert body.next_marker is None
            break
        assert body.next_marker == pages[-1][-1]
        marker = body.next_marker
    assert [len(page) for page in pages] == [1000, 1000, 500]
    assert sum(pages, []) == keys
    capped = sdk.listObjects(SCRATCH, prefix="many/", max_keys=5000).body
    assert capped.max_keys == 1000 and len(capped.contents) == 1000 and capped.is_truncated
    after = sdk.listObjects(SCRATCH, prefix="many/", marker=keys[-2], max_keys=10).body
    assert [entry.key for entry in after.contents] == keys[-1:]  # the marker itself is not listed


def test_read_only_user_cannot_put_or_delete(world: Simulator) -> None:
    auditor = world.backend.accounts["ims-auditor"]
    client = ObsClient(access_key_id=auditor.ak, secret_access_key=auditor.sk, server=world.endpoint, max_retry_count=0)
    try:
        for result in (client.putContent(SCRATCH, "nope.txt", content="x"), client.deleteObject(EXPORTS, "README.txt")):
            assert (result.status, result.errorCode) == (403, "AccessDenied")
        assert client.getObjectMetadata(EXPORTS, "README.txt").status == 200
        assert client.getObjectMetadata(SCRATCH, "nope.txt").status == 404
    finally:
        client.close()


def test_too_large_and_bad_digest_bodies_are_refused(world: Simulator) -> None:
    info = world.info
    with httpx.Client(base_url=info.endpoint, auth=ObsAuth(info.ak, info.sk)) as client:
        big = client.put(f"/{SCRATCH}/big.bin", content=bytes(MAX_OBJECT_BYTES + 1))
        assert big.status_code == 400 and "<Code>EntityTooLarge</Code>" in big.text
        bad = client.put(f"/{SCRATCH}/bad.bin", content=b"abc", headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="})
        assert bad.status_code == 400 and "<Code>BadDigest</Code>" in bad.text
        assert client.put(f"/{SCRATCH}/ok.bin?acl", content=b"<x/>").status_code == 405
        assert client.head(f"/{SCRATCH}/big.bin").status_code == 404


def test_objects_and_deletions_persist_with_state(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    backend = SimBackend(images=10, clock=SimClock(manual=True), store=Store(path))
    backend.put_object(SCRATCH, "kept.bin", b"\x00\xffbody")
    backend.delete_object(EXPORTS, "README.txt")
    reloaded = SimBackend(images=10, clock=SimClock(manual=True), store=Store(path))
    kept = reloaded.object_at(SCRATCH, "kept.bin")
    assert kept is not None and kept["body"] == b"\x00\xffbody" and kept["size"] == 6
    assert reloaded.object_at(EXPORTS, "README.txt") is None
    assert "README.txt" not in [o["key"] for o in reloaded.list_objects(EXPORTS)]
    assert {"bucket": EXPORTS, "key": "README.txt"} not in reloaded.dump()["objects"]


def _exported(backend: SimBackend, key: str) -> str:
    """Export some image to ``EXPORTS:key`` until a job succeeds; returns its job id."""
    principal = Principal("ims-operator", None, None, True)
    body = json.dumps({"bucket_url": f"{EXPORTS}:{key}", "file_format": "qcow2"}).encode()
    for image_id in list(backend.images):
        try:
            job_id = backend.export_image(principal, image_id, body)
        except SimError:
            continue
        backend.clock.advance(7 * 86400)
        if backend.jobs[job_id].status_at(backend.clock.now()) == "SUCCESS":
            return job_id
    raise AssertionError("no export succeeded")


def test_a_deleted_export_stays_gone_until_exported_again() -> None:
    backend = SimBackend(images=60, clock=SimClock(manual=True))
    key = "exports/again.qcow2"
    first = _exported(backend, key)
    found = backend.object_at(EXPORTS, key)
    assert found is not None and found["etag"] == hashlib.md5(first.encode()).hexdigest()
    backend.delete_object(EXPORTS, key)
    assert backend.object_at(EXPORTS, key) is None
    assert key not in [o["key"] for o in backend.list_objects(EXPORTS)]
    second = _exported(backend, key)
    again = backend.object_at(EXPORTS, key)
    assert again is not None and again["etag"] == hashlib.md5(second.encode()).hexdigest()
    assert again in backend.list_objects(EXPORTS)
