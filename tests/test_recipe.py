"""The default recipe: what `jewelgan train` picks when no model or preset is named, and why."""

import numpy as np
import pytest
from typer.testing import CliRunner

from jewelgan.data import Archive, ArchiveWriter
from jewelgan.train.recipe import LABEL_TERMS, recommend
from test_train import make_shapes


def blank_archive(path, res, labelled=True, n=4):
    with ArchiveWriter(path, res, overwrite=True) as w:
        for i in range(n):
            w.add(np.full((res, res, 3), 255, np.uint8), {"category": "ring"} if labelled else {}, f"x/{i}")
    return Archive(path)


def test_cpu_at_64_px_takes_the_cpu_preset_with_its_labels(tmp_path):
    r = recommend(blank_archive(tmp_path / "a.jga", 64), "cpu")
    assert r.fields["model"] == "style" and r.fields["model_args"] == {"preset": "cpu-64"}
    assert r.fields["cls_weight"] > 0 and "cpu-64" in r.summary and "4 images at 64 px" in r.summary
    assert "category" in r.summary and "real product photos" in r.why


def test_larger_archives_train_at_64_px_on_a_cpu_and_say_so(tmp_path):
    r = recommend(blank_archive(tmp_path / "a.jga", 128), "cpu")
    assert r.fields["res"] == 64 and "downscaled to 64 px" in r.why and "--res 128" in r.why


def test_unlabelled_archive_drops_every_term_that_needs_labels(tmp_path):
    r = recommend(blank_archive(tmp_path / "a.jga", 64, labelled=False), "cpu")
    assert all(r.fields.get(name, 0) == 0 for name in LABEL_TERMS) and "unconditionally" in r.why


@pytest.mark.parametrize("res, model", [(32, "dcgan")])
def test_below_64_px_the_fast_dcgan(tmp_path, res, model):
    r = recommend(blank_archive(tmp_path / "a.jga", res), "cpu")
    assert r.fields["model"] == model and r.fields["model_args"] == {"ngf": 32, "ndf": 32}


@pytest.mark.parametrize("res, preset", [(64, "cpu-64"), (128, "gpu-128"), (256, "gpu-256"), (512, "gpu-512")])
def test_gpu_takes_the_preset_sized_for_the_resolution(tmp_path, res, preset):
    r = recommend(blank_archive(tmp_path / "a.jga", res, n=1), "cuda")
    assert r.fields["model_args"] == {"preset": preset} and preset in r.why


def test_cli_without_model_prints_the_choice_and_trains_it(tmp_path):
    from jewelgan.cli import app
    from jewelgan.config import TrainConfig

    data = make_shapes(tmp_path / "shapes.jga", n=16, res=64)
    res = CliRunner().invoke(app, ["train", "--data", str(data), "--kimg", "0.016", "--out", str(tmp_path / "runs"),
                                   "--threads", "1", "--no-progress", "--name", "auto"])
    assert res.exit_code == 0, res.output
    assert "recipe: style model, preset cpu-64" in res.output and "why: CPU" in res.output
    saved = TrainConfig.load(tmp_path / "runs" / "auto" / "config.yaml")
    assert saved.model == "style" and saved.model_args["output"] == "tanh_leak_bounded"
    # naming a model skips the recipe
    res = CliRunner().invoke(app, ["train", "--data", str(data), "--model", "mlp", "--kimg", "0.016", "--out",
                                   str(tmp_path / "runs"), "--threads", "1", "--no-progress", "--name", "mlp"])
    assert res.exit_code == 0 and "recipe:" not in res.output
