"""Bulk jobs shared between keys (issue 43), through the real app: per-key quotas, fair share (another
key's job runs while one key has many waiting), DELETE of finished jobs, expiry with their files, jobs
made without keys taken over by the admin key, and zips that carry no server paths."""

import io
import json
import time
import zipfile

import pytest
from fastapi.testclient import TestClient

from jewelgan.serve import ServeSettings, create_app
from jewelgan.serve.access import add_key
from jewelgan.serve.jobs import JobStore
from jewelgan.serve.settings import SettingsError

SMALL = {"seed": 0, "truncation": 1.0}


@pytest.fixture
def two_keys(tmp_path):
    keys = tmp_path / "keys.txt"
    a, b = add_key(keys, "shop-a"), add_key(keys, "shop-b")
    return keys, {"Authorization": f"Bearer {a}"}, {"X-API-Key": b}


def keyed_app(tmp_path, keys, **settings):
    return create_app(ServeSettings(keys_file=keys, host="0.0.0.0", jobs_dir=tmp_path / "jobs", rate=1000.0,
                                    burst=1000, **settings))


def status(client, job_id, headers=None) -> dict:
    return client.get(f"/v1/jobs/{job_id}", headers=headers or {}).json()


def wait_for(client, job_id, headers=None, statuses=("done",), timeout=120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = status(client, job_id, headers)
        if job.get("status") in statuses:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job}")


def test_another_keys_job_runs_while_one_key_has_many_waiting(tmp_path, two_keys):
    keys, a, b = two_keys
    app = keyed_app(tmp_path, keys)
    with TestClient(app.state.asgi) as client:
        mine = [client.post("/v1/jobs", json={**SMALL, "n": 16, "seed": 100 * k}, headers=a).json()["id"]
                for k in range(5)]
        theirs = client.post("/v1/jobs", json={**SMALL, "n": 16}, headers=b).json()["id"]
        finished_b = wait_for(client, theirs, b)["updated"]
        finished_a = [wait_for(client, j, a)["updated"] for j in mine]
    # shop-b's job ran after at most two of shop-a's (the one running, and one started before it was
    # submitted), not behind all five: first in first out would finish it last
    assert sum(t > finished_b for t in finished_a) >= 3, (finished_b, finished_a)


def test_a_long_job_gives_way_to_another_keys_job_after_its_slice(tmp_path, two_keys):
    keys, a, b = two_keys
    app = keyed_app(tmp_path, keys, job_slice=0.3)
    with TestClient(app.state.asgi) as client:
        long = client.post("/v1/jobs", json={**SMALL, "n": 5000}, headers=a).json()["id"]
        while status(client, long, a)["done"] == 0:
            time.sleep(0.02)
        short = client.post("/v1/jobs", json={**SMALL, "n": 8}, headers=b).json()["id"]
        wait_for(client, short, b, timeout=60)
        assert status(client, long, a)["done"] < 5000  # shop-b's job ran in the middle of shop-a's
        resumed = status(client, long, a)["done"]
        deadline = time.time() + 60
        while status(client, long, a)["done"] == resumed and time.time() < deadline:
            time.sleep(0.02)
        assert status(client, long, a)["done"] > resumed  # and shop-a's carries on after it
        assert client.delete(f"/v1/jobs/{long}", headers=a).status_code == 200
        wait_for(client, long, a, statuses=("cancelled",))
    out = tmp_path / "jobs" / long / "out" / "manifest.jsonl"
    seeds = [json.loads(line)["seed"] for line in out.read_text().splitlines()]
    assert len(seeds) == len(set(seeds))  # given way and resumed: every image written once


def test_each_key_has_a_quota_of_pending_jobs_and_images(tmp_path, two_keys):
    keys, a, b = two_keys
    app = keyed_app(tmp_path, keys, max_jobs_per_key=2, max_job_images_per_key=100, max_job_n=100)
    app.state.jobs.stop()  # nothing runs: the jobs stay queued while the quotas are checked
    client = TestClient(app.state.asgi)
    first = client.post("/v1/jobs", json={**SMALL, "n": 40}, headers=a)
    assert first.status_code == 202 and client.post("/v1/jobs", json={**SMALL, "n": 40}, headers=a).status_code == 202
    third = client.post("/v1/jobs", json={**SMALL, "n": 10}, headers=a)
    assert third.status_code == 429 and "quota" in third.json()["error"] and int(third.headers["retry-after"]) > 0
    assert client.post("/v1/jobs", json={**SMALL, "n": 60}, headers=b).status_code == 202  # shop-b is not held up
    over = client.post("/v1/jobs", json={**SMALL, "n": 41}, headers=b)
    assert over.status_code == 429 and over.json()["field"] == "n" and "60 images" in over.json()["error"]
    assert client.post("/v1/jobs", json={**SMALL, "n": 40}, headers=b).status_code == 202
    assert client.delete(f"/v1/jobs/{first.json()['id']}", headers=a).json()["status"] == "cancelled"
    assert client.post("/v1/jobs", json={**SMALL, "n": 10}, headers=a).status_code == 202  # room again


def test_finished_jobs_can_be_deleted_with_their_files(tmp_path):
    app = create_app(ServeSettings(jobs_dir=tmp_path / "jobs"))
    with TestClient(app.state.asgi) as client:
        job = client.post("/v1/jobs", json={**SMALL, "n": 2}).json()["id"]
        wait_for(client, job)
        assert client.get(f"/v1/jobs/{job}/download").status_code == 200
        assert (tmp_path / "jobs" / job).is_dir()
        gone = client.delete(f"/v1/jobs/{job}")
        assert gone.status_code == 200 and gone.json()["deleted"] is True and gone.json()["status"] == "done"
        assert not (tmp_path / "jobs" / job).exists()
        assert client.get(f"/v1/jobs/{job}").status_code == 404 and client.delete(f"/v1/jobs/{job}").status_code == 404
        running = client.post("/v1/jobs", json={**SMALL, "n": 5000}).json()["id"]
        first = client.delete(f"/v1/jobs/{running}").json()  # a pending job is cancelled first ...
        assert first["deleted"] is False
        wait_for(client, running, statuses=("cancelled",))
        assert client.delete(f"/v1/jobs/{running}").json()["deleted"] is True  # ... then deleted
        assert not (tmp_path / "jobs" / running).exists()
    assert JobStore(tmp_path / "jobs", {}).jobs == {}  # nothing comes back at the next start


def test_finished_jobs_expire_with_their_files(tmp_path):
    app = create_app(ServeSettings(jobs_dir=tmp_path / "jobs", job_ttl=1.0))
    with TestClient(app.state.asgi) as client:
        job = client.post("/v1/jobs", json={**SMALL, "n": 2}).json()["id"]
        done = wait_for(client, job)
        assert done["expires"] == pytest.approx(done["updated"] + 1.0)
        deadline = time.time() + 20
        while client.get(f"/v1/jobs/{job}").status_code == 200 and time.time() < deadline:
            time.sleep(0.1)
        assert client.get(f"/v1/jobs/{job}").status_code == 404
        assert not (tmp_path / "jobs" / job).exists()


def test_expired_jobs_are_removed_at_start(tmp_path):
    store = JobStore(tmp_path, {})
    store.stop()
    old = {"id": "0123456789abcdef", "owner": "local", "status": "done", "request": {"n": 1}, "done": 1, "n": 1,
           "created": time.time() - 7200, "updated": time.time() - 7200, "error": None}
    (tmp_path / old["id"] / "out").mkdir(parents=True)
    (tmp_path / old["id"] / "job.json").write_text(json.dumps(old))
    kept = JobStore(tmp_path, {}, ttl_s=0)  # 0: kept forever
    kept.stop()
    assert old["id"] in kept.jobs
    swept = JobStore(tmp_path, {}, ttl_s=3600)
    swept.stop()
    assert swept.jobs == {} and not (tmp_path / old["id"]).exists()


def test_jobs_made_without_keys_go_to_the_admin_key(tmp_path, two_keys):
    keys, a, b = two_keys
    with TestClient(create_app(ServeSettings(jobs_dir=tmp_path / "jobs")).state.asgi) as client:
        job = client.post("/v1/jobs", json={**SMALL, "n": 2}).json()["id"]
        wait_for(client, job)
    with TestClient(keyed_app(tmp_path, keys).state.asgi) as client:  # default admin: the keys file's first key
        assert [j["id"] for j in client.get("/v1/jobs", headers=a).json()["jobs"]] == [job]
        assert client.get("/v1/jobs", headers=b).json()["jobs"] == []
        assert client.get(f"/v1/jobs/{job}/download", headers=a).status_code == 200
    assert json.loads((tmp_path / "jobs" / job / "job.json").read_text())["owner"] == "shop-a"
    with pytest.raises(SettingsError, match="no such key"):
        keyed_app(tmp_path, keys, admin_key="nobody")


def test_a_named_admin_key_takes_the_keyless_jobs(tmp_path, two_keys):
    keys, a, b = two_keys
    store = JobStore(tmp_path / "jobs", {})
    store.stop()
    job = store.submit({"model": "default64", "n": 1, "seed": 0}, "local")
    client = TestClient(keyed_app(tmp_path, keys, admin_key="shop-b").state.asgi)
    app_jobs = client.get("/v1/jobs", headers=b).json()["jobs"]
    assert [j["id"] for j in app_jobs] == [job["id"]] and client.get("/v1/jobs", headers=a).json()["jobs"] == []


def test_a_downloaded_zip_carries_no_server_paths(tmp_path):
    app = create_app(ServeSettings(jobs_dir=tmp_path / "jobs"))
    with TestClient(app.state.asgi) as client:
        job = client.post("/v1/jobs", json={**SMALL, "n": 2}).json()["id"]
        wait_for(client, job)
        zf = zipfile.ZipFile(io.BytesIO(client.get(f"/v1/jobs/{job}/download").content))
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["model_name"] == "default64" and "run" not in manifest and manifest["n"] == 2
    text = zf.read("manifest.json").decode() + zf.read("manifest.jsonl").decode()
    assert str(tmp_path) not in text and '": "/' not in text  # no absolute path of this server at all
    assert "run" in json.loads((tmp_path / "jobs" / job / "out" / "manifest.json").read_text())  # kept for resuming


def test_job_settings_that_could_never_work_are_refused():
    with pytest.raises(SettingsError, match="max_job_images_per_key"):
        ServeSettings(max_job_images_per_key=5_000).check()  # below max_job_n (10,000)
    with pytest.raises(SettingsError, match="job_ttl"):
        ServeSettings(job_ttl=-1).check()
    with pytest.raises(SettingsError, match="max_jobs_per_key"):
        ServeSettings(max_jobs_per_key=0).check()
