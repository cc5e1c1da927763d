"""Conformance: the official OBS SDK (esdk-obs-python, ``obs.ObsClient``), unchanged, against the
simulator's OBS endpoints; and our own ``ObsAuth`` signing flow against the same server.

Three SDK set-ups are exercised:

* ``v2-path``: ``ObsClient(server="http://127.0.0.1:PORT")``. An IP endpoint forces path style, and
  path style makes the SDK skip signature negotiation and sign ``AWS AK:sig`` (V2) with ``x-amz-*``
  headers and ``?storagePolicy``. This is how a notebook talks to the simulator.
* ``obs-vhost``: ``ObsClient(server="http://obs.sim.test:PORT", signature="obs")``: virtual-host style
  with the SDK's default negotiation (an unsigned ``HEAD /?apiversion`` per bucket, answered
  ``x-obs-api: 3.0``) and then ``OBS AK:sig`` signing, ``x-obs-*`` headers and ``?storageClass``, as
  against the real ``obs.<region>.myhuaweicloud.com``. ``*.sim.test`` does not resolve, so the client
  goes through a tiny CONNECT proxy (the SDK's own ``proxy_host``/``proxy_port`` options) that tunnels
  every connection to the simulator and records what the SDK sent.
* ``v2-vhost``: the same endpoint with ``signature="v2"`` and negotiation off.

``signature="obs", path_style=True`` cannot give OBS signing: the SDK itself turns any path-style
client into a V2 one (see ``test_sdk_path_style_obs_signature_falls_back_to_v2``).
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from obs import GetObjectHeader, ObsClient

from ims_nb import signing
from ims_nb.client.auth import AkSkAuth, ObsAuth
from ims_nb.sim import Simulator

GiB = 1024**3
MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
REGION = "cn-north-4"
EXPORTS = "ims-exports-cn-north-4"
SCRATCH = "ims-exports-scratch"
VHOST = "obs.sim.test"
#: bucket -> (location, OBS storage class), as ``inventory.build_buckets`` seeds them.
BUCKETS = {
    EXPORTS: (REGION, "STANDARD"),
    SCRATCH: (REGION, "STANDARD"),
    "ims-archive-warm": (REGION, "WARM"),
    "ims-archive-cold": (REGION, "COLD"),
    "ims-archive-deep": (REGION, "DEEP_ARCHIVE"),
    "ims-exports-ap-southeast-1": ("ap-southeast-1", "STANDARD"),
}
MISSING = "ims-no-such-bucket"
#: A key with a folder, spaces, non-ASCII and characters that need percent-encoding.
ODD_KEY = "exports/2024 q1/ké y+%20(1)&=~!*'#?.qcow2"
#: What the SDK reports in V2 mode: the S3 names real OBS answers to AWS-signed requests.
V2_NAMES = {"WARM": "STANDARD_IA", "COLD": "GLACIER"}
MODES = ("v2-path", "obs-vhost", "v2-vhost")
SIGNATURE_OF = {"v2-path": "v2", "obs-vhost": "obs", "v2-vhost": "v2"}
EXPORTABLE_PLATFORMS = {"CentOS", "Debian", "EulerOS", "openEuler", "Fedora"}


def reported_class(storage_class: str, signature: str) -> str:
    return V2_NAMES.get(storage_class, storage_class) if signature == "v2" else storage_class


# --- a recording CONNECT proxy (the SDK's proxy support reaches virtual-host names) ---------------


@dataclass
class Tunnel:
    target: str  # host:port the SDK asked to CONNECT to
    sent: bytearray = field(default_factory=bytearray)  # everything the SDK sent through it

    def request(self) -> tuple[str, str, dict[str, str]]:
        """(method, request target, lower-cased headers) of the first request in the tunnel."""
        head = bytes(self.sent).split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ", 2)
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return method, target, headers


class TunnelProxy:
    """HTTP CONNECT proxy on a loopback port: every tunnel goes to ``upstream``, whatever it names."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.tunnels: list[Tunnel] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):
                    proxy._serve(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="obs-test-proxy", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests(self) -> list[tuple[str, str, str, dict[str, str]]]:
        """(CONNECT target, method, request target, headers) of every tunnel so far."""
        return [(t.target, *t.request()) for t in self.tunnels if t.sent]

    def _serve(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                return
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        tunnel = Tunnel(target, bytearray(rest))
        self.tunnels.append(tunnel)
        with socket.create_connection(self.upstream, timeout=10) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            peer = {client: upstream, upstream: client}
            while True:
                ready, _, _ = select.select(list(peer), [], [], 10)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        tunnel.sent += data
                    peer[sock].sendall(data)


# --- fixtures --------------------------------------------------------------------------------------


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def proxy(sim: Simulator) -> Iterator[TunnelProxy]:
    tunnel_proxy = TunnelProxy(("127.0.0.1", _port(sim.endpoint)))
    yield tunnel_proxy
    tunnel_proxy.close()


@pytest.fixture()
def world(fresh_sim: Simulator) -> Iterator[Simulator]:
    """The seeded world, reset before the test and again after it (these tests add objects and move the clock)."""
    yield fresh_sim
    httpx.post(f"{fresh_sim.endpoint}/_sim/reset", json={"seed": 0, "images": 200}).raise_for_status()


SdkFactory = Callable[..., ObsClient]


@pytest.fixture()
def make_sdk(world: Simulator, proxy: TunnelProxy) -> Iterator[SdkFactory]:
    """Build official SDK clients in one of ``MODES`` (own credentials optional); closed afterwards."""
    clients: list[ObsClient] = []

    def make(
        mode: str, *, ak: str | None = None, sk: str | None = None, via_proxy: bool = False, **options: Any
    ) -> ObsClient:
        info = world.info
        kwargs: dict[str, Any] = {
            "access_key_id": ak or info.ak,
            "secret_access_key": sk or info.sk,
            "max_retry_count": 0,
            "timeout": 10,
        }
        if mode == "v2-path":
            kwargs["server"] = info.endpoint
        else:
            kwargs["server"] = f"http://{VHOST}:{_port(info.endpoint)}"
            kwargs["signature"] = SIGNATURE_OF[mode]
            if mode == "v2-vhost":
                kwargs["is_signature_negotiation"] = False
        if mode != "v2-path" or via_proxy:
            kwargs.update(proxy_host="127.0.0.1", proxy_port=proxy.port)
        client = ObsClient(**kwargs, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def put_object(sim: Simulator, bucket: str, key: str, size: int) -> None:
    httpx.post(f"{sim.endpoint}/_sim/objects", json={"bucket": bucket, "key": key, "size": size}).raise_for_status()


def error_xml(text: str) -> dict[str, str]:
    root = ET.fromstring(text)
    assert root.tag == "Error", text
    return {child.tag: child.text or "" for child in root}


# --- 1. bucket metadata ------------------------------------------------------------------------------


def test_sdk_bucket_metadata_reports_location_and_storage_class(make_sdk: SdkFactory, mode: str) -> None:
    client = make_sdk(mode)
    signature = SIGNATURE_OF[mode]
    for bucket, (location, storage_class) in BUCKETS.items():
        for call in (client.getBucketMetadata, client.headBucket):
            result = call(bucket)
            assert result.status == 200, (call.__name__, bucket, result.status, result.errorCode)
            assert result.requestId
        meta = client.getBucketMetadata(bucket).body
        assert meta.location == location, bucket
        # HEAD bucket carries no storage-class header for Standard buckets: the SDK reports None.
        expected = None if storage_class == "STANDARD" else reported_class(storage_class, signature)
        assert meta.storageClass == expected, (bucket, meta.storageClass)
        assert meta.obsVersion == "3.0"


def test_sdk_bucket_metadata_of_a_missing_bucket_is_404(make_sdk: SdkFactory, mode: str) -> None:
    client = make_sdk(mode)
    for call in (client.getBucketMetadata, client.headBucket):
        result = call(MISSING)
        assert result.status == 404
        assert result.errorCode is None  # HEAD answers carry no body
        assert not result.body or result.body.location is None


# --- 2. location and storage policy -----------------------------------------------------------------


def test_sdk_location_and_storage_policy_of_every_bucket(make_sdk: SdkFactory, mode: str) -> None:
    client = make_sdk(mode)
    signature = SIGNATURE_OF[mode]
    for bucket, (location, storage_class) in BUCKETS.items():
        where = client.getBucketLocation(bucket)
        assert where.status == 200, (bucket, where.errorCode, where.errorMessage)
        assert where.body.location == location
        policy = client.getBucketStoragePolicy(bucket)
        assert policy.status == 200, (bucket, policy.errorCode, policy.errorMessage)
        assert policy.body.storageClass == reported_class(storage_class, signature)
        assert where.requestId and policy.requestId and where.requestId != policy.requestId


def test_sdk_location_and_storage_policy_of_a_missing_bucket(make_sdk: SdkFactory, mode: str) -> None:
    client = make_sdk(mode)
    for call in (client.getBucketLocation, client.getBucketStoragePolicy):
        result = call(MISSING)
        assert result.status == 404, call.__name__
        assert result.requestId
        if mode == "obs-vhost":
            # with negotiation on, the unsigned HEAD /?apiversion probe is refused first, and the SDK
            # hands that body-less 404 back as the call's result (as against the real service)
            assert result.errorCode is None
            continue
        assert result.errorCode == "NoSuchBucket"
        assert result.errorMessage
        assert error_xml(result.body)["Code"] == "NoSuchBucket"  # on errors the SDK keeps the raw XML


# --- 3. list buckets ---------------------------------------------------------------------------------


def test_sdk_list_buckets_with_locations(make_sdk: SdkFactory, mode: str, world: Simulator) -> None:
    result = make_sdk(mode).listBuckets(isQueryLocation=True)
    assert result.status == 200, (result.errorCode, result.errorMessage)
    listed = {b.name: b.location for b in result.body.buckets}
    assert listed == {name: location for name, (location, _) in BUCKETS.items()}
    assert all(b.create_date for b in result.body.buckets)
    credentials = httpx.get(f"{world.endpoint}/_sim/credentials").json()
    assert result.body.owner.owner_id == credentials["domain_id"]


# --- 4. objects ----------------------------------------------------------------------------------------


def _seeded_export_object(sim: Simulator) -> dict[str, Any]:
    return next(o for (b, k), o in sim.backend.objects.items() if b == EXPORTS and k.startswith("exports/"))


def test_sdk_object_metadata(make_sdk: SdkFactory, mode: str, world: Simulator) -> None:
    client = make_sdk(mode)
    seeded = _seeded_export_object(world)
    meta = client.getObjectMetadata(EXPORTS, seeded["key"])
    assert meta.status == 200, meta.errorCode
    assert meta.body.contentLength == seeded["size"] > 0
    assert meta.body.etag == f'"{seeded["etag"]}"'
    assert meta.requestId
    assert meta.body.contentType == "binary/octet-stream"  # HEAD answers with the headers GET has
    readme = client.getObjectMetadata(EXPORTS, "README.txt")
    assert readme.status == 200 and readme.body.contentLength == 512
    put_object(world, SCRATCH, ODD_KEY, 99)
    odd = client.getObjectMetadata(SCRATCH, ODD_KEY)
    assert odd.status == 200 and odd.body.contentLength == 99, odd.errorCode
    assert [e.key for e in client.listObjects(SCRATCH, prefix="exports/2024 q1/").body.contents] == [ODD_KEY]
    missing = client.getObjectMetadata(EXPORTS, "exports/does-not-exist.qcow2")
    assert missing.status == 404
    assert client.getObjectMetadata(MISSING, "README.txt").status == 404


def test_sdk_get_object_range_and_in_memory(make_sdk: SdkFactory, mode: str, world: Simulator) -> None:
    put_object(world, SCRATCH, "small/blob.bin", 64)
    client = make_sdk(mode)
    ranged = client.getObject(SCRATCH, "small/blob.bin", headers=GetObjectHeader(range="0-9"), loadStreamInMemory=True)
    assert ranged.status == 206, (ranged.errorCode, ranged.errorMessage)
    assert ranged.body.buffer == bytes(10) and ranged.body.size == 10
    assert dict(ranged.header).get("content-range") == "bytes 0-9/64"
    tail = client.getObject(
        SCRATCH, "small/blob.bin", headers=GetObjectHeader(range="bytes=60-"), loadStreamInMemory=True
    )
    assert tail.status == 206 and tail.body.size == 4
    whole = client.getObject(SCRATCH, "small/blob.bin", loadStreamInMemory=True)
    assert whole.status == 200 and whole.body.buffer == bytes(64)
    beyond = client.getObject(
        SCRATCH, "small/blob.bin", headers=GetObjectHeader(range="100-200"), loadStreamInMemory=True
    )
    assert beyond.status == 416 and beyond.errorCode == "InvalidRange"
    missing = client.getObject(SCRATCH, "small/nope.bin", loadStreamInMemory=True)
    assert missing.status == 404 and missing.errorCode == "NoSuchKey"


def test_sdk_list_objects_prefix_and_paging(make_sdk: SdkFactory, mode: str, world: Simulator) -> None:
    keys = [f"paging/part-{n:02d}.qcow2" for n in range(5)]
    for n, key in enumerate(keys):
        put_object(world, SCRATCH, key, 1000 + n)
    put_object(world, SCRATCH, "other/outside.qcow2", 7)
    client = make_sdk(mode)
    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        result = client.listObjects(SCRATCH, prefix="paging/", marker=marker, max_keys=2)
        assert result.status == 200, (result.errorCode, result.errorMessage)
        body = result.body
        assert body.name == SCRATCH and body.prefix == "paging/" and body.max_keys == 2
        assert len(body.contents) <= 2
        seen += [entry.key for entry in body.contents]
        assert all(entry.size == 1000 + keys.index(entry.key) for entry in body.contents)
        pages += 1
        if not body.is_truncated:
            break
        assert body.next_marker == body.contents[-1].key
        marker = body.next_marker
    assert seen == keys and pages == 3
    everything = client.listObjects(SCRATCH)
    assert [e.key for e in everything.body.contents] == ["other/outside.qcow2", *keys]
    assert not everything.body.is_truncated
    missing = client.listObjects(MISSING)
    assert missing.status == 404
    # with negotiation (obs-vhost) the refused apiversion probe comes back body-less, as against the service
    assert missing.errorCode == (None if mode == "obs-vhost" else "NoSuchBucket")


def test_sdk_list_objects_with_delimiter(make_sdk: SdkFactory, mode: str, world: Simulator) -> None:
    for key in ("tree/a.qcow2", "tree/b/1.qcow2", "tree/b/2.qcow2", "tree/c/1.qcow2", "tree/d.qcow2"):
        put_object(world, SCRATCH, key, 1)
    client = make_sdk(mode)
    folder = client.listObjects(SCRATCH, prefix="tree/", delimiter="/").body
    assert [e.key for e in folder.contents] == ["tree/a.qcow2", "tree/d.qcow2"]
    assert [p.prefix for p in folder.commonPrefixs] == ["tree/b/", "tree/c/"]
    assert folder.delimiter == "/" and not folder.is_truncated
    first = client.listObjects(SCRATCH, prefix="tree/", delimiter="/", max_keys=2).body
    assert [e.key for e in first.contents] == ["tree/a.qcow2"]
    assert [p.prefix for p in first.commonPrefixs] == ["tree/b/"]
    assert first.is_truncated and first.next_marker == "tree/b/"
    rest = client.listObjects(SCRATCH, prefix="tree/", delimiter="/", max_keys=2, marker=first.next_marker).body
    assert [e.key for e in rest.contents] == ["tree/d.qcow2"] and [p.prefix for p in rest.commonPrefixs] == ["tree/c/"]
    assert not rest.is_truncated
    top = client.listObjects(SCRATCH, delimiter="/").body
    assert [p.prefix for p in top.commonPrefixs] == ["tree/"] and top.contents == []


def test_sdk_list_objects_reports_the_storage_class_of_the_mode(
    make_sdk: SdkFactory, mode: str, world: Simulator
) -> None:
    for bucket in ("ims-archive-warm", "ims-archive-cold", SCRATCH):
        put_object(world, bucket, "listed.bin", 3)
        (entry,) = make_sdk(mode).listObjects(bucket).body.contents
        assert entry.key == "listed.bin" and entry.size == 3
        assert entry.storageClass == reported_class(BUCKETS[bucket][1], SIGNATURE_OF[mode])


# --- 5. an export's file appears in the bucket ------------------------------------------------------------


def _exportable(sim: Simulator) -> list[dict[str, Any]]:
    """Images every export rule accepts for a normal qcow2 export (private, active, small, allowed OS)."""
    images = [
        image
        for image in sim.backend.images.values()
        if image["visibility"] == "private"
        and image["owner"] == sim.info.project_id
        and image["status"] == "active"
        and image["virtual_env_type"] == "FusionCompute"
        and image["__whole_image"] is False
        and not image.get("__productcode")
        and not image.get("__system__cmkid")
        and image.get("__root_origin") != "file"
        and image["__platform"] in EXPORTABLE_PLATFORMS
        and int(image["__image_size"]) < 128 * GiB
    ]
    return sorted(images, key=lambda image: image["name"])


def _start_export(ims: httpx.Client, image_id: str, key: str) -> str:
    response = ims.post(
        f"/v1/cloudimages/{image_id}/file", json={"bucket_url": f"{EXPORTS}:{key}", "file_format": "qcow2"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def _job(ims: httpx.Client, job_id: str) -> dict[str, Any]:
    response = ims.get(f"/v1/cloudimages/job/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture()
def ims_client(world: Simulator) -> Iterator[httpx.Client]:
    info = world.info
    with httpx.Client(base_url=info.endpoint, auth=AkSkAuth(info.ak, info.sk, project_id=info.project_id)) as client:
        yield client


def test_exported_file_appears_in_the_bucket(make_sdk: SdkFactory, world: Simulator, ims_client: httpx.Client) -> None:
    client = make_sdk("v2-path")
    key = "exports/new.qcow2"
    image = _exportable(world)[0]
    assert client.getObjectMetadata(EXPORTS, key).status == 404
    job_id = _start_export(ims_client, image["id"], key)
    assert _job(ims_client, job_id)["status"] in ("INIT", "RUNNING")
    assert client.getObjectMetadata(EXPORTS, key).status == 404  # nothing visible while the job runs
    httpx.post(f"{world.endpoint}/_sim/clock", json={"advance": 86400}).raise_for_status()
    job = _job(ims_client, job_id)
    assert job["status"] in ("SUCCESS", "FAIL"), job
    meta = client.getObjectMetadata(EXPORTS, key)
    listed = client.listObjects(EXPORTS, prefix="exports/new").body.contents
    if job["status"] == "SUCCESS":
        assert meta.status == 200, meta.errorCode
        assert 0 < meta.body.contentLength <= int(image["__image_size"]) * 1.1
        assert [(e.key, e.size) for e in listed] == [(key, meta.body.contentLength)]
        head = client.getObject(EXPORTS, key, headers=GetObjectHeader(range="0-9"), loadStreamInMemory=True)
        assert head.status == 206 and head.body.size == 10
    else:
        assert job["error_code"], job
        assert meta.status == 404
        assert listed == []


def test_exports_in_bulk_objects_exist_exactly_for_succeeded_jobs(
    make_sdk: SdkFactory, world: Simulator, ims_client: httpx.Client
) -> None:
    """Every job: SUCCESS <=> its file is there with a plausible size. The seeded world has failures too."""
    client = make_sdk("obs-vhost")
    images = _exportable(world)[:40]
    jobs = {
        f"batch/{n:02d}.qcow2": (_start_export(ims_client, image["id"], f"batch/{n:02d}.qcow2"), image)
        for n, image in enumerate(images)
    }
    httpx.post(f"{world.endpoint}/_sim/clock", json={"advance": 86400}).raise_for_status()
    outcomes: dict[str, str] = {}
    for key, (job_id, image) in jobs.items():
        status = _job(ims_client, job_id)["status"]
        outcomes[key] = status
        meta = client.getObjectMetadata(EXPORTS, key)
        if status == "SUCCESS":
            assert meta.status == 200, (key, meta.errorCode)
            assert 0 < meta.body.contentLength <= int(image["__image_size"]) * 1.1
        else:
            assert status == "FAIL", (key, status)
            assert meta.status == 404, key
    listed = client.listObjects(EXPORTS, prefix="batch/").body.contents
    assert [e.key for e in listed] == sorted(k for k, s in outcomes.items() if s == "SUCCESS")
    assert set(outcomes.values()) == {"SUCCESS", "FAIL"}, (
        f"the seeded world gave only {set(outcomes.values())} for {len(jobs)} jobs: both branches must run"
    )


# --- 6. authentication ---------------------------------------------------------------------------------


def test_sdk_wrong_secret_key_is_signature_does_not_match(make_sdk: SdkFactory, mode: str, world: Simulator) -> None:
    users = httpx.get(f"{world.endpoint}/_sim/credentials").json()["users"]
    auditor = next(u for u in users if u["name"] == "ims-auditor")
    as_auditor = make_sdk(mode, ak=auditor["ak"], sk=auditor["sk"])
    assert as_auditor.getBucketLocation(EXPORTS).status == 200  # the other user's own pair is fine
    for client in (make_sdk(mode, sk=world.info.sk[:-1] + "x"), make_sdk(mode, sk=auditor["sk"])):
        result = client.getBucketLocation(EXPORTS)
        assert result.status == 403
        assert result.errorCode == "SignatureDoesNotMatch"
        assert client.getBucketMetadata(EXPORTS).status == 403


def test_sdk_unknown_access_key_is_invalid_access_key_id(make_sdk: SdkFactory, mode: str) -> None:
    client = make_sdk(mode, ak="AKNOSUCHKEY000000000")
    result = client.getBucketStoragePolicy(EXPORTS)
    assert result.status == 403
    assert result.errorCode == "InvalidAccessKeyId"
    assert client.listBuckets().status == 403


def test_sdk_skewed_date_header_is_request_time_too_skewed(make_sdk: SdkFactory, mode: str) -> None:
    """With ``x-obs-date``/``x-amz-date`` the SDK sends no ``Date``; the server checks that header instead."""
    client = make_sdk(mode)
    prefix = signing.OBS_HEADER_PREFIX[SIGNATURE_OF[mode]]
    now = datetime.now(UTC)
    late = client.getBucketLocation(EXPORTS, extensionHeaders={prefix + "date": signing.obs_date(now - 20 * MINUTE)})
    assert late.status == 403 and late.errorCode == "RequestTimeTooSkewed"
    fine = client.getBucketLocation(EXPORTS, extensionHeaders={prefix + "date": signing.obs_date(now - 5 * MINUTE)})
    assert fine.status == 200 and fine.body.location == REGION


def test_unsigned_request_is_access_denied_xml(world: Simulator) -> None:
    for method, path in (("GET", f"/{EXPORTS}?location"), ("GET", f"/{EXPORTS}/README.txt"), ("GET", f"/{EXPORTS}")):
        response = httpx.request(method, world.endpoint + path)
        assert response.status_code == 403, path
        assert response.headers["content-type"].startswith("application/xml")
        error = error_xml(response.text)
        assert error["Code"] == "AccessDenied" and error["Message"]
        assert error["RequestId"] == response.headers["x-obs-request-id"]


def test_obs_auth_with_skewed_clock_is_request_time_too_skewed(world: Simulator) -> None:
    info = world.info
    for signature_type in ("obs", "v2"):
        for offset in (timedelta(minutes=-20), timedelta(minutes=20)):
            auth = ObsAuth(
                info.ak, info.sk, signature_type=signature_type, clock=lambda offset=offset: datetime.now(UTC) + offset
            )
            response = httpx.get(f"{info.endpoint}/{EXPORTS}?location", auth=auth)
            assert response.status_code == 403, (signature_type, offset)
            assert error_xml(response.text)["Code"] == "RequestTimeTooSkewed"
        near = ObsAuth(info.ak, info.sk, signature_type=signature_type, clock=lambda: datetime.now(UTC) - 10 * MINUTE)
        assert httpx.get(f"{info.endpoint}/{EXPORTS}?location", auth=near).status_code == 200


def test_obs_auth_wrong_key_and_unknown_key(world: Simulator) -> None:
    info = world.info
    for signature_type in ("obs", "v2"):
        bad_secret = ObsAuth(info.ak, "not-the-secret", signature_type=signature_type)
        wrong = httpx.head(f"{info.endpoint}/{EXPORTS}", auth=bad_secret)
        assert wrong.status_code == 403 and wrong.content == b""  # HEAD: status only
        wrong = httpx.get(f"{info.endpoint}/{EXPORTS}?location", auth=bad_secret)
        assert error_xml(wrong.text)["Code"] == "SignatureDoesNotMatch"
        unknown = httpx.get(
            f"{info.endpoint}/{EXPORTS}?location",
            auth=ObsAuth("AKNOSUCHKEY000000000", info.sk, signature_type=signature_type),
        )
        assert unknown.status_code == 403 and error_xml(unknown.text)["Code"] == "InvalidAccessKeyId"


def test_api_version_probe_is_unauthenticated(world: Simulator) -> None:
    for bucket in (EXPORTS, "ims-archive-cold"):
        response = httpx.head(f"{world.endpoint}/{bucket}?apiversion")
        assert response.status_code == 200
        assert response.headers["x-obs-api"] == "3.0"
        assert response.headers["x-obs-request-id"]


# --- what the SDK puts on the wire in each mode --------------------------------------------------------------


def test_sdk_wire_format_per_mode(make_sdk: SdkFactory, mode: str, proxy: TunnelProxy, world: Simulator) -> None:
    client = make_sdk(mode, via_proxy=True, security_token="temporary-token/abc+=")
    signature = SIGNATURE_OF[mode]
    proxy.tunnels.clear()
    assert client.getBucketStoragePolicy("ims-archive-warm").status == 200
    assert client.getBucketLocation("ims-archive-warm").status == 200
    sent = proxy.requests()
    probes = [r for r in sent if "apiversion" in r[2]]
    signed = [r for r in sent if "apiversion" not in r[2]]
    port = _port(world.endpoint)
    if mode == "obs-vhost":
        # negotiation: one unsigned probe to the bucket's own host name, then OBS signing
        assert [(target, method, path) for target, method, path, _ in probes] == [
            (f"ims-archive-warm.{VHOST}:{port}", "HEAD", "/?apiversion")
        ]
        assert "authorization" not in probes[0][3]
    else:
        assert probes == []
    policy_path, location_path = (r[2] for r in signed)
    if mode == "v2-path":
        assert (policy_path, location_path) == ("/ims-archive-warm?storagePolicy", "/ims-archive-warm?location")
        assert signed[0][3]["host"] == f"127.0.0.1:{port}"
    else:
        query = "storageClass" if signature == "obs" else "storagePolicy"
        assert (policy_path, location_path) == (f"/?{query}", "/?location")
        assert signed[0][3]["host"] == f"ims-archive-warm.{VHOST}:{port}"
    for _, _, _, headers in signed:
        assert headers["authorization"].startswith(("OBS " if signature == "obs" else "AWS ") + world.info.ak + ":")
        token_header = signing.OBS_HEADER_PREFIX[signature] + "security-token"
        assert headers[token_header] == "temporary-token/abc+="
        other = signing.OBS_HEADER_PREFIX["v2" if signature == "obs" else "obs"]
        assert not [name for name in headers if name.startswith(other)]


def test_sdk_path_style_obs_signature_falls_back_to_v2(make_sdk: SdkFactory, proxy: TunnelProxy) -> None:
    """``signature="obs", path_style=True`` on an IP endpoint: the SDK signs V2 and reports S3 class names."""
    client = make_sdk("v2-path", via_proxy=True, signature="obs", path_style=True)
    proxy.tunnels.clear()
    policy = client.getBucketStoragePolicy("ims-archive-cold")
    meta = client.getBucketMetadata("ims-archive-cold")
    assert (policy.status, policy.body.storageClass) == (200, "GLACIER")
    assert (meta.status, meta.body.storageClass, meta.body.location) == (200, "GLACIER", REGION)
    assert [r[2] for r in proxy.requests()] == ["/ims-archive-cold?storagePolicy", "/ims-archive-cold"]
    assert all(r[3]["authorization"].startswith("AWS ") for r in proxy.requests())


# --- 7. our ObsAuth against the server --------------------------------------------------------------------------


@pytest.mark.parametrize("signature_type", ["obs", "v2"])
@pytest.mark.parametrize("token", [None, "temporary-token/abc+="])
def test_obs_auth_against_the_server(world: Simulator, signature_type: str, token: str | None) -> None:
    info = world.info
    put_object(world, SCRATCH, ODD_KEY, 4321)
    auth = ObsAuth(info.ak, info.sk, signature_type=signature_type, security_token=token)
    xmlns = (
        "{http://obs.myhwclouds.com/doc/2015-06-30/}"
        if signature_type == "obs"
        else ("{http://s3.amazonaws.com/doc/2006-03-01/}")
    )
    prefix = signing.OBS_HEADER_PREFIX[signature_type]
    with httpx.Client(base_url=info.endpoint, auth=auth) as client:
        for bucket, (location, storage_class) in BUCKETS.items():
            head = client.head(f"/{bucket}")
            assert head.status_code == 200, (bucket, head.headers.get("x-obs-error-code"))
            region_header = "x-obs-bucket-location" if signature_type == "obs" else "x-amz-bucket-region"
            assert head.headers[region_header] == location
            class_header = "x-obs-storage-class" if signature_type == "obs" else "x-default-storage-class"
            if storage_class == "STANDARD":
                assert class_header not in head.headers
            else:
                assert head.headers[class_header] == reported_class(storage_class, signature_type)
            where = ET.fromstring(client.get(f"/{bucket}?location").text)
            found = where.text if signature_type == "obs" else where.findtext(f"{xmlns}LocationConstraint")
            assert found == location
            for sub in ("storageClass", "storagePolicy"):
                response = client.get(f"/{bucket}?{sub}")
                assert response.status_code == 200, (bucket, sub, response.text)
                root = ET.fromstring(response.text)
                found = root.text if signature_type == "obs" else root.findtext(f"{xmlns}DefaultStorageClass")
                assert found == reported_class(storage_class, signature_type)
        odd = client.head(f"/{SCRATCH}/" + quote(ODD_KEY, safe="/"))
        assert odd.status_code == 200, odd.headers.get("x-obs-error-code")
        assert odd.headers["content-length"] == "4321"
        if token is not None:
            assert odd.request.headers[prefix + "security-token"] == token
        missing = client.head(f"/{SCRATCH}/" + quote(ODD_KEY + ".missing", safe="/"))
        assert missing.status_code == 404
        # %20, as the SDK encodes it (httpx ``params`` would send a form-style ``+``)
        listed = ET.fromstring(client.get(f"/{SCRATCH}?prefix=" + quote("exports/2024 q1/", safe="")).text)
        assert [k.text for k in listed.iter(f"{xmlns}Key")] == [ODD_KEY]


def test_obs_auth_signs_the_security_token_and_date_headers(world: Simulator) -> None:
    """The token header is part of the signature; ``x-obs-date`` replaces ``Date`` in it and in the skew check."""
    info = world.info
    url = f"{info.endpoint}/{EXPORTS}?location"
    for signature_type in ("obs", "v2"):
        prefix = signing.OBS_HEADER_PREFIX[signature_type]
        auth = ObsAuth(info.ak, info.sk, signature_type=signature_type, security_token="token-one")
        with httpx.Client() as client:
            signed = next(auth.sync_auth_flow(client.build_request("GET", url)))
            assert client.send(signed).status_code == 200
            signed.headers[prefix + "security-token"] = "token-two"  # changed after signing
            assert error_xml(client.send(signed).text)["Code"] == "SignatureDoesNotMatch"
        now = datetime.now(UTC)
        stale_date = ObsAuth(info.ak, info.sk, signature_type=signature_type, clock=lambda now=now: now - HOUR)
        fresh = httpx.get(url, auth=stale_date, headers={prefix + "date": signing.obs_date(now)})
        assert fresh.status_code == 200, fresh.text  # x-obs-date is current: the stale Date is ignored
        stale = httpx.get(
            url,
            auth=ObsAuth(info.ak, info.sk, signature_type=signature_type),
            headers={prefix + "date": signing.obs_date(now - HOUR)},
        )
        assert error_xml(stale.text)["Code"] == "RequestTimeTooSkewed"


# --- 8. unsupported methods -----------------------------------------------------------------------------------------


def test_unsupported_methods_are_method_not_allowed(world: Simulator) -> None:
    info = world.info
    for signature_type in ("obs", "v2"):
        auth = ObsAuth(info.ak, info.sk, signature_type=signature_type)
        with httpx.Client(base_url=info.endpoint, auth=auth) as client:
            for method, path in (
                ("PUT", f"/{EXPORTS}"),
                ("DELETE", f"/{EXPORTS}"),
                ("POST", f"/{EXPORTS}"),
                ("POST", f"/{EXPORTS}/README.txt"),
                ("PUT", f"/{EXPORTS}/README.txt?acl"),
                ("DELETE", "/"),
                ("PUT", f"/{EXPORTS}?storagePolicy"),
            ):
                response = client.request(method, path, content=b"<x/>" if method != "DELETE" else None)
                assert response.status_code == 405, (signature_type, method, path, response.status_code)
                assert response.headers["content-type"].startswith("application/xml")
                error = error_xml(response.text)
                assert error["Code"] == "MethodNotAllowed" and error["RequestId"]
            assert client.head(f"/{EXPORTS}/README.txt").status_code == 200  # nothing was changed


def test_sdk_bucket_write_calls_are_method_not_allowed(make_sdk: SdkFactory, mode: str) -> None:
    client = make_sdk(mode)  # object PUT and DELETE are served: see test_obs_objects.py
    for name, result in (
        ("createBucket", client.createBucket(SCRATCH)),
        ("deleteBucket", client.deleteBucket(SCRATCH)),
    ):
        assert result.status == 405, (name, result.status, result.errorCode)
        assert result.errorCode == "MethodNotAllowed", name
    assert client.getObjectMetadata(EXPORTS, "README.txt").status == 200
