"""Generation: loading, per-seed reproducibility, attributes, truncation, bulk manifest, export, CLI errors."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from jewelgan.cli import app
from jewelgan.inference.export import save_pretrained
import jewelgan
from jewelgan.inference import (BulkRequest, GenerateError, load_model, interpolate_images, interpolation_inputs, latent, load_generator,
                               read_manifest, run_generator, variant_inputs,
                               sample_images, sample_inputs)
from jewelgan.train import train
from test_train import make_shapes, tiny


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    data = make_shapes(root / "s.jga", n=24)
    return train(tiny(data, model="dcgan", kimg=0.032, ema_kimg=0.01, out=root / "runs"))


def test_load_generator_returns_eval_model_schema_and_info(run):
    G, schema, info = load_generator(run)
    assert not G.training and schema.names == ["color", "shape"]
    assert info["model"] == "dcgan" and info["step"] == 4 and info["res"] == 32 and info["which"] == "ema"
    assert sum(r[-1] for r in info["label_rows"]) == 24
    G_raw, _, _ = load_generator(run, which="G")
    assert any(not torch.equal(a, b) for a, b in zip(G.parameters(), G_raw.parameters()))
    with pytest.raises(GenerateError, match="no such run"):
        load_generator(run / "nope")
    assert info["noise"] is None
    with pytest.raises(GenerateError, match="model 'dcgan' has no noise inputs"):
        load_generator(run, noise="const")
    with pytest.raises(GenerateError, match="noise must be one of const, none, got 'random'"):
        load_generator(run, noise="random")


def test_each_image_is_reproducible_from_its_own_seed(run):
    G, schema, _ = load_generator(run)
    batch = sample_images(G, schema, 6, seed=10, batch=4)
    assert batch.shape == (6, 32, 32, 3) and batch.dtype == np.uint8
    alone = sample_images(G, schema, 1, seed=13, batch=4)
    # every forward pass has the same shape, so an image is bit-identical alone or among others
    assert np.array_equal(alone[0], batch[3])
    assert not np.array_equal(batch[0], batch[1])


def test_an_image_does_not_depend_on_its_neighbours_in_a_shared_forward_pass(run):
    G, schema, info = load_generator(run)
    z1, l1, _ = sample_inputs(schema, G.z_dim, 3, {"color": "green"}, 40, label_rows=info["label_rows"])
    z2, l2, _ = sample_inputs(schema, G.z_dim, 6, {}, 900, label_rows=info["label_rows"])
    shared = run_generator(G, torch.cat([z2, z1]), torch.cat([l2, l1]))
    assert np.array_equal(shared[6:], run_generator(G, z1, l1))
    assert np.array_equal(shared[6:], sample_images(G, schema, 3, {"color": "green"}, seed=40))


def test_variants_keep_the_latent_and_step_one_attribute(run):
    G, schema, info = load_generator(run)
    z, labels, values = variant_inputs(schema, G.z_dim, "color", seed=7, label_rows=info["label_rows"])
    assert values == schema.attributes["color"]
    assert torch.equal(z, z[:1].expand_as(z))
    k = schema.names.index("color")
    assert labels[:, k].tolist() == list(range(len(values)))
    others = [i for i in range(len(schema)) if i != k]
    assert torch.equal(labels[:, others], labels[:1, others].expand(len(values), -1))
    # the variant in the piece's own colour is the plain sample of that seed
    own = sample_images(G, schema, 1, seed=7)
    own_colour = schema.decode(sample_inputs(schema, G.z_dim, 1, {}, 7, label_rows=info["label_rows"])[1][0].numpy())["color"]
    assert np.array_equal(run_generator(G, z, labels)[values.index(own_colour)], own[0])
    with pytest.raises(GenerateError, match="unknown attribute 'size'; known: color"):
        variant_inputs(schema, G.z_dim, "size")


def test_interpolation_runs_from_one_seed_to_the_other_on_the_sphere(run):
    G, schema, info = load_generator(run)
    z, labels = interpolation_inputs(schema, G.z_dim, 3, 8, 5, label_rows=info["label_rows"])
    za, la, _ = sample_inputs(schema, G.z_dim, 1, {}, 3, label_rows=info["label_rows"])
    zb, _, _ = sample_inputs(schema, G.z_dim, 1, {}, 8, label_rows=info["label_rows"])
    assert torch.allclose(z[0], za[0], atol=1e-5) and torch.allclose(z[-1], zb[0], atol=1e-5)
    norms = z.norm(dim=1)
    assert norms.min() > 0.9 * min(za.norm(), zb.norm())  # a straight line would dip in the middle
    assert torch.equal(labels, la.expand(5, -1))
    with pytest.raises(GenerateError, match="steps must be >= 2"):
        interpolation_inputs(schema, G.z_dim, 3, 8, 1)
    images, rows = interpolate_images(G, schema, 3, 8, 5)  # dcgan: the z path
    assert np.array_equal(images[0, ..., :3], sample_images(G, schema, 1, seed=3)[0])


def test_style_interpolation_in_w_ends_exactly_on_both_images():
    model = jewelgan.load_model()
    images, rows = interpolate_images(model.G, model.schema, 4, 21, 6)
    assert np.array_equal(images[0, ..., :3], model.generate(1, seed=4)[0])
    assert np.array_equal(images[-1, ..., :3], model.generate(1, seed=21)[0])
    a, b = (model.sample_inputs(1, seed=s)[1][0] for s in (4, 21))
    assert torch.equal(rows[0], a) and torch.equal(rows[-1], b)
    steps = np.abs(np.diff(images.astype(int), axis=0)).mean(axis=(1, 2, 3))
    assert steps.max() < np.abs(images[0].astype(int) - images[-1]).mean()  # a gradual morph, not a jump


def test_truncated_latents_stay_within_the_threshold():
    g = torch.Generator().manual_seed(0)
    z = torch.stack([latent(100, g, 0.4) for _ in range(20)])
    assert z.abs().max() <= 1.0 + 1e-6 and z.std() > 0.3
    assert torch.equal(latent(8, torch.Generator().manual_seed(3)), torch.randn(8, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(latent(8, torch.Generator().manual_seed(3), 0.0), torch.zeros(8))


def test_bulk_generation_writes_manifest_and_resumes(run, tmp_path):
    out = load_model(run).generate_bulk(BulkRequest(5, ["color=green"], seed=100, truncation=0.7, batch=2), tmp_path / "g")
    recs = read_manifest(out)
    assert [r["seed"] for r in recs] == [100, 101, 102, 103, 104]
    assert all(r["attributes"]["color"] == "green" and r["model"] == "dcgan" and r["step"] == 4 for r in recs)
    assert all((out / r["file"]).is_file() for r in recs)
    first = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(out / recs[2]["file"]))
    (out / recs[2]["file"]).unlink()  # an image lost: the rerun redoes only that one, identically
    load_model(run).generate_bulk(BulkRequest(5, ["color=green"], seed=100, truncation=0.7, batch=2), out)
    again = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(out / recs[2]["file"]))
    assert np.array_equal(first, again)
    assert json.loads((out / "manifest.json").read_text())["complete"] is True
    with pytest.raises(GenerateError, match="different generation job"):
        load_model(run).generate_bulk(BulkRequest(5, ["color=red"], seed=100), out)


def test_exported_model_generates_the_same_images(run, tmp_path):
    G, schema, _ = load_generator(run)
    model_dir = save_pretrained(run, tmp_path / "model")
    G2, schema2, info2 = load_generator(model_dir)
    assert schema2 == schema and info2["step"] == 4 and (model_dir / "README.md").read_text().startswith("# jewelgan")
    assert np.array_equal(sample_images(G, schema, 3, {"shape": "disc"}), sample_images(G2, schema2, 3, {"shape": "disc"}))


def test_export_writes_an_onnx_graph_that_matches_torch_and_a_card_with_the_evaluation(run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps({"archive": "s.jga", "n": 16, "metrics": {"fid": 123.4, "kid": 0.1},
                                      "details": {"attr": {"color": {"accuracy": 0.75}}}}))
    r = CliRunner().invoke(app, ["export", "--run", str(run), "--out", str(tmp_path / "m"), "--format", "safetensors",
                                 "--format", "onnx", "--evaluation", str(evaluation)])
    assert r.exit_code == 0, r.output
    card = (tmp_path / "m" / "README.md").read_text()
    assert "fid: 123.4" in card and "attribute accuracy, color: 0.750" in card and "## Training" in card
    G, schema, info = load_generator(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "model.json").read_text())["evaluation"]["metrics"]["fid"] == 123.4
    z, labels, _ = sample_inputs(schema, G.z_dim, 16, {}, 0, 1.0, info["label_rows"])
    session = ort.InferenceSession(str(tmp_path / "m" / "generator.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z", "labels"]  # dcgan: the caller truncates z
    out = session.run(None, {"z": z.numpy(), "labels": labels.numpy()})[0]
    assert np.abs(out.astype(int) - run_generator(G, z, labels).astype(int)).max() <= 2
    r = CliRunner().invoke(app, ["export", "--run", str(run), "--out", str(tmp_path / "m2"), "--format", "tflite"])
    assert r.exit_code == 2 and "choose from safetensors, onnx" in r.output


def test_generator_with_its_own_truncation_gets_plain_latents():
    class WSpace(torch.nn.Module):
        z_dim = 4

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen = []

        def forward(self, z, labels, truncation=1.0):
            self.seen.append((z.clone(), truncation))
            return torch.zeros(z.shape[0], 3, 8, 8)

    from jewelgan.data import LabelSchema

    G = WSpace()
    sample_images(G, LabelSchema(), 2, seed=0, truncation=0.1)
    z, psi = G.seen[0]
    assert psi == 0.1 and z.abs().max() > 0.25  # not truncated to 2.5 * 0.1


def test_cli_generate_and_train_errors(run, tmp_path):
    r = CliRunner()
    res = r.invoke(app, ["generate", "--run", str(run), "--n", "2", "--out", str(tmp_path / "o"), "--attr", "color=pink"])
    assert res.exit_code == 2 and "unknown value 'pink' for attribute 'color'; known: red, green, blue" in res.output
    res = r.invoke(app, ["generate", "--run", str(run), "--n", "2", "--out", str(tmp_path / "o"), "--attr", "size=7"])
    assert res.exit_code == 2 and "unknown attribute 'size'" in res.output
    res = r.invoke(app, ["generate", "--run", str(run), "--n", "2", "--out", str(tmp_path / "o"), "--attr", "color",
                         "--no-progress"])
    assert res.exit_code == 2 and "must look like name=value" in res.output
    res = r.invoke(app, ["generate", "--run", str(run), "--n", "2", "--out", str(tmp_path / "o"), "--noise", "none",
                         "--no-progress"])
    assert res.exit_code == 2 and "has no noise inputs" in res.output
    res = r.invoke(app, ["generate", "--run", str(run), "--n", "2", "--out", str(tmp_path / "ok"), "--attr", "color=red",
                         "--no-progress"])
    assert res.exit_code == 0, res.output
    assert len(read_manifest(tmp_path / "ok")) == 2
    res = r.invoke(app, ["train", "--data", str(tmp_path / "missing.jga"), "--kimg", "1"])
    assert res.exit_code == 1 and "not a dataset archive folder" in res.output
    res = r.invoke(app, ["train", "--data", "x.jga", "--kimg", "1", "--loss", "lsgan"])
    assert res.exit_code == 1 and "TrainConfig.loss: must be one of ns, hinge, wgan-gp" in res.output
    res = r.invoke(app, ["train", "--resume", str(run), "--batch", "64"])
    assert res.exit_code == 1 and "cannot change from 8 to 64 when resuming" in res.output
