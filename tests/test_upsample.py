"""The learned upsampling stage: its training pairs, the network's shapes and alpha, exact resume of its training,
the model folder's sizes (and the refusal of a size it has no stage for), CLI and Python agreeing."""

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import jewelgan
from jewelgan.cli import app as cli
from jewelgan.data.archive import Archive
from jewelgan.inference import GenerateError, load_model
from jewelgan.models.upsampler import Upsampler
from jewelgan.studio import render_dataset
from jewelgan.studio.dataset import render_one
from jewelgan.upsample import (PairError, PairSource, UpsampleConfig, UpsampleConfigError, UpsamplerTrainer,
                               check_pairs, degrade)
from jewelgan.upsample.stage import chain, map_labels, read_stages, sizes, stage_from_run, write_stage

runner = CliRunner()


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """The same 10 studio pieces at 32 and 64 px, and 8 other pieces at 64 px."""
    root = tmp_path_factory.mktemp("pairs")
    small = render_dataset(root / "s32.jga", 10, res=32, seed=3, workers=1, progress=False)
    large = render_dataset(root / "s64.jga", 10, res=64, seed=3, workers=1, progress=False)
    other = render_dataset(root / "o64.jga", 8, res=64, seed=4, workers=1, progress=False)
    return Archive(small), Archive(large), Archive(other)


def test_pairs_are_the_same_piece_at_both_sizes(pairs):
    small, large, other = pairs
    check_pairs(large, small, 2)
    img, labels = render_one(3, 5, res=64, alpha=True)
    assert np.array_equal(large.images[5], img) and large.label_dict(5) == labels
    # the small render is the large one's piece: their downscaled silhouettes agree closely
    a_small = small.images[5][..., 3].astype(float) / 255
    a_large = large.images[5][..., 3].astype(float).reshape(32, 2, 32, 2).mean(axis=(1, 3)) / 255
    assert np.abs(a_small - a_large).mean() < 0.05
    with pytest.raises(PairError, match="different labels|different seeds"):
        check_pairs(other, small, 2)
    with pytest.raises(PairError, match="not x4"):
        check_pairs(large, small, 4)


def test_crops_are_aligned_and_the_degradation_keeps_alpha(pairs):
    small, large, _ = pairs
    src = PairSource(large, small, 2)
    low, high, labels = src.batch(4, 8, np.random.default_rng(0))
    assert low.shape == (4, 4, 8, 8) and high.shape == (4, 4, 16, 16) and labels.shape == (4, len(large.schema))
    # a crop of the large image pooled by 2 is close to the small crop of the same place
    assert (torch.nn.functional.avg_pool2d(high, 2) - low).abs().mean() < 0.15
    degraded = degrade(np.asarray(large.images[0]), 2, np.random.default_rng(1))
    assert degraded.shape == (32, 32, 4) and degraded.dtype == np.uint8
    box = large.images[0][..., 3].astype(float).reshape(32, 2, 32, 2).mean(axis=(1, 3))
    assert np.abs(degraded[..., 3] - box).max() <= 1  # alpha is only resampled, never blurred or noised


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_the_network_upsamples_rgb_and_rgba_by_its_scale(scale):
    for channels in (3, 4):
        net = Upsampler(channels, scale, width=8, blocks=1, attribute_sizes=(3, 2))
        x = torch.rand(2, channels, 12, 12) * 2 - 1
        y = net(x, torch.tensor([[0, 1], [-1, -1]]))
        assert y.shape == (2, channels, 12 * scale, 12 * scale)
        # untrained, it is exactly a bilinear resampler (its detail branch starts at zero)
        base = torch.nn.functional.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
        assert torch.allclose(y, base)
    with pytest.raises(ValueError, match="scale"):
        Upsampler(3, 3)


def tiny(data, low, out, **kw):
    return UpsampleConfig(data=str(data), low=str(low), scale=2, width=8, blocks=1, batch=2, crop=8, kimg=0.012,
                          val=2, out=str(out), adversarial_from_kimg=0.004, eval_every_kimg=0.008, threads=1, **kw)


def test_add_upsampler_grows_a_model_folder_and_its_card(pairs, tmp_path):
    small, large, _ = pairs
    run = UpsamplerTrainer(tiny(large.path, small.path, tmp_path / "runs", name="u")).run_loop(progress=False)
    folder = tmp_path / "m"
    shutil.copytree(jewelgan.inference.SHIPPED_DIR / "default64", folder, ignore=shutil.ignore_patterns("*.onnx",
                                                                                                       "upsampler-*"))
    res = runner.invoke(cli, ["add-upsampler", str(run), str(folder)])
    assert res.exit_code == 2 and "upsamples 32 px images" in res.output  # a 32 -> 64 stage fits no 64 px model
    low = render_dataset(tmp_path / "l64.jga", 8, res=64, seed=5, workers=1, progress=False)
    high = render_dataset(tmp_path / "h128.jga", 8, res=128, seed=5, workers=1, progress=False)
    res = runner.invoke(cli, ["train-upsampler", "--data", str(high), "--low", str(low), "--scale", "2", "--kimg",
                              "0.008", "--batch", "2", "--crop", "8", "--width", "8", "--blocks", "1", "--out",
                              str(tmp_path / "runs"), "--name", "x2", "--threads", "1", "--no-progress", "--into",
                              str(folder)])
    assert res.exit_code == 0, res.output
    assert "now draws 64, 128 px" in res.output and (folder / "upsampler-64-128.safetensors").is_file()
    card = (folder / "README.md").read_text()
    assert "upsampler-64-128" in card and "h128.jga" in card and str(tmp_path) not in card  # names, no paths
    assert str(tmp_path) not in (folder / "upsampler-64-128.json").read_text()
    assert "64, 128 px" in runner.invoke(cli, ["models", str(folder)]).output


def test_training_resumes_exactly(pairs, tmp_path):
    small, large, _ = pairs
    straight = UpsamplerTrainer(tiny(large.path, small.path, tmp_path / "a", name="r")).run_loop(progress=False)
    first = UpsamplerTrainer(tiny(large.path, small.path, tmp_path / "b", name="r"))
    first.run_loop(progress=False, stop_after_steps=3)
    resumed = UpsamplerTrainer(resume=tmp_path / "b" / "r").run_loop(progress=False)
    a = stage_from_run(straight)[0].state_dict()
    b = stage_from_run(resumed)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    lines = lambda run: [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert [r["pixel"] for r in lines(straight) if "pixel" in r] == [r["pixel"] for r in lines(resumed) if "pixel" in r]
    assert "val_psnr" in lines(resumed)[-1] and "val_bicubic_psnr" in lines(resumed)[-1]


def test_a_decaying_rate_resumes_exactly_and_ends_at_its_share(pairs, tmp_path):
    small, large, _ = pairs
    cfg = lambda out: tiny(large.path, small.path, out, name="r", lr_final=0.1)  # noqa: E731
    straight = UpsamplerTrainer(cfg(tmp_path / "a"))
    assert straight.lr_share() == 1.0
    straight.run_loop(progress=False)
    assert straight.lr_share() == pytest.approx(0.1)
    assert straight.opt_u.param_groups[0]["lr"] < straight.cfg.lr / 5  # the last steps ran near the final rate
    first = UpsamplerTrainer(cfg(tmp_path / "b"))
    first.run_loop(progress=False, stop_after_steps=2)
    resumed = UpsamplerTrainer(resume=tmp_path / "b" / "r").run_loop(progress=False)
    a, b = stage_from_run(straight.run)[0].state_dict(), stage_from_run(resumed)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_warm_start_begins_from_the_other_runs_weights(pairs, tmp_path):
    small, large, _ = pairs
    source = UpsamplerTrainer(tiny(large.path, small.path, tmp_path, name="src")).run_loop(progress=False)
    warm = UpsamplerTrainer(tiny(large.path, small.path, tmp_path, name="warm", seed=5, init_from=str(source)))
    trained = stage_from_run(source)[0].state_dict()
    assert all(torch.equal(trained[k], v) for k, v in warm.U_ema.state_dict().items())
    cold = UpsamplerTrainer(tiny(large.path, small.path, tmp_path, name="cold", seed=5))
    assert not all(torch.equal(trained[k], v) for k, v in cold.U_ema.state_dict().items())
    cold.release()
    run = warm.run_loop(progress=False)
    _, _, summary = stage_from_run(run)
    assert summary["training"]["continued_from"]["run"] == "src"
    assert summary["training"]["continued_from"]["kimg"] == pytest.approx(0.012)
    assert str(tmp_path) not in json.dumps(summary)  # the card names runs, never this machine's paths
    with pytest.raises(UpsampleConfigError, match="init_from"):
        UpsamplerTrainer(tiny(large.path, small.path, tmp_path, name="bad", init_from=str(tmp_path / "nothing")))
    with pytest.raises(UpsampleConfigError, match="lr_final"):
        UpsampleConfig(data="x", lr_final=0.5, minutes=1).check()


def test_bad_settings_name_the_field(pairs, tmp_path):
    small, large, _ = pairs
    res = runner.invoke(cli, ["train-upsampler", "--data", str(large.path), "--low", str(small.path), "--scale", "3",
                              "--kimg", "1", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "scale" in res.output
    res = runner.invoke(cli, ["train-upsampler", "--data", str(large.path), "--low", str(small.path), "--scale", "4",
                              "--kimg", "1", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "not x4" in res.output


def test_a_model_folder_draws_every_size_its_stages_reach(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(jewelgan.inference.SHIPPED_DIR / "default64", folder)
    for f in folder.glob("upsampler-*"):
        f.unlink()
    base = load_model(folder)
    assert base.sizes == [64]
    with pytest.raises(GenerateError, match="draws 64 px"):
        base.generate(1, size=256)
    assert base.generate(1, size=100, resize=True).shape == (1, 100, 100, 3)
    torch.manual_seed(0)
    x4 = Upsampler(4, 4, width=8, blocks=1, attribute_sizes=[len(v) for v in base.schema.attributes.values()])
    for p in x4.parameters():  # not a plain resampler: the test must see the stage's own output
        p.data.add_(torch.randn_like(p) * 0.01)
    write_stage(folder, x4, base.schema, 64, {"training": {}})
    write_stage(folder, Upsampler(4, 2, width=8, blocks=1), base.schema.__class__({}), 256, {"training": {}})
    model = load_model(folder)
    from jewelgan.upsample.stage import update_card

    update_card(folder, model.stages)
    update_card(folder, model.stages)  # replaced, not repeated
    card = (folder / "README.md").read_text()
    assert card.count("## Upsampling stages") == 1 and "upsampler-64-256" in card and "## Training" in card
    assert model.sizes == [64, 256, 512]
    assert [s.size_out for s in chain(64, model.stages, 512)] == [256, 512]
    small = model.generate(3, {"category": "ring"}, seed=5)
    big = model.generate(3, {"category": "ring"}, seed=5, size=256, transparent=True)
    assert big.shape == (3, 256, 256, 4) and small.shape == (3, 64, 64, 3)
    # each image depends on its seed alone, at every size
    assert np.array_equal(model.generate(1, {"category": "ring"}, seed=6, size=256, transparent=True)[0], big[1])
    assert model.generate(1, seed=5, size=512).shape == (1, 512, 512, 3)
    strip = model.interpolate(1, 2, steps=3, size=256)
    assert strip.shape == (3, 256, 256, 3)
    res = runner.invoke(cli, ["generate", "--model", str(folder), "--n", "2", "--seed", "5", "--attr", "category=ring",
                              "--size", "256", "--out", str(tmp_path / "g"), "--no-progress"])
    assert res.exit_code == 0, res.output
    from PIL import Image

    cli_rgb = np.asarray(Image.open(tmp_path / "g" / "00000006.png"))
    assert np.array_equal(cli_rgb, model.generate(1, {"category": "ring"}, seed=6, size=256)[0])
    res = runner.invoke(cli, ["generate", "--model", str(folder), "--n", "1", "--size", "300", "--out",
                              str(tmp_path / "h"), "--no-progress"])
    assert res.exit_code == 2 and "64, 256, 512" in res.output


def test_labels_reach_the_stage_by_name():
    from jewelgan.data.labels import LabelSchema

    base = LabelSchema({"metal": ["gold", "silver"], "category": ["ring", "pendant"]})
    stage = LabelSchema({"category": ["pendant", "ring", "earrings"], "gemstone": ["ruby"]})
    out = map_labels(torch.tensor([[0, 1], [1, 0], [-1, -1]]), base, stage)
    assert out.tolist() == [[0, -1], [1, -1], [-1, -1]]
    assert sizes(64, []) == [64]


def test_the_cascade_onnx_graph_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from jewelgan.inference.onnx_export import export_cascades

    folder = tmp_path / "m"
    shutil.copytree(jewelgan.inference.SHIPPED_DIR / "default64", folder, ignore=shutil.ignore_patterns("*.onnx",
                                                                                                       "upsampler-*"))
    base = load_model(folder)
    torch.manual_seed(1)
    net = Upsampler(4, 4, width=8, blocks=1, attribute_sizes=[len(v) for v in base.schema.attributes.values()])
    for p in net.parameters():
        p.data.add_(torch.randn_like(p) * 0.01)
    write_stage(folder, net, base.schema, 64, {"training": {}})
    model = load_model(folder)
    (path,) = export_cascades(model, folder)
    assert path.name == "generator-256.onnx"
    z, labels, _ = model.sample_inputs(4, {"metal": "rose_gold"}, seed=3)
    labels[1, 0] = -1  # "any category" reaches the stage as unknown
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"z": z.numpy(), "labels": labels.numpy(), "truncation": np.ones(1, np.float32)})[0]
    ref = model.render(z, labels, size=256, transparent=False)
    assert out.shape == (4, 256, 256, 4) and out.dtype == np.uint8
    diff = np.abs(out[..., :3].astype(int) - ref.astype(int))
    # the generator's graph equals torch within 2 levels; the stage turns those into small local differences
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 4, (diff.mean(), diff.max())


def test_a_damaged_stage_is_named_not_unpickled(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(jewelgan.inference.SHIPPED_DIR / "default64", folder, ignore=shutil.ignore_patterns("*.onnx",
                                                                                                       "upsampler-*"))
    base = load_model(folder)
    write_stage(folder, Upsampler(4, 4, width=8, blocks=1), base.schema.__class__({}), 64, {"training": {}})
    (folder / "upsampler-64-256.safetensors").write_bytes(b"\x80\x04 not a tensor file")
    with pytest.raises(GenerateError, match="upsampler-64-256.safetensors: unreadable"):
        load_model(folder)
    (folder / "upsampler-64-256.safetensors").unlink()
    with pytest.raises(GenerateError, match="upsampler-64-256.safetensors: missing"):
        load_model(folder)
    res = runner.invoke(cli, ["add-upsampler", str(tmp_path / "no-run"), str(folder)])
    assert res.exit_code == 2 and "error:" in res.output
