"""Rare attribute values are named before training: prepare, dataset info and train say what the model can
learn from them (data/label_balance.py)."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from jewelgan.cli import app
from jewelgan.data.label_balance import FEW_IMAGES, thin_value_warnings
from jewelgan.data.prepare import prepare
from jewelgan.data.subset import take_per_value
from jewelgan.train import Trainer
from test_train import make_shapes, tiny

pytestmark = pytest.mark.usefixtures("one_thread")


def test_values_under_the_floor_are_named_with_what_the_model_can_do():
    lines = thin_value_warnings({"category": {"earring": 600, "ring": 9, "brooch": 2, "(missing)": 3}}, 614)
    assert len(lines) == 2
    ring, brooch = lines
    assert ring.startswith("category=ring has 9 images (1.5 %)") and "few different pieces" in ring
    assert brooch.startswith("category=brooch has 2 images") and "too few to learn from" in brooch
    assert thin_value_warnings({"category": {"earring": FEW_IMAGES}}, FEW_IMAGES) == []


def test_prepare_warns_about_a_category_with_few_photos(tmp_path):
    rng = np.random.default_rng(0)
    for category, n in (("earring", 20), ("ring", 3)):
        (tmp_path / "photos" / category).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
                tmp_path / "photos" / category / f"{i}.png")
    logged = []
    report = prepare(tmp_path / "photos", tmp_path / "shop.jga", res=32, workers=1, progress=False, log=logged.append)
    assert [w for w in report.warnings if w.startswith("category=ring has 3 images")]
    assert any("warning: category=ring has 3 images" in line for line in logged)
    assert not any("earring has" in w for w in report.warnings)


def test_dataset_info_and_train_name_the_rare_value(tmp_path):
    shapes = make_shapes(tmp_path / "shapes.jga", n=60)
    uneven = take_per_value(shapes, tmp_path / "uneven.jga", "color", {"red": 6})
    out = CliRunner().invoke(app, ["dataset", "info", str(uneven), "--n", "4"])
    assert out.exit_code == 0, out.output
    assert "warning: color=red has 6 images" in out.output and "color=green has" not in out.output


def test_train_prints_the_counts_it_trains_on(tmp_path, capsys):
    shapes = make_shapes(tmp_path / "shapes.jga", n=60)
    uneven = take_per_value(shapes, tmp_path / "uneven.jga", "color", {"red": 6})
    Trainer(tiny(uneven, out=tmp_path / "runs")).run()
    said = capsys.readouterr().out
    assert "training on 46 images; color: red 6, green 20, blue 20" in said
    assert "warning: color=red has 6 images" in said


@pytest.fixture(scope="module")
def uneven_studio(tmp_path_factory):
    """The studio with one category at ~3 % of the images (3 bracelets beside ~24 of each other category)."""
    from jewelgan.studio.dataset import render_dataset

    root = tmp_path_factory.mktemp("uneven")
    balanced = render_dataset(root / "studio.jga", 96, res=32, seed=5, workers=1, progress=False)
    return take_per_value(balanced, root / "uneven.jga", "category", {"bracelet": 3}, seed=0)


def test_on_the_uneven_studio_the_rare_category_is_named_and_the_guard_watches_the_others(uneven_studio, tmp_path):
    from jewelgan.data.archive import Archive

    counts = Archive(uneven_studio).value_counts()["category"]
    assert counts["bracelet"] == 3 and all(n >= FEW_IMAGES for v, n in counts.items() if v != "bracelet")
    assert 0.02 <= 3 / sum(counts.values()) <= 0.05
    out = CliRunner().invoke(app, ["dataset", "info", str(uneven_studio), "--n", "4"])
    assert "warning: category=bracelet has 3 images" in out.output and "too few to learn from" in out.output
    t = Trainer(tiny(uneven_studio, kimg=0.064, value_check_every=0.032, out=tmp_path))
    watched = t.value_guard.values["category"]
    assert "bracelet" not in watched and set(watched) == {v for v in counts if v != "bracelet"}
    run = t.run()
    spreads = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"value_spread"' in line]
    assert spreads and "category=ring" in spreads[0] and "category=bracelet" not in spreads[0]
