"""The model shipped in the package: loading, generating with no run, listing, ONNX parity, bad input."""

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import jewelgan
from jewelgan.cli import app
from jewelgan.inference.cutout import silhouette_iou
from jewelgan.inference import sample_inputs
from jewelgan.inference import DEFAULT_MODEL, shipped_models

runner = CliRunner()


@pytest.fixture(scope="module")
def model():
    return jewelgan.load_model()


def test_default_model_is_shipped_with_a_card_and_fits_the_size_budget():
    folder = shipped_models()[DEFAULT_MODEL]
    names = {p.name for p in folder.iterdir()}
    assert {"model.json", "generator.safetensors", "generator.onnx", "README.md"} <= names
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 40 * 2**20
    assert all(p.stat().st_size < 20 * 2**20 for p in folder.iterdir())  # every shipped file under 20 MB
    card = (folder / "README.md").read_text()
    assert "## Training" in card and "kimg" in card and "cores" in card


def test_load_model_generates_labelled_images_and_cutouts(model):
    assert model.has_alpha and model.resolution == 64
    assert {"category", "metal", "gemstone", "view"} <= set(model.attributes)
    rings = model.generate(4, attrs={"category": "ring", "metal": "rose_gold"}, seed=3)
    assert rings.shape == (4, 64, 64, 3) and rings.dtype == np.uint8 and rings.std() > 5
    cut = model.generate(4, attrs={"category": "ring", "metal": "rose_gold"}, seed=3, transparent=True)
    assert cut.shape == (4, 64, 64, 4)
    opaque = cut[..., 3] == 255
    assert np.array_equal(cut[..., :3][opaque], rings[opaque]), "opaque pixels keep their colour"
    assert np.array_equal(model.generate(1, seed=5), model.generate(3, seed=5)[:1]), "per-image seeds"


def test_cli_generates_with_no_run_and_lists_models(tmp_path):
    r = runner.invoke(app, ["generate", "--n", "3", "--attr", "metal=silver", "--out", str(tmp_path / "g"),
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in (tmp_path / "g" / "manifest.jsonl").read_text().splitlines()]
    assert len(recs) == 3 and all(rec["attributes"]["metal"] == "silver" for rec in recs)
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0 and f"{DEFAULT_MODEL} (default): style 64, 256, 512 px, alpha" in r.output
    assert "metal: yellow_gold, white_gold, rose_gold, silver" in r.output


@pytest.mark.parametrize("damage,expect", [
    ("missing", "no such model folder"),
    ("weights", "unreadable safetensors"),
    ("format", "not a jewelgan-model"),
    ("version", "format version 99 is newer"),
    ("attribute", "unknown value 'platinum' for attribute 'metal'; known: yellow_gold, white_gold, rose_gold, silver"),
])
def test_bad_model_or_attribute_is_one_line_exit_2_and_writes_nothing(tmp_path, damage, expect):
    folder = tmp_path / "m"
    shutil.copytree(shipped_models()[DEFAULT_MODEL], folder)
    meta = json.loads((folder / "model.json").read_text())
    args = ["--model", str(folder)]
    if damage == "missing":
        args = ["--model", str(tmp_path / "nope")]
    elif damage == "weights":
        (folder / "generator.safetensors").write_bytes(b"\x00" * 100)
    elif damage in ("format", "version"):
        meta.update({"format": "something-else"} if damage == "format" else {"version": 99})
        (folder / "model.json").write_text(json.dumps(meta))
    else:
        args += ["--attr", "metal=platinum"]
    r = runner.invoke(app, ["generate", *args, "--n", "2", "--out", str(tmp_path / "out"), "--no-progress"])
    assert r.exit_code == 2, r.output
    assert expect in r.output and r.output.count("error:") == 1, r.output
    assert not (tmp_path / "out").exists()


def test_onnx_graph_matches_torch(model):
    ort = pytest.importorskip("onnxruntime")
    folder = shipped_models()[DEFAULT_MODEL]
    session = ort.InferenceSession(str(folder / "generator.onnx"), providers=["CPUExecutionProvider"])
    z, labels, _ = sample_inputs(model.schema, model.G.z_dim, 64, {}, 7, 1.0, model.info["label_rows"],
                                 truncate_z=False)
    labels[::4, 1] = -1  # "any metal" rows too
    for psi, tol in ((1.0, 2), (0.7, 40)):
        with torch.no_grad():
            ref = model.G(z, labels, truncation=psi).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
        ref = ref.permute(0, 2, 3, 1).numpy().astype(int)
        out = session.run(None, {"z": z.numpy(), "labels": labels.numpy(),
                                 "truncation": np.array([psi], np.float32)})[0]
        assert out.shape == ref.shape and out.dtype == np.uint8
        diff = np.abs(out.astype(int) - ref)
        # psi = 1: the same maths; below 1 the graph's mean w averages 128 of torch's 1024 latents
        assert diff.max() <= tol and diff.mean() < 0.5, (psi, diff.max(), diff.mean())


def test_cutouts_agree_with_the_pictures(model):
    """The shipped model's alpha silhouette against its visible piece, beside the ceiling set by its
    training renders (~0.91, see silhouette_iou); figures in benchmarks/cutout_consistency.py."""
    z, labels, _ = sample_inputs(model.schema, model.G.z_dim, 64, {}, 0, 1.0, model.info["label_rows"],
                                 truncate_z=False)
    with torch.no_grad():
        x = model.G(z, labels).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.mean([silhouette_iou(im) for im in x]) > 0.8  # 0.89 over 256 samples (benchmark)


def test_silhouette_iou_on_known_cases():
    im = np.zeros((16, 16, 4), np.uint8)
    im[..., :3] = 240
    im[4:12, 4:12, :3] = (200, 150, 30)
    im[4:12, 4:12, 3] = 255
    for against in ("cutout", "picture"):
        assert silhouette_iou(im, against=against) == 1.0
    im[6:10, 6:10, :3] = 240  # a white stone on white, inside the piece: still the piece's silhouette
    assert silhouette_iou(im) == silhouette_iou(im, against="picture") == 1.0
    im[4:12, 12:16, 3] = 255  # alpha over bare backdrop beside the piece: a fringe the cut-out would carry
    assert silhouette_iou(im) == silhouette_iou(im, against="picture") == pytest.approx(64 / 96)
    im[4:12, 12:16, 3] = 0
    im[12:14, 4:12, :3] = 160  # a shadow on the backdrop, outside the alpha: not part of the cut-out
    assert silhouette_iou(im) == 1.0
    assert silhouette_iou(im, against="picture") == pytest.approx(64 / 80)
    im[12:14, 4:12, :3] = 240
    im[4:12, 4:8, 3] = 0  # alpha missing from the left half of the piece: only the picture shows it
    assert silhouette_iou(im, against="picture") == pytest.approx(0.5)
    assert silhouette_iou(im) > 0.5
    with pytest.raises(ValueError, match="against"):
        silhouette_iou(im, against="alpha")


def test_python_api_variants_and_interpolation(model):
    pieces, metals = model.variants("metal", seed=7)
    assert metals == model.attributes["metal"] and pieces.shape == (len(metals), 64, 64, 3)
    assert len({p.tobytes() for p in pieces}) == len(metals)
    strip = model.interpolate(7, 12, steps=5)
    assert strip.shape == (5, 64, 64, 3)
    assert np.array_equal(strip[0], model.generate(1, seed=7)[0])
    assert np.array_equal(strip[-1], model.generate(1, seed=12)[0])
    cut = model.interpolate(7, 12, steps=3, transparent=True)
    assert cut.shape == (3, 64, 64, 4)


def test_the_shipped_model_draws_product_page_sizes_and_its_cascade_graphs_match(model):
    """The shipped model reaches 512 px through its upsampling stages, from Python and from each size's ONNX
    graph (the generator and its stages in one graph)."""
    ort = pytest.importorskip("onnxruntime")
    assert model.sizes[0] == 64 and max(model.sizes) >= 512
    folder = shipped_models()[DEFAULT_MODEL]
    z, labels, _ = model.sample_inputs(3, {"metal": "white_gold"}, seed=21)
    for size in model.sizes[1:]:
        images = model.render(z, labels, size=size, transparent=True)
        assert images.shape == (3, size, size, 4)
        session = ort.InferenceSession(str(folder / f"generator-{size}.onnx"), providers=["CPUExecutionProvider"])
        out = session.run(None, {"z": z.numpy(), "labels": labels.numpy(), "truncation": np.ones(1, np.float32)})[0]
        ref = model.render(z, labels, size=size)
        diff = np.abs(out[..., :3].astype(int) - ref.astype(int))
        assert out.shape == (3, size, size, 4) and diff.mean() < 0.5 and np.percentile(diff, 99) <= 4, \
            (size, diff.mean(), diff.max())
