"""Editing a photo's piece: inversion (deterministic, masked, never touching the model on disk), edits,
interpolation and style mixing, the CLI and its errors."""

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import jewelgan
from jewelgan.cli import app
from jewelgan.edit import (EditError, PhotoLoss, edit, edit_sheet, frozen_features, interpolate_inversions, invert,
                           photo_mask, psnr)
from jewelgan.inference import mix_styles
from jewelgan.inference import resolve_model
from jewelgan.studio.dataset import render_one, render_variant

runner = CliRunner()
STEPS = dict(w_steps=25, wplus_steps=10)  # enough to test the behaviour; the benchmark uses the real counts


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return jewelgan.load_model()


@pytest.fixture(scope="module")
def piece():
    return render_one(4242, 2, 64, alpha=True)


def digest(folder) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_inversion_is_deterministic_fits_the_photo_and_leaves_the_model_alone(model, piece):
    photo, labels = piece
    before = digest(resolve_model())
    weights = {k: v.clone() for k, v in model.G.state_dict().items()}
    a = invert(model, photo, labels=labels, tune_steps=5, **STEPS)
    b = invert(model, photo, labels=labels, tune_steps=5, **STEPS)
    assert torch.equal(a.ws, b.ws) and np.array_equal(a.reconstruction, b.reconstruction)
    assert a.losses[-1] < a.losses[0]  # it fits
    alpha = photo[..., 3] / 255
    start = model.G.synthesis(model.G.mean_w(torch.tensor([[model.attributes[n].index(labels[n])
                                                              for n in model.attributes]])).unsqueeze(1)
                                 .repeat(1, model.G.num_ws, 1), noise_mode="const")
    from jewelgan.grid import to_uint8

    assert psnr(a.reconstruction, photo, alpha) > psnr(to_uint8(start)[0], photo, alpha) + 1
    # pivotal tuning worked on a copy: the loaded model and the folder on disk are unchanged
    assert a.G is not model.G
    assert all(torch.equal(v, model.G.state_dict()[k]) for k, v in weights.items())
    assert digest(resolve_model()) == before


def test_editing_to_its_own_attributes_gives_back_the_reconstruction(model, piece):
    photo, labels = piece
    inv = invert(model, photo, labels=labels, **STEPS)
    assert np.array_equal(edit(model, inv, {"metal": labels["metal"]}), inv.reconstruction)
    assert np.array_equal(edit(model, inv, {}, keep_detail=True)[..., :3], photo[..., :3])
    other = next(m for m in model.attributes["metal"] if m != labels["metal"])
    moved = edit(model, inv, {"metal": other})
    assert np.abs(moved.astype(int) - inv.reconstruction).mean() > 1  # a real change
    sheet, images = edit_sheet(model, inv, [{"metal": m} for m in model.attributes["metal"]])
    assert len(images) == 4 and sheet.shape[1] > 6 * 64
    with pytest.raises(EditError, match="unknown value 'gold' for attribute 'metal'"):
        edit(model, inv, {"metal": "gold"})


def test_the_mask_puts_the_loss_on_the_piece(piece):
    photo, _ = piece
    mask = photo_mask(photo[..., :3], photo[..., 3])
    assert mask.max() == 1.0 and mask[0, 0] == 0.0
    loss = PhotoLoss(photo[..., :3], mask, frozen_features(64), perceptual_weight=0.0)
    target = torch.from_numpy(photo[..., :3].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    off_piece, on_piece = target.clone(), target.clone()
    off_piece[:, :, torch.from_numpy(mask < 0.01)] += 0.5  # the same change, on the backdrop...
    on_piece[:, :, torch.from_numpy(mask > 0.99)] += 0.5   # ...and on the piece
    change = float(loss(off_piece)) / (mask < 0.01).sum(), float(loss(on_piece)) / (mask > 0.99).sum()
    assert change[1] > 5 * change[0]
    keyed = photo_mask(photo[..., :3])  # a photo without alpha: keyed from its plain backdrop
    assert np.corrcoef(keyed.ravel(), mask.ravel())[0, 1] > 0.8


def test_labels_come_from_the_model_when_not_given(model, piece):
    photo, labels = piece
    inv = invert(model, photo, labels={"category": labels["category"]}, w_steps=2, wplus_steps=0)
    assert inv.label_source["category"] == "given"
    assert set(inv.label_source.values()) == {"given", "model search"}
    assert inv.labels["category"] == labels["category"] and set(inv.labels) == set(model.attributes)


def test_interpolation_between_photos_and_style_mixing(model, piece):
    photo, labels = piece
    other, other_labels = render_one(4242, 5, 64, alpha=True)
    a = invert(model, photo, labels=labels, **STEPS)
    b = invert(model, other, labels=other_labels, **STEPS)
    strip = interpolate_inversions(a, b, 5)
    assert np.array_equal(strip[0], a.reconstruction) and np.array_equal(strip[-1], b.reconstruction)
    images, cutoffs = mix_styles(model.G, model.schema, 3, 11)
    assert cutoffs == list(range(1, model.G.num_ws)) and len(images) == len(cutoffs)
    assert np.array_equal(mix_styles(model.G, model.schema, 3, 11, [model.G.num_ws])[0][0, ..., :3],
                          model.generate(1, seed=3)[0])  # every layer from A: A's own image


def test_studio_variants_are_the_same_piece_in_another_metal():
    a, la = render_one(4242, 2, 64, alpha=True)
    same, _ = render_variant(4242, 2, 64, alpha=True, metal=la["metal"])
    assert np.array_equal(a, same)
    other = "silver" if la["metal"] != "silver" else "rose_gold"
    b, lb = render_variant(4242, 2, 64, alpha=True, metal=other)
    assert lb == dict(la, metal=other)
    assert np.abs(a[..., 3].astype(int) - b[..., 3]).mean() < 2  # same silhouette
    with pytest.raises(ValueError, match="only metal, gemstone"):
        render_variant(4242, 2, 64, category="ring")


def test_studio_variants_change_a_stone_and_never_add_or_remove_one():
    from jewelgan.studio.dataset import render_one_layers

    own, labels = render_one_layers(4242, 2, 64)  # image 2 of set 4242 carries a stone (the stones cycle of 5)
    assert labels["gemstone"] != "none"
    other = "ruby" if labels["gemstone"] != "ruby" else "emerald"
    changed, new_labels = render_one_layers(4242, 2, 64, gemstone=other)
    assert new_labels == dict(labels, gemstone=other)
    assert np.array_equal(own.coverage, changed.coverage) and np.array_equal(own.material, changed.material)
    stone = own.material == 2
    assert np.abs(own.foreground - changed.foreground)[stone].mean() > 0.05  # the stones took another colour
    bare = next(i for i in range(10) if render_one_layers(4242, i, 32)[1]["gemstone"] == "none")
    with pytest.raises(ValueError, match="changes only between stones"):
        render_one_layers(4242, bare, 32, gemstone="ruby")


def test_cli_edit_writes_the_sheet_and_edits(tmp_path, piece):
    photo, labels = piece
    path = tmp_path / "ring.jpg"
    Image.fromarray(render_one(4242, 2, 256)[0]).save(path, quality=92)
    res = runner.invoke(app, ["edit", str(path), "--method", "invert", "--out", str(tmp_path / "e"), "--set", "metal=rose_gold",
                              "--every", "gemstone", "--attr", f"category={labels['category']}",
                              "--w-steps", "10", "--wplus-steps", "5"])
    assert res.exit_code == 0, res.output
    names = {p.name for p in (tmp_path / "e").iterdir()}
    assert {"sheet.png", "reconstruction.png", "edit.json", "metal=rose_gold.png", "gemstone=ruby.png"} <= names
    res = runner.invoke(app, ["interpolate", "--seed-a", "3", "--seed-b", "9", "--steps", "4", "--out",
                              str(tmp_path / "i")])
    assert res.exit_code == 0, res.output
    anim = Image.open(tmp_path / "i" / "strip.webp")
    assert anim.n_frames == 6  # 4 forward, 2 back: a loop without a jump
    assert (tmp_path / "i" / "mix.png").is_file() and Image.open(tmp_path / "i" / "strip.gif").n_frames == 6


@pytest.mark.parametrize("case, expect", [
    ("unreadable", "not an image"),
    ("missing", "no such photo"),
    ("dcgan", "no latent space to invert"),
    ("value", "unknown value 'gold' for attribute 'metal'"),
    ("attribute", "unknown attribute 'size'"),
])
def test_cli_edit_bad_input_is_one_line_exit_2(tmp_path, case, expect):
    photo = tmp_path / "p.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(photo)
    args = ["edit", str(photo), "--method", "invert", "--out", str(tmp_path / "o"), "--w-steps", "1",
            "--wplus-steps", "0"]
    if case == "unreadable":
        photo.write_bytes(b"not an image at all")
    elif case == "missing":
        args[1] = str(tmp_path / "nope.jpg")
    elif case == "dcgan":
        from test_generate import make_shapes, tiny
        from jewelgan.train import train

        run = train(tiny(make_shapes(tmp_path / "s.jga", n=8), model="dcgan", kimg=0.008, out=tmp_path / "runs"))
        args += ["--model", str(run)]
    elif case == "value":
        args += ["--set", "metal=gold"]
    else:
        args += ["--every", "size"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert expect in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing written
