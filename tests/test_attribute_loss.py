"""Auxiliary attribute classifier on D (TrainConfig.cls_weight): the loss, the wiring, the refusals."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jewelgan.config import ConfigError
from jewelgan.train import Trainer
from jewelgan.train.losses import attribute_loss
from test_train import COLORS, make_shapes, tiny

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("data") / "shapes.jga", n=60)


def test_attribute_loss_sums_cross_entropy_over_known_labels_only():
    a = torch.randn(4, 3, requires_grad=True)
    b = torch.randn(4, 2, requires_grad=True)
    labels = torch.tensor([[0, -1], [2, 1], [-1, -1], [1, 0]])
    loss = attribute_loss([a, b], labels)
    expected = F.cross_entropy(a[[0, 1, 3]], torch.tensor([0, 2, 1])) + F.cross_entropy(b[[1, 3]], torch.tensor([1, 0]))
    assert torch.allclose(loss, expected)
    loss.backward()
    assert torch.count_nonzero(a.grad[2]) == 0 and torch.count_nonzero(b.grad[[0, 2]]) == 0  # missing rows: no signal
    assert torch.count_nonzero(a.grad[0]) == 3
    # a column with no known value in the batch adds nothing (plain cross-entropy would give NaN)
    none_known = attribute_loss([a, b], torch.tensor([[0, -1], [1, -1], [2, -1], [0, -1]]))
    assert torch.isfinite(none_known) and torch.allclose(none_known, F.cross_entropy(a, torch.tensor([0, 1, 2, 0])))


@pytest.mark.parametrize("model", ["dcgan", "style"])
def test_one_step_trains_the_classifier_on_reals_and_g_through_it(archive, tmp_path, model):
    kw = {"model_args": {"preset": "cpu-64", "channel_base": 256, "channel_max": 32, "d_ndf": 8}} if model == "style" else {}
    t = Trainer(tiny(archive, model=model, cls_weight=1.0, out=tmp_path, **kw))
    head0 = [p.detach().clone() for p in t.D.head.classifier.parameters()]
    g0 = [p.detach().clone() for p in t.G.parameters()]
    stats = t.train_step(0)
    assert {"cls_real", "cls_fake"} <= set(stats) and all(np.isfinite(v) for v in stats.values())
    assert all(not torch.equal(a, b) for a, b in zip(head0, t.D.head.classifier.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    # without the option the head is not built, so old checkpoints keep their exact parameter set
    plain = Trainer(tiny(archive, model=model, out=tmp_path, name="plain", **kw))
    assert plain.D.head.classifier is None and "cls_real" not in plain.train_step(0)


def test_d_learns_to_read_the_labels_from_real_images(archive, tmp_path):
    t = Trainer(tiny(archive, model="mlp", cls_weight=1.0, kimg=0.96, batch=32, lr_d=1e-3, out=tmp_path))
    t.run()
    imgs = torch.from_numpy(t.archive.rgb(slice(0, 60))).permute(0, 3, 1, 2).float() / 127.5 - 1
    t.D.eval()
    with torch.no_grad():
        _, classes = t.D(imgs, None, with_classes=True)
    color = t.archive.schema.names.index("color")
    predicted = classes[color].argmax(1).numpy()
    truth = t.archive.labels[:60, color]
    assert (predicted == truth).mean() > 0.9, (predicted, truth, list(COLORS))


def test_cls_weight_is_refused_where_it_cannot_work(archive, tmp_path):
    with pytest.raises(ConfigError, match="TrainConfig.cls_weight: the style model's discriminator has no attribute"):
        Trainer(tiny(archive, model="style", cls_weight=1.0, out=tmp_path,
                     model_args={"preset": "cpu-64", "d": "resnet", "channel_base": 256, "channel_max": 32,
                                 "d_channel_base": 256, "d_channel_max": 32}))
    with pytest.raises(ConfigError, match="TrainConfig.cls_weight: needs a labelled, conditional run"):
        Trainer(tiny(archive, model="dcgan", cls_weight=1.0, conditional=False, out=tmp_path))
    with pytest.raises(ConfigError, match="TrainConfig.cls_weight: must be a finite number >= 0"):
        tiny(archive, model="dcgan", cls_weight=-1.0)
