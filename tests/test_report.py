"""Evaluation of a real (tiny) training run: periodic eval in the loop, `evaluate`, `report` HTML."""

import base64
import io
import json
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from jewelgan.cli import app
from jewelgan.inference import load_generator
from jewelgan.train import train
from test_train import make_shapes, tiny

VOID = {"meta", "img", "br", "hr", "input", "link", "area", "base", "col", "source", "wbr"}
SVG_LEAVES = {"rect", "line", "polyline", "circle", "path"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("rep")
    mp = pytest.MonkeyPatch()
    mp.setenv("JEWELGAN_CACHE", str(root / "cache"))  # the loop's evaluations use the default cache
    data = make_shapes(root / "s.jga", n=48)
    # periodic evaluation inside the training loop, with the cheap cross-check network
    run = train(tiny(data, model="dcgan", kimg=0.048, eval_every=0.024, eval_n=16, eval_metrics=["effnet"],
                     out=root / "runs"))
    yield root, data, run
    mp.undo()


class Checker(HTMLParser):
    """Collects images and checks that every non-void element is closed in order."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.images, self.svgs, self.text = [], [], [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        if tag == "svg":
            self.svgs += 1
        if tag not in VOID and tag not in SVG_LEAVES:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag in SVG_LEAVES:
            return
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_training_loop_logs_periodic_evaluation(setup):
    _, _, run = setup
    evals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    assert len(evals) == 2
    assert all(e["fd_effnet"] > 0 and np.isfinite(e["kid_effnet"]) for e in evals)


def test_evaluate_cli_writes_json_and_caches_reference(setup, tmp_path):
    root, data, run = setup
    out = tmp_path / "eval.json"
    args = ["evaluate", "--run", str(run), "--data", str(data), "--n", "16", "--metrics", "fid,kid,pr,mem",
            "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--threads", "1"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    m = res["metrics"]
    assert m["fid"] > 0 and np.isfinite(m["kid"]) and 0 <= m["precision"] <= 1 and 0 <= m["coverage"] <= 1
    assert 0 <= m["mem_flagged_share"] <= 1 and len(res["details"]["mem"]["worst"]) == 8
    assert res["details"]["inception"]["n_real"] == 48 and res["n"] == 16
    cached = list((tmp_path / "c").glob("*.npz"))
    assert len(cached) == 1 and "-r32-n48-inception-tf-bilinear" in cached[0].name
    with np.load(cached[0], allow_pickle=False) as z:
        assert z["features"].shape == (48, 2048) and z["sigma"].dtype == np.float64


def test_evaluate_per_value_gives_each_values_spread_fid_and_kid_with_the_small_n_mark(setup, tmp_path):
    root, data, run = setup
    out = tmp_path / "eval.json"
    args = ["evaluate", "--run", str(run), "--data", str(data), "--n", "16", "--metrics", "kid", "--per-value",
            "color", "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--threads", "1"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    values = json.loads(out.read_text())["details"]["values"]["color"]
    assert set(values) == {"red", "green", "blue"}
    for value, e in values.items():
        assert e["images"] == 16 and e["samples"] == 64 and e["small_n"]
        assert e["spread"] > 0 and e["fid"] > 0 and np.isfinite(e["kid"])
        assert f"  {value}" in r.output
    assert "per color value" in r.output and "(small n)" in r.output
    bad = CliRunner().invoke(app, args[:-6] + ["--per-value", "metal", "--threads", "1"])
    assert bad.exit_code != 0 and "no attribute metal" in bad.output


def test_evaluate_cli_errors(setup, tmp_path):
    _, data, run = setup
    cases = [
        (["--run", str(run), "--model", str(run)], "exactly one of"),
        (["--run", str(run), "--metrics", "fid,ssim"], "unknown metric"),
        (["--run", str(run), "--metrics", "attr"], "needs --classifier"),
        (["--run", str(run), "--metrics", "is", "--n", "16", "--cache-dir", str(tmp_path)], "Inception Score unavailable"),
        (["--run", str(tmp_path / "nope")], "no such run"),
    ]
    for extra, message in cases:
        r = CliRunner().invoke(app, ["evaluate", "--data", str(data), *extra])
        assert r.exit_code == 1 and message in r.output, (extra, r.output)


def test_attribute_scores_of_a_generator(setup, tmp_path):
    from jewelgan.metrics.api import evaluate_generator
    from jewelgan.metrics.attributes import train_classifier

    root, data, run = setup
    train_classifier(data, tmp_path / "cls", epochs=2, log=lambda s: None)
    G, schema, _ = load_generator(run)
    details = {}
    flat = evaluate_generator(G, schema, data, metrics=["attr"], classifier=tmp_path / "cls", n_per_value=4,
                              details=details, cache_dir=tmp_path)
    assert set(flat) == {"attr_acc/color", "attr_acc/shape"}
    conf = np.array(details["attr"]["color"]["confusion"])
    assert conf.shape == (3, 3) and (conf.sum(axis=1) == 4).all()


def test_report_is_valid_html_with_images(setup, tmp_path):
    from jewelgan.study import StudyStore, create_study

    _, data, run = setup
    study = create_study(tmp_path / "study.db", run, data, n=3, seed=0)
    store = StudyStore(study)
    token = store.invite(["ann"])[0]
    for _ in range(6):
        store.answer(token, store.next_image(token)["image"], True, None, 500)
    out = tmp_path / "r.html"
    r = CliRunner().invoke(app, ["report", str(run), "--out", str(out), "--per-value", "3", "--nn-samples", "8",
                                 "--features", "efficientnet-lite0", "--threads", "1", "--study", str(study)])
    assert r.exit_code == 0, r.output
    doc = out.read_text()
    assert doc.startswith("<!DOCTYPE html>")
    p = Checker()
    p.feed(doc)
    p.close()
    assert not p.errors and not p.stack, (p.errors, p.stack)
    assert p.svgs >= 2  # at least the fd_effnet curve and the training losses
    text = " ".join(p.text)
    assert "Nearest training images" in text and "model: dcgan" in text and "Samples per attribute value" in text
    assert "Human study" in text and "fool rate (generated judged real): 100.0%" in text
    # 3 colours + 2 shapes sample strips, 8 nearest pairs: every image decodes as a PNG
    assert len(p.images) >= 5 + 8
    for img in p.images:
        head, b64 = img["src"].split(",", 1)
        assert head == "data:image/png;base64"
        im = Image.open(io.BytesIO(base64.b64decode(b64)))
        assert im.format == "PNG" and im.size[0] >= 32
