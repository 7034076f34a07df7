"""`jewelgan serve` as a real process on loopback: it starts on the shipped model, serves the page and the
API, logs JSON lines, and on SIGTERM stops gracefully, leaving a running bulk job queued; the next start
finishes it with every image exactly once."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import urllib.error
import urllib.request

import pytest


def get(url: str, timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def get_json(url: str):
    return json.loads(get(url)[1])


def post_json(url: str, body: dict):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port, jobs_dir, log):
    proc = subprocess.Popen([sys.executable, "-m", "jewelgan.cli", "serve", "--port", str(port), "--jobs-dir",
                             str(jobs_dir)], stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if get(f"http://127.0.0.1:{port}/readyz", timeout=1)[0] == 200:
                return proc
        except OSError:  # not listening yet
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"jewelgan serve did not become ready: {open(log.name).read()[-2000:]}")


def test_serve_process_stops_gracefully_and_resumes_its_job(tmp_path):
    port, jobs = free_port(), tmp_path / "jobs"
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "serve.log", "w+") as log:
        proc = start(port, jobs, log)
        try:
            assert "jewelgan studio" in get(url + "/")[1]
            assert get(url + "/docs")[0] == 200
            job = post_json(url + "/v1/jobs", {"n": 1200, "seed": 7})
            while get_json(f"{url}/v1/jobs/{job['id']}")["done"] == 0:
                time.sleep(0.02)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its graceful stop
        text = open(log.name).read()
    assert "loopback only" in text
    access = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(a["route"] == "/v1/jobs" and a["status"] == 202 for a in access)
    saved = json.loads((jobs / job["id"] / "job.json").read_text())
    assert saved["status"] == "queued"
    done_before = len(list((jobs / job["id"] / "out").glob("*.png")))
    assert 0 < done_before < 1200

    with open(tmp_path / "serve2.log", "w+") as log:
        proc = start(port, jobs, log)
        try:
            deadline = time.time() + 120
            while get_json(f"{url}/v1/jobs/{job['id']}")["status"] != "done" and time.time() < deadline:
                time.sleep(0.1)
            assert get_json(f"{url}/v1/jobs/{job['id']}")["status"] == "done"
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its graceful stop
    seeds = [json.loads(x)["seed"] for x in (jobs / job["id"] / "out" / "manifest.jsonl").read_text().splitlines()]
    assert sorted(seeds) == list(range(7, 1207))
