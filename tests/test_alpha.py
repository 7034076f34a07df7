"""Transparency end to end: RGBA archives, the studio's coverage, RGBA training, cut-outs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from jewelgan.cli import app
from jewelgan.config import ConfigError
from jewelgan.inference.cutout import checkerboard, composite, to_cutout
from jewelgan.data.archive import Archive, ArchiveWriter
from jewelgan.data.augment import ADA, DiffAugment
from jewelgan.inference import BulkRequest, GenerateError, load_generator, load_model, sample_images
from jewelgan.studio.attributes import sample_spec
from jewelgan.studio.dataset import compose, render_one
from jewelgan.studio.render import trace
from jewelgan.train import Trainer, train
from test_train import make_shapes, tiny


def make_rgba_shapes(path, n=24, res=32):
    """Discs on a coloured backdrop; alpha = the disc's exact (4x4 supersampled) coverage."""
    rng = np.random.default_rng(0)
    k = 4
    yy, xx = (np.mgrid[:res * k, :res * k] + 0.5) / k
    with ArchiveWriter(path, res, channels=4) as w:
        for i in range(n):
            cx, cy = rng.uniform(res / 3, 2 * res / 3, 2)
            r = rng.uniform(res / 8, res / 4)
            cov = (((xx - cx) ** 2 + (yy - cy) ** 2) < r * r).reshape(res, k, res, k).mean(axis=(1, 3))
            back, piece = np.array([230, 225, 215.0]), np.array([200, 160, 40.0])
            seen = cov[..., None] * piece + (1 - cov[..., None]) * back
            im = np.concatenate([seen, 255 * cov[..., None]], 2).round().astype(np.uint8)
            w.add(im, {"shape": "disc"}, f"disc/{i}")
    return path


def test_rgba_archive_round_trip_and_rgb_view(tmp_path):
    path = make_rgba_shapes(tmp_path / "a.jga", n=5)
    a = Archive(path)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["channels"] == 4 and meta["version"] == 2 and a.has_alpha
    assert a.images.shape == (5, 32, 32, 4) and a.rgb(slice(None)).shape == (5, 32, 32, 3)
    assert np.array_equal(a.rgb(2), a[2][0][..., :3]) and a.verify()
    rgb = Archive(make_shapes(tmp_path / "b.jga", n=4))
    assert not rgb.has_alpha and json.loads((tmp_path / "b.jga" / "meta.json").read_text())["version"] == 1
    with pytest.raises(ValueError, match="channels must be 3"):
        ArchiveWriter(tmp_path / "c.jga", 32, channels=2)
    w = ArchiveWriter(tmp_path / "d.jga", 32, channels=4)
    with pytest.raises(ValueError, match="32x32x4"):
        w.add(np.zeros((32, 32, 3), np.uint8))
    w.abort()


def test_studio_alpha_is_the_pieces_coverage():
    """Against 36 samples per pixel traced with a fine cone, the renderer's alpha is the coverage."""
    res, k = 64, 6
    errors, edge_errors = [], []
    for index in range(3):
        rgba, _ = render_one(5, index, res, alpha=True)
        rgb, _ = render_one(5, index, res)
        assert np.array_equal(rgba[..., :3], rgb), "alpha does not change the colours"
        spec, rng = sample_spec(5, index, None)
        scene, camera, _ = compose(spec, rng)
        n = res * k
        jj, ii = np.meshgrid(np.arange(n), np.arange(n))
        u = ((jj + 0.5) / n * 2 - 1).astype(np.float32).ravel()
        v = (1 - (ii + 0.5) / n * 2).astype(np.float32).ravel()
        _, hit = trace(scene, camera.eye, camera.rays(u, v), np.float32(camera.window[2] / n))
        truth = hit.reshape(res, k, res, k).mean(axis=(1, 3))
        alpha = rgba[..., 3] / 255
        edge = ((truth > 0) & (truth < 1)) | ((alpha > 0) & (alpha < 1))
        assert edge.any() and (alpha == 1).any() and (alpha == 0).any()
        errors.append(np.abs(alpha - truth).mean())
        edge_errors.append(np.abs(alpha - truth)[edge].mean())
    # 4 sub-samples on edge pixels quantise coverage in steps of 1/4: the expected error is about 0.1
    assert np.mean(edge_errors) < 0.15 and np.mean(errors) < 0.01, (edge_errors, errors)


def test_cutout_recovers_the_piece_and_composites_back():
    back, piece = np.array([40.0, 120, 200]), np.array([250.0, 200, 30])
    cov = np.zeros((16, 16))
    cov[4:12, 4:12] = 1.0
    cov[4:12, 12] = 0.5  # a half-covered column
    seen = cov[..., None] * piece + (1 - cov[..., None]) * back
    image = np.concatenate([seen, 255 * cov[..., None]], 2).round().astype(np.uint8)
    out = to_cutout(image)
    assert np.abs(out[6, 12, :3].astype(int) - piece).max() <= 2, "the backdrop's share is taken out"
    assert np.array_equal(out[..., 3], image[..., 3])
    again = composite(out, back)
    assert np.abs(again.astype(int) - image[..., :3]).max() <= 1
    on_checks = composite(out, checkerboard(16, 4))
    assert set(np.unique(on_checks[0, :, 0])) == {204, 245}
    with pytest.raises(ValueError, match="HxWx4"):
        to_cutout(image[..., :3])


def test_cutouts_drop_the_faint_haze_away_from_the_piece_and_keep_the_soft_edge():
    cov = np.zeros((64, 64))
    cov[20:40, 20:40] = 1.0
    cov[20:40, 40] = 0.03   # a faint soft edge beside the piece: stays
    cov[2:6, 50:60] = 0.03  # the same alpha far from it: haze, cleared
    cov[50, 5] = 0.2        # stronger alpha away from the piece is not haze: stays
    back = np.array([235.0, 235, 235])
    seen = cov[..., None] * np.array([200.0, 150, 40]) + (1 - cov[..., None]) * back
    image = np.concatenate([seen, 255 * cov[..., None]], 2).round().astype(np.uint8)
    alpha = to_cutout(image)[..., 3]
    assert (alpha[2:6, 50:60] == 0).all() and (alpha[20:40, 40] == image[20:40, 40, 3]).all()
    assert alpha[50, 5] == image[50, 5, 3] and np.array_equal(alpha[20:40, 20:40], image[20:40, 20:40, 3])


def test_the_shipped_models_cutouts_carry_no_haze_outside_the_piece():
    from scipy.ndimage import binary_dilation

    alpha = load_model().generate(8, seed=0, transparent=True)[..., 3]
    near = np.stack([binary_dilation(a >= 128, iterations=2) for a in alpha])
    assert not ((alpha > 0) & (alpha < 13) & ~near).any()
    assert (alpha == 255).any() and ((alpha > 0) & (alpha < 255)).any()  # the pieces and their soft edges remain


def test_colour_augmentations_leave_alpha_alone():
    x = torch.rand(6, 4, 16, 16) * 2 - 1
    out = DiffAugment("color")(x, torch.Generator().manual_seed(0))
    assert torch.equal(out[:, 3], x[:, 3]) and not torch.equal(out[:, :3], x[:, :3])
    ada = ADA("c", p=1.0)
    out = ada(x, torch.Generator().manual_seed(0))
    assert torch.equal(out[:, 3], x[:, 3]) and not torch.equal(out[:, :3], x[:, :3])
    # geometric ops move alpha with the colours
    ada = ADA("b", p=1.0)
    out = ada(x, torch.Generator().manual_seed(1))
    assert not torch.equal(out[:, 3], x[:, 3])


@pytest.fixture(scope="module")
def rgba_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("alpha")
    data = make_rgba_shapes(root / "d.jga")
    return data, train(tiny(data, model="style", res=32, z_dim=16, kimg=0.032, ema_kimg=0.01, out=root / "runs",
                            model_args={"preset": "cpu-64", "w_dim": 32, "channel_base": 256, "channel_max": 32,
                                        "d_ndf": 8}))


def test_training_on_alpha_draws_four_channels_and_writes_cutouts(rgba_run, tmp_path):
    data, run = rgba_run
    G, schema, info = load_generator(run)
    assert info["config"]["alpha"] is True
    seen = sample_images(G, schema, 3, seed=4)
    cut = sample_images(G, schema, 3, seed=4, transparent=True)
    assert seen.shape == (3, 32, 32, 3) and cut.shape == (3, 32, 32, 4)
    # a pixel the cut-out calls opaque keeps its colour exactly
    opaque = cut[..., 3] == 255
    assert np.array_equal(cut[..., :3][opaque], seen[opaque])
    out = load_model(run).generate_bulk(BulkRequest(2, seed=1, transparent=True), tmp_path / "cut")
    assert Image.open(out / "00000001.png").mode == "RGBA"
    with pytest.raises(GenerateError, match="jpg has no alpha"):
        load_model(run).generate_bulk(BulkRequest(1, fmt="jpg", transparent=True), tmp_path / "j")
    r = CliRunner().invoke(app, ["generate", "--run", str(run), "--n", "1", "--out", str(tmp_path / "c2"),
                                 "--transparent", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "c2" / "00000000.png").mode == "RGBA"


def test_alpha_switches(rgba_run, tmp_path):
    data, _ = rgba_run
    t = Trainer(tiny(data, model="dcgan", alpha=False, out=tmp_path))
    assert t.cfg.alpha is False and t.stream.get(0)[0].shape[1] == 3 and t.G.to_rgb.out_channels == 3
    t = Trainer(tiny(data, model="dcgan", out=tmp_path))
    assert t.cfg.alpha is True and t.stream.get(0)[0].shape[1] == 4 and t.G.to_rgb.out_channels == 4
    rgb_data = make_shapes(tmp_path / "rgb.jga", n=8)
    with pytest.raises(ConfigError, match="has no alpha channel"):
        Trainer(tiny(rgb_data, alpha=True, out=tmp_path))
    # the projected D sees RGB only: "auto" leaves alpha out, asking for it is an error
    proj = dict(model="style", res=32, model_args={"preset": "cpu-64-projected"}, out=tmp_path)
    assert Trainer(tiny(data, **proj)).cfg.alpha is False
    with pytest.raises(ConfigError, match="cannot learn alpha"):
        Trainer(tiny(data, alpha=True, **proj))
    # an RGB-only model cannot make cut-outs
    run = train(tiny(rgb_data, kimg=0.016, out=tmp_path / "runs"))
    G, schema, _ = load_generator(run)
    with pytest.raises(GenerateError, match="no alpha channel"):
        sample_images(G, schema, 1, transparent=True)


def product_photo(path, backdrop, seed, busy=False, size=96):
    """A ring-like piece (gold annulus) on a plain backdrop with sensor noise, or on a busy texture.
    Returns the piece's true coverage at the archive's 32 px."""
    rng = np.random.default_rng(seed)
    k = 4
    yy, xx = (np.mgrid[:size * k, :size * k] + 0.5) / k
    d = np.hypot(xx - size / 2, yy - size / 2)
    cov = ((d < size * 0.3) & (d > size * 0.18)).reshape(size, k, size, k).mean(axis=(1, 3))
    if busy:
        back = rng.integers(0, 256, (size // 8, size // 8, 3)).repeat(8, 0).repeat(8, 1).astype(float)
    else:
        back = np.broadcast_to(np.array(backdrop, float), (size, size, 3)) + rng.normal(0, 2, (size, size, 3))
    seen = cov[..., None] * np.array([212.0, 175, 55]) + (1 - cov[..., None]) * back
    Image.fromarray(np.clip(seen, 0, 255).round().astype(np.uint8)).save(path)
    return cov.reshape(32, 3, 32, 3).mean(axis=(1, 3))


def test_prepare_cuts_pieces_out_on_plain_and_busy_backdrops_and_leaves_an_empty_photo_opaque(tmp_path):
    """--alpha auto is the jewelry matte: studio pieces photographed on a white sweep, a teal gradient and wood
    come out with their true coverage; a photo with no piece stays opaque, with the reason in the report."""
    from jewelgan.data.prepare import prepare
    from jewelgan.matte.examples import LayerSet, compose, render_layer_set

    layers = LayerSet(render_layer_set(tmp_path / "layers.npz", 3, 128, seed=11))
    src = tmp_path / "photos" / "ring"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    truth = {}
    for i, kind in enumerate(("white_sweep", "gradient", "wood")):
        c = compose(layers.get(i), kind, rng)
        Image.fromarray(np.round(c["image"] * 255).astype(np.uint8)).save(src / f"{kind}.png")
        truth[f"{kind}.png"] = np.asarray(Image.fromarray(np.round(c["alpha"] * 255).astype(np.uint8))
                                          .resize((32, 32), Image.BOX)) / 255
    Image.fromarray(np.full((128, 128, 3), 238, np.uint8)).save(src / "empty.png")
    lines = []
    rep = prepare(tmp_path / "photos", tmp_path / "a.jga", res=32, alpha="auto", workers=1, progress=False,
                  log=lines.append)
    a = Archive(tmp_path / "a.jga")
    assert a.has_alpha and rep.options["alpha"] == "auto"
    for i, src_name in enumerate(a.sources):
        name = src_name.split("/")[-1]
        alpha = a.images[i][..., 3] / 255
        if name == "empty.png":
            assert (alpha == 1).all()
            continue
        fg, want = alpha > 0.5, truth[name] > 0.5
        iou = (fg & want).sum() / (fg | want).sum()
        assert iou > 0.8, (name, iou)
        assert np.abs(alpha - truth[name]).mean() < 0.05, name
    assert [n["source"] for n in rep.not_keyed] == ["ring/empty.png"]
    assert "in front of the backdrop" in rep.not_keyed[0]["why"]
    assert any("cut out 3 of 4" in line and "1 left opaque" in line for line in lines), lines
    report = json.loads(Path(rep.report_path).read_text())
    assert report["not_keyed"][0]["source"] == "ring/empty.png"
    # the default stays RGB, and a bad mode is one clear error
    assert not Archive(prepare(tmp_path / "photos", tmp_path / "b.jga", res=32, workers=1, progress=False,
                               log=None).archive).has_alpha
    r = CliRunner().invoke(app, ["prepare", str(tmp_path / "photos"), str(tmp_path / "c.jga"), "--res", "32",
                                 "--alpha", "maybe"])
    assert r.exit_code == 2 and "Invalid value for '--alpha'" in r.output, r.output
