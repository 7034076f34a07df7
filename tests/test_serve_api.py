"""The HTTP API with FastAPI's TestClient: byte identity with the CLI, batching, overload, errors, keys,
rate limit, body cap, jobs (resume after a stop), probes and metrics."""

import asyncio
import base64
import io
import json
import logging
import threading
import time
import zipfile

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import jewelgan
from jewelgan.cli import app as cli
from jewelgan.inference import Model
from jewelgan.serve import ServeSettings, create_app
from jewelgan.serve.access import KeysFileError, RateLimiter, add_key, read_keys
from jewelgan.serve.engine import Engine, Overloaded
from jewelgan.serve.jobs import JobStore
from jewelgan.serve.settings import SettingsError

runner = CliRunner()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    app = create_app(ServeSettings(jobs_dir=tmp_path_factory.mktemp("jobs"), max_n=16))
    with TestClient(app.state.asgi) as client:  # `with`: startup and graceful shutdown run
        yield client, app


@pytest.fixture(scope="module")
def cli_images(tmp_path_factory):
    """What `jewelgan generate` writes for seeds 5..8 with fixed attributes and truncation."""
    out = tmp_path_factory.mktemp("cli") / "g"
    res = runner.invoke(cli, ["generate", "--n", "4", "--seed", "5", "--truncation", "0.7", "--attr", "metal=rose_gold",
                              "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    return {int(p.stem): p.read_bytes() for p in out.glob("*.png")}


def test_generate_gives_the_cli_bytes_as_image_zip_and_json(served, cli_images):
    client, _ = served
    body = {"n": 4, "seed": 5, "truncation": 0.7, "attributes": {"metal": "rose_gold"}}
    one = client.post("/v1/generate", json={**body, "n": 1, "seed": 7})
    assert one.status_code == 200 and one.headers["content-type"] == "image/png"
    assert one.content == cli_images[7] and one.headers["x-jewelgan-seeds"] == "7"

    zipped = client.post("/v1/generate", json={**body, "output": "zip"})
    zf = zipfile.ZipFile(io.BytesIO(zipped.content))
    manifest = [json.loads(line) for line in zf.read("manifest.jsonl").decode().splitlines()]
    assert [m["seed"] for m in manifest] == [5, 6, 7, 8]
    assert all(m["attributes"]["metal"] == "rose_gold" for m in manifest)
    assert [zf.read(m["file"]) for m in manifest] == [cli_images[s] for s in (5, 6, 7, 8)]

    listed = client.post("/v1/generate", json={**body, "output": "json"}).json()
    assert [base64.b64decode(im["data_url"].split(",", 1)[1]) for im in listed["images"]] == \
        [cli_images[s] for s in (5, 6, 7, 8)]

    sheet = client.post("/v1/generate", json=body)  # several images as one picture: a sheet
    from PIL import Image

    assert Image.open(io.BytesIO(sheet.content)).size[0] > 4 * 64


def test_formats_sizes_and_cutouts(served):
    from PIL import Image

    client, _ = served
    refused = client.post("/v1/generate", json={"seed": 3, "size": 128}).json()
    assert refused["field"] == "size" and 64 in refused["choices"] and "resize" in refused["error"]
    cut = client.post("/v1/generate", json={"seed": 3, "transparent": True, "format": "webp", "size": 128,
                                            "resize": True})
    im = Image.open(io.BytesIO(cut.content))
    assert cut.headers["content-type"] == "image/webp" and im.mode == "RGBA" and im.size == (128, 128)
    alpha = np.asarray(im)[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255  # a real cut-out: clear backdrop, solid piece
    jpeg = client.post("/v1/generate", json={"seed": 3, "format": "jpeg"})
    assert jpeg.headers["content-type"] == "image/jpeg" and jpeg.content[:2] == b"\xff\xd8"


def test_variants_are_one_piece_in_every_value(served):
    client, _ = served
    model = jewelgan.load_model()
    res = client.post("/v1/variants", json={"attribute": "metal", "seed": 11, "output": "json"}).json()
    metals = model.attributes["metal"]
    assert [im["value"] for im in res["images"]] == metals
    own = model.sample_inputs(1, seed=11)[1][0]
    own_metal = model.schema.decode(own.numpy())["metal"]
    for im in res["images"]:  # only the metal changes
        assert {k: v for k, v in im["attributes"].items() if k != "metal"} == \
            {k: v for k, v in model.schema.decode(own.numpy()).items() if k != "metal"}
    # the variant in the piece's own metal is the plain image of that seed
    plain = client.post("/v1/generate", json={"seed": 11}).content
    assert base64.b64decode(res["images"][metals.index(own_metal)]["data_url"].split(",", 1)[1]) == plain


def test_interpolation_strip_ends_on_both_seeds_images(served):
    client, _ = served
    res = client.post("/v1/interpolate", json={"seed_a": 2, "seed_b": 9, "steps": 5, "output": "json"}).json()
    assert [im["t"] for im in res["images"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    first, last = (base64.b64decode(res["images"][k]["data_url"].split(",", 1)[1]) for k in (0, -1))
    assert first == client.post("/v1/generate", json={"seed": 2}).content
    assert last == client.post("/v1/generate", json={"seed": 9}).content
    frames = {im["data_url"] for im in res["images"]}
    assert len(frames) == 5


@pytest.mark.parametrize("body, status, field, choices", [
    ({"attributes": {"colour": "red"}}, 422, "attributes", ["category", "metal"]),
    ({"attributes": {"metal": "gold"}}, 422, "attributes.metal", ["yellow_gold", "white_gold", "rose_gold", "silver"]),
    ({"n": 17}, 422, "n", None),
    ({"n": "many"}, 422, "n", None),
    ({"n": 0}, 422, "n", None),
    ({"size": 4096}, 422, "size", None),
    ({"truncation": 2}, 422, "truncation", None),
    ({"model": "nope"}, 422, "model", ["default64"]),
    ({"format": "gif"}, 422, "format", ["png", "webp", "jpeg", "jpg"]),
    ({"transparent": True, "format": "jpeg"}, 422, "format", ["png", "webp"]),
    ({"seeds": [1]}, 422, "seeds", None),  # a misspelt field is refused, not ignored
])
def test_bad_requests_name_the_field_and_the_choices(served, body, status, field, choices):
    client, _ = served
    res = client.post("/v1/generate", json=body)
    assert res.status_code == status
    err = res.json()
    assert err["field"] == field and err["error"]
    if choices:
        assert set(choices) <= set(err["choices"])


def test_malformed_json_wrong_shapes_and_unknown_routes_are_4xx(served):
    client, _ = served
    bad = client.post("/v1/generate", content=b'{"n": 1', headers={"content-type": "application/json"})
    assert bad.status_code == 422 and bad.json()["field"] == "body"
    assert client.post("/v1/generate", json=[1, 2]).status_code == 422
    assert client.post("/v1/variants", json={"attribute": "size"}).json()["choices"][:2] == ["category", "metal"]
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/models/nope").status_code == 404
    assert client.put("/v1/generate", json={}).status_code == 405


def test_huge_bodies_are_refused_before_they_are_read(served):
    client, _ = served
    declared = client.post("/v1/generate", content=b"x" * 100_000, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and declared.json()["field"] == "body"

    def chunks():  # no Content-Length: the guard counts the chunks as they arrive
        for _ in range(20):
            yield b" " * 8192

    streamed = client.post("/v1/generate", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_probes_metrics_and_access_log(served, caplog):
    client, _ = served
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] and ready["models"] == ["default64"]
    with caplog.at_level(logging.INFO, logger="jewelgan.serve.access"):
        client.post("/v1/generate", json={"n": 2, "seed": 1, "output": "json"})
    line = json.loads([r.message for r in caplog.records if r.name == "jewelgan.serve.access"][-1])
    assert line["route"] == "/v1/generate" and line["status"] == 200 and line["images"] == 2 and line["ms"] > 0
    text = client.get("/metrics").text
    assert 'jewelgan_requests_total{method="POST",route="/v1/generate",status="200"}' in text
    generated = [float(x.split()[-1]) for x in text.splitlines()
                 if x.startswith('jewelgan_images_generated_total{model="default64"}')]
    assert generated and generated[0] >= 2
    assert "jewelgan_request_seconds_bucket" in text and "jewelgan_queue_images" in text
    client.get("/v1/unknown/path/123")
    assert "/v1/unknown" not in client.get("/metrics").text  # raw paths never become labels


def test_models_endpoint_lists_attributes_and_figures(served):
    client, _ = served
    body = client.get("/v1/models").json()
    assert body["default"] == "default64"
    entry = body["models"][0]
    assert entry["alpha"] is True and entry["resolution"] == 64
    assert "rose_gold" in entry["attributes"]["metal"] and "fid" in entry["evaluation"]
    assert client.get("/v1/info").json()["caps"]["max_n"] == 16


# ---------------------------------------------------------------------------- jobs
def wait_for(client, job_id, statuses=("done",), timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']}")


def test_bulk_job_runs_and_downloads_the_cli_images(served, cli_images):
    client, _ = served
    res = client.post("/v1/jobs", json={"n": 4, "seed": 5, "truncation": 0.7, "attributes": {"metal": "rose_gold"}})
    assert res.status_code == 202 and res.headers["location"] == f"/v1/jobs/{res.json()['id']}"
    job = wait_for(client, res.json()["id"])
    assert job["done"] == 4
    zf = zipfile.ZipFile(io.BytesIO(client.get(f"/v1/jobs/{job['id']}/download").content))
    assert {zf.read(f"{s:08d}.png") for s in (5, 6, 7, 8)} == set(cli_images.values())
    assert len(zf.read("manifest.jsonl").decode().splitlines()) == 4
    assert job["id"] in [j["id"] for j in client.get("/v1/jobs").json()["jobs"]]
    assert client.delete(f"/v1/jobs/{job['id']}").json()["deleted"] is True  # done: deleted with its files
    assert job["id"] not in [j["id"] for j in client.get("/v1/jobs").json()["jobs"]]
    assert client.get("/v1/jobs/0000").status_code == 404
    assert client.post("/v1/jobs", json={"n": 10_001}).json()["field"] == "n"


def test_a_stopped_job_resumes_after_a_restart_without_losing_images(tmp_path):
    model = jewelgan.load_model()
    paths = {"default64": jewelgan.inference.resolve_model()}
    calls = {"n": 0}
    store = None

    def busy():  # a shutdown arriving after the job's second batch (the server would call stop())
        calls["n"] += 1
        if calls["n"] == 2:
            store._stop.set()
        return False

    store = JobStore(tmp_path, paths, busy=busy)
    request = {"model": "default64", "n": 40, "seed": 100, "attributes": {}, "truncation": 1.0,
               "transparent": False, "format": "png"}
    job = store.submit(request, "local")
    store._thread.join(60)
    saved = json.loads((tmp_path / job["id"] / "job.json").read_text())
    assert saved["status"] == "queued" and 0 < len(list((tmp_path / job["id"] / "out").glob("*.png"))) < 40

    again = JobStore(tmp_path, paths)  # the next start picks it up where it stopped
    deadline = time.time() + 60
    while again.get(job["id"], "local")["status"] != "done" and time.time() < deadline:
        time.sleep(0.05)
    again.stop()
    lines = (tmp_path / job["id"] / "out" / "manifest.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["seed"] for x in lines) == list(range(100, 140))  # each image once
    want = model.generate(40, seed=100)
    from PIL import Image

    got = np.stack([np.asarray(Image.open(tmp_path / job["id"] / "out" / f"{s:08d}.png")) for s in range(100, 140)])
    assert np.array_equal(got, want)


def test_cancel_stops_a_running_job(tmp_path):
    paths = {"default64": jewelgan.inference.resolve_model()}
    store = JobStore(tmp_path, paths)
    job = store.submit({"model": "default64", "n": 5000, "seed": 0, "attributes": {}, "truncation": 1.0,
                        "transparent": False, "format": "png"}, "shop")
    while store.get(job["id"], "shop")["done"] == 0:
        time.sleep(0.02)
    store.cancel(job["id"], "shop")
    deadline = time.time() + 30
    while store.get(job["id"], "shop")["status"] != "cancelled" and time.time() < deadline:
        time.sleep(0.02)
    assert store.get(job["id"], "shop")["status"] == "cancelled"
    assert store.get(job["id"], "shop")["done"] < 5000
    with pytest.raises(Exception, match="no job"):
        store.get(job["id"], "another-shop")  # one key never sees another's jobs
    store.stop()


# ---------------------------------------------------------------------------- batching and overload
class GatedG(torch.nn.Module):
    """The real generator behind a gate, so a test can hold the worker inside a forward pass."""

    def __init__(self, G):
        super().__init__()
        self.G, self.z_dim, self.gate, self.calls = G, G.z_dim, threading.Event(), []

    def forward(self, z, labels, truncation=1.0):
        self.calls.append(len(z))
        self.gate.wait(30)
        return self.G(z, labels, truncation=truncation)


def gated_engine(**kwargs):
    real = jewelgan.load_model()
    gated = Model(GatedG(real.G), real.schema, real.info)
    return Engine({"default64": gated}, **kwargs), gated, real


def test_concurrent_requests_share_one_forward_pass_and_keep_their_bytes():
    engine, gated, real = gated_engine()
    inputs = [real.sample_inputs(n, seed=s) for n, s in ((2, 0), (3, 50), (1, 99))]

    async def main():
        blocker = asyncio.ensure_future(engine.submit("default64", *inputs[0][:2], 1.0))
        while not gated.G.calls:  # the worker is now inside the first forward pass
            await asyncio.sleep(0.005)
        rest = [asyncio.ensure_future(engine.submit("default64", *x[:2], 1.0)) for x in inputs[1:]]
        await asyncio.sleep(0.05)
        gated.G.gate.set()
        return await asyncio.gather(blocker, *rest)

    results = asyncio.run(main())
    engine.stop()
    assert len(gated.G.calls) == 2  # the two later requests were joined into one padded pass of 16
    for (z, labels, _), got in zip(inputs, results):
        assert np.array_equal(got[..., :3], real.render(z, labels))


def test_a_full_queue_answers_503_with_retry_after_and_never_hangs(tmp_path):
    engine, gated, real = gated_engine(max_queue_images=4)
    app = create_app(ServeSettings(jobs_dir=tmp_path, max_n=4, max_queue_images=4), engine=engine)
    client = TestClient(app.state.asgi)
    first = threading.Thread(target=lambda: client.post("/v1/generate", json={"n": 2}))
    first.start()
    while not gated.G.calls:
        time.sleep(0.005)
    second = threading.Thread(target=lambda: client.post("/v1/generate", json={"n": 2}))
    second.start()
    while engine.queued_images < 4:
        time.sleep(0.005)
    refused = client.post("/v1/generate", json={"n": 1})
    assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
    assert "busy" in refused.json()["error"]
    assert client.get("/readyz").status_code == 503
    gated.G.gate.set()
    first.join(30), second.join(30)
    assert client.post("/v1/generate", json={"n": 1}).status_code == 200
    engine.stop()


def test_overloaded_engine_refuses_at_once():
    engine, gated, real = gated_engine(max_queue_images=2)
    z, labels, _ = real.sample_inputs(3)

    async def main():
        with pytest.raises(Overloaded):
            await engine.submit("default64", z, labels, 1.0)

    asyncio.run(main())
    gated.G.gate.set()
    engine.stop()


# ---------------------------------------------------------------------------- keys and limits
def test_keys_are_required_hashed_and_rate_limited(tmp_path):
    keys = tmp_path / "keys.txt"
    res = runner.invoke(cli, ["serve-keys", "add", "shop-a", "--file", str(keys)])
    assert res.exit_code == 0
    key = res.stdout.strip().splitlines()[0]
    assert key.startswith("jg_") and key not in keys.read_text() and "shop-a:" in keys.read_text()
    app = create_app(ServeSettings(keys_file=keys, jobs_dir=tmp_path / "jobs", rate=1.0, burst=2, host="0.0.0.0"))
    client = TestClient(app.state.asgi)
    missing = client.get("/v1/models")
    assert missing.status_code == 401 and missing.json()["field"] == "Authorization"
    assert client.get("/v1/models", headers={"Authorization": "Bearer jg_wrong"}).status_code == 401
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.get("/v1/models", headers={"X-API-Key": key}).status_code == 200
    limited = client.get("/v1/models", headers={"X-API-Key": key})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert client.get("/healthz").status_code == 200  # probes need no key
    assert client.get("/v1/info").json()["auth"] is True


def test_bad_keys_files_and_settings_are_clear_errors(tmp_path):
    bad = tmp_path / "keys.txt"
    bad.write_text("# shop keys\nshop-a:not-a-hash\n")
    with pytest.raises(KeysFileError, match=r"keys.txt:2: expected name:sha256-hex"):
        read_keys(bad)
    add_key(tmp_path / "k2.txt", "a")
    with pytest.raises(KeysFileError, match="exists already"):
        add_key(tmp_path / "k2.txt", "a")
    with pytest.raises(SettingsError, match="needs API keys"):
        ServeSettings(host="0.0.0.0").check()
    with pytest.raises(SettingsError, match="max_n must be a positive integer"):
        ServeSettings(max_n=0).check()
    res = runner.invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "needs API keys" in res.output
    res = runner.invoke(cli, ["serve", "--model", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no such model folder" in res.output


def test_rate_limiter_refills_over_time():
    limiter = RateLimiter(rate=1000.0, burst=1)
    assert limiter.allow("a") == 0.0
    assert limiter.allow("a") > 0.0 and limiter.allow("b") == 0.0
    time.sleep(0.01)
    assert limiter.allow("a") == 0.0


def test_edit_endpoint_inverts_an_upload_and_keeps_nothing(tmp_path):
    import os
    import tempfile

    from PIL import Image

    from jewelgan.studio.dataset import render_one

    app = create_app(ServeSettings(jobs_dir=tmp_path / "jobs", edit_steps=(10, 5), max_upload_bytes=2**20))
    client = TestClient(app.state.asgi)
    image, labels = render_one(4242, 1, 128)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=92)
    before = set(os.listdir(tempfile.gettempdir()))
    res = client.post("/v1/edit", files={"photo": ("ring.jpg", buf.getvalue(), "image/jpeg")},
                      data={"attribute": "metal", "attributes": json.dumps({"category": labels["category"]}),
                            "method": "invert"})
    assert res.status_code == 200, res.text
    body = res.json()
    assert [im["value"] for im in body["images"]] == jewelgan.load_model().attributes["metal"]
    assert body["labels"]["category"] == labels["category"] and body["label_source"]["category"] == "given"
    assert body["original"].startswith("data:image/png;base64,")
    assert not {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("jewelgan-upload-")}
    bad = client.post("/v1/edit", files={"photo": ("x.jpg", b"garbage", "image/jpeg")}, data={"method": "invert"})
    assert bad.status_code == 422 and bad.json()["field"] == "photo" and "uploaded photo" in bad.json()["error"]
    assert client.post("/v1/edit", files={"photo": ("x.jpg", b"x", "image/jpeg")},
                       data={"attribute": "size", "method": "invert"}).json()["choices"][0] == "category"
    assert client.post("/v1/edit", files={"photo": ("x.jpg", b"x", "image/jpeg")},
                       data={"attributes": '{"metal": "gold"}', "method": "invert"}).json()["field"] == "attributes.metal"
    assert client.post("/v1/edit", files={"photo": ("x.jpg", b"x" * (2**20 + 10), "image/jpeg")}).status_code == 413
    assert client.post("/v1/edit", data={"attribute": "metal"}).json()["field"] == "photo"


def test_cutout_endpoint_gives_the_photo_size_and_its_shadow(served):
    import base64

    from PIL import Image

    from jewelgan.studio.dataset import render_one

    client, _ = served
    image, _ = render_one(4243, 2, 128)
    buf = io.BytesIO()
    Image.fromarray(image).resize((160, 120)).save(buf, "JPEG", quality=92)
    res = client.post("/v1/cutout", files={"photo": ("piece.jpg", buf.getvalue(), "image/jpeg")},
                      data={"shadow": "true"})
    assert res.status_code == 200, res.text
    body = res.json()
    assert (body["width"], body["height"]) == (160, 120)
    cut = Image.open(io.BytesIO(base64.b64decode(body["cutout"].split(",", 1)[1])))
    shadow = Image.open(io.BytesIO(base64.b64decode(body["shadow"].split(",", 1)[1])))
    assert cut.mode == shadow.mode == "RGBA" and cut.size == shadow.size == (160, 120)
    a = np.asarray(cut)[..., 3]
    assert 0.01 < (a > 127).mean() < 0.9  # a piece, not the whole photo or nothing
    assert client.post("/v1/cutout", files={"photo": ("piece.jpg", buf.getvalue(), "image/jpeg")}).json()["shadow"] is None
    bad = client.post("/v1/cutout", files={"photo": ("x.jpg", b"garbage", "image/jpeg")})
    assert bad.status_code == 422 and bad.json()["field"] == "photo" and "uploaded photo" in bad.json()["error"]


def test_tryon_endpoint_places_at_anchors_or_falls_back_to_the_middle(served):
    from PIL import Image

    client, _ = served
    buf = io.BytesIO()
    Image.fromarray(np.full((200, 300, 3), 170, np.uint8)).save(buf, "PNG")
    wall = {"photo": ("w.png", buf.getvalue(), "image/png")}
    given = client.post("/v1/tryon", files=wall, data={"attributes": '{"category": "ring"}', "anchors": "[[100, 50]]",
                                                         "scale": "0.2", "angle": "15"}).json()
    assert given["placement"] == {"anchors": [[100.0, 50.0]], "scale": 0.2, "angle": 15.0, "source": "given"}
    assert len(given["pieces"]) == 1 and given["composite"].startswith("data:image/png;base64,")
    auto = client.post("/v1/tryon", files=wall, data={"attributes": '{"category": "earrings"}'}).json()
    assert auto["placement"]["source"] == "centre" and "drag it into place" in auto["note"]  # no face on a wall
    assert len(auto["placement"]["anchors"]) == 2 and len(auto["pieces"]) == 2
    bad = client.post("/v1/tryon", files=wall, data={"anchors": "[[900, 50]]"})
    assert bad.status_code == 422 and bad.json()["field"] == "anchors"
    assert client.post("/v1/tryon", files={"photo": ("x", b"junk", "image/png")}).json()["field"] == "photo"
    assert client.post("/v1/tryon", files=wall, data={"anchors": "[1, 2, 3]"}).json()["field"] == "anchors"


def test_tryon_endpoint_sends_what_covers_the_piece(served):
    """With the landmark extra: hair over a lobe comes back as a cover layer for the page's preview, and the
    composite hides the earring under it, for found and for given anchors alike."""
    pytest.importorskip("mediapipe", reason="automatic placement needs: pip install 'jewelgan[tryon]'")
    from PIL import Image

    from tests.test_tryon_occlusion import portrait_with_a_lock

    client, _ = served
    photo, (rx, ry) = portrait_with_a_lock()
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG")
    upload = {"photo": ("me.png", buf.getvalue(), "image/png")}

    def decode(url):
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))

    found = client.post("/v1/tryon", files=upload, data={"attributes": '{"category": "earrings"}'}).json()
    cover = decode(found["cover"])
    assert cover.shape == (*photo.shape[:2], 4) and np.array_equal(cover[..., :3], photo)
    assert cover[int(ry):int(ry) + 20, int(rx) - 5:int(rx) + 5, 3].mean() > 230  # the lock covers the right lobe
    placed = found["placement"]
    given = client.post("/v1/tryon", files=upload, data={"attributes": '{"category": "earrings"}',
                                                          "anchors": json.dumps(placed["anchors"]),
                                                          "scale": str(placed["scale"]), "angle": str(placed["angle"])})
    composite = decode(given.json()["composite"])
    assert np.array_equal(composite[int(ry):int(ry) + 20, int(rx) - 4:int(rx) + 4],
                          photo[int(ry):int(ry) + 20, int(rx) - 4:int(rx) + 4])  # hidden behind the lock
