"""OBS state of one region's simulator backend: its buckets and objects, with the files of succeeded exports."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

from ims_nb.sim.clock import SimClock, iso_seconds
from ims_nb.sim.jobs import JobPlan
from ims_nb.sim.store import BODY, Store

#: The mark of a deleted object (the simulated instant of its deletion): it hides the file of an earlier export.
DELETED = "deleted_at"


@dataclass(frozen=True)
class Bucket:
    name: str
    location: str
    storage_class: str
    created: str


class RegionObjects:
    """The OBS side of one region's backend: stored objects, and the files export jobs write when they succeed."""

    buckets: dict[str, Bucket]
    objects: dict[tuple[str, str], dict[str, Any]]
    jobs: dict[str, JobPlan]
    _by_target: dict[tuple[str, str], list[str]]  # (bucket, key) -> the ids of the jobs that export to it
    clock: SimClock
    store: Store | None
    lock: threading.RLock

    def object_at(self, bucket: str, key: str, now: float | None = None) -> dict[str, Any] | None:
        """An object as of ``now``: stored ones, and the files of export jobs that have succeeded (and were not
        deleted since)."""
        stored = self.objects.get((bucket, key))
        if stored is not None and DELETED not in stored:
            return stored
        now = self.clock.now() if now is None else now
        deleted_at = stored[DELETED] if stored is not None else None
        for job_id in self._by_target.get((bucket, key), []):
            job = self.jobs[job_id]
            if job.status_at(now) == "SUCCESS" and (deleted_at is None or job.finished_at > deleted_at):
                return _job_object(job)
        return None

    def list_objects(self, bucket: str) -> list[dict[str, Any]]:
        """Every object of ``bucket`` as of now, in key order."""
        now = self.clock.now()
        found = {key: obj for (b, key), obj in self.objects.items() if b == bucket}
        for job in self.jobs.values():
            if job.bucket != bucket or job.status_at(now) != "SUCCESS":
                continue
            held = found.get(job.key)
            if held is None or (DELETED in held and job.finished_at > held[DELETED]):
                found[job.key] = _job_object(job)
        return [found[key] for key in sorted(found) if DELETED not in found[key]]

    def put_object(self, bucket: str, key: str, body: bytes) -> dict[str, Any]:
        """Store an object with its body (PUT object); it replaces any object under that key."""
        with self.lock:
            obj = {
                "bucket": bucket,
                "key": key,
                "size": len(body),
                "created": iso_seconds(self.clock.now()),
                "etag": hashlib.md5(body).hexdigest(),  # noqa: S324 - an ETag, not security
                BODY: body,
            }
            self._keep_object(obj)
            return obj

    def delete_object(self, bucket: str, key: str) -> None:
        """Remove an object (DELETE object); an export's file stays gone until a later export writes it again."""
        with self.lock:
            if self.object_at(bucket, key) is not None or (bucket, key) in self.objects:
                self._keep_object({"bucket": bucket, "key": key, DELETED: self.clock.now()})

    def _keep_object(self, obj: dict[str, Any]) -> None:
        self.objects[(obj["bucket"], obj["key"])] = obj
        if self.store is not None:
            self.store.put_object(obj)


def _job_object(job: JobPlan) -> dict[str, Any]:
    return {
        "bucket": job.bucket,
        "key": job.key,
        "size": job.output_size,
        "created": iso_seconds(job.finished_at),
        "etag": hashlib.md5(job.job_id.encode()).hexdigest(),  # noqa: S324
    }
