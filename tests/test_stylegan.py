"""The style-based conditional generator: shapes, conditioning with missing labels, truncation, mixing."""

import math

import pytest
import torch
import torch.nn.functional as F

from jewelgan.models.presets import PRESETS, get_preset, preset_config
from jewelgan.models.style import resolve_model_args
from jewelgan.models.style_generator import ModulatedConv, StyleGenerator

NUM_VALUES = [4, 4, 5]  # e.g. category, metal, gemstone

# small models run many tiny ops: on a shared 2-core machine two OpenMP threads were up to 100x slower
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(resolution=16, **kw):
    torch.manual_seed(0)
    args = dict(z_dim=16, w_dim=32, mapping_layers=2, channel_base=256, channel_max=32, mean_w_samples=64)
    args.update(kw)
    return StyleGenerator(NUM_VALUES, resolution=resolution, **args)


def labels(b, fill=None):
    if fill is not None:
        return torch.tensor([fill] * b)
    return torch.stack([torch.randint(-1, n, (b,)) for n in NUM_VALUES], dim=1)


@pytest.mark.parametrize("res", [8, 16, 32])
def test_output_shape_and_range(res):
    g = tiny(res).eval()
    x = g(torch.randn(3, 16), labels(3))
    assert x.shape == (3, 3, res, res)
    assert x.min() >= -1 and x.max() <= 1
    assert torch.isfinite(x).all()


def test_tanh_output_stays_in_range_while_training():
    g = tiny(output="tanh").train()
    with torch.no_grad():
        for p in g.parameters():
            p.mul_(5)  # large weights would push a linear output far outside [-1, 1]
    x = g(torch.randn(4, 16), labels(4))
    assert x.abs().max() <= 1
    with pytest.raises(ValueError, match="output must be 'linear', 'tanh', 'tanh_leak', 'tanh_leak_bounded'"):
        tiny(output="sigmoid")


def test_tanh_leak_draws_tanh_but_keeps_a_gradient_where_tanh_saturates():
    torch.manual_seed(0)
    z, y = torch.randn(4, 16), labels(4)
    plain, leak = tiny(output="tanh").train(), tiny(output="tanh_leak").train()
    with torch.no_grad():
        for p in list(plain.parameters()) + list(leak.parameters()):
            p.mul_(5)  # push the pre-activations deep into saturation
    torch.manual_seed(1)
    a = plain(z, y)
    torch.manual_seed(1)  # the same training noise
    b = leak(z, y)
    assert torch.allclose(a, b, atol=1e-6) and b.abs().max() <= 1  # forward: exactly tanh
    saturated = a.detach().abs() > 0.999
    assert saturated.float().mean() > 0.1
    a.sum().backward()
    b.sum().backward()
    last = lambda g: g.blocks[-1].torgb.conv.weight.grad.abs().sum()
    # tanh passes almost nothing back from saturated pixels; the leak passes at least 0.1 of it
    assert last(leak) > 3 * last(plain)


def test_tanh_leak_bounded_leaks_only_within_the_bound():
    """tanh forward; backward tanh's slope plus 0.1 for |pre-activation| < 3, tanh's slope alone beyond."""
    g = tiny(output="tanh_leak_bounded").train()
    x = torch.tensor([0.5, -2.0, 2.9, 3.5, -6.0], requires_grad=True)
    y = g._output(x)  # the output non-linearity alone, through the generator's own code path
    assert torch.equal(y.detach(), torch.tanh(x.detach()))
    y.sum().backward()
    slope = 1 - torch.tanh(x.detach()) ** 2
    assert torch.allclose(x.grad, slope + torch.tensor([0.1, 0.1, 0.1, 0.0, 0.0]))


def test_bounded_leak_stops_the_runaway_that_tanh_leak_allows():
    """Pushing pixels toward +1 for many Adam steps (what D asks when the reals' backdrop is pure white):
    through the unbounded leak the pre-activations climb steadily; through the bounded one they stall
    near the bound, as with a plain tanh."""
    outputs = {o: tiny(output=o)._output for o in ("tanh", "tanh_leak", "tanh_leak_bounded")}

    def push(output, steps):
        pre = torch.zeros(8, requires_grad=True)
        opt = torch.optim.Adam([pre], lr=0.01, betas=(0.5, 0.999))
        for _ in range(steps):
            opt.zero_grad()
            (-outputs[output](pre)).sum().backward()
            opt.step()
        return float(pre.detach().max())

    leak_1k, leak_3k = push("tanh_leak", 1000), push("tanh_leak", 3000)
    bounded_1k, bounded_3k = push("tanh_leak_bounded", 1000), push("tanh_leak_bounded", 3000)
    assert leak_3k > 10 and leak_3k - leak_1k > 8                  # still climbing ~0.006 per step
    assert bounded_3k < 5 and bounded_3k - bounded_1k < 1.5        # stalled
    assert bounded_3k < push("tanh", 3000) + 1


def test_num_ws_matches_layers():
    g = tiny(32)
    # 4x4: 1 conv; 8, 16, 32: 2 convs each; plus one w for the last toRGB
    assert g.num_ws == 1 + 2 * 3 + 1


def test_missing_attribute_accepted_and_changes_output():
    g = tiny().eval()
    z = torch.randn(2, 16)
    specified = g(z, labels(2, [1, 2, 3]))
    unspecified = g(z, labels(2, [1, -1, 3]))
    assert torch.isfinite(unspecified).all()
    assert (specified - unspecified).abs().mean() > 1e-4
    # every value of an attribute gives a different image for the same z
    outs = [g(z[:1], labels(1, [0, m, 0])) for m in range(-1, 4)]
    for i in range(len(outs)):
        for j in range(i + 1, len(outs)):
            assert not torch.allclose(outs[i], outs[j])


def test_unspecified_embedding_is_learnt():
    g = tiny()
    x = g(torch.randn(2, 16), labels(2, [-1, -1, -1]))
    x.square().mean().backward()
    unspecified_rows = [t.weight.grad[n] for t, n in zip(g.mapping.embed.tables, NUM_VALUES)]
    assert all(r.abs().sum() > 0 for r in unspecified_rows)


@pytest.mark.parametrize("bad, match", [
    (torch.tensor([[0, 4, 0]]), "out of range for attribute 1"),
    (torch.tensor([[0, 0, -2]]), "out of range for attribute 2"),
    (torch.tensor([[0, 0]]), r"labels must be \(batch, 3\)"),
    (torch.tensor([[0, 0, 0], [0, 0, 0]]), "2 label rows for a batch of 1"),
])
def test_bad_labels_give_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        tiny()(torch.randn(1, 16), bad)


def test_bad_z_shape_is_reported():
    with pytest.raises(ValueError, match=r"z must be \(batch, 16\)"):
        tiny()(torch.randn(2, 8), labels(2))


def test_truncation_zero_gives_per_condition_mean_image():
    g = tiny().eval()
    lab = labels(4, [2, 1, 0])
    x = g(torch.randn(4, 16), lab, truncation=0.0)
    assert torch.allclose(x, x[:1].expand_as(x), atol=1e-6)  # z no longer matters
    mean_w = g.mean_w(lab[:1])
    # the mean w is the average mapping output over many z for that condition: compare with an
    # independent estimate, within 6 standard errors of the smaller sample
    ws = g.mapping(torch.randn(4096, 16), lab[:1].expand(4096, -1))
    stderr = ws.std(0) / g.mean_w_samples ** 0.5
    assert ((mean_w[0] - ws.mean(0)).abs() <= 6 * stderr + 1e-6).all()
    assert not torch.allclose(mean_w[0], g.mean_w(labels(1, [0, 3, 4]))[0])
    expected = g.synthesis(mean_w.unsqueeze(1).repeat(1, g.num_ws, 1))
    assert torch.allclose(x[:1], expected, atol=1e-5)
    # another condition has another mean image
    other = g(torch.randn(1, 16), labels(1, [0, 3, 4]), truncation=0.0)
    assert (other - x[:1]).abs().mean() > 1e-4


def test_truncation_interpolates_toward_mean():
    g = tiny().eval()
    z, lab = torch.randn(3, 16), labels(3)
    w = g.map(z, lab)[:, 0]
    w_half = g.map(z, lab, truncation=0.5)[:, 0]
    assert torch.allclose(w_half, 0.5 * (w + g.mean_w(lab)), atol=1e-5)


def test_mean_w_cache_follows_weight_changes():
    g = tiny().eval()
    lab = labels(1, [0, 0, 0])
    before = g.mean_w(lab).clone()
    with torch.no_grad():  # an EMA-style in-place update
        for p in g.mapping.parameters():
            p.data.mul_(1.5)
    after = g.mean_w(lab)
    assert not torch.allclose(before, after)


def test_style_mixing_only_in_training():
    g = tiny(mixing_prob=1.0)
    z, lab = torch.randn(8, 16), labels(8)
    g.train()
    ws = g.map(z, lab)
    switched = (ws[:, 1:] - ws[:, :1]).abs().amax(dim=2) > 0  # which layers differ from the first
    assert switched.any(dim=1).all()  # every sample mixes at some cutoff
    # once switched, a sample stays on the second w (one cutoff per sample)
    assert (switched.int().diff(dim=1) >= 0).all()
    g.eval()
    ws = g.map(z, lab)
    assert torch.equal(ws, ws[:, :1].expand_as(ws))


def test_eval_images_do_not_depend_on_batch_company():
    # constant noise in eval mode: one seed gives one image, alone or in a batch
    g = tiny().eval()
    z, lab = torch.randn(5, 16), labels(5)
    batch = g(z, lab)
    single = g(z[2:3], lab[2:3])
    assert torch.allclose(batch[2:3], single, atol=1e-5)


def test_training_noise_is_random():
    g = tiny().train()
    for layer in g.modules():
        if hasattr(layer, "noise_strength"):
            layer.noise_strength.data.fill_(1.0)
    z, lab = torch.randn(2, 16), labels(2)
    assert not torch.allclose(g(z, lab, noise_mode="random"), g(z, lab, noise_mode="random"))


def test_noise_inputs_can_be_switched_off():
    # the cpu-64 preset has none: learnt per-pixel noise put speckle on every image (docs/experiments.md)
    g = tiny(noise=False, output="tanh", mixing_prob=0.0).train()
    for layer in g.modules():
        if hasattr(layer, "noise_strength"):
            layer.noise_strength.data.fill_(1.0)
    z, lab = torch.randn(2, 16), labels(2)
    assert torch.equal(g(z, lab, noise_mode="random"), g(z, lab, noise_mode="none"))
    assert torch.equal(g(z, lab), g.eval()(z, lab))  # no noise, no mixing, tanh: training mode = eval mode
    # or kept for training and left out when sampling
    trained_with_noise = tiny(eval_noise="none", output="tanh", mixing_prob=0.0)
    for layer in trained_with_noise.modules():
        if hasattr(layer, "noise_strength"):
            layer.noise_strength.data.fill_(1.0)
    trained_with_noise.eval()
    assert torch.equal(trained_with_noise(z, lab), trained_with_noise(z, lab, noise_mode="none"))
    assert not torch.allclose(trained_with_noise(z, lab), trained_with_noise(z, lab, noise_mode="const"))
    assert not torch.allclose(trained_with_noise.train()(z, lab), trained_with_noise.train()(z, lab))
    with pytest.raises(ValueError, match="eval_noise must be 'const' or 'none'"):
        tiny(eval_noise="random")
    # or only up to a resolution: the coarse layers keep their noise, the fine ones have none
    partial = tiny(noise_max_res=8)
    noisy = {n.split(".")[1] for n, _ in partial.named_parameters() if n.endswith("noise_strength")}
    assert noisy == {str(i) for i, b in enumerate(partial.blocks) if b.resolution <= 8} and noisy


def test_noise_drop_trains_some_samples_exactly_as_sampling_draws_them():
    g = tiny(eval_noise="none", output="tanh", mixing_prob=0.0, noise_drop=0.5).train()
    for layer in g.modules():
        if hasattr(layer, "noise_strength"):
            layer.noise_strength.data.fill_(1.0)
    torch.manual_seed(3)
    z, lab = torch.randn(64, 16), labels(64)
    clean = g(z, lab, noise_mode="none")
    drawn = g(z, lab)  # training mode: random noise, dropped for about half of the samples
    same = (drawn - clean).flatten(1).abs().amax(1) == 0
    assert 16 < int(same.sum()) < 48  # whole samples go noise-free, the others keep their noise
    assert torch.equal(g(z, lab, noise_mode="none"), g.eval()(z, lab))  # the noise-free path is sampling's
    always = tiny(output="tanh", mixing_prob=0.0, noise_drop=1.0).train()
    for layer in always.modules():
        if hasattr(layer, "noise_strength"):
            layer.noise_strength.data.fill_(1.0)
    assert torch.equal(always(z, lab), always(z, lab, noise_mode="none"))
    with pytest.raises(ValueError, match="noise_drop must be in"):
        tiny(noise_drop=1.5)


def test_modulated_conv_equals_per_sample_weight_modulation():
    # the activation-side implementation must equal the textbook per-sample modulated weights
    torch.manual_seed(1)
    conv = ModulatedConv(6, 5, 3, w_dim=8)
    x, w = torch.randn(3, 6, 7, 7), torch.randn(3, 8)
    fast = conv(x, w)
    s = conv.affine(w)
    weight = conv.weight * conv.weight_gain
    wm = weight.unsqueeze(0) * s[:, None, :, None, None]  # (B, out, in, k, k)
    wm = wm * (wm.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    ref = F.conv2d(x.reshape(1, -1, 7, 7), wm.reshape(-1, 6, 3, 3), padding=1, groups=3).reshape(3, 5, 7, 7)
    assert torch.allclose(fast, ref, atol=1e-5)


def test_upsampling_conv_matches_per_sample_reference_and_has_no_checkerboard():
    torch.manual_seed(3)
    conv = ModulatedConv(4, 5, 3, w_dim=8, up=True)
    x, w = torch.randn(2, 4, 6, 6), torch.randn(2, 8)
    y = conv(x, w)
    assert y.shape == (2, 5, 12, 12)
    s = conv.affine(w)
    wm = (conv.weight * conv.weight_gain).unsqueeze(0) * s[:, None, :, None, None]
    wm = wm * (wm.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    ref = torch.stack([F.conv_transpose2d(x[b:b + 1], wm[b].transpose(0, 1), stride=2) for b in range(2)])[:, 0]
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = (f[:, None] * f[None, :] / 16).expand(5, 1, 4, 4)
    ref = F.conv2d(F.pad(ref, [1, 1, 1, 1]), k, groups=5)
    assert torch.allclose(y, ref, atol=1e-5)
    # a flat input stays flat away from the borders: the low-pass removes the stride-2 pattern
    flat = conv(torch.ones(1, 4, 6, 6), w[:1])[0, :, 2:-2, 2:-2]
    assert torch.allclose(flat, flat[:, :1, :1].expand_as(flat), atol=1e-5)


def test_demodulation_normalises_output_scale():
    torch.manual_seed(2)
    conv = ModulatedConv(64, 64, 3, w_dim=8)
    x = torch.randn(4, 64, 16, 16)
    y = conv(x, torch.randn(4, 8) * 10)  # large styles are cancelled by demodulation
    assert 0.5 < y[:, :, 1:-1, 1:-1].std() < 2.0


def test_training_step_moves_all_parameters():
    g = tiny()
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    before = {k: v.detach().clone() for k, v in g.named_parameters()}
    loss = g(torch.randn(4, 16), labels(4)).square().mean()
    loss.backward()
    assert math.isfinite(loss.item())
    opt.step()
    unchanged = [k for k, v in g.named_parameters() if torch.equal(v, before[k])]
    # only embedding rows no sample used may stay put
    assert all("embed" in k for k in unchanged), unchanged


def test_unconditional_schema():
    g = StyleGenerator([], resolution=8, z_dim=8, w_dim=16, mapping_layers=1, channel_base=64, channel_max=16)
    assert g(torch.randn(2, 8), torch.zeros(2, 0, dtype=torch.long)).shape == (2, 3, 8, 8)


def test_presets_are_complete():
    from jewelgan.config import TrainConfig

    assert {"cpu-64", "cpu-64-projected", "gpu-128", "gpu-256", "gpu-512"} <= set(PRESETS)
    for name in PRESETS:
        cfg = TrainConfig(**preset_config(name))  # every preset is a valid training config
        assert cfg.model == "style" and cfg.model_args == {"preset": name}
        args = resolve_model_args(cfg.model_args, cfg.res)
        assert args["d"] in ("dcgan", "projected", "resnet")
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        get_preset("nope")


def test_builder_through_the_registry():
    from jewelgan.config import TrainConfig
    from jewelgan.data.labels import LabelSchema
    from jewelgan.models import build_model
    from jewelgan.models.projected_d import ProjectedDiscriminator

    schema = LabelSchema({"category": ["ring", "pendant"], "metal": ["gold", "silver", "rose"]})
    cfg = TrainConfig(**{**preset_config("cpu-64-projected"), "res": 32})
    G, D = build_model("style", cfg, schema)
    assert isinstance(G, StyleGenerator) and isinstance(D, ProjectedDiscriminator)
    assert G.z_dim == cfg.z_dim and G.sizes == [2, 3] and G.resolution == 32
    x = G.eval()(torch.randn(2, G.z_dim), torch.tensor([[0, 2], [-1, -1]]))
    assert D(x, torch.tensor([[0, 2], [-1, -1]])).shape == (2,)
    G2, D2 = build_model("style", cfg, schema, discriminator=False)
    assert D2 is None
    G2.load_state_dict(G.state_dict())  # what generate.load_generator does
    cfg_r = TrainConfig(**{**preset_config("cpu-64"), "res": 32, "model_args": {"preset": "cpu-64", "d": "resnet"}})
    _, D3 = build_model("style", cfg_r, schema)
    assert type(D3).__name__ == "ResNetDiscriminator"
    cfg_p = cfg_r.replace(model_args={"preset": "cpu-64", "d": "projected", "d_proj_channels": [8, 8, 8, 8]})
    assert isinstance(build_model("style", cfg_p, schema)[1], ProjectedDiscriminator)
    with pytest.raises(ValueError, match="unknown option.*chanels"):
        build_model("style", cfg.replace(model_args={"chanels": 3}), schema)


def test_unconditional_generator_ignores_labels():
    g = StyleGenerator([], resolution=8, z_dim=8, w_dim=16, mapping_layers=1, channel_base=64, channel_max=16).eval()
    z = torch.randn(2, 8)
    assert torch.equal(g(z, None), g(z, torch.zeros(2, 3, dtype=torch.long)))


def test_cpu_preset_generator_builds_and_runs():
    p = PRESETS["cpu-64"]
    g = StyleGenerator(NUM_VALUES, resolution=p["config"]["res"], z_dim=p["config"]["z_dim"],
                       **{k: v for k, v in p["model_args"].items() if not k.startswith("d")}).eval()
    assert g(torch.randn(1, g.z_dim), labels(1)).shape == (1, 3, 64, 64)


def test_mapping_lr_mul_scales_the_mappings_effective_step_but_not_its_init():
    # equalised lr: same effective weights at init, but an Adam step (same size in stored units)
    # moves the effective mapping weights in proportion to lr_mul
    moves = {}
    for mul in (0.01, 0.1):
        g = tiny(mapping_lr_mul=mul)
        layer = g.mapping.layers[0]
        eff0 = (layer.weight * layer.weight_gain).detach().clone()
        torch.manual_seed(1)
        opt = torch.optim.Adam(g.parameters(), lr=1e-2)
        g(torch.randn(4, 16), labels(4)).square().mean().backward()
        opt.step()
        moves[mul] = ((layer.weight * layer.weight_gain).detach() - eff0).abs().mean().item()
        assert g.config["mapping_lr_mul"] == mul
        if mul == 0.01:
            first = eff0
        else:
            assert torch.allclose(eff0.std(), first.std(), rtol=0.2)
    assert moves[0.1] == pytest.approx(10 * moves[0.01], rel=0.05)
