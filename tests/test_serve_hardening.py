"""The server against hostile or careless clients (issue 43), with the real app and real image files:
decompression bombs on every upload route, one admission limit for heavy work, docs and metrics closed
when there are keys, participant tokens kept out of the access log, strict request types and 415.

Jobs (quotas, fair share between keys, delete, expiry, adoption of keyless jobs): test_serve_hardening_jobs.py."""

import io
import json
import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFile
from typer.testing import CliRunner

from jewelgan.cli import app as cli
from jewelgan.serve import ServeSettings, create_app
from jewelgan.serve.access import add_key
from jewelgan.serve.uploads import UploadRefused, check_pixels

runner = CliRunner()
UPLOAD_ROUTES = ("/v1/edit", "/v1/tryon")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    app = create_app(ServeSettings(jobs_dir=tmp_path_factory.mktemp("jobs"), edit_steps=(2, 1)))
    with TestClient(app.state.asgi) as client:
        yield client, app


def png(size, mode="RGB", colour=170) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """The issue's file: a 12,000 x 12,000 PNG, a few KB on the wire (1-bit, one colour), 432 MB as RGB."""
    data = png((12_000, 12_000), "1", 1)
    assert len(data) < 200_000
    return data


@pytest.mark.parametrize("route", UPLOAD_ROUTES)
def test_a_decompression_bomb_is_refused_from_its_header_on_every_upload_route(served, bomb, route, monkeypatch):
    client, _ = served

    def no_decoding(self):
        raise AssertionError("the server decoded the pixels of an upload it should have refused from its header")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    res = client.post(route, files={"photo": ("big.png", bomb, "image/png")},
                      data={"attributes": '{"category": "ring"}'})
    assert res.status_code == 422, res.text
    body = res.json()
    assert body["field"] == "photo" and "12000 x 12000" in body["error"] and "40,000,000" in body["error"]


def test_the_pixel_cap_reads_headers_only_and_names_pils_own_bombs(tmp_path):
    small = tmp_path / "ok.png"
    small.write_bytes(png((300, 200)))
    check_pixels(str(small), 60_000)  # exactly at the cap: fine
    with pytest.raises(UploadRefused, match="300 x 200 = 60,000 pixels, over the cap of 59,999"):
        check_pixels(str(small), 59_999)
    huge = tmp_path / "huge.png"
    huge.write_bytes(png((20_000, 20_000), "1", 1))  # beyond PIL's own hard limit (2 x 89 MP)
    with pytest.raises(UploadRefused, match="decompression bomb"):
        check_pixels(str(huge), 40_000_000)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    check_pixels(str(junk), 10)  # not an image: left to the reader, which says so in its own words


def test_heavy_work_shares_one_limit_answered_503_with_retry_after(served, monkeypatch):
    client, app = served
    gate = app.state.ctx.heavy
    trims = []
    monkeypatch.setattr("jewelgan.serve.uploads.give_back_memory", lambda: trims.append(1))
    photo = {"photo": ("wall.png", png((200, 150)), "image/png")}
    placed = client.post("/v1/tryon", files=photo, data={"anchors": "[[100, 75]]"})
    assert placed.status_code == 200, placed.text
    assert gate.used == 0 and trims  # the slot is back and the allocator was asked to return its pages

    gate.used = gate.slots  # the server is busy with other heavy work
    try:
        for res in (client.post("/v1/tryon", files=photo),
                    client.post("/v1/edit", files=photo),
                    client.post("/v1/generate", json={"n": 3, "size": 512, "resize": True}),
                    client.post("/v1/interpolate", json={"seed_a": 1, "seed_b": 2, "steps": 3, "size": 512,
                                                         "resize": True})):
            assert res.status_code == 503, res.text
            assert int(res.headers["retry-after"]) >= 1 and "retry in" in res.json()["error"]
        light = client.post("/v1/generate", json={"n": 2, "size": 128, "resize": True})  # few pixels: no slot
        assert light.status_code == 200
        gate.used = gate.slots - 1  # one slot free: a try-on fits, an edit (two slots) does not
        assert client.post("/v1/edit", files=photo).status_code == 503
    finally:
        gate.used = 0
    assert client.post("/v1/tryon", files=photo, data={"anchors": "[[100, 75]]"}).status_code == 200
    big = client.post("/v1/generate", json={"n": 3, "size": 512, "resize": True})
    assert big.status_code == 200 and gate.used == 0  # a free slot: the same request is drawn


# ---------------------------------------------------------------------------- doors
@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    root = tmp_path_factory.mktemp("keyed")
    keys = root / "keys.txt"
    key = add_key(keys, "shop-a")
    return keys, key, root


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/redoc", "/metrics"])
def test_with_keys_docs_and_metrics_are_closed_unless_asked_open(keyed, path):
    keys, key, root = keyed
    closed = TestClient(create_app(ServeSettings(keys_file=keys, host="0.0.0.0", jobs_dir=root / "j1")).state.asgi)
    res = closed.get(path)
    assert res.status_code == 401 and res.json()["field"] == "Authorization"
    assert closed.get(path, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert closed.get("/healthz").status_code == 200 and closed.get("/").status_code == 200  # probes, studio
    opened = TestClient(create_app(ServeSettings(keys_file=keys, host="0.0.0.0", jobs_dir=root / "j2",
                                                 public_docs=True, public_metrics=True)).state.asgi)
    assert opened.get(path).status_code == 200


def test_without_keys_docs_and_metrics_stay_open_on_loopback(served):
    client, _ = served
    for path in ("/docs", "/openapi.json", "/metrics"):
        assert client.get(path).status_code == 200


def test_the_cli_flags_choose_public_docs_and_metrics(keyed, monkeypatch):
    keys, _, root = keyed
    seen = []

    def fake_create_asgi(settings):
        seen.append(settings)
        return object()

    monkeypatch.setattr("jewelgan.serve.app.create_asgi", fake_create_asgi)
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: None)
    monkeypatch.setattr("gc.freeze", lambda: None)
    base = ["serve", "--keys", str(keys), "--host", "0.0.0.0", "--jobs-dir", str(root / "j3")]
    res = runner.invoke(cli, base)
    assert res.exit_code == 0, res.output
    assert not seen[-1].docs_open() and not seen[-1].metrics_open() and "/docs and /metrics need a key" in res.output
    res = runner.invoke(cli, base + ["--public-docs", "--public-metrics", "--job-ttl", "2", "--max-jobs-per-key", "3"])
    assert res.exit_code == 0, res.output
    assert seen[-1].docs_open() and seen[-1].metrics_open()
    assert seen[-1].job_ttl == 7200 and seen[-1].max_jobs_per_key == 3
    runner.invoke(cli, ["serve", "--no-public-metrics", "--jobs-dir", str(root / "j4")])
    assert seen[-1].docs_open() and not seen[-1].metrics_open()  # no keys: docs open; metrics closed as asked


def test_participant_tokens_never_reach_the_access_log(tmp_path, caplog):
    from jewelgan.studio import render_dataset
    from jewelgan.study import StudyStore, create_study

    archive = render_dataset(tmp_path / "a.jga", n=12, res=64, seed=3, workers=1, progress=False)
    study = create_study(tmp_path / "s.db", None, archive, n=4, seed=1)
    token = StudyStore(study).invite(["ann"])[0]
    client = TestClient(create_app(ServeSettings(jobs_dir=tmp_path / "jobs", study=study)).state.asgi)
    with caplog.at_level(logging.INFO, logger="jewelgan.serve.access"):
        assert client.get(f"/study/{token}").status_code == 200
        item = client.get(f"/v1/study/{token}/next").json()
        answer = client.post(f"/v1/study/{token}/answers", json={"image": item["image"], "real": True, "ms": 800})
        assert answer.status_code == 201
        assert client.get(f"/v1/study/{token}/nowhere").status_code == 404  # unmatched routes too
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "jewelgan.serve.access"]
    assert len(lines) == 4 and all(token not in json.dumps(line) for line in lines)
    assert lines[1]["path"] == "/v1/study/{token}/next"


# ---------------------------------------------------------------------------- types
@pytest.mark.parametrize("path, body, field", [
    ("/v1/generate", {"n": "4"}, "n"),
    ("/v1/generate", {"n": True}, "n"),
    ("/v1/generate", {"n": 2.0}, "n"),
    ("/v1/generate", {"seed": "7"}, "seed"),
    ("/v1/generate", {"transparent": 1}, "transparent"),
    ("/v1/generate", {"resize": "true"}, "resize"),
    ("/v1/generate", {"size": "128"}, "size"),
    ("/v1/variants", {"attribute": "metal", "seed": False}, "seed"),
    ("/v1/interpolate", {"seed_a": 1, "seed_b": 2, "steps": "3"}, "steps"),
    ("/v1/jobs", {"n": "4"}, "n"),
    ("/v1/jobs", {"n": 4, "seed": True}, "seed"),
])
def test_numbers_and_booleans_are_not_coerced(served, path, body, field):
    client, _ = served
    res = client.post(path, json=body)
    assert res.status_code == 422 and res.json()["field"] == field, res.text


def test_integers_still_count_as_floats_and_real_types_pass(served):
    client, _ = served
    res = client.post("/v1/generate", json={"n": 1, "seed": 3, "truncation": 1, "transparent": False})
    assert res.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"content-type": "text/plain"},
                                     {"content-type": "application/x-www-form-urlencoded"}])
def test_a_json_body_sent_without_its_type_is_415(served, headers):
    client, _ = served
    for path, body in (("/v1/generate", {"n": 1}), ("/v1/jobs", {"n": 1}),
                       ("/v1/interpolate", {"seed_a": 1, "seed_b": 2})):
        res = client.post(path, content=json.dumps(body).encode(), headers=headers)
        assert res.status_code == 415, (path, headers, res.text)
        assert res.json()["field"] == "Content-Type" and res.json()["choices"] == ["application/json"]
    typed = client.post("/v1/generate", content=b'{"seed": 1}',
                        headers={"content-type": "application/json; charset=utf-8"})
    assert typed.status_code == 200
    empty = client.post("/v1/generate")  # no body at all: no type to check; the missing body is named
    assert empty.status_code == 422 and empty.json()["field"] == "body"


def test_an_upload_route_sent_json_is_415(served):
    client, _ = served
    res = client.post("/v1/tryon", json={"photo": "x"})
    assert res.status_code == 415 and "multipart/form-data" in res.json()["error"]
    assert client.post("/v1/edit", data={"attribute": "metal"}).json()["field"] == "photo"  # a form: names the field


def test_uploads_are_deleted_and_the_photo_is_read_once(served, tmp_path):
    import os
    import tempfile

    client, _ = served
    before = set(os.listdir(tempfile.gettempdir()))
    photo = np.full((120, 160, 3), 90, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "JPEG", quality=95)
    res = client.post("/v1/tryon", files={"photo": ("me.jpg", buf.getvalue(), "image/jpeg")},
                      data={"anchors": "[[80, 60]]"})
    assert res.status_code == 200 and (res.json()["width"], res.json()["height"]) == (160, 120)
    assert not {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("jewelgan-upload-")}


def test_study_results_say_no_answers_yet_instead_of_nan():
    from jewelgan.study import format_results, summarise

    rows = [{"name": "ann", "token": "t1", "image": "i1", "kind": "real", "real": True, "quality": None, "ms": 900,
             "attributes": {"metal": "silver"}}]  # ann has seen no generated image yet
    text = format_results(summarise(rows))
    assert "nan" not in text.lower()
    assert "fool rate (generated judged real): no answers yet" in text
    assert "ann: 1 answers, accuracy 100%, fool rate no answers yet" in text
    assert "generated no answers yet" in text  # its median response time
    empty = format_results(summarise([]))
    assert "nan" not in empty.lower() and "accuracy (right calls):            no answers yet" in empty
