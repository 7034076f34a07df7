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
    pred = predict(model, archive.rgb(slice(0, 12)))
    assert pred.shape == (12, len(schema)) and pred.dtype == np.int64
    assert (out / "classifier.safetensors").is_file() and json.loads((out / "classifier.json").read_text())["format"]


def _tones(path, shape=True):
    """40 noisy dark or light squares labelled by tone (and, every fourth one, a shape)."""
    from jewelgan.data.archive import ArchiveWriter

    rng = np.random.default_rng(0)
    with ArchiveWriter(path, 32) as w:
        for i in range(40):
            colour = ["dark", "light"][i % 2]
            im = np.full((32, 32, 3), 40 if colour == "dark" else 215, np.uint8) + rng.integers(0, 20, (32, 32, 3), dtype=np.uint8)
            w.add(im, {"tone": colour, **({"shape": None if i % 4 else "disc"} if shape else {})}, f"t/{i}")
    return path


def test_missing_labels_are_ignored(tmp_path):
    _tones(tmp_path / "a.jga")
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


def test_degrade_blurs_and_adds_noise_but_keeps_colour():
    import torch

    from jewelgan.metrics.attributes import degrade

    gen = torch.Generator().manual_seed(0)
    # saturated stripes of three hues: detail to blur, colour that must survive
    x = torch.zeros(64, 3, 32, 32)
    hues = torch.tensor([[0.8, 0.2, -0.6], [-0.5, 0.7, -0.2], [-0.6, -0.3, 0.8]])
    for i in range(64):
        x[i] = hues[i % 3][:, None, None] * (torch.arange(32) % 2).float()[None, None, :]
    y = degrade(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    changed = (y - x).abs().flatten(1).amax(1) > 1e-3
    assert 0.5 < changed.float().mean() < 1.0  # each op takes a random half: most images, not all
    # the mean colour of every image keeps its hue (the dominant channel and the channel order)
    mx, my = x.mean((2, 3)), y.mean((2, 3))
    assert torch.equal(mx.argsort(1), my.argsort(1))
    chroma = lambda m: torch.nn.functional.normalize(m - m.mean(1, keepdim=True), dim=1)  # noqa: E731
    assert (chroma(mx) * chroma(my)).sum(1).min() > 0.98  # the hue, up to exposure
    # the same generator state gives the same degradation; another gives another
    assert torch.equal(degrade(x, torch.Generator().manual_seed(1)), y)
    assert not torch.equal(degrade(x, gen), y)


def test_classifier_reports_accuracy_on_degraded_reals(tmp_path):
    _tones(tmp_path / "a.jga", shape=False)
    info = train_classifier(tmp_path / "a.jga", tmp_path / "c", epochs=6, batch_size=8, val_fraction=0.5, log=lambda s: None)
    assert info["augment"] == ["flip", "shift", "degrade"]
    assert info["heldout_degraded"]["tone"]["n"] == 20 and info["heldout_degraded"]["tone"]["accuracy"] > 0.8
    plain = train_classifier(tmp_path / "a.jga", tmp_path / "p", epochs=1, batch_size=8, val_fraction=0.5,
                             robust=False, log=lambda s: None)
    assert plain["augment"] == ["flip", "shift"]
