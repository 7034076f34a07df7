"""The jewelry matte: the studio's layers (exact answers), the photos composed from them, exact resume of the
matte's training, the shipped matte's error on rendered truth, and `jewelgan cutout` on good and bad photos."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from jewelgan.cli import app as cli
from jewelgan.matte.backdrops import KINDS, backdrop
from jewelgan.matte.examples import LayerSet, compose, kinds, render_layer_set
from jewelgan.matte.trainer import MatteConfig, MatteConfigError, MatteTrainer
from jewelgan.studio.dataset import render_one, render_one_layers
from jewelgan.studio.render import METAL, STONE

runner = CliRunner()


@pytest.fixture(scope="module")
def layer_set(tmp_path_factory):
    return LayerSet(render_layer_set(tmp_path_factory.mktemp("layers") / "l.npz", 6, 64, seed=3))


def test_layers_are_the_render_taken_apart():
    layers, labels = render_one_layers(3, 1, 64)
    rgba, same = render_one(3, 1, 64, alpha=True)
    assert labels == same
    assert np.array_equal(np.round(layers.image * 255).astype(np.uint8), rgba[..., :3])
    assert np.array_equal(np.round(layers.coverage * 255).astype(np.uint8), rgba[..., 3])
    solid = layers.coverage == 1
    # inside the piece its own colour is the picture; outside there is none; the shadow only falls off it
    assert np.allclose(layers.foreground[solid], layers.image[solid])
    assert layers.foreground[layers.coverage == 0].max() == 0
    assert layers.shadow[solid].max() == 0 and layers.shadow.max() > 0.05
    assert set(np.unique(layers.material[layers.coverage == 0])) == {0}
    assert np.isin(layers.material[solid], (METAL, STONE)).all()


def test_a_gem_piece_marks_its_stones():
    for i in range(12):
        layers, labels = render_one_layers(3, i, 64)
        if labels.get("gemstone") not in (None, "none") and (layers.material == STONE).any():
            return
    pytest.fail("no stone pixels in 12 studio pieces with gemstones")


def test_every_backdrop_kind_is_an_image(layer_set):
    rng = np.random.default_rng(0)
    photos = [np.full((50, 60, 3), 120, np.uint8)]
    for kind in KINDS:
        img = backdrop(kind, 48, rng, photos)
        assert img.shape == (48, 48, 3) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    with pytest.raises(ValueError, match="unknown backdrop"):
        backdrop("sky", 8, rng)
    assert "photo" not in kinds(None) and "photo" in kinds(photos)


def test_a_composed_photo_keeps_the_piece_and_its_answers(layer_set):
    ex = layer_set.get(0)
    rng = np.random.default_rng(1)
    for kind in kinds(None):
        c = compose(ex, kind, rng)
        assert np.array_equal(c["alpha"], ex["alpha"])
        solid = ex["alpha"] == 1
        # a solid piece pixel is the piece's colour (8-bit, a little sensor noise), whatever the backdrop
        assert np.abs(c["image"][solid] - ex["foreground"][solid]).mean() < 0.02
        assert c["shadow"][solid].max() == 0


def tiny(layers, out, **kw):
    return MatteConfig(layers=str(layers), crop=32, batch=2, kimg=0.008, val=1, eval_every_kimg=0.004,
                       out=str(out), threads=1, **kw)


def test_matte_training_resumes_exactly(layer_set, tmp_path):
    path = layer_set_path = tmp_path / "l.npz"
    np.savez_compressed(layer_set_path, labels=np.array("[]"), seed=0, **layer_set.planes)
    straight = MatteTrainer(tiny(path, tmp_path / "a", name="r")).run_loop(progress=False)
    first = MatteTrainer(tiny(path, tmp_path / "b", name="r"))
    first.run_loop(progress=False, stop_after_steps=2)
    resumed = MatteTrainer(resume=tmp_path / "b" / "r").run_loop(progress=False)
    from jewelgan.matte.predict import Matte

    a, b = Matte.from_run(straight).net.state_dict(), Matte.from_run(resumed).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    lines = [json.loads(x) for x in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert "val_alpha_mse" in lines[-1]


def test_bad_matte_settings_name_the_field(tmp_path):
    with pytest.raises(MatteConfigError, match="crop"):
        MatteConfig(layers="x", crop=50, kimg=1).check()
    with pytest.raises(MatteConfigError, match="layers"):
        MatteTrainer(MatteConfig(layers=str(tmp_path / "missing.npz"), kimg=1, out=str(tmp_path)))
    with pytest.raises(MatteConfigError, match="soft_share"):
        MatteConfig(layers="x", soft_share=1.5, kimg=1).check()
    # a run written before soft_share existed resumes on its own recipe (no softened photos)
    assert MatteConfig.from_dict({"layers": "x", "kimg": 1}).soft_share == 0.0


def test_a_softened_photo_is_the_small_photo_enlarged():
    """Training photos shrunk and enlarged back keep their size and lose their finest detail, as a small
    photo does on its way into the network."""
    from jewelgan.matte.trainer import soften

    image = np.random.default_rng(0).random((96, 96, 3)).astype(np.float32)
    soft = soften(image, 3.0)
    assert soft.shape == image.shape and soft.dtype == np.float32
    detail = lambda x: np.abs(np.diff(x, axis=1)).mean()  # noqa: E731
    assert detail(soft) < 0.5 * detail(image)
    assert abs(float(soft.mean()) - float(image.mean())) < 0.02


# ---------------------------------------------------------------------------- the shipped matte
def _keying_mse(photo, alpha):
    from jewelgan.data.keying import key_alpha

    keyed, _ = key_alpha(np.round(photo * 255).astype(np.uint8))
    return float(np.mean((keyed / 255.0 - alpha) ** 2))


def test_the_shipped_matte_on_rendered_truth(layer_set):
    """On studio pieces it never saw, over every backdrop kind, the matte's alpha error stays under a bound and
    far under the difference key's, and the solid piece stays solid."""
    from jewelgan.matte.predict import shipped_matte

    matte = shipped_matte()
    rng = np.random.default_rng(7)
    errors, keyed, solid = [], [], []
    for i in range(len(layer_set)):
        ex = layer_set.get(i)
        for kind in kinds(None):
            c = compose(ex, kind, rng)
            photo = np.round(c["image"] * 255).astype(np.uint8)
            alpha = matte(photo).alpha
            errors.append(np.mean((alpha - c["alpha"]) ** 2))
            keyed.append(_keying_mse(c["image"], c["alpha"]))
            inside = c["alpha"] == 1
            solid.append((alpha[inside] >= 0.9).mean())
    assert np.mean(errors) < 0.02 and np.mean(errors) < 0.3 * np.mean(keyed), (np.mean(errors), np.mean(keyed))
    assert np.mean(solid) > 0.9


def test_the_shadow_layer_holds_the_shadow_not_the_piece(layer_set):
    from jewelgan.matte.predict import shipped_matte

    ex = layer_set.get(1)
    c = compose(ex, "white_sweep", np.random.default_rng(3))
    result = shipped_matte()(np.round(c["image"] * 255).astype(np.uint8))
    layer = result.shadow_layer()
    assert layer.shape == c["image"].shape[:2] + (4,) and layer[..., :3].max() == 0
    inside = c["alpha"] == 1
    assert layer[..., 3][inside].mean() < 8  # no shadow on the piece
    shaded = c["shadow"] > 0.2
    if shaded.any():
        assert layer[..., 3][shaded].mean() > layer[..., 3][(c["shadow"] == 0) & (c["alpha"] == 0)].mean()


def test_cutout_writes_the_photo_size_and_refuses_bad_photos(layer_set, tmp_path):
    ex = layer_set.get(2)
    c = compose(ex, "grey_sweep", np.random.default_rng(5))
    photo = Image.fromarray(np.round(c["image"] * 255).astype(np.uint8)).resize((150, 100))
    photo.save(tmp_path / "piece.jpg", quality=95)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not an image")
    Image.new("1", (10_001, 10_001)).save(tmp_path / "huge.png")  # 100 MP declared in a small file
    out = tmp_path / "out"
    res = runner.invoke(cli, ["cutout", str(tmp_path / "piece.jpg"), str(tmp_path / "empty.jpg"),
                              str(tmp_path / "notes.jpg"), str(tmp_path / "huge.png"), "--out", str(out), "--shadow"])
    assert res.exit_code == 1
    for name, why in (("empty.jpg", "zero-byte"), ("notes.jpg", "not an image"), ("huge.png", "bomb")):
        assert f"{name}: skipped" in res.output and why in res.output, res.output
    assert "3 of 4" in res.output
    written = sorted(p.name for p in out.iterdir())
    assert written == ["piece-shadow.png", "piece.png"]  # nothing for the bad photos
    cut = Image.open(out / "piece.png")
    assert cut.mode == "RGBA" and cut.size == (150, 100)
    a = np.asarray(cut)[..., 3]
    assert 0.01 < (a > 127).mean() < 0.9
