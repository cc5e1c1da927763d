"""The simulator's state and API semantics (no HTTP): the world, images, exports and jobs; OBS and IAM by mixins."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ims_nb.sim import export_checks, listing
from ims_nb.sim.buckets import DELETED, RegionObjects
from ims_nb.sim.buckets import Bucket as Bucket  # the simulator's modules have long imported these from here
from ims_nb.sim.clock import ClockState, SimClock, iso_millis
from ims_nb.sim.credentials import Principal as Principal
from ims_nb.sim.credentials import RegionCredentials
from ims_nb.sim.credentials import Signer as Signer
from ims_nb.sim.errors import ims_error
from ims_nb.sim.iam import Iam, region_world
from ims_nb.sim.jobs import JobPlan, plan_job
from ims_nb.sim.store import Store


class SimBackend(RegionCredentials, RegionObjects):
    """IMS, OBS and IAM semantics over one world that a seed determines.

    The world and IMS are here; OBS buckets and objects are ``RegionObjects`` (``ims_nb.sim.buckets``), keys and
    tokens ``RegionCredentials`` (``ims_nb.sim.credentials``).

    Args:
        seed: the world's seed (inventory, credentials, job ids and durations).
        images: how many images the inventory holds (at least one of each special category).
        region: the region the simulator plays.
        clock: the simulated clock jobs run on.
        store: SQLite persistence; when it already holds a world, that world is loaded instead.
        iam: the account's IAM, shared with the other regions' backends; None: this backend owns a new one
            (and plays the first region, whose world is the seed's single-region world).
        sub_projects: suffixes of the region's sub-projects (``<region>_<suffix>``), each with images of its own.
        team: operators the account has besides the demo users (``ims-operator-2`` ...; a new ``iam`` only).
    """

    seed: int
    image_count: int
    region: str

    def __init__(
        self,
        *,
        seed: int = 0,
        images: int = 200,
        region: str = "cn-north-4",
        clock: SimClock | None = None,
        store: Store | None = None,
        iam: Iam | None = None,
        sub_projects: Sequence[str] = (),
        team: int = 0,
    ) -> None:
        self.clock = clock or SimClock()
        self.store = store
        self.owns_iam = iam is None
        self.iam = Iam(team=team) if iam is None else iam
        self.sub_projects = tuple(sub_projects)
        self.lock = threading.RLock()
        self.seed, self.image_count, self.region = seed, images, region
        if store is not None and not store.is_empty():
            self._load(store.load())
        else:
            self.reset()

    # --- world ------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, images: int | None = None, region: str | None = None) -> None:
        """Rebuild the world from a seed: same seed, same everything. Jobs and tokens are dropped."""
        with self.lock:
            seed = self.seed if seed is None else seed
            images = self.image_count if images is None else images
            region = self.region if region is None else region
            inventory, projects = region_world(seed, images, region, primary=self.owns_iam, subs=self.sub_projects)
            self.seed, self.image_count, self.region = seed, images, region
            self._set_identity(inventory, projects)
            self._set_images(inventory.images)
            self.buckets = {b["name"]: Bucket(**b) for b in inventory.buckets}
            self.objects = {(o["bucket"], o["key"]): o for o in inventory.objects}
            self._clear_jobs()
            self.job_sequence = 0
            if self.clock.manual:
                self.clock.restore(SimClock(manual=True).state)
            if self.store is not None:
                self.store.replace_all(self._meta(), inventory.images, inventory.buckets, inventory.objects)

    def _meta(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "images": self.image_count,
            "region": self.region,
            "job_sequence": self.job_sequence,
            "clock": asdict(self.clock.state),
        }

    def _load(self, data: dict[str, Any]) -> None:
        meta = data["meta"]
        self.seed, self.image_count, self.region = meta["seed"], meta["images"], meta["region"]
        self._set_identity(*region_world(self.seed, 0, self.region, primary=self.owns_iam, subs=self.sub_projects))
        self._set_images(data["images"])
        self.buckets = {b["name"]: Bucket(**b) for b in data["buckets"]}
        self.objects = {(o["bucket"], o["key"]): o for o in data["objects"]}
        self._clear_jobs()
        for raw in data["jobs"]:
            self._index_job(JobPlan.from_dict(raw))
        self.job_sequence = meta["job_sequence"]
        self.tokens.update(data["tokens"])  # temporary AKs are not persisted: clients ask for new ones
        saved = ClockState(**meta["clock"])
        if saved.manual == self.clock.manual:
            self.clock.restore(ClockState(saved.sim_anchor, saved.real_anchor, self.clock.scale, saved.manual))
        else:  # the mode changed across the restart: continue from the saved simulated instant
            elapsed = 0.0 if saved.manual else (time.time() - saved.real_anchor) * saved.scale
            self.clock.restore(ClockState(saved.sim_anchor + elapsed, time.time(), self.clock.scale, self.clock.manual))

    def _set_images(self, images: list[dict[str, Any]]) -> None:
        self.images = {image["id"]: image for image in images}
        self._listing_cache: dict[tuple[Any, ...], tuple[list[dict[str, Any]], dict[str, int]]] = {}

    def save_clock(self) -> None:
        if self.store is not None:
            self.store.put_meta("clock", asdict(self.clock.state))

    # --- IMS --------------------------------------------------------------------------------

    def list_images(self, pairs: Sequence[tuple[str, str]], project_id: str | None = None) -> list[dict[str, Any]]:
        """One page of GET /v2/cloudimages, as the project ``project_id`` (default: the region's) sees it."""
        project = project_id or self.project_id
        query = listing.parse_query(pairs, project)
        with self.lock:
            cache_key = (project, query.cache_key, query.sort_key, query.sort_dir)
            cached = self._listing_cache.get(cache_key)
            if cached is None:
                visible = [i for i in self.images.values() if i.get("status") != "deleted" and self.sees(project, i)]
                matched = [i for i in visible if all(p(i) for p in query.predicates)]
                ordered = listing.sort_images(matched, query.sort_key, query.sort_dir)
                cached = (ordered, {image["id"]: n for n, image in enumerate(ordered)})
                if len(self._listing_cache) > 256:
                    self._listing_cache.clear()
                self._listing_cache[cache_key] = cached
            return listing.page(cached[0], cached[1], query)

    def sees(self, project_id: str, image: dict[str, Any]) -> bool:
        """Whether ``project_id`` sees ``image``: the private images of the region's other projects are theirs."""
        owner = image.get("owner")
        return owner == project_id or all(owner != p.id for p in self.projects)

    def image(self, image_id: str, project_id: str | None = None) -> dict[str, Any] | None:
        image = self.images.get(image_id)
        return image if image is not None and self.sees(project_id or self.project_id, image) else None

    def export_image(self, principal: Principal, image_id: str, raw_body: bytes) -> str:
        """Validate an export as the service does and start its job; returns the job id."""
        request = export_checks.parse_body(raw_body)
        with self.lock:
            project = principal.project_id or self.project_id
            export_checks.check_image(self.images.get(image_id), image_id, project, request)
            if not principal.obs_write:
                raise export_checks.no_obs_permission()
            bucket = self.buckets.get(request.bucket)
            export_checks.check_bucket(asdict(bucket) if bucket else None, request.bucket, self.region)
            now = self.clock.now()
            if any(self.jobs[j].status_at(now) in ("INIT", "RUNNING") for j in self._by_image.get(image_id, [])):
                raise export_checks.already_exporting(image_id)
            if self.object_at(request.bucket, request.key, now) is not None:
                raise export_checks.object_exists(request.bucket, request.key)
            self.job_sequence += 1
            job = plan_job(  # another region's job ids differ from the first's, as real ones never repeat
                seed=self.seed if self.owns_iam else f"{self.seed}:{self.region}",
                sequence=self.job_sequence,
                image=self.images[image_id],
                bucket=request.bucket,
                key=request.key,
                file_format=request.file_format or "zvhd2",
                quick=request.quick,
                now=now,
            )
            self._index_job(job)
            if self.store is not None:
                self.store.put_job(
                    job.to_dict(), {"job_sequence": self.job_sequence, "clock": asdict(self.clock.state)}
                )
            return job.job_id

    def _clear_jobs(self) -> None:
        self.jobs = {}
        self._by_image: dict[str, list[str]] = {}
        self._by_target = {}

    def _index_job(self, job: JobPlan) -> None:
        self.jobs[job.job_id] = job
        self._by_image.setdefault(job.image_id, []).append(job.job_id)
        self._by_target.setdefault((job.bucket, job.key), []).append(job.job_id)

    def job_view(self, job_id: str, *, progress: bool) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise ims_error("IMG.0086", f"The job {job_id} does not exist.")
        return job.view(self.clock.now(), progress=progress)

    def quota(self) -> dict[str, Any]:
        used = sum(1 for i in self.images.values() if i.get("owner") == self.project_id)
        quota = max(50, (used // 50 + 1) * 50)
        return {
            "quotas": {
                "resources": [
                    {"type": "image", "used": used, "quota": quota, "min": 1, "max": 100000},
                    {"type": "image_shared", "used": 0, "quota": 128, "min": 1, "max": 1024},
                    {"type": "image_member", "used": 0, "quota": 128, "min": 1, "max": 1024},
                ]
            }
        }

    # --- control plane ----------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """Control plane: a summary of the world and every job as of now."""
        now = self.clock.now()
        with self.lock:
            return {
                "seed": self.seed,
                "region": self.region,
                "project_id": self.project_id,
                "clock": {"now": iso_millis(now), "manual": self.clock.manual, "scale": self.clock.scale},
                "images": len(self.images),
                "buckets": [asdict(b) for b in self.buckets.values()],
                "objects": [{"bucket": b, "key": k} for (b, k), o in sorted(self.objects.items()) if DELETED not in o],
                "jobs": [
                    job.view(now, progress=True) | {"bucket_url": f"{job.bucket}:{job.key}"}
                    for job in self.jobs.values()
                ],
            }
