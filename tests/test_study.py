"""The human study: drawing the images without side channels, durable one-per-image answers, the
participant API's refusals, and the statistics on known cases."""

import json
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from jewelgan.cli import app as cli
from jewelgan.serve.study_routes import create_study_app
from jewelgan.studio import render_dataset
from jewelgan.study import StudyError, StudyStore, create_study, summarise, wilson
from jewelgan.study.results import fleiss_kappa

runner = CliRunner()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    archive = render_dataset(root / "a.jga", n=12, res=64, seed=3, workers=1, progress=False)
    return create_study(root / "s.db", None, archive, n=4, seed=1)


def test_images_are_paired_by_attributes_and_indistinguishable_by_file(study):
    store = StudyStore(study)
    rows = store._db.execute("SELECT role, kind, attributes, png FROM images").fetchall()
    assert sorted((r[0], r[1]) for r in rows).count(("test", "real")) == 4
    assert sum(r[0] == "calibration" for r in rows) == 4
    sizes = {len(r[3]) for r in rows}
    assert len(sizes) == 1  # uncompressed PNG: the byte count says nothing
    for kind in ("real", "generated"):
        im = Image.open(__import__("io").BytesIO(next(r[3] for r in rows if r[1] == kind)))
        assert im.size == (64, 64) and im.mode == "RGB" and not im.info.get("dpi")
    real_mix = sorted(r[2] for r in rows if r[1] == "real")
    assert real_mix == sorted(r[2] for r in rows if r[1] == "generated")  # the same attribute mix
    assert store.meta()["n"] == 4


def test_answers_are_one_per_image_durable_and_resume_in_order(study, tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(study.read_bytes())
    store = StudyStore(path)
    token, other = store.invite(["ann", "bob"])
    order = store.order(token)
    assert len(order) == 8 and store.order(token) == order  # a participant's shuffle is fixed
    first = store.next_image(token)
    assert first["image"] == order[0] and "kind" not in first
    assert store.answer(token, first["image"], True, 4, 1200) == 1
    with pytest.raises(StudyError, match="answered already") as e:
        store.answer(token, first["image"], False, None, 10)
    assert e.value.status == 409
    calibration_image = store._db.execute("SELECT id FROM images WHERE role = 'calibration'").fetchone()[0]
    for bad in ("nope", calibration_image):
        with pytest.raises(StudyError, match="not an image of this study"):
            store.answer(token, bad, True, None, 10)
    with pytest.raises(StudyError, match="unknown study link"):
        store.next_image("not-a-token")
    store.close()
    again = StudyStore(path)  # a restart: the answer is there, the participant resumes at image 2
    assert again.next_image(token)["image"] == order[1]
    assert len(again.rows()) == 1 and again.rows()[0]["quality"] == 4


def test_participant_api_refuses_bad_input_with_4xx_and_stores_nothing(study, tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(study.read_bytes())
    token = StudyStore(path).invite(["ann"])[0]
    client = TestClient(create_study_app(path))
    assert client.get(f"/study/{token}").status_code == 200
    cal = client.get(f"/v1/study/{token}/calibration").json()["examples"]
    assert sorted(c["kind"] for c in cal) == ["generated", "generated", "real", "real"]
    item = client.get(f"/v1/study/{token}/next").json()
    assert set(item) == {"image", "index", "total", "answered", "data_url"}  # nothing says what it is
    ok = {"image": item["image"], "real": False, "ms": 900}
    assert client.get("/v1/study/wrongtoken123/next").status_code == 404
    for body, status in [({**ok, "quality": 9}, 422), ({**ok, "ms": -1}, 422), ({"image": item["image"]}, 422),
                         ({**ok, "image": "x" * 20}, 422), ({**ok, "extra": 1}, 422)]:
        res = client.post(f"/v1/study/{token}/answers", json=body)
        assert res.status_code == status and "error" in res.json()
    assert client.post(f"/v1/study/{token}/answers", content=b"{", headers={"content-type": "application/json"}
                       ).status_code == 422
    assert StudyStore(path).rows() == []  # none of that was stored
    assert client.post(f"/v1/study/{token}/answers", json=ok).json() == {"answered": 1}
    assert client.post(f"/v1/study/{token}/answers", json=ok).status_code == 409
    assert client.post("/v1/study/wrongtoken123/answers", json=ok).status_code == 404


def test_wilson_interval_and_fleiss_kappa_on_known_cases():
    p, lo, hi = wilson(5, 10)
    assert p == 0.5 and lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert wilson(0, 10)[1] == pytest.approx(0.0) and wilson(10, 10)[2] == pytest.approx(1.0)
    assert wilson(0, 10)[2] == pytest.approx(0.2775, abs=1e-4) and math.isnan(wilson(0, 0)[0])
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)  # all raters agree
    # ratings that match what chance gives: kappa ~ 0 or below
    assert fleiss_kappa(np.array([[1, 1], [1, 1], [1, 1], [1, 1]])) < 0


def test_results_count_the_fool_rate_per_value_and_participant():
    rows = [{"token": t, "name": t, "image": f"{k}{i}", "kind": k, "attributes": {"metal": m},
             "real": said, "quality": None, "ms": 1000}
            for t in ("a", "b")
            for i, (k, m, said) in enumerate([("generated", "silver", True), ("generated", "silver", False),
                                               ("generated", "rose_gold", True), ("real", "silver", True)])]
    res = summarise(rows)
    assert res["fool_rate"]["share"] == pytest.approx(2 / 3) and res["fool_rate"]["n"] == 6
    assert res["real_called_real"]["share"] == 1.0
    assert res["fool_rate_by_attribute"]["metal"]["rose_gold"]["share"] == 1.0
    assert res["participants"]["a"]["answers"] == 4 and res["participants"]["a"]["accuracy"] == 0.5
    assert res["agreement"]["fleiss_kappa"] == pytest.approx(1.0) and res["agreement"]["raters"] == 2


def test_cli_study_create_invite_results_and_errors(study, tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(study.read_bytes())
    res = runner.invoke(cli, ["study", "invite", str(path), "--name", "ann", "--base-url", "http://shop:9"])
    assert res.exit_code == 0 and res.stdout.startswith("ann\thttp://shop:9/study/")
    res = runner.invoke(cli, ["study", "results", str(path), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["answers"] == 0
    res = runner.invoke(cli, ["study", "create", "--data", str(tmp_path / "none.jga"), "--out", str(path)])
    assert res.exit_code == 2 and "exists already" in res.output
    res = runner.invoke(cli, ["study", "results", str(tmp_path / "missing.db")])
    assert res.exit_code == 2 and "no such study" in res.output


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, which Python's own parser accepts but JSON does not have."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_results_without_answers_are_valid_json_and_say_no_answers_yet(study, tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(study.read_bytes())
    res = runner.invoke(cli, ["study", "results", str(path), "--json"])
    assert res.exit_code == 0
    out = strict_json(res.stdout)
    assert out["answers"] == 0 and out["note"] == "no answers yet"
    assert out["fool_rate"]["share"] is None and out["fool_rate"]["note"] == "no answers yet"
    assert out["real_called_real"]["share"] is None and out["accuracy"] is None
    assert out["median_ms"] == {"real": None, "generated": None} and out["agreement"]["fleiss_kappa"] is None
    text = runner.invoke(cli, ["study", "results", str(path)]).stdout
    assert text.startswith("answers: 0 (no answers yet)\n") and "nan" not in text.lower()
    assert "fool rate (generated judged real): no answers yet" in text

    # one answer: one kind of image has answers, the other none yet; the JSON stays JSON
    store = StudyStore(path)
    token = store.invite(["ann"])[0]
    store.answer(token, store.next_image(token)["image"], True, None, 700)
    out = strict_json(runner.invoke(cli, ["study", "results", str(path), "--json"]).stdout)
    assert out["answers"] == 1 and "note" not in out and out["accuracy"] in (0.0, 1.0)
    rates = [out["fool_rate"], out["real_called_real"]]
    assert sorted(r["n"] for r in rates) == [0, 1] and [r.get("note") for r in rates].count("no answers yet") == 1
    assert out["agreement"]["fleiss_kappa"] is None and out["participants"]["ann"]["median_ms"] == 700


def test_study_serve_logs_each_request_without_the_participant_token(study, tmp_path):
    """`jewelgan study serve` as a real process on loopback: a participant takes part, and its log on stderr has
    a JSON line for each request, with the token replaced by {token} and nowhere in the raw text."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    path = tmp_path / "s.db"
    path.write_bytes(study.read_bytes())
    token = StudyStore(path).invite(["ann"])[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    def call(route, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url + route, data, {"content-type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    with open(tmp_path / "study.log", "w+") as log:
        command = [sys.executable, "-m", "jewelgan.cli", "study", "serve", str(path), "--port", str(port)]
        proc = subprocess.Popen(command, stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.time() + 60
            while proc.poll() is None and time.time() < deadline:
                try:
                    if call(f"/study/{token}")[0] == 200:
                        break
                except OSError:  # not listening yet
                    pass
                time.sleep(0.1)
            assert call(f"/v1/study/{token}/calibration")[0] == 200
            item = json.loads(call(f"/v1/study/{token}/next")[1])
            assert call(f"/v1/study/{token}/answers", {"image": item["image"], "real": True, "ms": 900})[0] == 201
            assert call(f"/v1/study/{token}/nowhere")[0] == 404
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        text = open(log.name).read()
    assert token not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    logged = [(line["method"], line["path"], line["status"]) for line in lines]
    assert ("GET", "/study/{token}", 200) in logged and ("GET", "/v1/study/{token}/next", 200) in logged
    assert ("POST", "/v1/study/{token}/answers", 201) in logged and ("GET", "/v1/study/{token}/nowhere", 404) in logged
