"""Bulk jobs: Model.generate_bulk run by a worker thread, one job at a time, kept on disk.

Each job is a folder JOBS/<id>/ with job.json (request, owner, status, progress) and out/ (the bulk
generation folder: images, manifest.jsonl). Because generate_bulk resumes from its manifest, a job
that was running when the server stopped (gracefully or not) is queued again at the next start and
carries on where it was; shutdown asks it to stop between batches. Between its batches a job waits
while interactive requests are queued, so a long job never slows the studio's answers.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import zipfile
from pathlib import Path

from jewelgan.atomic import atomic_write_json
from jewelgan.inference import FORWARD_BATCH, BulkRequest, load_model

STATUSES = ("queued", "running", "done", "cancelled", "failed")
PENDING = ("queued", "running")


class JobError(Exception):
    """Unknown job, or an action its state does not allow; status is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 404):
        super().__init__(message)
        self.status = status


class JobStore:
    def __init__(self, root: str | Path, model_paths: dict[str, Path], busy=lambda: False, max_pending: int = 100):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.model_paths, self.busy, self.max_pending = model_paths, busy, max_pending
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
            self.jobs[job["id"]] = job
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
            if sum(j["status"] in PENDING for j in self.jobs.values()) >= self.max_pending:
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

    def archive(self, job_id: str, owner: str) -> Path:
        """A zip of the finished job's images, manifest.jsonl and manifest.json (made once, then reused)."""
        job = self.get(job_id, owner)
        if job["status"] != "done":
            raise JobError(f"job {job_id} is {job['status']}; download it when it is done", 409)
        folder = self.root / job_id
        path = folder / f"jewelgan-{job_id}.zip"
        if not path.is_file():
            tmp = path.with_suffix(".zip.tmp")
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:  # PNG/WebP/JPEG are compressed already
                for f in sorted((folder / "out").iterdir()):
                    if f.is_file() and not f.name.startswith("."):
                        zf.write(f, f.name)
            tmp.replace(path)
        return path

    @staticmethod
    def public(job: dict) -> dict:
        return {k: job[k] for k in ("id", "status", "done", "n", "request", "created", "updated", "error")}

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful shutdown: the running job stops after its current batch and stays queued for the next start."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ worker
    def _save(self, job: dict) -> None:
        atomic_write_json(self.root / job["id"] / "job.json", job)

    def _set(self, job: dict, **changes) -> None:
        job.update(changes, updated=time.time())
        self._save(job)

    def _next(self) -> dict | None:
        with self._lock:
            queued = [j for j in self.jobs.values() if j["status"] == "queued"]
            return min(queued, key=lambda j: j["created"]) if queued else None

    def _work(self) -> None:
        while not self._stop.is_set():
            job = self._next()
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self._run(job)

    def _run(self, job: dict) -> None:
        with self._lock:
            if job["id"] in self._cancel:
                return
            self._set(job, status="running")
        req = job["request"]

        def should_stop() -> bool:
            while self.busy() and not self._stop.is_set() and job["id"] not in self._cancel:
                time.sleep(0.005)  # give way to interactive requests
            return self._stop.is_set() or job["id"] in self._cancel

        def on_progress(done: int, n: int) -> None:
            job["done"] = done  # job.json is written at state changes only; the manifest is the durable record

        try:
            request = BulkRequest(req["n"], req.get("attributes") or {}, req["seed"], req["truncation"],
                                  FORWARD_BATCH, req["format"], req["transparent"], req.get("size"),
                                  req.get("resize", False))
            load_model(self.model_paths[req["model"]]).generate_bulk(request, self.root / job["id"] / "out",
                                                                     should_stop=should_stop, on_progress=on_progress)
        except Exception as e:  # noqa: BLE001 - a failed job is reported on the job, the server keeps serving
            with self._lock:
                self._set(job, status="failed", error=str(e))
            return
        with self._lock:
            if job["id"] in self._cancel:
                self._set(job, status="cancelled")
            elif self._stop.is_set() and job["done"] < job["n"]:
                self._set(job, status="queued")  # resumes at the next start
            else:
                self._set(job, status="done", done=job["n"])
