"""The style model inside the real training engine: steps, augmentation hook, checkpoints, sampling."""

import json

import numpy as np
import pytest
import torch

from jewelgan.data.archive import ArchiveWriter
from jewelgan.data.labels import LabelSchema
from jewelgan.models.presets import preset_config

pytest.importorskip("jewelgan.train.loop")

# small models run many tiny ops: on a shared 2-core machine two OpenMP threads were up to 100x slower
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """16 small images with two attributes, a quarter of the labels missing."""
    path = tmp_path_factory.mktemp("style") / "a.jga"
    schema = LabelSchema({"category": ["ring", "pendant"], "metal": ["gold", "silver", "rose"]})
    rng = np.random.default_rng(0)
    with ArchiveWriter(path, 32, schema) as w:
        for i in range(16):
            img = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            w.add(img, {"category": ["ring", "pendant"][i % 2],
                        "metal": None if i % 4 == 3 else ["gold", "silver", "rose"][i % 3]}, f"img{i}")
    return path


def small_config(archive, tmp_path, **kw):
    from jewelgan.config import TrainConfig

    args = {**preset_config("cpu-64-projected"), "data": str(archive), "res": 32, "batch": 4, "kimg": 0.012,
            "out": str(tmp_path / "runs"), "progress": False, "grid_every": 0.0, "ckpt_every": 0.0,
            "log_every": 1, "threads": 1, "model_args": {"preset": "cpu-64-projected", "channel_base": 256, "channel_max": 32,
                                           "d_head_channels": 16, "d_proj_channels": [8, 8, 16, 16]}}
    args.update(kw)
    return TrainConfig(**args)


def test_training_steps_with_projected_d_and_ada(archive, tmp_path):
    from jewelgan.inference import load_generator, sample_images
    from jewelgan.train.loop import Trainer

    cfg = small_config(archive, tmp_path, augment="ada:bgc,speed=100,interval=1")
    trainer = Trainer(cfg)
    g0 = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    backbone0 = {k: v.clone() for k, v in trainer.D.features.named_parameters()}
    bn0 = trainer.D.features.stem[1].running_mean.clone()
    run = trainer.run()
    assert trainer.step == 3
    moved = [k for k, v in trainer.G.state_dict().items() if not torch.equal(v, g0[k])]
    assert any("blocks" in k for k in moved) and any("mapping" in k for k in moved)
    # the frozen feature network did not move, even though the trainer toggles D.requires_grad_
    for k, v in trainer.D.features.named_parameters():
        assert torch.equal(v, backbone0[k]) and not v.requires_grad, k
    assert torch.equal(trainer.D.features.stem[1].running_mean, bn0)
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in lines if r.get("kind") == "train"]
    assert train and all(np.isfinite(r["loss_g"]) and np.isfinite(r["loss_d"]) for r in train)
    assert all("aug_p" in r for r in train)
    # the trained generator loads back for sampling, with truncation toward the per-condition mean
    G, schema, info = load_generator(run)
    assert info["model"] == "style" and schema.names == ["category", "metal"]
    imgs = sample_images(G, schema, 3, attrs={"metal": "rose"}, seed=5, truncation=0.5)
    assert imgs.shape == (3, 32, 32, 3) and imgs.dtype == np.uint8
    again = sample_images(G, schema, 1, attrs={"metal": "rose"}, seed=6, truncation=0.5)
    assert np.array_equal(imgs[1:2], again)  # one seed, one image, whatever the batch


def test_training_step_with_resnet_d_and_r1(archive, tmp_path):
    from jewelgan.train.loop import Trainer

    cfg = small_config(archive, tmp_path, loss="ns", r1=1.0, r1_every=1, kimg=0.004, augment="diffaug",
                       model_args={"preset": "cpu-64", "channel_base": 256, "channel_max": 32, "d": "resnet",
                                   "d_channel_base": 256, "d_channel_max": 32})
    trainer = Trainer(cfg)
    d0 = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    trainer.run()
    assert type(trainer.D).__name__ == "ResNetDiscriminator"
    assert any(not torch.equal(v, d0[k]) for k, v in trainer.D.state_dict().items())


def test_training_steps_with_batchnorm_d(archive, tmp_path):
    # the cpu-64 preset's D: DCGAN's BatchNorm discriminator behind the style generator
    from jewelgan.train.loop import Trainer

    cfg = small_config(archive, tmp_path, loss="ns", r1=0.0, augment="", kimg=0.008,
                       model_args={"preset": "cpu-64", "channel_base": 256, "channel_max": 32, "d_ndf": 8})
    trainer = Trainer(cfg)
    assert type(trainer.D).__name__ == "DCGANDiscriminator"
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in trainer.D.modules())
    d0 = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    g0 = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    trainer.run()
    assert trainer.step == 2
    assert any(not torch.equal(v, d0[k]) for k, v in trainer.D.state_dict().items())
    assert any(not torch.equal(v, g0[k]) for k, v in trainer.G.state_dict().items())
    # R1 needs per-sample outputs: asking for it builds the same D without BatchNorm
    with_r1 = Trainer(small_config(archive, tmp_path, loss="ns", r1=1.0, augment="", kimg=0.004, name="r1",
                                   model_args={"preset": "cpu-64", "channel_base": 256, "channel_max": 32,
                                               "d_ndf": 8}))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in with_r1.D.modules())


def test_a_run_rebuilds_its_network_after_the_preset_changes(archive, tmp_path, monkeypatch):
    from jewelgan.inference import load_generator, sample_images
    from jewelgan.models import presets
    from jewelgan.train.loop import Trainer

    cfg = small_config(archive, tmp_path, loss="ns", r1=0.0, augment="", kimg=0.004,
                       model_args={"preset": "cpu-64", "channel_base": 256, "channel_max": 32, "d_ndf": 8})
    trainer = Trainer(cfg)
    run = trainer.run()
    stored = trainer.cfg.model_args
    assert stored["preset"] is None and stored["eval_noise"] == "const" and stored["d"] == "dcgan"  # written out
    G, schema, _ = load_generator(run)
    before = sample_images(G, schema, 2, seed=3)
    # the preset is retuned later: the run must still load, as the same network
    changed = {**presets.PRESETS["cpu-64"], "model_args": {**presets.PRESETS["cpu-64"]["model_args"],
                                                            "noise": False, "w_dim": 64}}
    monkeypatch.setitem(presets.PRESETS, "cpu-64", changed)
    G2, schema2, _ = load_generator(run)
    assert np.array_equal(sample_images(G2, schema2, 2, seed=3), before)
    # resuming with the preset's name is not a change of config, while the preset says the same
    monkeypatch.undo()
    resumed = Trainer(small_config(archive, tmp_path, loss="ns", r1=0.0, augment="", kimg=0.008,
                                   model_args={"preset": "cpu-64", "channel_base": 256, "channel_max": 32,
                                               "d_ndf": 8}), resume=run)
    assert resumed.step == trainer.step


def test_samples_take_the_noise_mode_asked_for(archive, tmp_path):
    from jewelgan.inference import BulkRequest, GenerateError, load_generator, load_model, read_manifest, sample_images
    from jewelgan.train.loop import Trainer

    run = Trainer(small_config(archive, tmp_path, loss="ns", r1=0.0, augment="", kimg=0.004,
                               model_args={"preset": "cpu-64", "channel_base": 256, "channel_max": 32,
                                           "d_ndf": 8})).run()

    def with_strength(G, value):  # the strengths start at zero and barely move in one step: set them
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.data.fill_(value)
        return G

    def loud(G):  # makes the noise visible
        return with_strength(G, 0.5)

    G_const, schema, info = load_generator(run)
    assert info["noise"] == "const"  # the preset's way, stored in the run
    G_none, _, info_none = load_generator(run, noise="none")
    assert info_none["noise"] == "none" and G_none.eval_noise == "none"
    const = sample_images(loud(G_const), schema, 3, seed=5)
    none = sample_images(loud(G_none), schema, 3, seed=5)
    assert not np.array_equal(const, none)
    assert np.array_equal(const, sample_images(loud(load_generator(run, noise="const")[0]), schema, 3, seed=5))
    # "none" is the same network with its noise switched off, not another draw
    silent = with_strength(load_generator(run, noise="const")[0], 0.0)
    assert np.array_equal(none, sample_images(silent, schema, 3, seed=5))

    out = tmp_path / "gen"
    load_model(run, noise="none").generate_bulk(BulkRequest(2), out)
    assert [r["noise"] for r in read_manifest(out)] == ["none", "none"]
    with pytest.raises(GenerateError, match="already holds a different generation job"):
        load_model(run).generate_bulk(BulkRequest(3), out)  # resuming must not mix images made another way
