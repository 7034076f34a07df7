"""The built-in studio: `jewelgan render` writes a complete, labelled, deterministic archive."""

from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from jewelgan.cli import app
from jewelgan.data import Archive
from jewelgan.studio import ATTRIBUTES, render_dataset, render_one
from jewelgan.studio.attributes import sample_spec
from jewelgan.studio.dataset import compose
from jewelgan.studio.render import render


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    out = tmp_path_factory.mktemp("studio") / "s64.jga"
    result = CliRunner().invoke(app, ["render", "--n", "64", "--res", "64", "--out", str(out), "--seed", "3",
                                      "--workers", "2"])
    assert result.exit_code == 0, result.output
    return Archive(out)


def test_cli_render_writes_labelled_archive(archive):
    assert len(archive) == 64 and archive.resolution == 64
    assert archive.schema.attributes == ATTRIBUTES
    assert (archive.labels >= 0).all(), "every studio image is fully labelled"
    for name in ("category", "metal", "gemstone", "view"):
        counts = archive.value_counts()[name]
        assert set(counts) == set(ATTRIBUTES[name]) and min(counts.values()) > 0, (name, counts)
    assert archive.sources[5] == "studio:seed=3:index=5"


def test_labels_are_consistent_with_the_piece(archive):
    rows = [archive.label_dict(i) for i in range(len(archive))]
    for lab in rows:
        if lab["gemstone"] == "none":
            assert lab["cut"] == "none" and lab["style"] not in ("solitaire", "eternity", "tennis", "drop")
        else:
            assert lab["cut"] != "none" and lab["style"] not in ("plain_band", "disc", "heart", "hoop")
    ring_styles = {lab["style"] for lab in rows if lab["category"] == "ring"}
    assert ring_styles <= {"plain_band", "solitaire", "eternity"}


def test_images_are_light_studio_shots_with_an_object(archive):
    imgs = archive.rgb(slice(None)).astype(np.int16)
    corners = imgs[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.min() > 190, "seamless light background"
    for im in imgs:
        bg = np.median(im.reshape(-1, 3), axis=0)
        obj = np.abs(im - bg).max(axis=2) > 25
        assert 0.01 < obj.mean() < 0.9, "the piece is present and not the whole frame"
    flat = imgs.reshape(len(imgs), -1)
    assert len({row.tobytes() for row in flat}) == len(flat), "no two images are the same"


def test_worker_count_and_process_do_not_change_pixels(archive, tmp_path):
    one = Archive(render_dataset(tmp_path / "w1.jga", n=6, res=64, seed=3, workers=1, progress=False))
    assert np.array_equal(one.images[:], archive.images[:6])
    assert np.array_equal(one.labels, archive.labels[:6])
    image, labels = render_one(3, 11, 64)
    assert np.array_equal(image, archive.rgb(11)) and labels == archive.label_dict(11)


def test_same_seed_same_pixels_different_seed_different_images():
    a, la = render_one(0, 2, 32)
    b, lb = render_one(0, 2, 32)
    assert np.array_equal(a, b) and la == lb
    for i in range(3):
        assert not np.array_equal(render_one(0, i, 32)[0], render_one(1, i, 32)[0])


def test_stratified_sampler_covers_every_value_in_small_sets():
    for cats in (None, ["ring", "bracelet"], ["pendant"]):
        specs = [sample_spec(7, i, cats)[0] for i in range(64)]
        for name in ("metal", "gemstone", "view"):
            assert {getattr(s, name) for s in specs} == set(ATTRIBUTES[name])
        assert {s.category for s in specs} == set(cats or ATTRIBUTES["category"])


def _object_mean(image):
    im = image.astype(np.float64)
    bg = np.median(im.reshape(-1, 3), axis=0)
    mask = np.abs(im - bg).max(axis=2) > 40
    return im[mask].mean(axis=0)


def test_metals_differ_in_hue():
    spec, _ = sample_spec(0, 0, ["ring"])
    spec = replace(spec, gemstone="none", style="plain_band", cut="none", view="three_quarter")
    means = {}
    for metal in ("yellow_gold", "rose_gold", "silver"):
        scene, cam, light = compose(replace(spec, metal=metal), np.random.default_rng(1))
        means[metal] = _object_mean(render(scene, cam, light, 48))
    y, r, s = means["yellow_gold"], means["rose_gold"], means["silver"]
    assert y[0] - y[2] > 40, f"yellow gold is warm: {y}"
    assert abs(s[0] - s[2]) < 20, f"silver is neutral: {s}"
    assert (r[0] - r[1]) > (y[0] - y[1]) + 5, f"rose gold is redder than yellow gold: {r} vs {y}"


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["render", "--n", "2", "--out", str(tmp_path / "x.jga"), "--categories", "ring,tiara"])
    assert bad.exit_code == 1 and "unknown categories tiara" in bad.output
    (tmp_path / "y.jga").mkdir()
    exists = runner.invoke(app, ["render", "--n", "2", "--out", str(tmp_path / "y.jga")])
    assert exists.exit_code == 1 and "already exists" in exists.output
    res = runner.invoke(app, ["render", "--n", "2", "--res", "100", "--out", str(tmp_path / "z.jga")])
    assert res.exit_code == 1 and "res must be one of" in res.output
