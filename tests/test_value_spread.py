"""Spread per attribute value (metrics/spread.py) and the guard that watches it in training (train/value_guard.py)."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from jewelgan.data.archive import Archive
from jewelgan.data.subset import take_per_value
from jewelgan.metrics.perceptual import lpips_effnet, mean_pairwise_lpips
from jewelgan.metrics.spread import generator_value_spread, value_spread
from jewelgan.train import Trainer
from test_train import make_shapes, tiny

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("data") / "shapes.jga", n=60)


class OneValueCollapsed(nn.Module):
    """G, except that every latent asking for `value` of attribute `col` draws the picture of one latent."""

    def __init__(self, G: nn.Module, col: int, value: int):
        super().__init__()
        self.G, self.col, self.value, self.z_dim = G, col, value, G.z_dim

    def forward(self, z, labels):
        hit = labels[:, self.col] == self.value
        z = torch.where(hit[:, None], torch.full_like(z, 0.5), z)
        return self.G(z, labels)


def test_pairwise_spread_is_the_mean_of_the_pairs_distances_and_zero_for_copies(archive):
    a = Archive(archive)
    x = a.rgb(np.arange(4))
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    want = np.mean([lpips_effnet(x[[i]], x[[j]])[0] for i, j in pairs])
    assert mean_pairwise_lpips(x) == pytest.approx(want, rel=1e-4)
    assert mean_pairwise_lpips(np.repeat(x[:1], 5, 0)) == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(mean_pairwise_lpips(x[:1]))
    spread = value_spread({"a": np.repeat(x[:1], 4, 0), "b": x}, {"a": x, "b": x})
    assert spread["a"]["ratio"] == pytest.approx(0.0, abs=1e-9) and spread["b"]["ratio"] == pytest.approx(1.0)


def test_the_guard_logs_every_values_spread_and_flags_a_value_drawn_as_one_picture(archive, tmp_path):
    t = Trainer(tiny(archive, kimg=0.16, value_check_every=0.08, out=tmp_path))
    assert set(t.value_guard.values) == {"color", "shape"}  # both attributes have values with >= 15 images
    run = t.run()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    spreads = [r for r in records if r["kind"] == "value_spread"]
    assert len(spreads) == 2 and {"color=red", "color=green", "color=blue", "shape=disc", "shape=square"} <= set(spreads[0])
    col, value = t.model_schema.names.index("color"), t.model_schema.attributes["color"].index("green")
    healthy = t.value_guard.ratios(t.G_ema)["color"]["green"]
    forced = OneValueCollapsed(t.G_ema, col, value)
    first = t.value_guard.check(forced, t.step, 0.16)  # one low reading may be noise: not reported yet
    assert not [r for r in first if r["kind"] == "event"] and first[0]["color=green"] < healthy / 5
    with pytest.warns(UserWarning, match="one picture for color=green"):
        events = [r for r in t.value_guard.check(forced, t.step, 0.16) if r["kind"] == "event"]
    assert events and events[0]["event"] == "value_collapse" and "color=green" in events[0]["values"]
    # only the other attribute's label still varies the forced value's pictures
    assert events[0]["values"]["color=green"] < healthy / 5
    assert not [r for r in t.value_guard.check(forced, t.step, 0.16) if r["kind"] == "event"]  # reported once


def test_generator_value_spread_reports_each_value_with_its_image_count(archive, tmp_path):
    t = Trainer(tiny(archive, out=tmp_path))
    t.run()
    out = generator_value_spread(t.G_ema, t.model_schema, Archive(archive), "color", n_per_value=6)
    assert set(out) == {"red", "green", "blue"} and all(e["images"] == 20 for e in out.values())
    assert all(e["spread_real"] > 0 and np.isfinite(e["ratio"]) for e in out.values())


def test_take_per_value_keeps_the_asked_counts_and_drops_emptied_values(archive, tmp_path):
    out = take_per_value(archive, tmp_path / "uneven.jga", "color", {"red": 3, "blue": 0}, seed=1)
    sub = Archive(out)
    assert sub.value_counts()["color"] == {"red": 3, "green": 20}
    assert sub.schema.attributes["color"] == ["red", "green"]  # blue left the vocabulary
    assert sub.meta["subset_of"] == Archive(archive).content_hash
    for i in range(len(sub)):  # every image is the source's, with its labels
        j = Archive(archive).sources.index(sub.sources[i])
        assert np.array_equal(sub[i][0], Archive(archive)[j][0]) and sub.label_dict(i) == Archive(archive).label_dict(j)
    with pytest.raises(KeyError, match="no value purple"):
        take_per_value(archive, tmp_path / "x.jga", "color", {"purple": 1})
