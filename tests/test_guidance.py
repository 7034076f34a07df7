"""Guidance for G (TrainConfig.guide_fm / guide_cfm / guide_adv / guide_cls / guide_fstd / guide_colour): the losses,
the wiring, resume."""

import shutil

import numpy as np
import pytest
import torch

from jewelgan.config import ConfigError
from jewelgan.train import Trainer
from jewelgan.train.colour_quantiles import COLOUR_AXES, colour_quantiles
from jewelgan.train.guidance import FeatureGuidance
from test_train import make_shapes, tiny

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("data") / "shapes.jga", n=60)


@pytest.fixture(scope="module")
def guide():
    torch.manual_seed(0)
    return FeatureGuidance([3, 2], {"fm": 1.0, "cls": 1.0}, input_res=32)


def test_feature_matching_is_zero_on_the_real_batch_and_pulls_fakes_toward_it(guide):
    real = torch.rand(8, 3, 32, 32) * 2 - 1
    feats, cls = guide.real_step(real, torch.tensor([[0, 1]] * 8))
    assert cls is not None and cls.requires_grad  # trains the heads ...
    assert all(not f.requires_grad for f in feats)  # ... but never the backbone or the reals
    same = guide.g_losses(real, feats, torch.tensor([[0, 1]] * 8))
    assert set(same) == {"fm", "cls"}  # no conditional matching unless asked for
    assert float(same["fm"]) == pytest.approx(0.0, abs=1e-6)
    fake = torch.zeros(8, 3, 32, 32, requires_grad=True)
    fm = guide.g_losses(fake, feats, torch.tensor([[0, 1]] * 8))["fm"]
    assert float(fm.detach()) > 0.01
    fm.backward()
    assert fake.grad.abs().sum() > 0  # gradients reach G's images through the frozen network
    assert all(p.grad is None for p in guide.features.parameters())
    # one small step along the gradient lowers the loss
    with torch.no_grad():
        moved = fake - 0.5 * fake.grad / fake.grad.norm() * fake.numel() ** 0.5 * 0.01
    assert float(guide.g_losses(moved, feats, torch.tensor([[0, 1]] * 8))["fm"]) < float(fm.detach())


def test_spread_matching_sees_fakes_that_are_all_alike_where_means_do_not():
    torch.manual_seed(1)
    guide = FeatureGuidance([3, 2], {"fm": 1.0, "fstd": 1.0}, input_res=32)
    real = torch.cat([_tinted(torch.rand(3).tolist(), n=1) for _ in range(16)])  # pieces of varied colours
    feats, _ = guide.real_step(real, torch.zeros(16, 2, dtype=torch.long))
    lab = torch.zeros(16, 2, dtype=torch.long)
    assert set(guide.g_losses(real, feats, lab)) == {"fm", "fstd"}
    assert float(guide.g_losses(real, feats, lab)["fstd"]) == pytest.approx(0.0, abs=1e-6)
    # fakes all but the same image, a collapsing G: their batch mean can match, their spread cannot
    alike = (real.mean(0, keepdim=True) + 0.01 * torch.randn(16, 3, 32, 32)).requires_grad_(True)
    losses = guide.g_losses(alike, feats, lab)
    assert float(losses["fstd"]) > 0.5  # (0 - std)^2 / var = 1 per channel, minus the tiny spread left
    losses["fstd"].backward()
    assert alike.grad.abs().sum() > 0


def test_spread_matching_trains_in_the_loop(archive, tmp_path):
    t = Trainer(tiny(archive, model="dcgan", guide_fstd=1.0, kimg=0.06, out=tmp_path))
    stats = t.train_step(0)
    assert "guide_fstd" in stats and np.isfinite(stats["guide_fstd"]) and stats["guide_fstd"] > 0


def _tinted(colour, n=4, res=32):
    x = torch.rand(n, 3, res, res) * 0.2 - 0.9
    x[:, :, 8:24, 8:24] = torch.tensor(colour).view(1, 3, 1, 1)
    return x


def test_conditional_matching_sees_swapped_attributes_that_batch_means_miss():
    torch.manual_seed(0)
    guide = FeatureGuidance([2, 3], {"fm": 1.0, "cfm": 1.0}, input_res=32)
    gold, silver = _tinted([0.9, 0.5, -0.4]), _tinted([0.8, 0.8, 0.8])
    real = torch.cat([gold, silver])
    labels = torch.tensor([[0, -1]] * 4 + [[1, 2]] * 4)  # attribute 0: value 0 gold, 1 silver
    feats, _ = guide.real_step(real, labels)
    assert guide.seen.tolist() == [4, 4, 0, 0, 4]  # unspecified values count nowhere
    same = guide.g_losses(real, feats, labels)
    assert float(same["cfm"]) == pytest.approx(0.0, abs=1e-5)
    swapped = guide.g_losses(torch.cat([silver, gold]), feats, labels)  # the right pieces, the wrong labels
    assert float(swapped["fm"]) == pytest.approx(0.0, abs=1e-5)  # the batch means cannot tell ...
    assert float(swapped["cfm"]) > 0.1  # ... the per-value means can
    # the running means average over batches: a second batch of the same pieces leaves them where they are
    before = guide.value_mean0.clone()
    guide.real_step(real, labels)
    assert torch.allclose(before, guide.value_mean0, atol=1e-5)
    assert guide.seen.tolist() == [8, 8, 0, 0, 8]


def test_within_value_spread_sees_each_value_collapsed_where_the_batch_spread_does_not():
    """Two values, each drawn as a single piece by a collapsing G: across the batch the fakes vary (the values
    differ) as much as the reals, within each value they do not."""
    torch.manual_seed(2)
    guide = FeatureGuidance([2], {"fstd": 1.0, "cfstd": 1.0}, input_res=32)
    colours = {0: [0.9, 0.5, -0.4], 1: [0.8, 0.8, 0.8]}
    labels = torch.tensor([[0]] * 8 + [[1]] * 8)

    def pieces(value, vary):  # the value's colour, each piece jittered by `vary`
        return torch.cat([_tinted((torch.tensor(colours[value]) + vary * torch.randn(3)).clamp(-1, 1).tolist(), n=1)
                          for _ in range(8)])

    for _ in range(3):  # the running means see a few batches of varied reals
        real = torch.cat([pieces(0, 0.3), pieces(1, 0.3)])
        feats, _ = guide.real_step(real, labels)
    varied = guide.g_losses(torch.cat([pieces(0, 0.3), pieces(1, 0.3)]), feats, labels)
    alike = torch.cat([pieces(0, 0.0), pieces(1, 0.0)]).requires_grad_(True)
    collapsed = guide.g_losses(alike, feats, labels)
    assert float(collapsed["cfstd"]) > 2.5 * float(varied["cfstd"])
    assert float(collapsed["cfstd"]) / float(varied["cfstd"]) > float(collapsed["fstd"]) / float(varied["fstd"])
    collapsed["cfstd"].backward()
    assert torch.isfinite(alike.grad).all() and alike.grad.abs().sum() > 0
    # with one fake of a value there is no spread to measure: that value is left out, not a NaN
    one = guide.g_losses(real[:9], feats, labels[:9])
    assert torch.isfinite(one["cfstd"])


def test_the_backbone_stays_frozen_and_out_of_the_state_dict(guide):
    guide.train()
    assert not guide.features.training
    assert all(not p.requires_grad for p in guide.features.parameters())
    assert all(k.startswith("heads.") for k in guide.state_dict())


def test_training_step_uses_both_losses_and_resumes_exactly(archive, tmp_path):
    t = Trainer(tiny(archive, model="dcgan", guide_fm=1.0, guide_cls=0.5, kimg=0.12, ckpt_every=0.06, out=tmp_path))
    heads0 = [p.detach().clone() for p in t.guide.heads.parameters()]
    stats = t.train_step(0)
    assert {"guide_fm", "guide_cls_real", "guide_cls_fake"} <= set(stats)
    assert all(np.isfinite(v) for v in stats.values())
    assert all(not torch.equal(a, b) for a, b in zip(heads0, t.guide.heads.parameters()))
    assert all(p.requires_grad for p in t.guide.heads.parameters())  # still trainable: G's loss reads them detached
    run = t.run()
    back = Trainer(resume=run)
    for a, b in zip(t.guide.heads.parameters(), back.guide.heads.parameters()):
        assert torch.equal(a, b)
    assert back.guide.opt_heads.state_dict()["state"]  # the heads' Adam moments come back too


@pytest.mark.parametrize("loss, buffers", [("cfm", ["value_mean1"]), ("colour", ["colour_mean", "colour_var"]),
                                           ("cfstd", ["value_mean1", "value_sq1"])])
def test_conditional_matching_trains_and_its_running_means_resume(archive, tmp_path, loss, buffers):
    t = Trainer(tiny(archive, model="dcgan", **{f"guide_{loss}": 1.0}, kimg=0.12, ckpt_every=0.06, out=tmp_path))
    stats = t.train_step(0)
    assert f"guide_{loss}" in stats and np.isfinite(stats[f"guide_{loss}"]) and stats[f"guide_{loss}"] > 0
    run = t.run()
    back = Trainer(resume=run)
    assert back.guide.seen.sum() > 0 and torch.equal(back.guide.seen, t.guide.seen)
    for name in buffers:
        assert getattr(t.guide, name).abs().sum() > 0 and torch.equal(getattr(back.guide, name), getattr(t.guide, name))


@pytest.mark.parametrize("loss, buffers", [("cfm", ["fake_mean1", "fake_seen"]), ("colour", ["fake_colour_mean"])])
def test_running_fake_means_train_and_resume(archive, tmp_path, loss, buffers):
    t = Trainer(tiny(archive, model="dcgan", **{f"guide_{loss}": 1.0}, guide_value_mean="running", kimg=0.12,
                     ckpt_every=0.06, out=tmp_path))
    run = t.run()
    back = Trainer(resume=run)
    for name in buffers:
        assert getattr(t.guide, name).abs().sum() > 0 and torch.equal(getattr(back.guide, name), getattr(t.guide, name))


def _lone_fake_gradient(value_mean: str, history: list[float], fake: float) -> float:
    """The gradient on one lone fake's 1-channel statistic of value 0 (the reals' mean there is 0), after
    lone fakes at `history` went through the same estimator."""
    g = FeatureGuidance([2], {"cfm": 1.0}, input_res=32, value_mean=value_mean)
    g.seen.fill_(100.0)  # the reals' running means are known
    run = [torch.zeros(2, 1)] if value_mean == "running" else None
    labels = torch.tensor([[0]])
    for x in history + [fake]:
        stat = torch.tensor([[x]], requires_grad=True)
        loss = g._value_gap([stat], [torch.zeros(2, 1)], [torch.ones(1)], labels, run)
        if value_mean == "running":
            g.fake_seen.add_(g._value_onehot(labels).sum(0))
    loss.backward()
    return float(stat.grad)


def test_running_value_means_move_a_lone_fake_by_its_values_gap_not_onto_the_values_mean():
    # a small category has about one fake per batch: "batch" pulls each lone fake onto the reals' mean (the
    # category collapses to one picture); "running" moves it by the gap between the value's fakes and reals
    spread = [(-1.0) ** i for i in range(40)]  # the value's fakes so far vary around the reals' mean
    assert _lone_fake_gradient("batch", spread, 1.0) == pytest.approx(2.0, rel=1e-3)
    assert _lone_fake_gradient("batch", spread, -1.0) == pytest.approx(-2.0, rel=1e-3)
    assert abs(_lone_fake_gradient("running", spread, 1.0)) < 0.1  # no pull inwards: its spread stays
    shifted = [0.5 + x for x in spread]  # the value's fakes sit 0.5 above the reals: both lone fakes move down
    high, low = _lone_fake_gradient("running", shifted, 1.5), _lone_fake_gradient("running", shifted, -0.5)
    assert high > 0.5 and low > 0.5 and high == pytest.approx(low, abs=0.1)


def test_feature_critic_learns_reals_from_fakes_and_pushes_fakes_toward_reals():
    torch.manual_seed(0)
    guide = FeatureGuidance([2], {"fm": 1.0, "adv": 1.0}, input_res=32)
    real, fake = _tinted([0.9, 0.5, -0.4], n=8), _tinted([-0.2, 0.4, 0.9], n=8)
    labels = torch.zeros(8, 1, dtype=torch.long)
    opt = torch.optim.Adam([*guide.critic.parameters(), *guide.critic_head.parameters()], lr=1e-3)
    losses = []
    for _ in range(30):
        real_feats, _ = guide.real_step(real, labels)
        out = guide.g_losses(fake, real_feats, labels)
        loss = guide.critic_loss(real_feats, out["feats"], labels)
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]  # it tells the two apart ...
    assert guide.real_batches == 30
    fake = fake.clone().requires_grad_(True)
    adv = guide.g_losses(fake, real_feats, labels)["adv"]
    assert float(adv.detach()) > float(guide.g_losses(real, real_feats, labels)["adv"].detach())  # ... fakes score worse
    adv.backward()
    assert fake.grad.abs().sum() > 0 and all(p.grad is None for p in guide.features.parameters())
    with torch.no_grad():  # G's side: a small step along the gradient makes the fakes look more real to it
        moved = fake - 0.01 * fake.grad / fake.grad.abs().mean()
    assert float(guide.g_losses(moved, real_feats, labels)["adv"].detach()) < float(adv.detach())
    keys = set(guide.state_dict())
    assert {"real_mean", "real_var", "real_batches"} <= keys and not any(k.startswith("features.") for k in keys)


def test_feature_critic_trains_beside_d_and_resumes_exactly(archive, tmp_path):
    t = Trainer(tiny(archive, model="dcgan", guide_adv=1.0, kimg=0.12, ckpt_every=0.06, out=tmp_path))
    assert t.guide.heads is None and not t.guide.conditional  # the critic alone switches guidance on
    critic0 = [p.detach().clone() for p in t.guide.critic.parameters()]
    stats = t.train_step(0)
    assert {"guide_adv", "loss_critic"} <= set(stats) and all(np.isfinite(v) for v in stats.values())
    assert all(not torch.equal(a, b) for a, b in zip(critic0, t.guide.critic.parameters()))
    run = t.run()
    back = Trainer(resume=run)
    for a, b in zip(t.guide.state_dict().values(), back.guide.state_dict().values()):
        assert torch.equal(a, b)
    assert back.guide.opt_critic.state_dict()["state"]  # its Adam moments come back too


def test_guidance_refusals(archive, tmp_path):
    with pytest.raises(ConfigError, match="TrainConfig.guide_cls: needs a labelled, conditional run"):
        Trainer(tiny(archive, model="dcgan", guide_cls=1.0, conditional=False, out=tmp_path))
    with pytest.raises(ConfigError, match="TrainConfig.guide_cfm: needs a labelled, conditional run"):
        Trainer(tiny(archive, model="dcgan", guide_cfm=1.0, conditional=False, out=tmp_path))
    with pytest.raises(ConfigError, match="TrainConfig.guide_fm: must be a finite number >= 0"):
        tiny(archive, model="dcgan", guide_fm=-1.0)
    with pytest.raises(ConfigError, match="TrainConfig.guide_adv: must be a finite number >= 0"):
        tiny(archive, model="dcgan", guide_adv=float("nan"))
    with pytest.raises(ConfigError, match="TrainConfig.guide_res"):
        tiny(archive, model="dcgan", guide_res=8)


def test_colour_quantiles_of_a_plain_image_are_its_colour_and_rise_with_the_level():
    x = torch.tensor([0.5, -0.2, 0.1]).view(1, 3, 1, 1).expand(2, 3, 8, 8)
    q = colour_quantiles(x, levels=4).view(2, 6, 4)
    assert torch.allclose(q, (COLOUR_AXES @ torch.tensor([0.5, -0.2, 0.1]))[None, :, None].expand(2, 6, 4), atol=1e-6)
    y = torch.rand(3, 3, 16, 16, requires_grad=True)
    qy = colour_quantiles(y).view(3, 6, 32)
    assert (qy.diff(dim=-1) >= 0).all()  # a quantile function never falls
    qy.sum().backward()
    assert y.grad.abs().sum() > 0  # differentiable through the sort


def _patch(colour, size, n=4, res=32):
    x = torch.rand(n, 3, res, res) * 0.02  # a near-grey backdrop
    lo = (res - size) // 2
    x[:, :, lo:lo + size, lo:lo + size] = torch.tensor(colour).view(1, 3, 1, 1)
    return x


def test_colour_matching_tells_a_small_strong_tint_from_a_broad_faint_one():
    guide = FeatureGuidance([2], {"fm": 1.0, "colour": 1.0}, input_res=32)
    strong = _patch([0.8, 0.2, -0.6], 8)  # a small piece of rich colour ...
    faint = _patch([0.2, 0.05, -0.15], 16)  # ... and a piece 4x larger, 4x paler: the same mean colour
    assert torch.allclose(strong.mean((0, 2, 3)), faint.mean((0, 2, 3)), atol=0.01)
    labels = torch.zeros(4, 1, dtype=torch.long)
    feats, _ = guide.real_step(strong, labels)
    assert set(guide.g_losses(strong, feats, labels)) == {"fm", "colour"}
    assert float(guide.g_losses(strong, feats, labels)["colour"]) == pytest.approx(0.0, abs=1e-3)
    fake = faint.clone().requires_grad_(True)
    loss = guide.g_losses(fake, feats, labels)["colour"]
    assert float(loss.detach()) > 1.0
    loss.backward()
    assert fake.grad.abs().sum() > 0
    # the reals of another value leave value 0's quantiles alone
    before = guide.colour_mean[0].clone()
    guide.real_step(faint, torch.ones(4, 1, dtype=torch.long))
    assert torch.equal(before, guide.colour_mean[0]) and guide.seen.tolist() == [4, 4]


def test_colour_matching_refuses_a_negative_weight(archive):
    with pytest.raises(ConfigError, match="TrainConfig.guide_colour: must be a finite number >= 0"):
        tiny(archive, model="dcgan", guide_colour=-1.0)


def test_real_feature_table_reads_the_networks_features_and_keeps_resume_exact(archive, tmp_path):
    from jewelgan.models.frozen_features import TAP_CHANNELS
    from jewelgan.runs.checkpoint import list_checkpoints, open_checkpoint
    from jewelgan.train.real_features import RealFeatureTable

    cfg = tiny(archive, model="dcgan", guide_fm=1.0, guide_cfm=1.0, kimg=0.16, ckpt_every=0.08, out=tmp_path / "a")
    a = Trainer(cfg)
    table = a.real_features
    keys = a.stream.keys(3)
    x, _ = a.stream.get(3)
    got = table(keys)
    for g, want in zip(got, a.guide.pooled(x)):
        assert g.shape == want.shape and torch.allclose(g, want, atol=1e-4)
    filled = int(table.filled.sum())
    assert filled >= len(keys.unique()) and table(keys) is not None and int(table.filled.sum()) == filled
    # a value does not depend on which batch first asked for it
    other = RealFeatureTable(a.guide.pooled, TAP_CHANNELS, a.stream, a.device)
    other(a.stream.keys(7))
    assert all(torch.equal(g, o) for g, o in zip(got, other(keys)))

    # a run that loses everything after its first checkpoint resumes (with an empty table) bit-identical
    run_a = a.run()
    run_b = Trainer(cfg.replace(out=str(tmp_path / "b"))).run()
    kept, *later = list_checkpoints(run_b)
    assert later
    for ck in later:
        shutil.rmtree(ck)
    Trainer(resume=run_b).run()
    ga, gb = open_checkpoint(run_a).tensors("G"), open_checkpoint(run_b).tensors("G")
    assert open_checkpoint(run_b).step == open_checkpoint(run_a).step > open_checkpoint(kept).step
    assert all(torch.equal(ga[k], gb[k]) for k in ga)
