"""Bulk jobs: Model.generate_bulk run by a worker thread, one job at a time, kept on disk.

Each job is a folder JOBS/<id>/ with job.json (request, owner, status, progress) and out/ (the bulk
generation folder: images, manifest.jsonl). Because generate_bulk resumes from its manifest, a job
that was running when the server stopped (gracefully or not) is queued again at the next start and
carries on where it was; shutdown asks it to stop between batches. Between its batches a job waits
while interactive requests are queued, so a long job never slows the studio's answers.

Sharing between keys: each key may have `max_jobs_per_key` jobs and `max_images_per_key` images still to
make (429 beyond); the worker takes the next job from the key served least recently, and a running job
gives way after `slice_s` seconds when another key has a job waiting (it is queued again and resumes from
its manifest). Finished jobs can be deleted, and are deleted with their files `ttl_s` seconds after they
finished.
"""

from __future__ import annotations

import json
import secrets
import shutil
import threading
import time
import zipfile
from pathlib import Path

from jewelgan.atomic import atomic_write_json
from jewelgan.inference import FORWARD_BATCH, BulkRequest, load_model

STATUSES = ("queued", "running", "done", "cancelled", "failed")
PENDING = ("queued", "running")
FINISHED = ("done", "cancelled", "failed")
PUBLIC = ("id", "status", "done", "n", "request", "created", "updated", "error")
LOCAL = "local"  # the owner of jobs made without API keys (loopback, one user)


class JobError(Exception):
    """Unknown job, or an action its state does not allow; status is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 404):
        super().__init__(message)
        self.status = status


class JobStore:
    def __init__(self, root: str | Path, model_paths: dict[str, Path], busy=lambda: False, max_pending: int = 100,
                 max_jobs_per_key: int = 10, max_images_per_key: int = 50_000, slice_s: float = 20.0,
                 ttl_s: float = 0.0, admin: str | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.model_paths, self.busy, self.max_pending = model_paths, busy, max_pending
        self.max_jobs_per_key, self.max_images_per_key = max_jobs_per_key, max_images_per_key
        self.slice_s, self.ttl_s = slice_s, ttl_s
        self._served: dict[str, float] = {}  # owner -> when their last job (or slice of one) started
        self._models: dict[Path, object] = {}  # loaded once per model for all jobs and slices
        self._swept = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cancel: set[str] = set()
        self.jobs: dict[str, dict] = {}
        for path in sorted(self.root.glob("*/job.json")):
            try:
                job = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue  # a job folder cut before its first write: nothing was promised for it
            if job.get("status") == "running":
                job["status"] = "queued"  # the server stopped under it; its manifest lets it resume
            if admin is not None and job.get("owner") == LOCAL:
                job["owner"] = admin  # made before keys were configured: the admin key takes it over
                self._save(job)
            self.jobs[job["id"]] = job
        self.sweep()
        self._thread: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        """Start the worker (again after stop(): jobs left queued carry on)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._work, name="jewelgan-jobs", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ API
    def submit(self, request: dict, owner: str) -> dict:
        with self._lock:
            pending = [j for j in self.jobs.values() if j["status"] in PENDING]
            if sum(j["owner"] == owner for j in pending) >= self.max_jobs_per_key:
                raise JobError(f"key {owner!r} has {self.max_jobs_per_key} jobs queued or running already (its "
                               "quota): wait for one to finish or cancel one", 429)
            left = sum(j["n"] - j["done"] for j in pending if j["owner"] == owner)
            if left + int(request["n"]) > self.max_images_per_key:
                raise JobError(f"key {owner!r} has {left} images still to make; with {request['n']} more it would "
                               f"pass its quota of {self.max_images_per_key}", 429)
            if len(pending) >= self.max_pending:
                raise JobError(f"{self.max_pending} jobs are already waiting; try again later", 503)
            job_id = secrets.token_hex(8)
            job = {"id": job_id, "owner": owner, "status": "queued", "request": request, "done": 0,
                   "n": int(request["n"]), "created": time.time(), "updated": time.time(), "error": None}
            self._save(job)
            self.jobs[job_id] = job
        self._wake.set()
        return self.public(job)

    def get(self, job_id: str, owner: str) -> dict:
        job = self.jobs.get(job_id)
        if job is None or job["owner"] != owner:  # another key's job is as good as absent
            raise JobError(f"no job {job_id!r}")
        return job

    def list(self, owner: str) -> list[dict]:
        return [self.public(j) for j in sorted(self.jobs.values(), key=lambda j: j["created"]) if j["owner"] == owner]

    def cancel(self, job_id: str, owner: str) -> dict:
        job = self.get(job_id, owner)
        with self._lock:
            if job["status"] not in PENDING:
                raise JobError(f"job {job_id} is {job['status']}; only queued or running jobs can be cancelled", 409)
            self._cancel.add(job_id)
            if job["status"] == "queued":
                self._set(job, status="cancelled")
        return self.public(job)

    def delete(self, job_id: str, owner: str) -> dict:
        """Cancel a queued or running job; delete a finished one with its files."""
        job = self.get(job_id, owner)
        if job["status"] in PENDING:
            return {**self.cancel(job_id, owner), "deleted": False}
        self._remove(job)
        return {**self.public(job), "deleted": True}

    def sweep(self) -> int:
        """Delete the finished jobs older than ttl_s (from when they finished) with their files; how many."""
        if not self.ttl_s:
            return 0
        self._swept = time.monotonic()
        cutoff = time.time() - self.ttl_s
        old = [j for j in list(self.jobs.values()) if j["status"] in FINISHED and j["updated"] < cutoff]
        for job in old:
            self._remove(job)
        return len(old)

    def _remove(self, job: dict) -> None:
        with self._lock:
            if self.jobs.pop(job["id"], None) is None:
                return
            self._cancel.discard(job["id"])
        # job.json first: a folder left half-deleted by a crash is skipped at the next start
        (self.root / job["id"] / "job.json").unlink(missing_ok=True)
        shutil.rmtree(self.root / job["id"], ignore_errors=True)

    def archive(self, job_id: str, owner: str) -> Path:
        """A zip of the finished job's images, manifest.jsonl and manifest.json (made once, then reused)."""
        job = self.get(job_id, owner)
        if job["status"] != "done":
            raise JobError(f"job {job_id} is {job['status']}; download it when it is done", 409)
        folder = self.root / job_id
        path = folder / "download.zip"  # (zips made before manifests lost their paths were jewelgan-<id>.zip)
        if not path.is_file():
            tmp = path.with_suffix(".zip.tmp")
            try:
                with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:  # PNG/WebP/JPEG are compressed already
                    for f in sorted((folder / "out").iterdir()):
                        if f.name == "manifest.json":
                            zf.writestr(f.name, json.dumps(self._shareable(job, f), indent=2))
                        elif f.is_file() and not f.name.startswith("."):
                            zf.write(f, f.name)
                tmp.replace(path)
            except FileNotFoundError:  # deleted (or expired) while it was being zipped
                raise JobError(f"no job {job_id!r}") from None
        return path

    @staticmethod
    def _shareable(job: dict, manifest: Path) -> dict:
        """The bulk manifest as a client may see it: the model by its served name, no path on this server."""
        data = json.loads(manifest.read_text())
        data.pop("run", None)
        return {"model_name": job["request"]["model"], **data}

    def public(self, job: dict) -> dict:
        out = {k: job[k] for k in PUBLIC}
        if self.ttl_s and job["status"] in FINISHED:
            out["expires"] = job["updated"] + self.ttl_s
        return out

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful shutdown: the running job stops after its current batch and stays queued for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ worker
    def _save(self, job: dict) -> None:
        atomic_write_json(self.root / job["id"] / "job.json", job)

    def _set(self, job: dict, **changes) -> None:
        job.update(changes, updated=time.time())
        self._save(job)

    def _next(self) -> dict | None:
        """The oldest queued job of the key served least recently (fair share between keys)."""
        with self._lock:
            queued = [j for j in self.jobs.values() if j["status"] == "queued" and j["id"] not in self._cancel]
            if not queued:
                return None
            return min(queued, key=lambda j: (self._served.get(j["owner"], float("-inf")), j["created"]))

    def _others_waiting(self, owner: str) -> bool:
        return any(j["status"] == "queued" and j["owner"] != owner for j in list(self.jobs.values()))

    def _maybe_sweep(self) -> None:
        if self.ttl_s and time.monotonic() - self._swept > min(60.0, self.ttl_s / 2):
            self.sweep()

    def _work(self) -> None:
        while not self._stop.is_set():
            self._maybe_sweep()
            job = self._next()
            if job is None:
                self._wake.wait(min(1.0, self.ttl_s / 4) if self.ttl_s else 1.0)
                self._wake.clear()
                continue
            self._run(job)

    def _model(self, name: str):
        path = self.model_paths[name]
        if path not in self._models:
            self._models[path] = load_model(path)
        return self._models[path]

    def _run(self, job: dict) -> None:
        with self._lock:
            if job["id"] in self._cancel or job["status"] != "queued" or job["id"] not in self.jobs:
                return  # cancelled (or deleted) between being picked and starting
            self._set(job, status="running")
            self._served[job["owner"]] = started = time.monotonic()
        req = job["request"]
        yielded = False

        def should_stop() -> bool:
            nonlocal yielded
            while self.busy() and not self._stop.is_set() and job["id"] not in self._cancel:
                time.sleep(0.005)  # give way to interactive requests
            self._maybe_sweep()
            if time.monotonic() - started > self.slice_s and self._others_waiting(job["owner"]):
                yielded = True  # another key's job waits: this one is queued again and resumes later
            return self._stop.is_set() or job["id"] in self._cancel or yielded

        def on_progress(done: int, n: int) -> None:
            job["done"] = done  # job.json is written at state changes only; the manifest is the durable record

        try:
            request = BulkRequest(req["n"], req.get("attributes") or {}, req["seed"], req["truncation"],
                                  FORWARD_BATCH, req["format"], req["transparent"], req.get("size"),
                                  req.get("resize", False))
            self._model(req["model"]).generate_bulk(request, self.root / job["id"] / "out",
                                                    should_stop=should_stop, on_progress=on_progress)
        except Exception as e:  # noqa: BLE001 - a failed job is reported on the job, the server keeps serving
            with self._lock:
                self._set(job, status="failed", error=str(e))
            return
        with self._lock:
            if job["id"] in self._cancel:
                self._set(job, status="cancelled")
            elif (self._stop.is_set() or yielded) and job["done"] < job["n"]:
                self._set(job, status="queued")  # resumes at the next start, or at its key's next turn
            else:
                self._set(job, status="done", done=job["n"])
