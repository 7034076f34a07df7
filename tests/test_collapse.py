"""The collapse guard: a run whose G is forced into one flat saturated colour is noticed and restored or stopped."""

import json

import pytest
import torch

from jewelgan.config import ConfigError, TrainConfig
from jewelgan.train import Trainer
from jewelgan.runs.checkpoint import list_checkpoints, open_checkpoint
from jewelgan.train.collapse import CollapseMonitor, batch_signals
from test_train import make_shapes, tiny

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("data") / "shapes.jga")


def paint_yellow(trainer):
    """G's last layer set to draw pure yellow (R, G at +1, B at -1) whatever its input: tanh is then so
    saturated that G's gradients vanish, and D separates it from the reals within a few dozen steps."""
    last = trainer.G.net[-2]
    res = trainer.cfg.res
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([12.0, 12.0, -12.0]).repeat_interleave(res * res))


def collapsing_run(archive, tmp_path, **kw):
    cfg = tiny(archive, model="mlp", kimg=kw.pop("kimg", 1.2), guard_every=10, ckpt_every=0.4, collapse_patience=15,
               out=tmp_path, **kw)
    t = Trainer(cfg)
    t.callbacks.append(lambda tr, step: step == 30 and tr.guards.collapse_recoveries == 0 and paint_yellow(tr))
    return t


def events(run, kind):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("event") == kind]


def test_batch_signals_tell_saturated_and_identical_fakes_from_reals():
    torch.manual_seed(0)
    real = torch.rand(16, 3, 32, 32) * 1.6 - 0.8           # varied, never at the range's ends
    real[:, :, :4] = 1.0                                       # a pure white backdrop strip: not a "colour"
    yellow = torch.tensor([1.0, 1.0, -1.0]).view(1, 3, 1, 1).expand(16, 3, 32, 32)
    same = real[:1].expand(16, 3, 32, 32)
    assert batch_signals(real, real)["collapse_saturation"] == 0
    assert batch_signals(real, yellow)["collapse_saturation"] == pytest.approx(1.0)
    assert batch_signals(real, real)["collapse_diversity"] == pytest.approx(1.0)
    assert batch_signals(real, same)["collapse_diversity"] < 0.01


def test_monitor_needs_d_pinned_and_bad_samples_for_patience_steps():
    m = CollapseMonitor(patience=5, window=3)
    fine = {"loss_d": 0.01, "collapse_saturation": 0.0, "collapse_diversity": 0.9}  # D strong, samples fine
    bad = {"loss_d": 0.01, "collapse_saturation": 0.25, "collapse_diversity": 0.9}
    for step in range(20):
        m.observe(step, fine)
    assert m.healthy and not m.collapsed
    for step in range(20, 25):
        m.observe(step, bad)
    # the windowed saturation passes 0.1 with the second bad step (0.5 / 3); four bad steps so far
    assert not m.healthy and not m.collapsed and m.first_bad_step == 21
    m.observe(25, bad)
    assert m.collapsed and "pure saturated colours" in m.describe()
    assert m.safe_step() == 21 - 6
    m.observe(26, {**bad, "loss_d": 0.7})  # once D's loss is back up, the count starts again
    assert m.healthy and m.first_bad_step is None


def test_forced_collapse_is_restored_with_lower_lr(archive, tmp_path, capsys):
    t = collapsing_run(archive, tmp_path)
    run = t.run()
    (ev,) = events(run, "collapse")
    assert ev["restored_step"] <= 30 < ev["step"]
    assert "pure saturated colours" in ev["detail"] and "learning rate x0.5" in ev["action"]
    assert f"collapse at step {ev['step']}" in capsys.readouterr().out
    assert t.stop_reason == "budget" and t.guards.lr_scale == 0.5
    ck = open_checkpoint(run)
    assert ck.state["guard"]["collapse_recoveries"] == 1
    # what came after the restore draws no pure yellow: the painted weights were rolled back
    with torch.no_grad():
        fake = t.G(torch.randn(16, t.G.z_dim), torch.zeros(16, t.n_label_cols, dtype=torch.long))
    assert batch_signals(fake, fake)["collapse_saturation"] == 0
    # checkpoints written during the collapse are set aside, never resumed from; those after the restore are new
    later = [open_checkpoint(p) for p in list_checkpoints(run) if open_checkpoint(p).step > ev["restored_step"]]
    assert later and all(c.state["guard"]["collapse_recoveries"] == 1 for c in later)
    assert list((run / "checkpoints").glob("collapsed-step-*"))


def test_forced_collapse_stops_when_told(archive, tmp_path):
    t = collapsing_run(archive, tmp_path, on_collapse="stop")
    run = t.run()
    (ev,) = events(run, "collapse")
    assert t.stop_reason == "collapse" and ev["action"] == "stopped"
    assert events(run, "stopped")[0]["reason"] == "collapse"
    assert open_checkpoint(run).step == ev["restored_step"] <= 30   # the run ends on its healthy state


def test_guard_off_lets_the_collapse_run_to_the_end(archive, tmp_path):
    t = collapsing_run(archive, tmp_path, on_collapse="off", kimg=0.8)  # the guard acted by step ~71
    run = t.run()
    assert not events(run, "collapse") and t.stop_reason == "budget"
    with pytest.raises(ConfigError, match="TrainConfig.on_collapse: must be one of restore, stop, off"):
        TrainConfig(on_collapse="ignore")
