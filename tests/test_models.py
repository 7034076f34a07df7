"""Models: the shared interface, conditioning with missing labels, DCGAN structure, the registry."""

import pytest
import torch
from torch import nn

from jewelgan.config import TrainConfig
from jewelgan.data import LabelSchema
from jewelgan.models import available_models, build_model, register_model
from jewelgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jewelgan.models.layers import LabelEmbedding
from jewelgan.models.registry import UnknownModelError

SCHEMA = LabelSchema({"category": ["ring", "pendant", "earrings"], "metal": ["gold", "silver"]})
LABELS = torch.tensor([[0, 1], [2, -1], [-1, -1], [1, 0]])


@pytest.mark.parametrize("model,res", [("mlp", 32), ("dcgan", 32), ("dcgan", 64)])
def test_interface_shapes_range_and_missing_labels(model, res):
    torch.manual_seed(0)
    cfg = TrainConfig(model=model, res=res, model_args={"ngf": 8, "ndf": 8} if model == "dcgan" else {})
    G, D = build_model(model, cfg, SCHEMA)
    z = torch.randn(4, G.z_dim)
    x = G(z, LABELS)
    assert x.shape == (4, 3, res, res) and x.min() >= -1 and x.max() <= 1
    assert D(x, LABELS).shape == (4,)
    G.eval()
    same_z = z[:1].expand(3, -1)
    out = G(same_z, torch.tensor([[0, 0], [1, 0], [0, -1]]))
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[0], out[2])  # labels matter, -1 too
    with pytest.raises(ValueError, match="labels must be"):
        G(z, LABELS[:, :1])


def test_unconditional_models_take_empty_labels():
    G, D = build_model("dcgan", TrainConfig(res=32, model_args={"ngf": 8, "ndf": 8}), LabelSchema())
    x = G(torch.randn(2, 100), torch.zeros(2, 0, dtype=torch.long))
    assert D(x, torch.zeros(2, 0, dtype=torch.long)).shape == (2,) and G(torch.randn(2, 100)).shape == x.shape


def test_missing_label_uses_the_learnt_unspecified_row():
    emb = LabelEmbedding([3, 2], 5)
    out = emb(torch.tensor([[-1, 1]]))
    assert torch.equal(out[0], emb.tables[0].weight[3] + emb.tables[1].weight[1])
    assert emb.tables[0].weight.shape == (4, 5)


def test_dcgan_is_the_paper_architecture():
    torch.manual_seed(0)
    G, D = DCGANGenerator(64, [3]), DCGANDiscriminator(64, [3])
    ups = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in ups] == [512, 256, 128, 64, 3]
    assert all(m.stride == (2, 2) for m in ups[1:]) and sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 4
    assert any(isinstance(m, nn.ReLU) for m in G.modules())
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512] and all(m.stride == (2, 2) for m in convs)
    assert sum(isinstance(m, nn.LeakyReLU) for m in D.modules()) == 4
    w = torch.cat([m.weight.flatten() for m in convs[1:]])
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.001
    with pytest.raises(ValueError, match="32..256"):
        DCGANGenerator(16, [])
    _, D_r1 = build_model("dcgan", TrainConfig(res=32, r1=1.0), LabelSchema())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D_r1.modules())  # penalties need per-sample D


def test_channels_last_gives_the_same_images():
    torch.manual_seed(0)
    G = DCGANGenerator(32, [2], ngf=8).eval()
    z, y = torch.randn(2, 100), torch.tensor([[0], [1]])
    ref = G(z, y)
    G = G.to(memory_format=torch.channels_last)
    assert torch.allclose(G(z, y), ref, atol=1e-5)


def test_registry_builds_registers_and_explains():
    assert {"mlp", "dcgan"} <= set(available_models())
    with pytest.raises(UnknownModelError, match="unknown model 'gan9000'; available: .*dcgan.*mlp"):
        build_model("gan9000", TrainConfig(), SCHEMA)

    @register_model("test-tiny")
    def build(config, schema):
        G = nn.Linear(config.z_dim, 3)
        G.z_dim = config.z_dim
        return G, nn.Linear(3, 1)

    G, D = build_model("test-tiny", TrainConfig(z_dim=7), SCHEMA, discriminator=False)
    assert G.z_dim == 7 and D is None and "test-tiny" in available_models()
    G, D = build_model("mlp", TrainConfig(res=32), SCHEMA, discriminator=False)
    assert D is None
    with pytest.raises(ValueError, match="model_args for mlp: unknown option"):
        build_model("mlp", TrainConfig(res=32, model_args={"depth": 3}), SCHEMA)


def test_dcgan_d_norms_batchnorm_none_and_spectral():
    """`bn` couples the samples of a batch; `none` and `sn` give per-sample outputs (what R1 needs), and
    `sn` keeps every layer's largest singular value at about 1 whatever the weights' scale."""
    torch.manual_seed(0)
    x, y = torch.randn(6, 3, 32, 32), torch.zeros(6, 2, dtype=torch.long)
    for norm in ("bn", "none", "sn"):
        D = DCGANDiscriminator(32, [3, 2], ndf=8, norm=norm)
        # training mode; except for sn, whose training-mode calls each run a power iteration
        D.train(norm != "sn")
        alone = D(x[:2], y[:2])
        together = D(x, y)[:2]
        assert torch.allclose(alone, together, atol=1e-5) == (norm != "bn"), norm
    D = DCGANDiscriminator(32, [3, 2], ndf=8, norm="sn")
    conv = D.features[0]
    with torch.no_grad():
        conv.parametrizations.weight.original.mul_(50.0)
        for _ in range(30):
            D(x, y)  # each training-mode call runs one power iteration
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert 0.9 < float(sigma) < 1.1
    with pytest.raises(ValueError, match="dcgan d_norm must be one of bn, none, sn"):
        DCGANDiscriminator(32, [3], norm="layer")


def test_dcgan_d_colour_branch_sees_a_tint_shared_by_the_whole_batch():
    """BatchNorm removes a shift common to the batch; the colour branch (no normalisation) keeps it
    per sample, and feeds the projection head, so D can check a piece's metal against its label."""
    torch.manual_seed(0)
    x, y = torch.rand(6, 3, 32, 32) * 2 - 1, torch.zeros(6, 2, dtype=torch.long)
    tinted = x + torch.tensor([0.3, 0.1, -0.2])[:, None, None]
    D = DCGANDiscriminator(32, [3, 2], ndf=8, norm="bn", colour=16)
    colour = D.colour(x)
    assert colour.shape == (6, 32)
    assert torch.allclose(D.colour(x[:2]), colour[:2], atol=1e-6)  # per sample, unlike the BatchNorm features
    assert not torch.allclose(D.colour(tinted), colour, atol=1e-3)
    D(tinted, y).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.colour.parameters())
    # off by default: the state dict is the old one, so earlier checkpoints still load
    assert not any(k.startswith("colour.") for k in DCGANDiscriminator(32, [3, 2], ndf=8).state_dict())
