"""Attribute classifier: learns rendered studio jewelry, ignores missing labels, scores a generator."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from jewelgan.cli import app
from jewelgan.data.archive import Archive
from jewelgan.metrics.attributes import load_classifier, predict, score_predictions, split_indices, train_classifier


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from jewelgan.studio.dataset import render_dataset

    # small on purpose: rendering costs ~0.05-0.1 s per 32 px image on this CPU
    return render_dataset(tmp_path_factory.mktemp("studio") / "s.jga", 200, 32, seed=3, workers=2, progress=False)


def test_cli_trains_a_classifier_that_beats_chance_widely(studio, tmp_path):
    out = tmp_path / "cls"
    r = CliRunner().invoke(app, ["classifier", "train", "--data", str(studio), "--out", str(out), "--epochs", "12",
                                 "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "held-out category" in r.output
    model, schema, info = load_classifier(out)
    assert schema.names[:4] == ["category", "metal", "gemstone", "view"]
    held = info["heldout"]
    assert info["heldout_count"] == 30 and info["train_count"] == 170
    # category is the most visible attribute: 4 classes, chance 0.25
    assert held["category"]["accuracy"] >= 0.6, held
    margins = [h["accuracy"] - h["chance"] for h in held.values()]
    assert np.mean(margins) > 0.15, held
    # the saved weights reproduce the held-out predictions
    archive = Archive(studio)
    pred = predict(model, np.asarray(archive.images[:12]))
    assert pred.shape == (12, len(schema)) and pred.dtype == np.int64
    assert (out / "classifier.safetensors").is_file() and json.loads((out / "classifier.json").read_text())["format"]


def test_missing_labels_are_ignored(tmp_path):
    from jewelgan.data.archive import ArchiveWriter

    rng = np.random.default_rng(0)
    with ArchiveWriter(tmp_path / "a.jga", 32) as w:
        for i in range(40):
            colour = ["dark", "light"][i % 2]
            im = np.full((32, 32, 3), 40 if colour == "dark" else 215, np.uint8) + rng.integers(0, 20, (32, 32, 3), dtype=np.uint8)
            w.add(im, {"tone": colour, "shape": None if i % 4 else "disc"}, f"t/{i}")
    info = train_classifier(tmp_path / "a.jga", tmp_path / "c", epochs=10, batch_size=8, val_fraction=0.5, log=lambda s: None)
    assert info["heldout"]["tone"]["n"] == 20
    _, val = split_indices(40, 0.5, 0)
    assert info["heldout"]["shape"]["n"] == int((val % 4 == 0).sum())  # only labelled images count
    assert info["heldout"]["tone"]["accuracy"] > 0.8


def test_score_predictions_confusion_matrix():
    s = score_predictions(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), ["a", "b", "c"])
    assert s["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert s["accuracy"] == pytest.approx(3 / 5) and s["chance"] == pytest.approx(1 / 3)


def test_load_classifier_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="classifier train"):
        load_classifier(tmp_path)
    r = CliRunner().invoke(app, ["classifier", "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "c")])
    assert r.exit_code == 1 and "not a dataset archive" in r.output
