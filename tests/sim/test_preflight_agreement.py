"""Preflight agrees with the server: every image, mode and target of the seeded simulator, tried for real.

An export preflight passes must be accepted; one it refuses must be refused with a code of one of the error
rules preflight raised for it (the server answers one code, the first in its own order). The simulator judges
with its own code (``ims_nb/sim/export_checks.py``), so agreement is a real test. The client connects with
explicit AK/SK, so it does not know it talks to the simulator: the simulator's strict profile is passed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pandas as pd
import pytest

import ims_nb
from ims_nb import ApiError, ImsClient
from ims_nb.preflight import preflight, preflight_summary
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import Simulator

pytestmark = pytest.mark.usefixtures("clean_env")

#: (file_format, quick): the four formats and fast export.
MODES = (("qcow2", False), ("vhd", False), ("zvhd", False), ("vmdk", False), (None, True))
TEN_DAYS = 10 * 86400  # longer than any export job of the seeded world
REGION_BUCKET = "ims-exports-cn-north-4"


@dataclass
class Tally:
    """Attempts, outcomes and every disagreement, with what each side said."""

    accepted: int = 0
    refused: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    disagreements: list[str] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return self.accepted + self.refused

    def judge(self, what: str, answer: str | None, expected: dict[str, str]) -> None:
        """``answer``: None if the server accepted, else its code; ``expected``: preflight's error rule -> code."""
        self.rules.update(expected.keys())
        if answer is None:
            self.accepted += 1
            if expected:
                self.disagreements.append(f"{what}: accepted, but preflight refused it with {expected}")
            return
        self.refused += 1
        self.codes[answer] += 1
        if not expected:
            self.disagreements.append(f"{what}: refused with {answer}, but preflight passed it")
        elif answer not in expected.values():
            self.disagreements.append(f"{what}: refused with {answer}, preflight said {expected}")

    def report(self) -> str:
        return (
            f"agreement: {self.attempts} attempts, {self.accepted} accepted, {self.refused} refused, "
            f"{len(self.disagreements)} disagreements"
        )


@pytest.fixture()
def client(fresh_sim: Simulator) -> Iterator[ImsClient]:
    """One client over httpx with explicit keys and no retries (a refusal is an answer, not a fault)."""
    info = fresh_sim.info
    with ims_nb.connect(info.region, ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint,
                        retry=ims_nb.RetryPolicy(max_attempts=1)) as made:  # fmt: skip
        yield made


def attempt(client: ImsClient, image_id: str, bucket_url: str, file_format: str | None, quick: bool) -> str | None:
    """None when the server starts the export, else the code it refuses with."""
    try:
        client.export_image(image_id, bucket_url, file_format, quick)
    except ApiError as error:
        return error.code
    return None


def error_codes(violations: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Image id -> {rule: code} of the error rows preflight raised for it."""
    errors = violations[violations["severity"] == "error"]
    found: dict[str, dict[str, str]] = {}
    for image_id, rule, code in zip(errors["image_id"], errors["rule"], errors["code"], strict=True):
        found.setdefault(image_id, {})[rule] = code
    return found


def mode_name(file_format: str | None, quick: bool) -> str:
    return "fast" if quick else str(file_format)


def test_preflight_agrees_with_the_simulator_on_every_image_mode_and_target(
    client: ImsClient, control: httpx.Client
) -> None:
    frame = client.images()
    buckets = sorted(b.name for b in client.buckets())
    assert len(frame) == 200 and len(buckets) == 6
    targets = [f"{bucket}:agree/{{id}}-{n}.{{ext}}" for n, bucket in enumerate(buckets)] + [
        "ims-agree-missing:agree/{id}.{ext}",  # a bucket that does not exist
        "Agree_Bucket:agree/{id}.{ext}",  # a bad bucket name
        f"{REGION_BUCKET}:agree/{{id}}*bad.{{ext}}",  # a bad object name
    ]
    tally = Tally()
    for file_format, quick in MODES:
        extension = "zvhd2" if quick else str(file_format)
        for target in targets:
            violations = preflight(frame, bucket_url=target, file_format=file_format, quick=quick, client=client,
                                   profile=SIMULATOR_PROFILE)  # fmt: skip
            expected = error_codes(violations)
            for image_id, name in zip(frame["id"], frame["name"], strict=True):
                bucket_url = target.format(id=image_id, ext=extension)
                answer = attempt(client, image_id, bucket_url, file_format, quick)
                what = f"{name} ({image_id}) {mode_name(file_format, quick)} -> {bucket_url}"
                tally.judge(what, answer, expected.get(image_id, {}))
            control.post("/clock", json={"advance": TEN_DAYS}).raise_for_status()  # this batch's jobs end
    print(tally.report())
    print(f"server codes: {dict(sorted(tally.codes.items()))}")
    assert not tally.disagreements, "\n".join([tally.report(), *tally.disagreements[:50]])
    assert tally.attempts == 200 * len(MODES) * len(targets)
    assert tally.accepted > 500 and tally.refused > 5000
    every_refusal = {"IMG.0077", "IMG.0078", "IMG.0106", "IMG.0046", "IMG.0128", "IMG.0167", "IMG.0071", "IMG.0160",
                     "IMG.0069", "IMG.0058", "IMG.0109", "IMG.0075"}  # fmt: skip
    assert every_refusal <= set(tally.codes), set(tally.codes)
    assert client.exports_in_progress() == {}


def test_object_exists_agrees(client: ImsClient, obs: httpx.Client) -> None:
    """The seeded object exports/<name>.qcow2: preflight says object-exists, the server IMG.0070."""
    frame = client.images()
    target = f"{REGION_BUCKET}:exports/{{name}}.qcow2"
    violations = preflight(frame, bucket_url=target, file_format="qcow2", client=client, profile=SIMULATOR_PROFILE)
    flagged = violations.loc[violations["rule"] == "object-exists", "image_id"]
    assert len(flagged) == 1
    expected = error_codes(violations)
    urls = preflight_summary(frame, bucket_url=target, file_format="qcow2")["bucket_url"]  # {name}, made key-safe
    tally = Tally()
    for image_id, bucket_url in zip(frame["id"], urls, strict=True):
        answer = attempt(client, image_id, bucket_url, "qcow2", False)
        tally.judge(f"{image_id} -> {bucket_url}", answer, expected.get(image_id, {}))
    print(tally.report())
    assert not tally.disagreements, "\n".join(tally.disagreements)
    assert tally.codes["IMG.0070"] == 1  # the owner of the name is exportable: the object is the only obstacle


def test_already_exporting_agrees(client: ImsClient, control: httpx.Client) -> None:
    """Export an image through the client; preflight then says already-exporting, and the server IMG.0148."""
    frame = client.images()
    target = f"{REGION_BUCKET}:agree/{{id}}-again.qcow2"
    before = preflight(frame, bucket_url=target, file_format="qcow2", client=client, profile=SIMULATOR_PROFILE)
    passing = sorted(set(frame["id"]) - set(error_codes(before)))
    assert len(passing) > 50
    started = {image_id: client.export_image(image_id, f"{REGION_BUCKET}:agree/{image_id}.qcow2", "qcow2")
               for image_id in passing[:5]}  # fmt: skip
    after = preflight(frame, bucket_url=target, file_format="qcow2", client=client, profile=SIMULATOR_PROFILE)
    exporting = after[after["rule"] == "already-exporting"]
    assert set(exporting["image_id"]) == set(started)
    for image_id, message in zip(exporting["image_id"], exporting["message"], strict=True):
        assert started[image_id] in message
    expected = error_codes(after)
    tally = Tally()
    for image_id in passing[:10]:
        answer = attempt(client, image_id, target.format(id=image_id), "qcow2", False)
        tally.judge(image_id, answer, expected.get(image_id, {}))
    assert not tally.disagreements, "\n".join(tally.disagreements)
    assert tally.codes == Counter({"IMG.0148": 5}) and tally.accepted == 5
    control.post("/clock", json={"advance": TEN_DAYS}).raise_for_status()
    later = preflight(frame, bucket_url=target, file_format="qcow2", client=client, profile=SIMULATOR_PROFILE)
    assert "already-exporting" not in set(later["rule"])


# --- bad input: raw requests, so the client's own argument checks do not stand in the way ------------------

BAD_INPUT: list[tuple[str, str | None, bool]] = [
    ("Bad_Bucket:agree/x.qcow2", "qcow2", False),
    (":agree/x.qcow2", "qcow2", False),
    ("ab:agree/x.qcow2", "qcow2", False),
    ("a" * 64 + ":agree/x.qcow2", "qcow2", False),
    ("-ims-exports:agree/x.qcow2", "qcow2", False),
    ("ims-exports.:agree/x.qcow2", "qcow2", False),
    ("ims..exports:agree/x.qcow2", "qcow2", False),
    ("ims-.exports:agree/x.qcow2", "qcow2", False),
    ("192.168.1.10:agree/x.qcow2", "qcow2", False),
    ("256.300.1.999:agree/x.qcow2", "qcow2", False),
    ("ims-exports-cn-north-4\n:agree/x.qcow2", "qcow2", False),
    ("ims-exports-cn-north-4", "qcow2", False),
    (f"{REGION_BUCKET}:", "qcow2", False),
    (f"{REGION_BUCKET}:agree/", "qcow2", False),
    (f"{REGION_BUCKET}:agree/my image.qcow2", "qcow2", False),
    (f"{REGION_BUCKET}: x.qcow2", "qcow2", False),
    (f"{REGION_BUCKET}:" + "x" * 129, "qcow2", False),
    (f"{REGION_BUCKET}:" + "d/" * 600 + "x.qcow2", "qcow2", False),
    (f"{REGION_BUCKET}:agree/x*y.qcow2", "qcow2", False),
    (f"{REGION_BUCKET}:agree//x.qcow2", "qcow2", False),
    (f"{REGION_BUCKET}:/agree/x.qcow2", "qcow2", False),
    (f"{REGION_BUCKET}:agree/x.qcow2\n", "qcow2", False),
    (f"{REGION_BUCKET}:agree/ümlaut.qcow2", "qcow2", False),
    (f"{REGION_BUCKET}:agree/x:y.qcow2", "qcow2", False),
    (f"{REGION_BUCKET}:agree/x.raw", "raw", False),
    (f"{REGION_BUCKET}:agree/x.qcow2", "QCOW2", False),
    (f"{REGION_BUCKET}:agree/x", None, False),
    (f"{REGION_BUCKET}:agree/x.zvhd2", "qcow2", True),
    ("Bad_Bucket:agree/x y.raw", "raw", False),
    ("ims-archive-warm:agree/x y.qcow2", "qcow2", False),
    ("ims-archive-warm:agree/x.qcow2", "vhd", True),
    # valid, for contrast: accepted by both (an extension mismatch is only a warning)
    (f"{REGION_BUCKET}:agree/ok.vhd", "qcow2", False),
    (f"{REGION_BUCKET}:agree/ok.zvhd2", None, True),
    ("ims-exports-scratch:a/b/c/d.e-f_g.qcow2", "qcow2", False),
]


def raw_export(ims: httpx.Client, image_id: str, bucket_url: str, file_format: str | None, quick: bool) -> str | None:
    body: dict[str, Any] = {"bucket_url": bucket_url}
    if file_format is not None:
        body["file_format"] = file_format
    if quick:
        body["is_quick_export"] = True
    response = ims.post(f"/v1/cloudimages/{image_id}/file", json=body)
    if response.status_code == 200:
        return None
    return str(response.json()["error"]["code"])


@pytest.mark.parametrize(("bucket_url", "file_format", "quick"), BAD_INPUT, ids=[repr(c[0])[:40] for c in BAD_INPUT])
def test_bad_input_agrees(
    client: ImsClient,
    ims: httpx.Client,
    exportable: list[dict[str, Any]],
    bucket_url: str,
    file_format: str | None,
    quick: bool,
) -> None:
    image = exportable[0]
    violations = preflight(image, bucket_url=bucket_url, file_format=file_format, quick=quick, client=client,
                           profile=SIMULATOR_PROFILE)  # fmt: skip
    assert set(violations["severity"]) <= {"error", "warning"}
    tally = Tally()
    answer = raw_export(ims, image["id"], bucket_url, file_format, quick)
    tally.judge(f"{bucket_url!r} {file_format} quick={quick}", answer, error_codes(violations).get(image["id"], {}))
    assert not tally.disagreements, tally.disagreements
