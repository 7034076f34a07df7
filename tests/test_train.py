"""Training engine: one step per model, losses, config, run directory, NaN guard, Ctrl-C, hooks."""

import importlib.metadata
import json
import os
import signal
import sys
import types

import numpy as np
import pytest
import torch

from jewelgan.config import ConfigError, TrainConfig
from jewelgan.data import Archive, ArchiveWriter
from jewelgan.train import DivergenceError, Trainer, train
from jewelgan.runs.checkpoint import latest_checkpoint, open_checkpoint
from jewelgan.train.losses import d_loss, g_loss, gradient_penalty, r1_penalty

COLORS = {"red": (230, 20, 20), "green": (20, 210, 30), "blue": (20, 40, 230)}


def make_shapes(path, n=48, res=32, seed=0):
    """Tiny labelled archive: background colour = the `color` label, a white disc or square on it.

    Every fifth `shape` label is missing, to exercise the "unspecified" embedding.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:res, :res]
    with ArchiveWriter(path, res, overwrite=True) as w:
        for i in range(n):
            color = list(COLORS)[i % 3]
            shape = ["disc", "square"][(i // 3) % 2]
            im = np.empty((res, res, 3), np.uint8)
            im[:] = COLORS[color]
            cx, cy = rng.integers(res // 3, 2 * res // 3, 2)
            r = int(rng.integers(res // 8, res // 4))
            mask = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r) if shape == "disc" else ((abs(xx - cx) < r) & (abs(yy - cy) < r))
            im[mask] = 255
            w.add(im, {"color": color, "shape": shape if i % 5 else None}, f"synthetic/{i}")
    return path


def tiny(data, **kw):
    """A config that trains in well under a second per handful of steps on one thread."""
    base = dict(data=str(data), batch=8, kimg=0.04, progress=False, threads=1, log_every=1, grid_every=0,
                ckpt_every=0, out=str(kw.pop("out", "runs")))
    base.update(kw)
    if base.get("model", "dcgan") == "dcgan":
        base.setdefault("model_args", {"ngf": 16, "ndf": 16})
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("data") / "shapes.jga")


def _params(m):
    return [p.detach().clone() for p in m.parameters()]


@pytest.mark.parametrize("model,loss,r1", [("mlp", "ns", 0.0), ("dcgan", "ns", 0.0), ("dcgan", "hinge", 1.0),
                                           ("mlp", "wgan-gp", 0.0)])
def test_one_step_per_model_moves_weights_with_finite_losses(archive, tmp_path, model, loss, r1):
    t = Trainer(tiny(archive, model=model, loss=loss, r1=r1, out=tmp_path))
    g0, d0 = _params(t.G), _params(t.D)
    stats = t.train_step(0)
    assert {"loss_d", "loss_g", "d_real", "d_fake"} <= set(stats)
    assert all(np.isfinite(v) for v in stats.values()), stats
    assert ("r1" in stats) == (r1 > 0) and ("gp" in stats) == (loss == "wgan-gp")
    assert all(not torch.equal(a, b) for a, b in zip(g0, t.G.parameters()) if a.numel() > 1 and b.requires_grad)
    moved_d = [not torch.equal(a, b) for a, b in zip(d0, t.D.parameters())]
    assert sum(moved_d) >= len(moved_d) - 2  # unused "unspecified" rows may not move in one step


def test_losses_are_stable_and_match_definitions():
    real, fake = torch.tensor([3.0, -1.0]), torch.tensor([0.5, -2.0])
    sig = torch.sigmoid
    expected = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert torch.allclose(d_loss("ns", real, fake), expected)
    assert torch.allclose(g_loss("ns", fake), -torch.log(sig(fake)).mean())
    huge = torch.tensor([1e4, -1e4])
    assert torch.isfinite(d_loss("ns", huge, -huge)) and torch.isfinite(g_loss("ns", -huge))  # log(sigmoid) would be -inf
    assert d_loss("hinge", torch.tensor([2.0]), torch.tensor([-2.0])) == 0
    assert g_loss("hinge", fake) == -fake.mean()
    with pytest.raises(ValueError, match="unknown loss"):
        d_loss("lsgan", real, fake)


def test_penalties_zero_for_constant_critic_and_positive_otherwise():
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    lin = torch.nn.Linear(3 * 8 * 8, 1)
    out = lin(x.flatten(1)).squeeze(1)
    expected = lin.weight.square().sum()
    assert torch.allclose(r1_penalty(out, x), expected)
    gp = gradient_penalty(lambda im: lin(im.flatten(1)).squeeze(1), x, torch.randn(4, 3, 8, 8))
    assert torch.allclose(gp, (lin.weight.norm() - 1) ** 2)


def test_config_validation_names_the_field(tmp_path):
    for kwargs, msg in [({"batch": 0}, "TrainConfig.batch"), ({"loss": "lsq"}, "TrainConfig.loss: must be one of"),
                        ({"res": 48}, "TrainConfig.res"), ({"kimg": -1.0}, "TrainConfig.kimg"),
                        ({"lr_g": 2.0}, "TrainConfig.lr_g"), ({"on_nan": "ignore"}, "TrainConfig.on_nan"),
                        ({"batch": "8"}, "TrainConfig.batch: must be int"), ({"bf16": 1}, "TrainConfig.bf16: must be bool"),
                        ({"bf16": "yes"}, "TrainConfig.bf16: must be true, false or auto")]:
        with pytest.raises(ConfigError, match=msg):
            TrainConfig(**kwargs)
    with pytest.raises(ConfigError, match="unknown field 'bacth' \\(did you mean 'batch'\\?\\)"):
        TrainConfig.from_dict({"bacth": 8})
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: unreadable"):
        TrainConfig.load(bad)
    with pytest.raises(ConfigError, match="training budget"):
        Trainer(TrainConfig(data="x"))


def test_config_yaml_and_json_round_trip(tmp_path):
    cfg = TrainConfig(data="a.jga", model="mlp", kimg=3, eval_metrics=["fid", "kid"], model_args={"hidden": [64, 64]})
    for name in ("c.yaml", "c.json"):
        assert TrainConfig.load(cfg.save(tmp_path / name)) == cfg
    assert TrainConfig.load(tmp_path / "c.yaml").kimg == 3.0  # ints widen to float fields


def test_config_files_group_fields_in_sections_and_old_flat_runs_still_load(archive, tmp_path):
    import yaml

    run = train(tiny(archive, model="mlp", kimg=0.016, ckpt_every=0.008, out=tmp_path))
    written = yaml.safe_load((run / "config.yaml").read_text())
    assert written["optimiser"]["lr_g"] == 2e-4 and written["network"]["model"] == "mlp"
    assert "guide_fm" in written["guidance"] and "lr_g" not in written
    # a partial, sectioned file is a config: the rest takes the defaults (how a preset file composes)
    (tmp_path / "partial.yaml").write_text("network: {model: dcgan, z_dim: 64}\noptimiser: {lr_d: 0.001}\n")
    part = TrainConfig.load(tmp_path / "partial.yaml")
    assert (part.model, part.z_dim, part.lr_d, part.lr_g) == ("dcgan", 64, 1e-3, TrainConfig().lr_g)
    with pytest.raises(ConfigError, match="'loss' belongs in section 'objective'"):
        TrainConfig.from_dict({"optimiser": {"loss": "ns"}})
    # run directories written before sections (a flat config.yaml) read the same, and resume
    sectioned = TrainConfig.load(run / "config.yaml")
    (run / "config.yaml").write_text(yaml.safe_dump(sectioned.to_dict(), sort_keys=False))
    assert TrainConfig.load(run / "config.yaml") == sectioned
    resumed = Trainer(resume=run, overrides={"kimg": 0.024})
    assert resumed.step == 2 and resumed.cfg.lr_g == sectioned.lr_g


def test_run_directory_layout_and_metrics(archive, tmp_path):
    run = train(tiny(archive, model="mlp", kimg=0.048, ckpt_every=0.024, grid_every=0.024, out=tmp_path))
    assert run.parent == tmp_path and run.name == "00000-mlp-32"
    cfg = TrainConfig.load(run / "config.yaml")
    assert cfg.res == 32 and cfg.model == "mlp"
    assert "torch" in (run / "config.yaml").read_text().splitlines()[1]
    info = json.loads((run / "run.json").read_text())
    assert info["versions"]["torch"] == importlib.metadata.version("torch")
    assert info["archive"]["content_hash"] == Archive(archive).content_hash
    assert info["cpu"]["cores"] == os.cpu_count() and info["cpu"]["model"]
    assert set(info["cpu"]["isa"]) <= {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}
    if info["cpu"]["torch_capability"] in ("AVX2", "AVX512"):  # torch's own probe agrees with the flags read
        assert "avx2" in info["cpu"]["isa"]
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    trains = [x for x in lines if x["kind"] == "train"]
    assert [x["step"] for x in trains] == list(range(1, 7))
    assert {"loss_d", "loss_g", "d_real", "d_fake", "img_s", "kimg"} <= set(trains[0])
    assert lines[-1] == {**lines[-1], "kind": "event", "event": "stopped", "reason": "budget"}
    grids = sorted(p.name for p in (run / "samples").iterdir())
    assert "reals.png" in grids and len(grids) >= 3
    ck = open_checkpoint(run)
    assert ck.step == 6 and ck.state["kimg"] == 0.048 and ck.state["sampler"]["position"] == 48
    assert set(ck.state["rng"]) >= {"torch", "numpy", "python"}
    assert len(list((run / "checkpoints").iterdir())) == 2  # step 3 and 6


def test_lr_rampdown_holds_then_falls_linearly_over_the_budgets_end(archive, tmp_path):
    # 10 steps of 8 images; the last 40 % of them ramp both learning rates down toward 0
    t = Trainer(tiny(archive, model="dcgan", kimg=0.08, lr_g=1e-3, lr_d=4e-4, lr_rampdown=0.4, out=tmp_path))
    seen = []
    t.callbacks.append(lambda tr, s: seen.append((tr.opt_g.param_groups[0]["lr"], tr.opt_d.param_groups[0]["lr"])))
    t.run()
    g = [a for a, _ in seen]
    assert g[:7] == [pytest.approx(1e-3)] * 7  # progress 0 .. 0.6
    assert g[7:] == [pytest.approx(1e-3 * f) for f in (0.75, 0.5, 0.25)]  # progress 0.7, 0.8, 0.9
    assert [d / a for a, d in seen] == [pytest.approx(0.4)] * 10  # D follows the same schedule
    with pytest.raises(ConfigError, match="lr_rampdown: must be in"):
        TrainConfig(lr_rampdown=1.0).validate()


def test_injected_nan_restores_last_good_state_and_lowers_lr(archive, tmp_path):
    t = Trainer(tiny(archive, model="dcgan", kimg=0.08, guard_every=4, out=tmp_path))

    def poison(trainer, step):
        if step == 6 and trainer.guards.recoveries == 0:
            with torch.no_grad():
                next(trainer.G.parameters()).view(-1)[0] = float("nan")

    t.callbacks.append(poison)
    with pytest.warns(UserWarning, match="restored step 4 and lowered the learning rate"):
        run = t.run()
    events = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    div = [e for e in events if e.get("event") == "divergence"]
    assert len(div) == 1 and div[0]["restored_step"] == 4
    ck = open_checkpoint(run)
    assert ck.step == 10 and ck.state["guard"] == {"lr_scale": 0.5, "recoveries": 1, "collapse_recoveries": 0}
    assert ck.state["optim"]["G"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    for name in ("G", "G_ema", "D"):
        assert all(torch.isfinite(v).all() for v in ck.tensors(name).values() if v.is_floating_point())


def test_on_nan_stop_raises_clear_error(archive, tmp_path):
    t = Trainer(tiny(archive, model="mlp", on_nan="stop", out=tmp_path))
    t.callbacks.append(lambda tr, s: s == 1 and torch.nn.init.constant_(tr.D.head.linear.weight, float("inf")))
    with pytest.raises(DivergenceError, match="training diverged: non-finite values at step 2 .*lower learning rate"):
        t.run()


def test_ctrl_c_saves_checkpoint_and_returns(archive, tmp_path):
    t = Trainer(tiny(archive, model="mlp", kimg=0.4, out=tmp_path))
    t.callbacks.append(lambda tr, s: s == 2 and os.kill(os.getpid(), signal.SIGINT))
    run = t.run()
    assert t.stop_reason == "interrupted" and open_checkpoint(run).step == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class CountingAugment(torch.nn.Module):
    """A differentiable stand-in for ADA: flips the image, counts calls, moves p on update()."""

    def __init__(self):
        super().__init__()
        self.register_buffer("prob", torch.zeros((), dtype=torch.float64))
        self.calls = 0

    @property
    def p(self):
        return float(self.prob)

    def update(self, real_logits):
        self.prob += 0.01 * torch.sign(real_logits).mean().double()

    def forward(self, x):
        self.calls += 1
        return x.flip(-1)


def test_augment_hook_wraps_every_d_input_and_p_is_logged(archive, tmp_path):
    aug = CountingAugment()
    run = train(tiny(archive, model="mlp", kimg=0.024, out=tmp_path), augment=aug)
    assert aug.calls == 3 * 3  # real, fake for D, fake for G, in each of 3 steps
    rec = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
    assert all("aug_p" in r for r in rec) and rec[-1]["aug_p"] == aug.p != 0
    assert "augment" in [p.name.split(".")[0] for p in latest_checkpoint(run).iterdir()]


def test_eval_hook_is_called_with_the_documented_arguments(archive, tmp_path, monkeypatch):
    calls = []

    def evaluate_generator(G, schema, archive_path, n, metrics, device, cache_dir=None):
        calls.append((G.training, schema.names, archive_path, n, metrics, device))
        return {"fid": 100.0 - len(calls), "kid": 0.1}

    monkeypatch.setitem(sys.modules, "jewelgan.metrics.api",
                        types.SimpleNamespace(evaluate_generator=evaluate_generator))
    run = train(tiny(archive, model="mlp", kimg=0.048, eval_every=0.024, eval_n=16, out=tmp_path))
    assert calls and calls[0] == (False, ["color", "shape"], str(archive), 16, ("fid",), "cpu")
    evals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    assert [e["step"] for e in evals] == [3, 6] and evals[-1]["fid"] == 98.0
    assert json.loads((run / "checkpoints" / "best.json").read_text())["step"] == 6


def test_resume_refuses_to_change_the_maths(archive, tmp_path):
    run = train(tiny(archive, model="mlp", kimg=0.016, out=tmp_path))
    with pytest.raises(ConfigError, match="TrainConfig.batch: cannot change from 8 to 16 when resuming"):
        Trainer(resume=run, overrides={"batch": 16})
    t = Trainer(resume=run, overrides={"kimg": 0.032})
    assert t.step == 2 and t.run() == run and open_checkpoint(run).step == 4


def test_conditional_model_follows_the_colour_label(tmp_path):
    data = make_shapes(tmp_path / "c.jga", n=60)
    cfg = tiny(data, model="mlp", kimg=1.28, batch=32, lr_g=1e-3, lr_d=1e-3, ema_kimg=0.0, out=tmp_path)
    run = train(cfg)
    from jewelgan.inference import load_generator, sample_images

    G, schema, info = load_generator(run)
    means = {c: sample_images(G, schema, 16, {"color": c}, seed=1).reshape(-1, 3).mean(0) for c in COLORS}
    for i, c in enumerate(COLORS):
        assert np.argmax(means[c]) == i, (c, means)
    unspecified = G(torch.randn(4, G.z_dim), torch.full((4, 2), -1))
    assert unspecified.shape == (4, 3, 32, 32) and torch.isfinite(unspecified).all()


def test_cli_train_merges_config_file_and_flags(archive, tmp_path):
    from typer.testing import CliRunner

    from jewelgan.cli import app

    cfg_file = tiny(archive, model="mlp", kimg=5.0, out=tmp_path, model_args={"hidden": [32, 32]}).save(tmp_path / "c.yaml")
    res = CliRunner().invoke(app, ["train", "--config", str(cfg_file), "--kimg", "0.016", "--name", "cli", "--lr", "1e-3"])
    assert res.exit_code == 0, res.output
    saved = TrainConfig.load(tmp_path / "cli" / "config.yaml")
    assert (saved.model, saved.kimg, saved.lr_g, saved.lr_d, saved.model_args) == ("mlp", 0.016, 1e-3, 1e-3, {"hidden": [32, 32]})
    assert open_checkpoint(tmp_path / "cli").step == 2
    res = CliRunner().invoke(app, ["train", "--config", str(cfg_file), "--name", "cli", "--kimg", "0.016"])
    assert res.exit_code == 1 and "already exists; pass --resume" in res.output
    # preset, then the file's own fields, then flags: a partial file tunes a preset
    (tmp_path / "tune.yaml").write_text(f"run: {{data: {archive}, out: {tmp_path}}}\noptimiser: {{lr_d: 0.0005}}\n"
                                        "network: {res: 32, model_args: {preset: cpu-64, w_dim: 32, channel_base: 256}}\n"
                                        "schedule: {progress: false}\n")
    res = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "tune.yaml"), "--preset", "cpu-64", "--kimg",
                                   "0.032", "--name", "tuned", "--threads", "1"])
    assert res.exit_code == 0, res.output
    saved = TrainConfig.load(tmp_path / "tuned" / "config.yaml")
    assert saved.lr_d == 5e-4 and saved.lr_g == 2e-3 and saved.guide_fm == 10.0  # file over preset
    assert saved.model_args["w_dim"] == 32 and saved.kimg == 0.032


def test_bf16_auto_follows_the_machines_rates_and_is_stored_resolved(archive, tmp_path, monkeypatch):
    from jewelgan.train import precision

    cpu = torch.device("cpu")
    assert precision.resolve_bf16(True, cpu) is True and precision.resolve_bf16(False, cpu) is False
    assert precision.matmul_rate(torch.float32, n=64, seconds=0.01) > 0
    for bf16_speedup, expect in [(2.4, True), (0.5, False), (1.2, False)]:  # the rule, on either kind of CPU
        monkeypatch.setattr(precision, "matmul_rate", lambda dtype, s=bf16_speedup: s if dtype == torch.bfloat16 else 1.0)
        assert precision.resolve_bf16("auto", cpu) is expect
    monkeypatch.undo()
    run = Trainer(tiny(archive, bf16="auto", out=tmp_path)).run()
    saved = TrainConfig.load(run / "config.yaml")
    assert isinstance(saved.bf16, bool)  # the decision, not the question: a resume elsewhere keeps the maths
    back = Trainer(resume=run, overrides={"bf16": "auto", "kimg": 0.08})
    assert back.cfg.bf16 == saved.bf16


def test_every_train_flag_is_a_config_field():
    """The CLI's train flags cannot drift from TrainConfig: each maps to a field of the same name (a few
    are not fields by design: --resume, --auto-resume, --config, --preset, --lr for both rates, --set for any
    field)."""
    import dataclasses

    import typer.main

    from jewelgan.cli import app

    command = next(c for c in typer.main.get_command(app).commands.values() if c.name == "train")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    not_fields = {"resume", "auto_resume", "config", "preset", "lr", "set_"}
    params = {p.name for p in command.params}
    assert not_fields <= params
    assert sorted(params - not_fields - fields) == []
